"""What CET costs: each CET configuration against its CET-off partner (pure, no I/O).

Per host CPU, kernel build and workload, every configuration (``shstk=on``, ``cet=ibt``, ...) is
compared with the off partner of the same workload (``shstk=off`` on the host, ``cet=none`` in a
guest): difference and ratio of medians with percentile-bootstrap intervals, for seconds per op
and, when both sides carry them, cycles per op, resampling worker processes (the median of each
process's values; ``n_on``/``n_off`` count processes).  Where perf per-op counts exist for both sides,
the time difference is also expressed per extra event (e.g. per kvm:kvm_fpu).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cetbench.analysis import stats
from cetbench.analysis.errors import AnalysisInputError
from cetbench.analysis.frames import (
    KERNEL,
    emulation,
    process_medians,
    require_columns,
    validate_samples,
    with_kernel_column,
)
from cetbench.workloads.variants import parse

PERF_COLUMNS = ("run_id", "variant", "event", "per_op", "state")

#: Below this |Δ events per op| CET adds no events: the figure is per event that got dearer.
DEFAULT_EVENT_EPSILON = 1e-3


@dataclass(frozen=True)
class EventCost:
    """The time CET adds, per event.

    Where CET adds events (Δevents/op clearly non-zero), Δ(seconds/op) ÷ Δ(events/op): seconds per
    *extra* event. Where it leaves their number alone — the usual case: CET makes each VM exit or
    XSAVES dearer rather than adding one — Δ(seconds/op) ÷ events/op: seconds each of these
    events got *dearer* by (if the whole difference is theirs; the cost model apportions it
    between mechanisms).
    """

    event: str
    off_per_op: float
    on_per_op: float
    #: Seconds per event and its interval (basis says which); None when the event does not occur.
    time_per_event: float | None
    low: float | None
    high: float | None
    basis: str = "extra"  # "extra": per event CET adds; "dearer": per event that got dearer

    @property
    def delta_per_op(self) -> float:
        return self.on_per_op - self.off_per_op


@dataclass(frozen=True)
class OverheadRow:
    host_fingerprint: str
    kernel: str
    workload: str
    cet: str
    off_cet: str
    variant: str
    off_variant: str
    n_on: int
    n_off: int
    #: Seconds per op, CET-off as baseline, CET-on as candidate.
    time: stats.MedianShift
    #: Cycles per op when both sides have them, same convention.
    cycles: stats.MedianShift | None
    events: tuple[EventCost, ...]
    emulated: str | None  # the emulation label, None for hardware
    #: How on and off were paired: "runs" (t on per-run log ratios, several runs measured both),
    #: "interleaved" (t on log ratios of the worker processes that alternated within one run),
    #: or "processes" (bootstrap of independent process medians: their drift is not cancelled).
    pairing: str = "processes"


@dataclass(frozen=True)
class Unpaired:
    """A configuration that could not be compared, and why."""

    host_fingerprint: str
    kernel: str
    workload: str
    variant: str
    reason: str


@dataclass(frozen=True)
class OverheadResult:
    rows: tuple[OverheadRow, ...]
    unpaired: tuple[Unpaired, ...]
    confidence: float
    seed: int
    n_resamples: int

    @property
    def why_empty(self) -> str | None:
        """Why there is no row, or None when there are rows."""
        if self.rows:
            return None
        if self.unpaired:
            return "no CET-on variant has its CET-off partner measured on the same host and kernel build"
        return "no CET-on variant was measured"


def cet_overhead(
    samples: pd.DataFrame,
    perf: pd.DataFrame | None = None,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    key_events: Mapping[str, Sequence[str]] | None = None,
    event_epsilon: float = DEFAULT_EVENT_EPSILON,
) -> OverheadResult:
    """CET-on against CET-off for every workload and kernel build in ``samples``.

    ``key_events`` maps a workload-name prefix (longest match wins) to the perf events to cost;
    None costs every event counted on both sides.  The interval of a cost per event is the
    bootstrap interval of Δseconds/op divided by Δevents/op: perf counts every event over the
    whole run, so Δevents is taken as exact and percentiles carry over through the division.
    """
    validate_samples({"samples": samples})
    if perf is not None:
        require_columns(perf, "perf counts", PERF_COLUMNS)
    if samples.empty:
        raise AnalysisInputError("no samples to compute an overhead from")
    # Bootstrap over worker processes, not values: values of one process are not independent.
    frame = with_kernel_column(process_medians(samples))
    counts = _perf_per_op(frame, perf)
    rows: list[OverheadRow] = []
    unpaired: list[Unpaired] = []
    keys = ["host_fingerprint", KERNEL, "workload"]
    for (fingerprint, kernel, workload), group in frame.groupby(keys, sort=True, observed=True):
        by_cet = {str(c): g for c, g in group.groupby("cet", sort=True)}
        for cet, on in by_cet.items():
            off_name = parse(f"{workload}[{cet}]", strict=False).off_partner()
            if off_name is None:
                continue
            partner = off_name.config_text
            where = (str(fingerprint), str(kernel), str(workload))
            off = by_cet.get(partner)
            if off is None:
                reason = f"no {partner} samples for {workload} on this kernel build"
                unpaired.append(Unpaired(*where, _one(on, "variant"), reason))
                continue
            rows.append(_row(where, cet, partner, on, off, counts, seed, n_resamples,
                             _events_for(str(workload), key_events), event_epsilon))
    return OverheadResult(tuple(rows), tuple(unpaired), 0.95, seed, n_resamples)


def _row(
    where: tuple[str, str, str],
    cet: str,
    partner: str,
    on: pd.DataFrame,
    off: pd.DataFrame,
    counts: Mapping[tuple[str, str, str, str], float],
    seed: int,
    n_resamples: int,
    events: Sequence[str] | None,
    epsilon: float,
) -> OverheadRow:
    fingerprint, kernel, workload = where
    time, pairing = pair_shift(off, on, seed, n_resamples)
    cycles = None
    if "cycles" in on.columns:
        c_on = on["cycles"].to_numpy(np.float64, na_value=np.nan)
        c_off = off["cycles"].to_numpy(np.float64, na_value=np.nan)
        c_on, c_off = c_on[~np.isnan(c_on)], c_off[~np.isnan(c_off)]
        if c_on.size and c_off.size:
            cycles = stats.bootstrap_median_shift(c_off, c_on, seed=seed, n_resamples=n_resamples)
    variant, off_variant = _one(on, "variant"), _one(off, "variant")
    costs = _event_costs(time, counts, (fingerprint, kernel), variant, off_variant, events, epsilon)
    return OverheadRow(
        host_fingerprint=fingerprint, kernel=kernel, workload=workload, cet=cet, off_cet=partner,
        variant=variant, off_variant=off_variant, n_on=len(on), n_off=len(off),
        time=time, cycles=cycles, events=costs,
        emulated=emulation(pd.concat([on, off], ignore_index=True)), pairing=pairing,
    )


def pair_shift(off: pd.DataFrame, on: pd.DataFrame, seed: int, n_resamples: int) -> tuple[stats.MedianShift, str]:
    """CET-on against CET-off (process medians of each), paired where they shared a moment.

    Both sides of a CET pair run in the same run, so the drift between runs — the largest noise
    on this kind of host — can cancel: with several runs that measured both, the runs are paired;
    within one run whose workload processes alternated (--interleave), the processes of each
    round are; otherwise the process medians are resampled independently.
    """
    common = sorted(set(on["run_id"]) & set(off["run_id"]))
    if len(common) >= 2:
        by_run_on = on.groupby("run_id")["value"].median()
        by_run_off = off.groupby("run_id")["value"].median()
        return stats.paired_shift(by_run_off[common].to_numpy(), by_run_on[common].to_numpy()), "runs"
    interleaved = "interleaved" in on.columns and bool(on["interleaved"].all() and off["interleaved"].all())
    if len(common) == 1 and interleaved:
        rounds_on = on.set_index("process")["value"]
        rounds_off = off.set_index("process")["value"]
        shared = sorted(set(rounds_on.index.dropna()) & set(rounds_off.index.dropna()))
        if len(shared) >= 2:
            return stats.paired_shift(rounds_off[shared].to_numpy(), rounds_on[shared].to_numpy()), "interleaved"
    shift = stats.bootstrap_median_shift(off["value"].to_numpy(np.float64), on["value"].to_numpy(np.float64),
                                         seed=seed, n_resamples=n_resamples)
    return shift, "processes"


def _one(frame: pd.DataFrame, column: str) -> str:
    return str(frame[column].iloc[0])


def _events_for(workload: str, key_events: Mapping[str, Sequence[str]] | None) -> Sequence[str] | None:
    if key_events is None:
        return None
    matches = [p for p in key_events if workload.startswith(p)]
    return key_events[max(matches, key=len)] if matches else ()


def _perf_per_op(
    frame: pd.DataFrame, perf: pd.DataFrame | None
) -> dict[tuple[str, str, str, str], float]:
    """Median per-op count of each counted event, keyed by (fingerprint, kernel, variant, event).

    Perf rows carry only a run id; the kernel build and host come from the samples of that run.
    """
    if perf is None or perf.empty:
        return {}
    runs = frame[["run_id", "host_fingerprint", KERNEL]].drop_duplicates("run_id")
    counted = perf[(perf["state"] == "counted") & np.isfinite(perf["per_op"].astype(float))]
    joined = counted.merge(runs.astype({KERNEL: str}), on="run_id", how="inner")
    medians = joined.groupby(["host_fingerprint", KERNEL, "variant", "event"])["per_op"].median()
    return {
        (str(f), str(k), str(v), str(e)): float(x)
        for f, k, v, e, x in medians.reset_index().itertuples(index=False)
    }


def _event_costs(
    time: stats.MedianShift,
    counts: Mapping[tuple[str, str, str, str], float],
    build: tuple[str, str],
    variant: str,
    off_variant: str,
    events: Sequence[str] | None,
    epsilon: float,
) -> tuple[EventCost, ...]:
    on_counts = {k[3]: v for k, v in counts.items() if k[:3] == (*build, variant)}
    off_counts = {k[3]: v for k, v in counts.items() if k[:3] == (*build, off_variant)}
    names = sorted(set(on_counts) & set(off_counts))
    if events is not None:
        names = [e for e in events if e in on_counts and e in off_counts]
    costs = []
    for event in names:
        delta = on_counts[event] - off_counts[event]
        divisor, basis = (delta, "extra") if abs(delta) >= epsilon else (on_counts[event], "dearer")
        if abs(divisor) < epsilon:  # the event does not occur: nothing to attribute to it
            costs.append(EventCost(event, off_counts[event], on_counts[event], None, None, None, basis))
            continue
        low, high = sorted((time.difference_low / divisor, time.difference_high / divisor))
        costs.append(EventCost(event, off_counts[event], on_counts[event],
                               time.difference / divisor, low, high, basis))
    return tuple(costs)
