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
from cetbench.runner import ProgressHook, RunInterrupted, RunOptions, execute
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
    # Opened before the run: an unreachable store fails fast.
    store = None if no_store else results.open_store(store_url)
    try:
        bundle = execute(opts, progress)
    except BaseException:
        if store is not None:
            store.close()
        raise
    try:
        return _store_and_summarise(bundle, store)
    except RunInterrupted as exc:  # every variant is done: only storing it was cut short
        raise RunInterrupted(exc.signum, bundle.root, complete=True) from None


def store_and_summarise(bundle: Bundle, store_url: str | None, no_store: bool = False) -> StoredRun:
    """Ingest a finished bundle (into a throwaway store when none is wanted) and summarise it from there."""
    return _store_and_summarise(bundle, None if no_store else results.open_store(store_url))


def _store_and_summarise(bundle: Bundle, store: results.Store | None) -> StoredRun:
    title = f"run {bundle.manifest['run_id']}"
    if store is None:
        with tempfile.TemporaryDirectory(prefix="cetbench-summary-") as tmp, \
                results.open_store(str(Path(tmp) / "summary.sqlite")) as scratch:
            ingest_bundle(scratch, bundle.root)
            summary = run_report(scratch, [bundle.manifest["run_id"]], title, with_variants=True)
        return StoredRun(bundle, None, summary)
    with store:
        ingest_bundle(store, bundle.root)
        return StoredRun(bundle, store.display_url, run_report(store, [bundle.manifest["run_id"]], title,
                                                                with_variants=True))
