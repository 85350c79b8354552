"""A/B comparison of two kernel builds, per variant, with verdicts (pure, no I/O).

Each side is first reduced to one value per worker process (the median of that process's
values, see ``frames.process_medians``): values of one process are not independent, so every
count, median and interval below is over processes.

The test depends on how many runs each side has:

- both sides >= 2 runs: Student's t on the log of each run's median (``stats.run_medians_t_p``):
  the run is the unit, because this host's speed drifts between runs more than its processes
  differ within one;
- otherwise: Mann-Whitney U on the process medians.  Drift between the two runs is then not in
  the test (reports say so); the effect-size floor is what keeps it from being called a change.

Verdict rules, applied per variant (values are seconds per op, so a higher median is slower):

1. Either side has fewer than ``min_samples`` processes (or none) -> inconclusive, saying so.
2. The p-value, adjusted over every tested variant of the comparison (Holm by default,
   Benjamini-Hochberg on request), below ``alpha``:
   - the ratio of medians is beyond the effect-size floor (|log ratio| >= log(1 + floor), the
     same bar in both directions) -> regression (slower) or improvement (faster);
   - within the floor -> no change (real but too small to matter).
3. Not significant:
   - either median is more uncertain than ``max_noise`` (relative half-width of its 95 %
     order-statistic interval) -> inconclusive, too noisy;
   - else the ratio of medians is beyond the floor -> inconclusive: the data neither show that
     change nor rule it out (measure more runs);
   - otherwise no change.

The change and its interval follow the test: with runs as the unit, the ratio of geometric
means of run medians with Student's t interval (it excludes 1 exactly when the unadjusted test
rejects); otherwise the ratio of process medians with a percentile-bootstrap interval, which is
reported but does not decide. Verdicts use no random numbers, so a verdict is symmetric under
swapping baseline and candidate and invariant to the time unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import pandas as pd

from cetbench.analysis import stats
from cetbench.analysis.errors import AnalysisInputError
from cetbench.analysis.frames import (
    check_same_host,
    emulation,
    kernel_identity,
    process_medians,
    validate_samples,
)


class Verdict(StrEnum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no change"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class CompareSettings:
    alpha: float = 0.05
    correction: stats.Correction = "holm"
    #: Measured, not guessed: on this project's 2-vCPU VM, A/A comparisons of 3 interleaved runs
    #: a side differed by up to 1.7 %, so a 1 % floor alarmed on identical builds (README).
    floor: float = 0.02
    max_noise: float = 0.05
    min_samples: int = stats.MIN_SAMPLES_FOR_CI
    seed: int = 0
    n_resamples: int = 2000
    force: bool = False
    #: With one run a side, a change is called only when it is also beyond what two runs of the
    #: baseline's build drift apart on this host, estimated from at least this many stored runs of
    #: that build; with fewer, only a change beyond FAR_BEYOND_FLOOR times the floor is called.
    min_history_runs: int = 4
    far_beyond_floor: float = 3.0
    #: False: judge without the gate (disturbance, drift history), as before it existed; for
    #: measuring what the gate buys (benchmarks/validate.py), never for CI.
    gate: bool = True


@dataclass(frozen=True)
class VariantComparison:
    variant: str
    workload: str
    verdict: Verdict
    #: Why the verdict is inconclusive, or a note on a "no change" (e.g. below the floor).
    reason: str | None
    n_baseline: int
    n_candidate: int
    baseline: stats.MedianEstimate | None
    candidate: stats.MedianEstimate | None
    shift: stats.MedianShift | None
    p_value: float | None
    p_adjusted: float | None
    #: How its samples were emulated (the label every report prints), or None for hardware.
    emulated: str | None
    #: Runs behind each side of this variant, and the unit the test took: "runs" (t on run
    #: medians) or "processes" (U on process medians); None when not tested.
    runs_baseline: int = 0
    runs_candidate: int = 0
    tested_on: str | None = None
    #: What else used the machine during a run of either side (never the basis of a regression).
    disturbed: str | None = None
    #: How far two runs of the baseline's build drift apart on this host (sd of log run medians)
    #: and over how many runs, where a one-run-a-side test needed it.
    drift: float | None = None
    drift_runs: int = 0

    @property
    def change(self) -> float | None:
        """Relative change of the median (candidate / baseline - 1)."""
        return None if self.shift is None else self.shift.ratio - 1.0


@dataclass(frozen=True)
class CompareResult:
    baseline_label: str
    candidate_label: str
    settings: CompareSettings
    variants: tuple[VariantComparison, ...]
    unit: str | None
    #: True when the hosts differed and ``force`` let the comparison go ahead anyway.
    hosts_differ: bool
    #: Runs behind each side. With one run a side, the host's drift between runs is not in the
    #: test (its processes all share one stretch of time).
    runs_baseline: int = 0
    runs_candidate: int = 0

    def count(self, verdict: Verdict) -> int:
        return sum(1 for v in self.variants if v.verdict is verdict)


@dataclass(frozen=True)
class RunSpread:
    """How far the runs of one build spread on one host, per variant: the sd of log run medians."""

    sigma: float
    runs: int


def run_spread(frame: pd.DataFrame) -> dict[str, RunSpread]:
    """Per variant, the spread of its runs' medians (of process medians) in ``frame`` (the stored
    good runs of one build, say); variants with fewer than 2 runs are left out."""
    if frame.empty:
        return {}
    medians = process_medians(frame).groupby(["variant", "run_id"], observed=True)["value"].median()
    out = {}
    for variant, group in medians.groupby(level=0, observed=True):
        logs = np.log(group.to_numpy(np.float64))
        if logs.size >= 2:
            out[str(variant)] = RunSpread(float(logs.std(ddof=1)), int(logs.size))
    return out


def compare(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    settings: CompareSettings | None = None,
    history: Mapping[str, RunSpread] | None = None,
) -> CompareResult:
    """Compare every variant of ``candidate`` with the same variant of ``baseline``.

    ``history``: per variant, how far runs of the baseline's build drift apart on this host (from
    its stored good runs; see :func:`run_spread`); used where a side has one run. Without it the
    baseline's own runs are used when it has several.

    Raises HostMismatchError (different host_fingerprint, unless settings.force),
    MixedUnitsError, InvalidValueError (NaN/inf/non-positive values, naming the variants) and
    AnalysisInputError when neither frame has any sample.  A variant present on one side only
    is inconclusive ("no baseline samples" / "no candidate samples"); the others go on.
    """
    cfg = settings or CompareSettings()
    if (
        not 0.0 < cfg.alpha < 1.0
        or cfg.floor < 0
        or cfg.max_noise <= 0
        or cfg.min_samples < 1
        or cfg.n_resamples < 1
        or cfg.correction not in ("holm", "bh")
    ):
        raise AnalysisInputError(f"invalid comparison settings: {cfg}")
    unit = validate_samples({"baseline": baseline, "candidate": candidate})
    if baseline.empty and candidate.empty:
        raise AnalysisInputError("neither baseline nor candidate has any sample")
    hosts_differ = check_same_host(baseline, candidate, cfg.force)
    baseline, candidate = process_medians(baseline), process_medians(candidate)

    base_groups, base_runs = _values_by_variant(baseline), _run_medians_by_variant(baseline)
    cand_groups, cand_runs = _values_by_variant(candidate), _run_medians_by_variant(candidate)
    workloads = _workload_by_variant(baseline, candidate)
    emulated = _emulated_variants(pd.concat([baseline, candidate], ignore_index=True))

    partial: list[VariantComparison] = []
    for variant in sorted(set(base_groups) | set(cand_groups)):
        x = base_groups.get(variant, np.empty(0))
        y = cand_groups.get(variant, np.empty(0))
        runs = (base_runs.get(variant, np.empty(0)), cand_runs.get(variant, np.empty(0)))
        partial.append(_measure(variant, workloads[variant], x, y, runs, emulated.get(variant), cfg))

    tested = {i: v.p_value for i, v in enumerate(partial) if v.p_value is not None}
    adjusted = stats.adjust_pvalues(list(tested.values()), cfg.correction)
    drift = {**run_spread(baseline), **(history or {})}
    disturbed = _disturbances(baseline, candidate)
    final = [replace(v, disturbed=disturbed.get(v.variant)) for v in partial]
    for i, p_adj in zip(tested, adjusted, strict=True):
        decided = _decide(final[i], float(p_adj), cfg)
        final[i] = _gate(decided, drift.get(decided.variant), cfg) if cfg.gate else decided
    return CompareResult(
        baseline_label=describe_builds(baseline),
        candidate_label=describe_builds(candidate),
        settings=cfg,
        variants=tuple(final),
        unit=unit,
        hosts_differ=hosts_differ,
        runs_baseline=int(baseline["run_id"].nunique()),
        runs_candidate=int(candidate["run_id"].nunique()),
    )


def exit_status(result: CompareResult) -> int:
    """Suggested process exit code: 1 any regression, 3 any inconclusive, else 0."""
    if result.count(Verdict.REGRESSION):
        return 1
    if result.count(Verdict.INCONCLUSIVE):
        return 3
    return 0


def describe_builds(frame: pd.DataFrame) -> str:
    """A short human name for the kernel builds and runs in a frame."""
    if frame.empty:
        return "(no samples)"
    kernels = frame.groupby(["kernel_label", "kernel_release", "kernel_build_id"], dropna=False).size()
    names = sorted({kernel_identity(*key) for key in kernels.index})
    runs = frame["run_id"].nunique()
    return f"{', '.join(names)} ({runs} run{'s' if runs != 1 else ''})"


def _values_by_variant(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if frame.empty:
        return {}
    values = frame["value"].to_numpy(dtype=np.float64)
    indices = frame.groupby("variant", sort=False, observed=True).indices
    return {str(name): values[idx] for name, idx in indices.items()}


def _run_medians_by_variant(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per variant, the median of each run's process medians."""
    if frame.empty:
        return {}
    medians = frame.groupby(["variant", "run_id"], sort=False, observed=True)["value"].median()
    return {
        str(variant): group.to_numpy(dtype=np.float64)
        for variant, group in medians.groupby(level=0, sort=False, observed=True)
    }


