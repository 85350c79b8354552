"""Synthetic sample frames shaped like ``results.load`` output, for tests and benchmarks.

Deterministic for a given seed.  Values are lognormal around a per-variant base time, so the
true median of a variant on a build is known exactly: ``base * factor`` (the median of a
lognormal with log-mean 0 is 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: (workload, cet, base seconds per op, emulated)
DEFAULT_VARIANTS: tuple[tuple[str, str, float, bool], ...] = (
    ("host.syscall", "shstk=off", 100e-9, False),
    ("host.syscall", "shstk=on", 104e-9, False),
    ("guest.vmexit.pio", "cet=none", 2.0e-6, True),
    ("guest.vmexit.pio", "cet=ibt+shstk", 2.2e-6, True),
)

CPU_HZ = 3.0e9


def variant_name(workload: str, cet: str) -> str:
    return f"{workload}[{cet}]"


def make_samples(
    builds: Sequence[str] = ("6.18",),
    *,
    n: int = 30,
    seed: int = 0,
    noise: float = 0.01,
    variants: Sequence[tuple[str, str, float, bool]] = DEFAULT_VARIANTS,
    factors: Mapping[tuple[str, str], float] | None = None,
    fingerprint: str = "cpu-a",
    runs_per_build: int = 1,
) -> pd.DataFrame:
    """``n`` samples per variant and build; ``factors[(build, variant)]`` scales a true median.

    Each build is one kernel release (kernel_release = build name, no label, no build-id), so
    its kernel identity is the build name itself.
    """
    rng = np.random.default_rng(seed)
    factors = factors or {}
    start = pd.Timestamp("2026-01-01", tz="UTC")
    blocks = []
    for b, build in enumerate(builds):
        for workload, cet, base, emulated in variants:
            name = variant_name(workload, cet)
            truth = base * factors.get((build, name), 1.0)
            values = truth * np.exp(rng.normal(0.0, noise, n))
            run = np.arange(n) * runs_per_build // max(n, 1)
            blocks.append(pd.DataFrame({
                "run_id": [f"run-{b}-{r}" for r in run],
                "started_utc": start + pd.to_timedelta(b * 24 + run, unit="h"),
                "variant": name,
                "workload": workload,
                "cet": cet,
                "cet_on": not cet.endswith(("=off", "=none")),
                "value": values,
                "cycles": values * CPU_HZ,
                "emulated": emulated,
                "sample": np.arange(n),
                "kernel_release": build,
            }))
    frame = pd.concat(blocks, ignore_index=True) if blocks else _empty()
    return frame.assign(
        host="lab1",
        host_fingerprint=fingerprint,
        cpu_model_name="Synthetic CPU",
        kernel_version="#1 SMP",
        kernel_build_id=None,
        kernel_label=None,
        suite_version="0.0.0",
        unit="second",
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in (
        "run_id", "started_utc", "variant", "workload", "cet", "cet_on", "value", "cycles",
        "emulated", "sample", "kernel_release",
    )})


def make_perf(samples: pd.DataFrame, per_op: Mapping[tuple[str, str], float]) -> pd.DataFrame:
    """A perf frame: ``per_op[(variant, event)]`` for every run of that variant."""
    rows = []
    for (run_id, variant), _ in samples.groupby(["run_id", "variant"], sort=True):
        for (v, event), count in per_op.items():
            if v == variant:
                rows.append({"run_id": run_id, "variant": variant, "event": event,
                             "per_op": count, "state": "counted"})
    return pd.DataFrame(rows, columns=["run_id", "variant", "event", "per_op", "state"])


def frame_from_values(
    values: Mapping[str, Sequence[float] | np.ndarray],
    *,
    build: str = "6.18",
    fingerprint: str = "cpu-a",
    unit: str = "second",
    emulated: bool | Sequence[str] = False,
    run_id: str | None = None,
    values_per_process: int | None = None,
) -> pd.DataFrame:
    """A contract-shaped frame holding exactly the given samples per variant name.

    ``emulated`` is a flag for every variant or the names of the emulated ones.  With
    ``values_per_process`` k, consecutive runs of k samples share a worker process (the
    ``process`` column); without it the column is missing, as in inputs that do not say.
    """
    rows = []
    for name, xs in values.items():
        workload, _, rest = name.partition("[")
        cet = rest.rstrip("]") or "shstk=on"
        is_emulated = emulated if isinstance(emulated, bool) else name in emulated
        for i, x in enumerate(xs):
            rows.append({
                "run_id": run_id or f"run-{build}", "variant": name, "workload": workload, "cet": cet,
                "cet_on": not cet.endswith(("=off", "=none")), "value": float(x), "cycles": np.nan,
                "emulated": is_emulated, "sample": i,
            })
    frame = pd.DataFrame(rows, columns=["run_id", "variant", "workload", "cet", "cet_on", "value",
                                        "cycles", "emulated", "sample"])
    if values_per_process is not None:
        frame["process"] = (frame["sample"] // values_per_process).astype("Int64")
    return frame.assign(
        started_utc=pd.Timestamp("2026-01-01", tz="UTC"),
        host="lab1",
        host_fingerprint=fingerprint,
        cpu_model_name="Synthetic CPU",
        kernel_release=build,
        kernel_version="#1 SMP",
        kernel_build_id=None,
        kernel_label=None,
        suite_version="0.0.0",
        unit=unit,
    )


# --- mechanism suites for the cost model (analysis/costmodel.py) -----------------------------------

#: Each variant of a synthetic CET host: (name, {event spec: count per op}). Counts follow
#: docs/mechanisms.md (one exit per op; one guest FPU load per userspace exit; two task switches
#: per pipe round trip; two PL3_SSP writes per signal with a shadow stack).
def mechanism_variants(confound: bool = False) -> list[tuple[str, dict[str, float]]]:
    from cetbench.workloads.mechanisms import GUEST_CETU_LIVE_LOAD as LIVE
    from cetbench.workloads.mechanisms import PL3_SSP_WRITE as PL3
    from cetbench.workloads.mechanisms import TASK_CETU_LIVE_SAVE as TASK
    from cetbench.workloads.mechanisms import XSS_WRITE as XSS

    # With the confound on, the CET-less guest's XSS differs from the host's (two writes per exit)
    # while the CET guest's matches: "CET on minus off" then mixes both effects.
    xss_off = 2.0 if confound else 0.0
    exit_ = {"kvm:kvm_exit": 1.0}
    host = {TASK: 0.0, PL3: 0.0}  # every mechanism event of the kind is counted, 0 where not paid
    return [
        ("guest.vmexit.cpuid[cet=none]", {**exit_, LIVE: 0.0, XSS: xss_off}),
        ("guest.vmexit.cpuid[cet=none,kvmcet=0]", {**exit_, LIVE: 0.0, XSS: xss_off}),
        ("guest.vmexit.cpuid[cet=none,kvmcet=1]", {**exit_, LIVE: 0.0, XSS: xss_off}),
        ("guest.vmexit.pio[cet=none]", {**exit_, LIVE: 0.0, XSS: xss_off}),
        ("guest.vmexit.pio[cet=shstk]", {**exit_, LIVE: 1.0, XSS: 0.0}),
        ("guest.vmexit.pio[cet=shstk,cetu=init]", {**exit_, LIVE: 0.0, XSS: 0.0}),
        ("host.ctxswitch[shstk=off]", host),
        ("host.ctxswitch[shstk=on]", {**host, TASK: 2.0}),
        ("host.signal[shstk=off]", host),
        ("host.signal[shstk=on]", {**host, PL3: 2.0}),
    ]


#: Known costs for the synthetic suites (seconds per time paid): invented for the check, not measured.
MECHANISM_TRUTH = {"vmcs_cet": 20e-9, "cetu_fpu_swap": 40e-9, "xss_switch": 60e-9, "cetu_task_switch": 25e-9,
                   "signal_shstk_token": 80e-9}
WORKLOAD_BASE = {"guest.vmexit.cpuid": 1.0e-6, "guest.vmexit.pio": 3.0e-6, "host.ctxswitch": 3.0e-6,
                 "host.signal": 1.5e-6}


def mechanism_suite(
    *, processes: int = 6, values: int = 2, process_noise: float = 0.015, value_noise: float = 0.006,
    seed: int = 0, confound: bool = False, drop: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(samples, counts) of one run on a synthetic CET host: each variant's true time per op is its
    workload's base plus its counts times MECHANISM_TRUTH; noise is lognormal, between worker
    processes (`process_noise`) and between values of one process (`value_noise`), as measured here
    (README "Statistics": ~1.5 % and ~0.6 %)."""
    from cetbench.workloads.mechanisms import MECHANISMS
    from cetbench.workloads.variants import parse

    rng = np.random.default_rng(seed)
    rows, counts = [], []
    for name, events in mechanism_variants(confound):
        if name in drop:
            continue
        v = parse(name)
        truth = WORKLOAD_BASE[v.workload] + sum(
            (m.per_op(v, events) or 0.0) * MECHANISM_TRUTH.get(m.id, 0.0) for m in MECHANISMS
            if m.counted_by[0] in events)
        for p in range(processes):
            level = truth * np.exp(rng.normal(0.0, process_noise))
            for i in range(values):
                rows.append((name, v.workload, v.config_text, p, i, level * np.exp(rng.normal(0.0, value_noise))))
        counts += [(name, event, per_op) for event, per_op in events.items()]
    frame = pd.DataFrame(rows, columns=["variant", "workload", "cet", "process", "sample", "value"])
    frame = frame.assign(run_id="run-0", host_fingerprint="cpu-a", kernel_release="7.2.0", kernel_build_id=None,
                         kernel_label=None, unit="second", emulated=False, cycles=np.nan,
                         cet_on=[bool(parse(n).cet_on) for n in frame["variant"]])
    frame["process"] = frame["process"].astype("Int64")
    return frame, pd.DataFrame(counts, columns=["variant", "event", "per_op"])
