"""analysis.overhead: CET-on against CET-off with known true costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cetbench.analysis.errors import AnalysisInputError, InvalidValueError
from cetbench.analysis.overhead import cet_overhead
from tests.support.synthetic import CPU_HZ, make_perf, make_samples

# true medians: host 100 ns -> 104 ns (+4 %), guest 2.0 us -> 2.2 us (+10 %)
VARIANTS = (
    ("host.syscall", "shstk=off", 100e-9, False),
    ("host.syscall", "shstk=on", 104e-9, False),
    ("guest.vmexit.pio", "cet=none", 2.0e-6, True),
    ("guest.vmexit.pio", "cet=ibt", 2.1e-6, True),
    ("guest.vmexit.pio", "cet=ibt+shstk", 2.2e-6, True),
)


def rows_by_variant(samples: pd.DataFrame, perf: pd.DataFrame | None = None, **kw: object) -> dict:
    result = cet_overhead(samples, perf, n_resamples=1000, **kw)  # type: ignore[arg-type]
    return {r.variant: r for r in result.rows}


def test_each_configuration_is_paired_with_its_off_partner() -> None:
    rows = rows_by_variant(make_samples(n=40, variants=VARIANTS))
    assert set(rows) == {"host.syscall[shstk=on]", "guest.vmexit.pio[cet=ibt]", "guest.vmexit.pio[cet=ibt+shstk]"}
    assert rows["host.syscall[shstk=on]"].off_variant == "host.syscall[shstk=off]"
    assert rows["guest.vmexit.pio[cet=ibt]"].off_cet == "cet=none"


def test_ratio_and_difference_intervals_cover_the_truth() -> None:
    # Over several independent data sets, the 95 % intervals cover the true ratio and
    # difference most of the time and the point estimates sit near the truth.
    hits = 0
    trials = 20
    for seed in range(trials):
        row = rows_by_variant(make_samples(n=40, seed=seed, variants=VARIANTS))["guest.vmexit.pio[cet=ibt+shstk]"]
        t = row.time
        hits += (t.ratio_low <= 1.1 <= t.ratio_high) and (t.difference_low <= 0.2e-6 <= t.difference_high)
        assert t.ratio == pytest.approx(1.1, rel=0.01)
        assert row.n_on == row.n_off == 40
    assert hits / trials >= 0.8


def test_cycles_are_compared_when_present() -> None:
    row = rows_by_variant(make_samples(n=40, variants=VARIANTS))["host.syscall[shstk=on]"]
    assert row.cycles is not None
    assert row.cycles.difference == pytest.approx(4e-9 * CPU_HZ, rel=0.2)
    no_cycles = make_samples(n=40, variants=VARIANTS).assign(cycles=np.nan)
    assert rows_by_variant(no_cycles)["host.syscall[shstk=on]"].cycles is None


def test_emulated_flag_is_carried_through() -> None:
    rows = rows_by_variant(make_samples(n=10, variants=VARIANTS))
    assert rows["guest.vmexit.pio[cet=ibt]"].emulated
    assert not rows["host.syscall[shstk=on]"].emulated


def test_cost_per_extra_event() -> None:
    # CET adds 2 kvm:kvm_fpu events per exit and 0.2 us per exit: 100 ns per event.
    samples = make_samples(n=60, seed=3, variants=VARIANTS)
    perf = make_perf(samples, {
        ("guest.vmexit.pio[cet=none]", "kvm:kvm_fpu"): 0.0,
        ("guest.vmexit.pio[cet=ibt+shstk]", "kvm:kvm_fpu"): 2.0,
        ("guest.vmexit.pio[cet=none]", "kvm:kvm_pio"): 1.0,
        ("guest.vmexit.pio[cet=ibt+shstk]", "kvm:kvm_pio"): 1.0000001,
    })
    row = rows_by_variant(samples, perf)["guest.vmexit.pio[cet=ibt+shstk]"]
    costs = {e.event: e for e in row.events}
    fpu = costs["kvm:kvm_fpu"]
    assert fpu.time_per_event is not None and fpu.low is not None and fpu.high is not None
    assert fpu.low <= 100e-9 <= fpu.high
    # the interval is the Δtime interval divided by Δevents
    assert fpu.low == pytest.approx(row.time.difference_low / 2.0)
    # CET leaves kvm_pio at one per op: the figure is per event that got dearer, Δtime / 1
    pio = costs["kvm:kvm_pio"]
    assert fpu.basis == "extra" and pio.basis == "dearer"
    assert pio.time_per_event == pytest.approx(row.time.difference / 1.0000001)
    assert pio.low == pytest.approx(row.time.difference_low / 1.0000001)


def test_key_events_select_by_workload_prefix() -> None:
    samples = make_samples(n=20, variants=VARIANTS)
    perf = make_perf(samples, {
        ("guest.vmexit.pio[cet=none]", "kvm:kvm_fpu"): 0.0,
        ("guest.vmexit.pio[cet=ibt+shstk]", "kvm:kvm_fpu"): 2.0,
        ("guest.vmexit.pio[cet=none]", "kvm:kvm_exit"): 1.0,
        ("guest.vmexit.pio[cet=ibt+shstk]", "kvm:kvm_exit"): 1.5,
    })
    rows = rows_by_variant(samples, perf, key_events={"guest.": ["kvm:kvm_exit"], "guest.vmexit.pio": ["kvm:kvm_fpu"]})
    assert [e.event for e in rows["guest.vmexit.pio[cet=ibt+shstk]"].events] == ["kvm:kvm_fpu"]


def test_not_counted_events_are_ignored() -> None:
    samples = make_samples(n=20, variants=VARIANTS)
    perf = make_perf(samples, {
        ("guest.vmexit.pio[cet=none]", "cycles"): 1.0,
        ("guest.vmexit.pio[cet=ibt+shstk]", "cycles"): 2.0,
    }).assign(state="not supported", per_op=np.nan)
    assert rows_by_variant(samples, perf)["guest.vmexit.pio[cet=ibt+shstk]"].events == ()


def test_builds_are_grouped_by_label_or_release_and_build_id() -> None:
    a = make_samples(n=20, seed=1, variants=VARIANTS).assign(kernel_release="6.18.0", kernel_build_id="aaa")
    b = make_samples(n=20, seed=2, variants=VARIANTS).assign(kernel_release="6.18.0", kernel_build_id="bbb")
    c = make_samples(n=20, seed=3, variants=VARIANTS).assign(kernel_label="my-test-kernel")
    result = cet_overhead(pd.concat([a, b, c], ignore_index=True), n_resamples=200)
    assert sorted({r.kernel for r in result.rows}) == ["6.18.0+aaa", "6.18.0+bbb", "my-test-kernel"]


def test_missing_off_partner_is_reported() -> None:
    samples = make_samples(n=10, variants=VARIANTS)
    samples = samples[samples["variant"] != "host.syscall[shstk=off]"]
    result = cet_overhead(samples, n_resamples=200)
    assert [u.variant for u in result.unpaired] == ["host.syscall[shstk=on]"]
    assert "shstk=off" in result.unpaired[0].reason


def test_bad_input() -> None:
    samples = make_samples(n=10, variants=VARIANTS)
    with pytest.raises(AnalysisInputError):
        cet_overhead(samples.iloc[0:0])
    broken = samples.copy()
    broken.loc[3, "value"] = -1.0
    with pytest.raises(InvalidValueError, match=r"host\.syscall\[shstk=off\]"):
        cet_overhead(broken)


def test_overhead_resamples_worker_processes_not_values() -> None:
    samples = make_samples(n=60)
    by_process = samples.assign(process=(samples["sample"] // 10).astype("Int64"))  # 6 workers of 10 values
    (row, *_) = cet_overhead(by_process, n_resamples=200).rows
    assert (row.n_on, row.n_off) == (6, 6)
    (flat, *_) = cet_overhead(samples, n_resamples=200).rows
    assert (flat.n_on, flat.n_off) == (60, 60)


def _drifting_pair(seed: int, interleaved: bool, runs: int = 1) -> pd.DataFrame:
    """CET-on 2 % dearer than off; each round (run, process) shares a host speed that drifts by
    ±5 %, as this host's does. Interleaved: both sides of a round saw the same speed."""
    rng = np.random.default_rng(seed)
    rows = []
    for run in range(runs):
        for process in range(8):
            speed = np.exp(rng.normal(0.0, 0.05))
            for cet, truth in (("shstk=off", 100e-9), ("shstk=on", 102e-9)):
                own = speed if interleaved or runs > 1 else np.exp(rng.normal(0.0, 0.05))
                value = truth * own * np.exp(rng.normal(0, 0.002))
                rows.append((f"r{run}", f"host.syscall[{cet}]", cet, process, value))
    frame = pd.DataFrame(rows, columns=["run_id", "variant", "cet", "process", "value"])
    return frame.assign(workload="host.syscall", host_fingerprint="cpu-a", kernel_release="7.2", kernel_build_id=None,
                        kernel_label=None, unit="second", emulated=False, cycles=np.nan, sample=0,
                        cet_on=frame["cet"] == "shstk=on", interleaved=interleaved,
                        process=frame["process"].astype("Int64"))


def test_interleaved_rounds_are_paired_and_cancel_the_drift() -> None:
    paired = cet_overhead(_drifting_pair(1, interleaved=True), n_resamples=500).rows[0]
    apart = cet_overhead(_drifting_pair(1, interleaved=False), n_resamples=500).rows[0]
    assert (paired.pairing, apart.pairing) == ("interleaved", "processes")
    width = lambda r: r.time.ratio_high - r.time.ratio_low  # noqa: E731
    assert width(paired) < width(apart) / 5
    assert paired.time.ratio_low <= 1.02 <= paired.time.ratio_high


def test_several_runs_measuring_both_sides_are_paired_by_run() -> None:
    row = cet_overhead(_drifting_pair(2, interleaved=False, runs=4), n_resamples=200).rows[0]
    assert row.pairing == "runs"
    assert row.time.ratio_low <= 1.02 <= row.time.ratio_high