def _workload_by_variant(*frames: pd.DataFrame) -> dict[str, str]:
    out: dict[str, str] = {}
    for frame in frames:
        if not frame.empty:
            firsts = frame.groupby("variant", sort=False)["workload"].first()
            out.update({str(v): str(w) for v, w in firsts.items()})
    return out


def _emulated_variants(frame: pd.DataFrame) -> dict[str, str]:
    """Each emulated variant's label."""
    if frame.empty:
        return {}
    out = {}
    for variant, group in frame.groupby("variant", sort=False, observed=True):
        label = emulation(group)
        if label:
            out[str(variant)] = label
    return out


def _measure(
    variant: str,
    workload: str,
    x: np.ndarray,
    y: np.ndarray,
    runs: tuple[np.ndarray, np.ndarray],
    emulated: str | None,
    cfg: CompareSettings,
) -> VariantComparison:
    """Everything but the corrected verdict; p_value None means "not tested"."""
    base = stats.median_ci(x) if x.size else None
    cand = stats.median_ci(y) if y.size else None
    too_few = stats.check_sample_counts(x.size, y.size, cfg.min_samples, "processes")
    shift = None
    p_value, tested_on = None, None
    rx, ry = runs
    if rx.size >= 2 and ry.size >= 2 and not too_few:
        # estimate, interval and test on one model, so the interval agrees with the verdict
        shift = stats.run_level_shift(rx, ry)
        p_value, tested_on = stats.run_medians_t_p(rx, ry), "runs"
    elif x.size and y.size:
        shift = stats.bootstrap_median_shift(x, y, seed=cfg.seed, n_resamples=cfg.n_resamples)
        if not too_few:
            p_value, tested_on = stats.mann_whitney_p(x, y), "processes"
    return VariantComparison(
        variant=variant,
        workload=workload,
        verdict=Verdict.INCONCLUSIVE,
        reason=too_few,
        n_baseline=int(x.size),
        n_candidate=int(y.size),
        baseline=base,
        candidate=cand,
        shift=shift,
        p_value=p_value,
        p_adjusted=None,
        emulated=emulated,
        runs_baseline=int(runs[0].size),
        runs_candidate=int(runs[1].size),
        tested_on=tested_on,
    )


