"""Per-variant figures of a set of runs, and the variants that carry no figures (pure, no I/O).

The end-of-run summary and the reports read these: each variant's median time per op over its
worker processes (the unit every other analysis uses, see ``frames.process_medians``) with its
order-statistic interval, its cycles per op and its key perf event per op; and the variants
that were not measured, one entry per distinct reason, so a host without CET reads as three
reasons rather than twenty-four lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cetbench.analysis import stats
from cetbench.analysis.frames import emulation, process_medians, require_columns

STATUS_COLUMNS = ("variant", "status", "reason", "refused_by", "refusals")


@dataclass(frozen=True)
class VariantFigure:
    variant: str
    workload: str
    emulated: str | None  # the emulation label, None for hardware
    #: Seconds per op: median of the worker processes' medians, with its 95 % interval.
    time: stats.MedianEstimate
    #: Median cycles per op (TSC ticks on the host, guest TSC in a guest), where recorded.
    cycles: float | None
    runs: int
    #: The workload's key perf event and its median count per op, where perf counted it.
    key_event: str | None = None
    events_per_op: float | None = None
    #: What else used the machine while a run of it was timed (run and figures), if anything did.
    disturbed: str | None = None


@dataclass(frozen=True)
class NotMeasured:
    """Variants that carry no numbers for one reason."""

    status: str  # unsupported | failed | pending
    reason: str
    refused_by: str | None
    variants: tuple[str, ...]


def variant_figures(
    samples: pd.DataFrame,
    counters: pd.DataFrame | None = None,
    key_events: Mapping[str, Sequence[str]] | None = None,
) -> tuple[VariantFigure, ...]:
    """One figure per variant in ``samples`` (sorted by name). ``key_events`` maps a workload to
    its key perf events; the first one counted is reported per op."""
    require_columns(samples, "samples", ("run_id", "variant", "workload", "value", "emulated"))
    if samples.empty:
        return ()
    per_process = process_medians(samples)
    counts = _median_counts(counters)
    out = []
    for variant, group in per_process.groupby("variant", sort=True, observed=True):
        workload = str(group["workload"].iloc[0])
        cycles = group["cycles"].to_numpy(np.float64, na_value=np.nan) if "cycles" in group else np.empty(0)
        cycles = cycles[~np.isnan(cycles)]
        event, per_op = _key_event(str(variant), (key_events or {}).get(workload, ()), counts)
        hits = group.dropna(subset=["disturbance"]) if "disturbance" in group.columns else group.iloc[:0]
        disturbed = None if hits.empty else f"run {hits['run_id'].iloc[0]}: {hits['disturbance'].iloc[0]}"
        out.append(VariantFigure(
            variant=str(variant), workload=workload, emulated=emulation(group),
            time=stats.median_ci(group["value"].to_numpy(np.float64)),
            cycles=float(np.median(cycles)) if cycles.size else None,
            runs=int(group["run_id"].nunique()), key_event=event, events_per_op=per_op, disturbed=disturbed,
        ))
    return tuple(out)


def _median_counts(counters: pd.DataFrame | None) -> dict[tuple[str, str], float]:
    if counters is None or counters.empty:
        return {}
    counted = counters[(counters["state"] == "counted") & np.isfinite(counters["per_op"].astype(float))]
    medians = counted.groupby(["variant", "event"])["per_op"].median().reset_index()
    return {(str(v), str(e)): float(x) for v, e, x in medians.itertuples(index=False)}


def _key_event(variant: str, events: Sequence[str], counts: Mapping[tuple[str, str], float]
               ) -> tuple[str | None, float | None]:
    for event in events:
        if (variant, event) in counts:
            return event, counts[(variant, event)]
    return (events[0], None) if events else (None, None)


def not_measured(statuses: pd.DataFrame) -> tuple[NotMeasured, ...]:
    """The variants with no numbers, one entry per (status, who refused, reason), in first-seen
    order. A variant refused by several parties is listed under each refusal (``refusals``);
    without that list, under its whole reason."""
    require_columns(statuses, "statuses", STATUS_COLUMNS)
    rows = statuses[statuses["status"] != "measured"]
    groups: dict[tuple[str, str, str | None], list[str]] = {}
    for variant, status, reason, refused_by, refusals in rows[list(STATUS_COLUMNS)].itertuples(index=False):
        parts = [(by, why) for by, why in refusals] if refusals else [(_text(refused_by), _text(reason) or "")]
        for by, why in parts:
            names = groups.setdefault((str(status), why, by), [])
            if str(variant) not in names:
                names.append(str(variant))
    return tuple(NotMeasured(s, r, by, tuple(names)) for (s, r, by), names in groups.items())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
