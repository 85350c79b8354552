"""analysis.compare: verdicts on synthetic data, bad input, and statistical properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cetbench.analysis.compare import CompareSettings, RunSpread, Verdict, compare, exit_status
from cetbench.analysis.errors import HostMismatchError, InvalidValueError, MixedUnitsError
from tests.support.synthetic import frame_from_values

FAST = CompareSettings(n_resamples=300)


def lognormal(seed: int, n: int, median: float = 1e-6, sigma: float = 0.01) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n))


def verdicts(base: pd.DataFrame, cand: pd.DataFrame, cfg: CompareSettings = FAST) -> dict[str, Verdict]:
    return {v.variant: v.verdict for v in compare(base, cand, cfg).variants}


def test_identical_data_is_no_change() -> None:
    x = lognormal(1, 30)
    result = compare(frame_from_values({"host.syscall[shstk=on]": x}),
                     frame_from_values({"host.syscall[shstk=on]": x}, build="6.19"), FAST)
    (v,) = result.variants
    assert v.verdict is Verdict.NO_CHANGE
    assert v.change == 0.0
    assert exit_status(result) == 0


def test_ten_percent_slowdown_with_30_samples_is_a_regression() -> None:
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 30)})
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 30, median=1.1e-6)}, build="6.19")
    result = compare(base, cand, FAST)
    (v,) = result.variants
    assert v.verdict is Verdict.REGRESSION
    assert v.shift is not None and v.shift.ratio_low <= 1.1 <= v.shift.ratio_high
    assert v.p_adjusted is not None and v.p_adjusted < 0.05
    assert exit_status(result) == 1


def test_ten_percent_speedup_is_an_improvement() -> None:
    base = frame_from_values({"guest.vmexit.pio[cet=ibt]": lognormal(1, 30)})
    cand = frame_from_values({"guest.vmexit.pio[cet=ibt]": lognormal(2, 30, median=0.9e-6)}, build="6.19")
    assert verdicts(base, cand) == {"guest.vmexit.pio[cet=ibt]": Verdict.IMPROVEMENT}


def test_significant_change_below_floor_is_no_change() -> None:
    # 0.5 % shift, very precise: the test finds it, the 1 % floor says it does not matter.
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 400, sigma=0.001)})
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 400, median=1.005e-6, sigma=0.001)})
    (v,) = compare(base, cand, FAST).variants
    assert v.p_adjusted is not None and v.p_adjusted < 1e-6
    assert v.verdict is Verdict.NO_CHANGE
    assert v.reason is not None and "floor" in v.reason
    # with the floor lowered below the shift (and a history of runs that agree within 0.05 %, since
    # one run a side must also beat the host's drift between runs), the same data is a regression
    lower = CompareSettings(n_resamples=300, floor=0.002)
    history = {"host.syscall[shstk=on]": RunSpread(0.0005, 8)}
    assert compare(base, cand, lower, history).variants[0].verdict is Verdict.REGRESSION


def test_too_few_samples_is_inconclusive_with_counts() -> None:
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 2)})
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 5)})
    (v,) = compare(base, cand, FAST).variants
    assert v.verdict is Verdict.INCONCLUSIVE
    assert v.reason == "too few processes: baseline 2, candidate 5 (need >= 6)"


def test_values_of_one_process_count_once() -> None:
    # 40 values, but from 4 worker processes of 10 values each: 4 units, too few to test.
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 40)}, values_per_process=10)
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 40, median=1.2e-6)}, build="6.19",
                             values_per_process=10)
    (v,) = compare(base, cand, FAST).variants
    assert v.verdict is Verdict.INCONCLUSIVE and (v.n_baseline, v.n_candidate) == (4, 4)
    assert v.reason == "too few processes: baseline 4, candidate 4 (need >= 6)"
    # the same values without process information are 40 independent samples: a regression
    flat = compare(base.drop(columns="process"), cand.drop(columns="process"), FAST).variants[0]
    assert flat.verdict is Verdict.REGRESSION and flat.n_baseline == 40


def _drifting_processes(rng: np.random.Generator, processes: int, values: int) -> np.ndarray:
    """Values of a host whose speed differs per worker process (2 %) more than within one (0.2 %)."""
    offsets = np.repeat(rng.normal(0.0, 0.02, processes), values)
    return 1e-7 * np.exp(offsets + rng.normal(0.0, 0.002, processes * values))


def test_identical_builds_do_not_alarm_when_processes_differ_more_than_values() -> None:
    # Pseudo-replication: taking each of the 200 values as independent, a U test sees the
    # per-process offsets as signal and alarms in most A/A trials; per process it stays near alpha.
    rng = np.random.default_rng(7)
    no_floor = CompareSettings(n_resamples=50, floor=0.0)
    alarms_by_process = alarms_by_value = 0
    trials = 100
    for _ in range(trials):
        base = frame_from_values({"host.syscall[shstk=off]": _drifting_processes(rng, 20, 10)},
                                 values_per_process=10)
        cand = frame_from_values({"host.syscall[shstk=off]": _drifting_processes(rng, 20, 10)}, build="6.19",
                                 values_per_process=10)
        by_process = compare(base, cand, no_floor).variants[0]
        by_value = compare(base.drop(columns="process"), cand.drop(columns="process"), no_floor).variants[0]
        alarms_by_process += by_process.verdict in (Verdict.REGRESSION, Verdict.IMPROVEMENT)
        alarms_by_value += by_value.verdict in (Verdict.REGRESSION, Verdict.IMPROVEMENT)
        assert by_process.n_baseline == 20 and by_value.n_baseline == 200
    assert alarms_by_process <= 0.10 * trials  # alpha 0.05, with room for chance
    assert alarms_by_value >= 0.40 * trials


def test_missing_baseline_variant_is_inconclusive_and_others_go_on() -> None:
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 30)})
    cand = frame_from_values({
        "host.syscall[shstk=on]": lognormal(2, 30, median=1.2e-6),
        "host.pipe[shstk=on]": lognormal(3, 30),
    })
    result = compare(base, cand, FAST)
    by = {v.variant: v for v in result.variants}
    assert by["host.pipe[shstk=on]"].verdict is Verdict.INCONCLUSIVE
    assert by["host.pipe[shstk=on]"].reason == "no baseline samples"
    assert by["host.syscall[shstk=on]"].verdict is Verdict.REGRESSION
    assert exit_status(result) == 1  # a regression outranks an inconclusive variant


def test_noisy_data_without_significance_is_inconclusive() -> None:
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 12, sigma=0.4)})
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 12, sigma=0.4)})
    result = compare(base, cand, FAST)
    (v,) = result.variants
    assert v.verdict is Verdict.INCONCLUSIVE
    assert v.reason is not None and v.reason.startswith("too noisy")
    assert exit_status(result) == 3


def test_different_hosts_are_refused_unless_forced() -> None:
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 10)}, fingerprint="intel-spr")
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 10)}, fingerprint="amd-zen4")
    with pytest.raises(HostMismatchError, match="intel-spr"):
        compare(base, cand, FAST)
    forced = compare(base, cand, CompareSettings(n_resamples=300, force=True))
    assert forced.hosts_differ


def test_mixed_units_are_an_error() -> None:
    base = frame_from_values({"host.syscall[shstk=on]": lognormal(1, 10)})
    cand = frame_from_values({"host.syscall[shstk=on]": lognormal(2, 10)}, unit="cycle")
    with pytest.raises(MixedUnitsError, match="cycle"):
        compare(base, cand, FAST)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1e-6, 0.0])
def test_bad_values_are_an_error_naming_the_variant(bad: float) -> None:
    good = lognormal(1, 10)
    broken = np.append(lognormal(2, 9), bad)
    base = frame_from_values({"host.syscall[shstk=on]": good, "host.pipe[shstk=on]": good})
    cand = frame_from_values({"host.syscall[shstk=on]": good, "host.pipe[shstk=on]": broken})
    with pytest.raises(InvalidValueError, match=r"candidate.*host\.pipe\[shstk=on\]") as info:
        compare(base, cand, FAST)
    assert "host.syscall" not in str(info.value)


def test_bh_correction_is_selectable() -> None:
    base = frame_from_values({f"w{i}[shstk=on]": lognormal(i, 20) for i in range(5)})
    cand = frame_from_values({f"w{i}[shstk=on]": lognormal(10 + i, 20) for i in range(5)})
    holm = compare(base, cand, CompareSettings(n_resamples=100, correction="holm"))
    bh = compare(base, cand, CompareSettings(n_resamples=100, correction="bh"))
    for h, b in zip(holm.variants, bh.variants, strict=True):
        assert h.p_value == b.p_value
        assert h.p_adjusted is not None and b.p_adjusted is not None
        assert b.p_adjusted <= h.p_adjusted + 1e-12


# --- properties --------------------------------------------------------------------------------

SHIFTS = st.sampled_from([1.0, 0.9, 0.995, 1.005, 1.02, 1.1])


def pair(seed: int, n_base: int, n_cand: int, shift: float, sigma: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = frame_from_values({
        "host.syscall[shstk=on]": lognormal(seed, n_base, sigma=sigma),
        "guest.vmexit.pio[cet=ibt]": lognormal(seed + 1, n_base, median=2e-6, sigma=sigma),
    })
    cand = frame_from_values({
        "host.syscall[shstk=on]": lognormal(seed + 2, n_cand, median=1e-6 * shift, sigma=sigma),
        "guest.vmexit.pio[cet=ibt]": lognormal(seed + 3, n_cand, median=2e-6 / shift, sigma=sigma),
    }, build="6.19")
    return base, cand


def scaled(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    return frame.assign(value=frame["value"] * factor)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_base=st.integers(2, 40),
    n_cand=st.integers(2, 40),
    shift=SHIFTS,
    sigma=st.sampled_from([0.002, 0.02, 0.2]),
    factor=st.floats(1e-3, 1e3),
)
def test_verdicts_invariant_to_scaling_both_samples(
    seed: int, n_base: int, n_cand: int, shift: float, sigma: float, factor: float
) -> None:
    base, cand = pair(seed, n_base, n_cand, shift, sigma)
    assert verdicts(base, cand) == verdicts(scaled(base, factor), scaled(cand, factor))


SWAPPED = {
    Verdict.REGRESSION: Verdict.IMPROVEMENT,
    Verdict.IMPROVEMENT: Verdict.REGRESSION,
    Verdict.NO_CHANGE: Verdict.NO_CHANGE,
    Verdict.INCONCLUSIVE: Verdict.INCONCLUSIVE,
}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_base=st.integers(2, 40),
    n_cand=st.integers(2, 40),
    shift=SHIFTS,
    sigma=st.sampled_from([0.002, 0.02, 0.2]),
)
def test_swapping_baseline_and_candidate_swaps_the_direction(
    seed: int, n_base: int, n_cand: int, shift: float, sigma: float
) -> None:
    base, cand = pair(seed, n_base, n_cand, shift, sigma)
    forward = verdicts(base, cand)
    backward = verdicts(cand, base)
    assert backward == {k: SWAPPED[v] for k, v in forward.items()}


def test_false_alarm_rate_under_identical_distributions_stays_below_alpha() -> None:
    # 200 comparisons of 10 variants, all drawn from one distribution.  With the floor at 0 only
    # the test and the Holm correction stand between noise and a false verdict; Holm bounds the
    # chance that a comparison reports anything at alpha = 0.05.
    cfg = CompareSettings(floor=0.0, n_resamples=50, max_noise=10.0)
    rng = np.random.default_rng(2024)
    names = [f"w{i}[shstk=on]" for i in range(10)]
    comparisons_with_alarm = 0
    alarms = 0
    for _ in range(200):
        base = frame_from_values({n: np.exp(rng.normal(0, 0.05, 20)) for n in names})
        cand = frame_from_values({n: np.exp(rng.normal(0, 0.05, 20)) for n in names}, build="6.19")
        result = compare(base, cand, cfg)
        found = sum(v.verdict in (Verdict.REGRESSION, Verdict.IMPROVEMENT) for v in result.variants)
        alarms += found
        comparisons_with_alarm += found > 0
    assert comparisons_with_alarm / 200 <= 0.08  # alpha 0.05 plus two binomial standard errors
    assert alarms / 2000 <= 0.01


def test_process_medians_reduce_each_worker_to_one_row_and_keep_unknown_ones_apart() -> None:
    from cetbench.analysis.frames import process_medians

    frame = frame_from_values({"host.syscall[shstk=on]": [1.0, 2.0, 9.0, 10.0, 30.0, 5.0, 6.0]})
    frame["process"] = pd.array([0, 0, 0, 1, 1, None, None], dtype="Int64")
    frame["cycles"] = [3.0, 6.0, 27.0, np.nan, 90.0, 15.0, 18.0]
    out = process_medians(frame)
    assert out["value"].tolist() == [2.0, 20.0, 5.0, 6.0]
    assert out["cycles"].tolist() == [6.0, 90.0, 15.0, 18.0]  # NaN cycles are skipped, not spread
    # the same process number in another run is another worker
    other = frame.assign(run_id="run-b")
    assert len(process_medians(pd.concat([frame, other], ignore_index=True))) == 8


def _runs_frame(rng: np.random.Generator, runs: int, build: str, median: float = 1e-7,
                run_noise: float = 0.02, prefix: str = "r") -> pd.DataFrame:
    """``runs`` runs of 10 processes x 3 values; each run has its own speed (``run_noise``)."""
    frames = []
    for r in range(runs):
        values = median * np.exp(rng.normal(0.0, run_noise) + _drifting_processes(rng, 10, 3) / 1e-7 - 1)
        frames.append(frame_from_values({"host.syscall[shstk=off]": values}, build=build,
                                        run_id=f"{prefix}{build}-{r}", values_per_process=3))
    return pd.concat(frames, ignore_index=True)


def test_with_several_runs_a_side_the_run_is_the_unit_and_drift_between_runs_does_not_alarm() -> None:
    rng = np.random.default_rng(11)
    no_floor = CompareSettings(n_resamples=50, floor=0.0)
    trials, alarms, alarms_pooled = 60, 0, 0
    for _ in range(trials):
        base, cand = _runs_frame(rng, 3, "a"), _runs_frame(rng, 3, "b")
        (v,) = compare(base, cand, no_floor).variants
        assert v.tested_on == "runs" and (v.runs_baseline, v.runs_candidate) == (3, 3)
        assert v.n_baseline == 30  # processes, for the medians and intervals
        alarms += v.verdict in (Verdict.REGRESSION, Verdict.IMPROVEMENT)
        # the same processes as if each side were one run: U on 30 processes ignores the drift
        pooled = compare(base.assign(run_id="a", process=base["process"] + 10 * (base.index // 30)),
                         cand.assign(run_id="b", process=cand["process"] + 10 * (cand.index // 30)), no_floor)
        assert pooled.variants[0].tested_on == "processes" and pooled.variants[0].n_baseline == 30
        alarms_pooled += pooled.variants[0].verdict in (Verdict.REGRESSION, Verdict.IMPROVEMENT)
    assert alarms <= 0.12 * trials  # alpha 0.05, with room for chance
    assert alarms_pooled >= 0.30 * trials
    # a real 10 % slowdown stands out of 1 % run-to-run drift
    (v,) = compare(_runs_frame(rng, 3, "a", run_noise=0.01),
                   _runs_frame(rng, 3, "b", median=1.1e-7, run_noise=0.01), FAST).variants
    assert v.verdict is Verdict.REGRESSION and v.tested_on == "runs"
    # its change and interval come from the run-level model too (t, not a bootstrap of processes)
    assert v.shift is not None and v.shift.n_resamples == 0 and v.shift.ratio_low > 1.0
    assert v.shift.ratio_low <= 1.1 <= v.shift.ratio_high


def test_one_run_a_side_is_tested_on_processes() -> None:
    rng = np.random.default_rng(12)
    (v,) = compare(_runs_frame(rng, 1, "a"), _runs_frame(rng, 3, "b"), FAST).variants
    assert v.tested_on == "processes" and (v.runs_baseline, v.runs_candidate) == (1, 3)


def test_a_change_beyond_the_floor_without_significance_is_inconclusive_not_no_change() -> None:
    # two runs a side that disagree with each other: +3.5 % on average, but the run-level test
    # (2 degrees of freedom) cannot tell it from drift
    rng = np.random.default_rng(3)
    base = _runs_frame(rng, 2, "a", run_noise=0.0)
    cand = _runs_frame(rng, 2, "b", run_noise=0.0)
    cand.loc[cand["run_id"] == "rb-1", "value"] *= 1.07
    (v,) = compare(base, cand, FAST).variants
    assert v.tested_on == "runs" and v.p_adjusted is not None and v.p_adjusted >= 0.05
    assert v.verdict is Verdict.INCONCLUSIVE
    assert v.reason is not None and "beyond the 2.0 % floor but not significant" in v.reason


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), runs_base=st.integers(2, 5), runs_cand=st.integers(2, 5),
       shift=SHIFTS, factor=st.floats(1e-3, 1e3))
def test_run_level_verdicts_are_scale_free_and_swap_symmetric(
    seed: int, runs_base: int, runs_cand: int, shift: float, factor: float
) -> None:
    rng = np.random.default_rng(seed)
    base = _runs_frame(rng, runs_base, "a")
    cand = _runs_frame(rng, runs_cand, "b", median=1e-7 * shift)
    forward = verdicts(base, cand)
    assert forward == verdicts(scaled(base, factor), scaled(cand, factor))
    assert {k: SWAPPED[v] for k, v in verdicts(cand, base).items()} == forward
    assert compare(base, cand, FAST).variants[0].tested_on == "runs"