def _disturbances(baseline: pd.DataFrame, candidate: pd.DataFrame) -> dict[str, str]:
    """Per variant, the first disturbance of a run of either side, naming the side and run."""
    out: dict[str, str] = {}
    for side, frame in (("baseline", baseline), ("candidate", candidate)):
        if frame.empty or "disturbance" not in frame.columns:
            continue
        hit = frame.dropna(subset=["disturbance"]).drop_duplicates(["variant", "run_id"])
        for variant, run_id, why in hit[["variant", "run_id", "disturbance"]].itertuples(index=False):
            out.setdefault(str(variant), f"{side} run {run_id}: {why}")
    return out


def _gate(v: VariantComparison, spread: RunSpread | None, cfg: CompareSettings) -> VariantComparison:
    """What keeps a change from being called on a run that cannot carry it: a disturbed run never
    yields a regression; with one run a side, a change must also exceed the host's drift between
    runs of one build, or, without enough history of it, be far beyond the floor."""
    if v.verdict not in (Verdict.REGRESSION, Verdict.IMPROVEMENT) or v.change is None:
        return v
    pct = f"{v.change * 100:+.2f} %"
    if v.disturbed and v.verdict is Verdict.REGRESSION:
        return replace(v, verdict=Verdict.INCONCLUSIVE,
                       reason=f"change of {pct} measured on a disturbed run ({v.disturbed}): not called a regression")
    if v.tested_on != "processes":
        return v  # runs are the unit: their drift is in the test already
    log_change = abs(float(np.log1p(v.change)))
    if spread is None or spread.runs < cfg.min_history_runs:
        far = float(np.log1p(cfg.far_beyond_floor * cfg.floor))
        if log_change >= far:
            return v
        have = 0 if spread is None else spread.runs
        return replace(v, verdict=Verdict.INCONCLUSIVE, drift_runs=have,
                       reason=f"one run a side, and {have} stored run(s) of the baseline's build to tell how far "
                              f"runs drift on this host (need {cfg.min_history_runs}): a change of {pct} is not "
                              f"beyond {cfg.far_beyond_floor:g} x the floor; measure more runs or mark more good runs")
    bound = float(stats.normal_quantile(1.0 - cfg.alpha / 2.0) * np.sqrt(2.0) * spread.sigma)
    if log_change > bound:
        return replace(v, drift=spread.sigma, drift_runs=spread.runs)
    return replace(v, verdict=Verdict.INCONCLUSIVE, drift=spread.sigma, drift_runs=spread.runs,
                   reason=f"change of {pct} is within the drift of two runs of one build on this host "
                          f"(±{np.expm1(bound) * 100:.2f} % from {spread.runs} runs): measure more runs")


