"""Run bundles in, a store (SQLite by default, PostgreSQL for a lab) in the middle, DataFrames out.

The public API, importable from `results` (loaded on first use, so `import results.bundle`
stays light):

    store = open_store(url_or_None)        # Store; StoreUnavailable / StoreSchemaTooNew / StoreError
    report = ingest_paths(store, paths)    # IngestReport: one IngestResult per input
    frame = load(store, host=..., variants=[...], since=...)   # one row per sample
    counters = load_counters(store, ...)   # perf counters per variant
    list_runs(store); mark_good(store, run_id); newest_good_run(store, host=...)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "open_store": "store",
    "Store": "store",
    "default_data_dir": "paths",
    "default_store_path": "store",
    "mask_url": "store",
    "ingest_paths": "ingest",
    "IngestReport": "ingest",
    "IngestResult": "ingest",
    "load": "query",
    "load_counters": "query",
    "load_statuses": "query",
    "COLUMNS": "query",
    "list_runs": "runs",
    "RunSummary": "runs",
    "mark_good": "runs",
    "newest_good_run": "runs",
    "good_baseline_runs": "runs",
    "StoreError": "errors",
    "StoreUnavailable": "errors",
    "StoreSchemaTooNew": "errors",
    "RunNotFound": "errors",
    "InputError": "errors",
    "InputSchemaTooNew": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'results' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cetbench.results.{module}"), name)
