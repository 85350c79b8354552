"""Read the store into pandas DataFrames: the only way analysis reads data.

`load` returns one row per sample of every measured variant that passes the filters, ordered by
run start time, run id, variant name and sample index. Filters combine with AND; each list
filter keeps rows matching any of its items.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cetbench.workloads.variants import matching

from . import schema
from .records import text_problem
from .store import Store, open_store

COLUMNS = [
    "run_id", "started_utc", "host", "host_fingerprint", "cpu_model_name", "kernel_release",
    "kernel_version", "kernel_build_id", "kernel_label", "suite_version", "variant", "workload",
    "cet", "cet_on", "unit", "value", "cycles", "emulated", "sample", "process", "interleaved", "disturbance",
    "emulator", "kvm_implementation",
]
COUNTER_COLUMNS = ["run_id", "variant", "event", "per_op", "state", "count", "unit"]

_R, _V, _S = schema.runs, schema.variants, schema.samples
# Per-variant columns: read once per variant, then repeated for its samples.
_META = [
    _R.c.run_id, _R.c.started_utc, _R.c.host, _R.c.host_fingerprint, _R.c.cpu_model_name,
    _R.c.kernel_release, _R.c.kernel_version, _R.c.kernel_build_id, _R.c.kernel_label,
    _R.c.suite_version, _V.c.name.label("variant"), _V.c.workload, _V.c.cet, _V.c.cet_on,
    _V.c.unit, _V.c.emulated, _V.c.cycles_per_op_median, _V.c.disturbance, _R.c.emulator, _R.c.kvm_implementation,
    _R.c.options_json,
]
_STRINGS = [
    "run_id", "host", "host_fingerprint", "cpu_model_name", "kernel_release", "kernel_version",
    "kernel_build_id", "kernel_label", "suite_version", "variant", "workload", "cet", "unit", "disturbance",
    "emulator", "kvm_implementation",
]

Strings = str | Iterable[str] | None
#: Every reader takes an open Store or a store URL (opened for the call and closed after).
StoreRef = Store | str


@contextmanager
def opened(store: StoreRef) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
        return
    with open_store(store) as own:
        yield own
# pandas >= 3 has a string dtype that keeps missing values missing; before, object does.
_TEXT: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else "object"


def _as_list(value: Strings) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _as_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _filters(
    conn: Connection,
    host: Strings,
    kernel_labels: Strings,
    kernel_build_ids: Strings,
    run_ids: Strings,
    variants: Strings,
    since: dt.datetime | str | None,
    until: dt.datetime | str | None,
) -> list[Any] | None:
    """WHERE clauses for the filters; None when they match nothing for certain."""
    where: list[Any] = []
    for column, wanted in (
        (_R.c.host, host),
        (_R.c.kernel_label, kernel_labels),
        (_R.c.kernel_build_id, kernel_build_ids),
        (_R.c.run_id, run_ids),
    ):
        items = _as_list(wanted)
        if items is not None:
            # Text no store can hold (a NUL, non-UTF-8 bytes from argv) names nothing; the databases
            # would refuse to even compare with it.
            items = [i for i in items if not text_problem(i)]
            if not items:
                return None
            where.append(column.in_(items))
    start, end = _as_utc(since), _as_utc(until)
    if start is not None:
        where.append(_R.c.started_utc >= start)
    if end is not None:
        where.append(_R.c.started_utc <= end)
    patterns = _as_list(variants)
    if patterns is not None:
        # Globs are matched here (the variant grammar's globs: brackets literal), not in SQL: the
        # distinct names are few.
        names = matching(conn.execute(sa.select(_V.c.name).distinct()).scalars(), patterns)
        if not names:
            return None
        where.append(_V.c.name.in_(names))
    return where


def load(
    store: StoreRef,
    host: Strings = None,
    kernel_labels: Strings = None,
    kernel_build_ids: Strings = None,
    run_ids: Strings = None,
    variants: Strings = None,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
) -> pd.DataFrame:
    """One row per sample; columns are COLUMNS. since/until bound started_utc, inclusive."""
    with opened(store) as st, st.read() as conn:
        where = _filters(conn, host, kernel_labels, kernel_build_ids, run_ids, variants, since, until)
        if where is None:
            return _empty()
        where.append(_V.c.status == "measured")
        joined = _S.join(_V, _S.c.variant_pk == _V.c.id).join(_R, _V.c.run_pk == _R.c.id)
        meta_rows = conn.execute(
            sa.select(_V.c.id, *_META)
            .select_from(_V.join(_R, _V.c.run_pk == _R.c.id))
            .where(*where)
        ).all()
        if not meta_rows:
            return _empty()
        # The bulk of the data: five numbers per sample; the rest is repeated from `meta`. They
        # are read from the driver's cursor: SQLAlchemy's Row objects would double the time, and
        # these columns need no result processing.
        result = conn.execute(
            sa.select(_S.c.variant_pk, _S.c.idx, _S.c.value, _S.c.cycles, _S.c.process)
            .select_from(joined)
            .where(*where)
        )
        numbers = np.array(result.cursor.fetchall(), dtype=np.float64).reshape(-1, 5)  # NULL -> NaN
        result.close()
    meta = pd.DataFrame(meta_rows, columns=["pk", *[c.name for c in _META]]).set_index("pk")
    # a run whose workloads' worker processes alternated in time (cetbench run --interleave)
    meta["interleaved"] = [bool(isinstance(o, str) and json.loads(o).get("interleave")) for o in meta["options_json"]]
    return _assemble(_typed(meta.drop(columns="options_json")), numbers)


def _assemble(meta: pd.DataFrame, numbers: np.ndarray) -> pd.DataFrame:
    """Sample rows from (variant pk, index, value, cycles, process) numbers and per-variant columns."""
    pk, idx = numbers[:, 0].astype(np.int64), numbers[:, 1].astype(np.int64)
    # Order: run start, run id, variant name (per variant), then sample index.
    meta = meta.sort_values(["started_utc", "run_id", "variant"], kind="stable")
    rank = pd.Series(np.arange(len(meta)), index=meta.index)
    order = np.lexsort((idx, rank.reindex(pk).to_numpy()))
    pos = meta.index.get_indexer(pd.Index(pk[order]))
    cycles = numbers[order, 3]
    median = meta["cycles_per_op_median"].to_numpy(dtype=np.float64, na_value=np.nan)[pos]
    out: dict[str, Any] = {
        # Typed per variant already: taking rows keeps the dtype and costs one gather per column.
        col: meta[col].array.take(pos) for col in COLUMNS if col in meta.columns
    }
    out["value"] = numbers[order, 2]
    out["cycles"] = np.where(np.isnan(cycles), median, cycles)
    out["sample"] = idx[order]
    out["process"] = pd.array(numbers[order, 4], dtype="Float64").astype("Int64")  # NaN -> <NA>
    return pd.DataFrame(out, columns=COLUMNS, copy=False)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["started_utc"] = pd.to_datetime(df["started_utc"], utc=True).astype("datetime64[ns, UTC]")
    for col in _STRINGS:
        df[col] = df[col].astype(_TEXT)
    df["cet_on"] = df["cet_on"].astype("boolean")
    df["emulated"] = df["emulated"].astype(bool)
    df["interleaved"] = df["interleaved"].astype(bool)
    if "value" in df.columns:
        df["value"] = df["value"].astype("float64")
        df["cycles"] = df["cycles"].astype("float64")
        df["sample"] = df["sample"].astype("int64")
        df["process"] = df["process"].astype("Int64")
    return df


def _empty() -> pd.DataFrame:
    empty = {c: pd.Series([], dtype="object") for c in COLUMNS}
    return _typed(pd.DataFrame(empty, columns=COLUMNS))[COLUMNS]


def load_counters(
    store: StoreRef,
    host: Strings = None,
    kernel_labels: Strings = None,
    kernel_build_ids: Strings = None,
    run_ids: Strings = None,
    variants: Strings = None,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
) -> pd.DataFrame:
    """perf counters per variant: columns COUNTER_COLUMNS, same filters as `load`.

    per_op is the count divided by the ops the workload reported under perf; `unit` is perf's unit
    of the count (msec for task-clock), empty for plain event counts.
    """
    c = schema.counters
    with opened(store) as st, st.read() as conn:
        where = _filters(conn, host, kernel_labels, kernel_build_ids, run_ids, variants, since, until)
        if where is None:
            return pd.DataFrame({col: [] for col in COUNTER_COLUMNS})
        rows = conn.execute(
            sa.select(_R.c.run_id, _V.c.name.label("variant"), c.c.event, c.c.per_op, c.c.state, c.c.count, c.c.unit)
            .select_from(c.join(_V, c.c.variant_pk == _V.c.id).join(_R, _V.c.run_pk == _R.c.id))
            .where(*where)
            .order_by(_R.c.started_utc, _R.c.run_id, _V.c.name, c.c.event)
        ).all()
    df = pd.DataFrame(rows, columns=COUNTER_COLUMNS)
    for col in ("per_op", "count"):
        df[col] = df[col].astype("float64")
    return df


STATUS_COLUMNS = ["run_id", "variant", "status", "reason", "refused_by", "refusals"]


def load_statuses(store: StoreRef, run_ids: Strings = None) -> pd.DataFrame:
    """Every variant of the runs with its status and, when not measured, the reason and who refused
    (`refusals`: each refusing party and its words, where the input lists them): what a report
    says about the variants that carry no numbers."""
    with opened(store) as st, st.read() as conn:
        where = _filters(conn, None, None, None, run_ids, None, None, None)
        if where is None:
            return pd.DataFrame({col: [] for col in STATUS_COLUMNS})
        rows = conn.execute(
            sa.select(_R.c.run_id, _V.c.name, _V.c.status, _V.c.reason, _V.c.refused_by, _V.c.refusals)
            .select_from(_V.join(_R, _V.c.run_pk == _R.c.id))
            .where(*where)
            .order_by(_R.c.started_utc, _R.c.run_id, _V.c.name)
        ).all()
    # refusals as (who, why) pairs; [] when the input did not list them
    parsed = [(*row[:5], [(r["by"], r["reason"]) for r in json.loads(row[5])] if row[5] else []) for row in rows]
    return pd.DataFrame(parsed, columns=STATUS_COLUMNS)
