"""From what a user names on the command line (a run id, a kernel label, a kernel build id) to the
samples analysis reads and the reports built from them, with one clear error when nothing matches."""

from __future__ import annotations

import pandas as pd

from cetbench import results
from cetbench.analysis import Report, cet_overhead
from cetbench.analysis.costmodel import cost_model
from cetbench.analysis.figures import not_measured, variant_figures
from cetbench.results import Store
from cetbench.workloads.mechanisms import MECHANISMS
from cetbench.workloads.table import WORKLOADS


class SelectionError(Exception):
    """Nothing matches; the message says what exists instead."""


def load_selection(store: Store, sel: str, host: str | None = None, variants: list[str] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples and perf counters of the runs `sel` names: a run id, else a kernel label, else a
    kernel build id (tried in that order; the first that matches wins)."""
    for frame in (results.load(store, host=host, variants=variants, run_ids=[sel]),
                  results.load(store, host=host, variants=variants, kernel_labels=[sel]),
                  results.load(store, host=host, variants=variants, kernel_build_ids=[sel])):
        if not frame.empty:
            counters = results.load_counters(store, run_ids=sorted(frame["run_id"].unique()))
            return frame, counters
    raise SelectionError(f"{sel!r} names no run, kernel label or kernel build id with samples; "
                         f"{describe_store(store, host)}")


def load_runs(store: Store, run_ids: list[str], host: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples and perf counters of exactly these runs (e.g. a CI job's own runs)."""
    frame = results.load(store, host=host, run_ids=run_ids)
    if frame.empty:
        raise SelectionError(f"runs {', '.join(run_ids)} have no samples; {describe_store(store, host)}")
    return frame, results.load_counters(store, run_ids=run_ids)


def load_all(store: Store, host: str | None = None, variants: list[str] | None = None) -> pd.DataFrame:
    """Every stored sample (of this host, of these variant patterns); patterns that select nothing
    are an error naming the variants the store has."""
    frame = results.load(store, host=host, variants=variants)
    if frame.empty and variants:
        known = sorted(results.load(store, host=host)["variant"].unique())
        raise SelectionError(f"no stored samples of a variant matching {', '.join(variants)}; "
                             + (f"the store has: {', '.join(known)}" if known else describe_store(store, host)))
    return frame


def newest_run(store: Store, host: str | None = None) -> str:
    runs = [r for r in results.list_runs(store, host=host) if r.measured]
    if not runs:
        raise SelectionError(f"the store has no run with measured variants; {describe_store(store, host)}")
    return runs[-1].run_id


def describe_store(store: Store, host: str | None) -> str:
    runs = results.list_runs(store, host=host)
    if not runs:
        return "the store is empty (cetbench run or cetbench ingest first)"
    labels = sorted({r.kernel_label for r in runs if r.kernel_label})
    ids = [r.run_id for r in runs[-5:]]
    return (f"it holds {len(runs)} runs; kernel labels: {', '.join(labels) or 'none'}; "
            f"newest run ids: {', '.join(ids)}")


def key_events() -> dict[str, tuple[str, ...]]:
    return {w.name: w.key_events for w in WORKLOADS}


def run_report(store: Store, run_ids: list[str], title: str, with_variants: bool = False) -> Report:
    """The report of a set of runs: their CET overhead (and, for a run's own summary, each variant's
    figures), and the variants of those runs that carry no numbers, grouped by reason."""
    samples = results.load(store, run_ids=run_ids)
    counters = results.load_counters(store, run_ids=run_ids)
    counted = counters[counters["state"] == "counted"]
    return Report(
        title=title,
        variants=variant_figures(samples, counters, key_events()) if with_variants else None,
        overhead=cet_overhead(samples, counters, key_events=key_events()) if not samples.empty else None,
        mechanisms=cost_model(samples, counted, MECHANISMS) if not samples.empty else None,
        not_measured=not_measured(results.load_statuses(store, run_ids=run_ids)),
    )
