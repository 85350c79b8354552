"""The one path from "run these variants" to a stored run and its summary, shared by `cetbench run`
and `cetbench ci`: run (runner) → ingest the bundle (the store) → summarise from the store with the
statistics `cetbench overhead` uses (analysis). With no store wanted, a throwaway SQLite store
serves the summary, so the summary never has a second way of reading a bundle."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from cetbench import results
from cetbench.analysis import Report
from cetbench.results.bundle import Bundle
from cetbench.runner import ProgressHook, RunOptions, execute
from cetbench.selection import run_report


@dataclass(frozen=True)
class StoredRun:
    bundle: Bundle
    store: str | None  # where it was ingested (password masked); None when no store was asked for
    summary: Report

    @property
    def run_id(self) -> str:
        return str(self.bundle.manifest["run_id"])


def ingest_bundle(store: results.Store, root: Path) -> None:
    """Ingest a finished bundle; a failure raises StoreError saying the bundle is kept on disk (so
    `cetbench ingest` can add it later)."""
    kept = f"the bundle is kept in {root}; `cetbench ingest {root}` adds it later"
    try:
        report = results.ingest_paths(store, [root])
    except results.StoreError as exc:
        raise results.StoreError(f"{exc} ({kept})") from None
    if not report.ok:
        raise results.StoreError(f"{report.errors[0].message} ({kept})")


def run_and_store(opts: RunOptions, store_url: str | None, no_store: bool = False,
                  progress: ProgressHook | None = None) -> StoredRun:
    if not no_store:
        results.open_store(store_url).close()  # before the run: an unreachable store fails fast
    return store_and_summarise(execute(opts, progress), store_url, no_store)


def store_and_summarise(bundle: Bundle, store_url: str | None, no_store: bool = False) -> StoredRun:
    """Ingest a finished bundle (into a throwaway store when none is wanted) and summarise it from there."""
    title = f"run {bundle.manifest['run_id']}"
    if no_store:
        with tempfile.TemporaryDirectory(prefix="cetbench-summary-") as tmp, \
                results.open_store(str(Path(tmp) / "summary.sqlite")) as scratch:
            ingest_bundle(scratch, bundle.root)
            summary = run_report(scratch, [bundle.manifest["run_id"]], title, with_variants=True)
        return StoredRun(bundle, None, summary)
    with results.open_store(store_url) as store:
        ingest_bundle(store, bundle.root)
        return StoredRun(bundle, store.display_url, run_report(store, [bundle.manifest["run_id"]], title,
                                                                with_variants=True))
