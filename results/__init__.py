"""Run bundles in, a store (SQLite by default, PostgreSQL for a lab) in the middle, DataFrames out.

The public API, importable from `cetbench.results`:

    store = open_store(url_or_None)        # Store; StoreUnavailable / StoreSchemaTooNew / StoreError
    report = ingest_paths(store, paths)    # IngestReport: one IngestResult per input
    frame = load(store_or_url, host=..., variants=[...], since=...)   # one row per sample
    counters = load_counters(store_or_url, ...)   # perf counters per variant
    list_runs(store); mark_good(store, run_id); good_baseline_runs(store, host=...)

The names are imported on first use (so `import cetbench.results.bundle`, which the runner needs,
does not load pandas and SQLAlchemy); type checkers see the real signatures below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import InputError as InputError
    from .errors import InputSchemaTooNew as InputSchemaTooNew
    from .errors import RunNotFound as RunNotFound
    from .errors import StoreError as StoreError
    from .errors import StoreSchemaTooNew as StoreSchemaTooNew
    from .errors import StoreUnavailable as StoreUnavailable
    from .ingest import IngestReport as IngestReport
    from .ingest import IngestResult as IngestResult
    from .ingest import ingest_paths as ingest_paths
    from .paths import default_data_dir as default_data_dir
    from .query import COLUMNS as COLUMNS
    from .query import StoreRef as StoreRef
    from .query import load as load
    from .query import load_counters as load_counters
    from .query import load_statuses as load_statuses
    from .runs import RunSummary as RunSummary
    from .runs import good_baseline_runs as good_baseline_runs
    from .runs import list_runs as list_runs
    from .runs import mark_good as mark_good
    from .runs import newest_good_run as newest_good_run
    from .store import Store as Store
    from .store import default_store_path as default_store_path
    from .store import mask_url as mask_url
    from .store import open_store as open_store

_EXPORTS = {
    "open_store": "store", "Store": "store", "default_store_path": "store", "mask_url": "store",
    "default_data_dir": "paths",
    "ingest_paths": "ingest", "IngestReport": "ingest", "IngestResult": "ingest",
    "load": "query", "load_counters": "query", "load_statuses": "query", "COLUMNS": "query", "StoreRef": "query",
    "list_runs": "runs", "RunSummary": "runs", "mark_good": "runs", "newest_good_run": "runs",
    "good_baseline_runs": "runs",
    "StoreError": "errors", "StoreUnavailable": "errors", "StoreSchemaTooNew": "errors", "RunNotFound": "errors",
    "InputError": "errors", "InputSchemaTooNew": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cetbench.results' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cetbench.results.{module}"), name)