def _decide(v: VariantComparison, p_adjusted: float, cfg: CompareSettings) -> VariantComparison:
    assert v.baseline is not None and v.candidate is not None and v.shift is not None
    if v.tested_on == "runs":  # the run-level estimate the test is about
        log_ratio = float(np.log(v.shift.candidate_median) - np.log(v.shift.baseline_median))
    else:  # log of each median, not of their ratio: exactly antisymmetric under a swap
        log_ratio = float(np.log(v.candidate.median) - np.log(v.baseline.median))
    beyond_floor = abs(log_ratio) >= float(np.log1p(cfg.floor))
    verdict, reason = Verdict.NO_CHANGE, None
    if p_adjusted < cfg.alpha:
        if beyond_floor:
            verdict = Verdict.REGRESSION if log_ratio > 0 else Verdict.IMPROVEMENT
        else:
            reason = (
                f"change of {np.expm1(log_ratio) * 100:+.2f} % is significant but within "
                f"the {cfg.floor * 100:.1f} % floor"
            )
    else:
        reason = stats.check_noise(v.baseline, v.candidate, cfg.max_noise)
        if reason is None and beyond_floor:
            reason = (
                f"change of {np.expm1(log_ratio) * 100:+.2f} % is beyond the {cfg.floor * 100:.1f} % floor "
                f"but not significant (p {p_adjusted:.2g}): measure more runs"
            )
        if reason is not None:
            verdict = Verdict.INCONCLUSIVE
    return replace(v, verdict=verdict, reason=reason, p_adjusted=p_adjusted)
