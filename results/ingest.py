"""Put run bundles, pyperf files and pytest-benchmark files into the store.

Each input is read and checked completely first, then written in one transaction: it is either
fully in the store or not at all, whatever happens (error, kill, a concurrent ingest). Inputs
are content-addressed: an input whose content hash is already stored adds nothing. A bundle
whose run id is stored from an unfinished run (finished_utc null) replaces that partial run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .bundle_reader import MANIFEST, read_bundle
from .errors import InputError, StoreError
from .file_readers import is_pytest_benchmark, read_pyperf_file, read_pytest_benchmark_file
from .pyperf_reader import is_pyperf, load_json
from .records import RunRecord
from .store import Store, describe_db_error, utcnow


@dataclass
class IngestResult:
    path: str
    status: str  # ingested | replaced | duplicate | error
    run_id: str | None = None
    message: str | None = None  # for errors: which file and what is wrong
    variants: int = 0
    samples: int = 0


@dataclass
class IngestReport:
    results: list[IngestResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[IngestResult]:
        return [r for r in self.results if r.status == "error"]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def read_input(path: Path) -> RunRecord:
    """Read and check one input of any supported kind."""
    name = str(path)
    if "\x00" in name:  # the OS cannot name such a file (and pathlib raises ValueError)
        raise InputError(name.replace("\x00", "\\x00"), "a path cannot contain a NUL character")
    if path.is_dir():
        return read_bundle(path)
    if path.name == MANIFEST:  # a bundle named by its manifest
        return read_bundle(path.parent)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(name, "no such file or directory") from None
    except OSError as exc:
        raise InputError(name, f"cannot read: {exc.strerror}") from None
    doc = load_json(name, "JSON", data)
    if is_pytest_benchmark(doc):
        return read_pytest_benchmark_file(name, data, doc)
    if is_pyperf(doc):
        return read_pyperf_file(name, data, doc)
    raise InputError(
        name, "JSON: not a run bundle, pyperf JSON or pytest-benchmark JSON file: the top level has neither "
              "'benchmarks' and 'version' (pyperf) nor 'machine_info' and 'benchmarks' (pytest-benchmark)"
    )


def ingest_paths(
    store: Store,
    paths: Iterable[str | Path],
    on_result: Callable[[IngestResult], None] | None = None,
) -> IngestReport:
    """Ingest every path; a bad input is reported and skipped, the others go on.

    Store failures (unreachable, locked past the busy timeout) raise StoreError and stop.
    """
    report = IngestReport()
    for p in paths:
        result = ingest_path(store, Path(p))
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report


def ingest_path(store: Store, path: Path) -> IngestResult:
    try:
        record = read_input(path)
    except InputError as exc:
        return IngestResult(str(path), "error", message=exc.message)
    try:
        try:
            status = write_run(store, record)
        except sa.exc.IntegrityError:
            # A concurrent ingest stored the same run between our check and our insert: look
            # again, it is a duplicate now (or a clash with another run id, reported as such).
            status = write_run(store, record)
    except InputError as exc:
        return IngestResult(str(path), "error", record.run_id, exc.message)
    except sa.exc.IntegrityError as exc:
        raise StoreError(f"store {store.display_url}: {describe_db_error(exc, store.url)}") from None
    n_samples = sum(len(v.values) for v in record.variants)
    return IngestResult(str(path), status, record.run_id, None, len(record.variants), n_samples)


def write_run(store: Store, record: RunRecord) -> str:
    """Store one run in one transaction. Returns ingested, replaced or duplicate."""
    runs = schema.runs
    with store.write() as conn:
        same = conn.execute(
            sa.select(runs.c.id, runs.c.run_id, runs.c.content_hash, runs.c.finished_utc).where(
                sa.or_(runs.c.content_hash == record.content_hash, runs.c.run_id == record.run_id)
            )
        ).all()
        if any(row.content_hash == record.content_hash for row in same):
            return "duplicate"
        status = "ingested"
        for row in same:  # same run id, other content
            if row.finished_utc is not None:
                raise InputError(
                    record.run_id,
                    f"run {record.run_id} is already stored from a finished run with other "
                    "content; a run id names one run",
                )
            _delete_run(conn, row.id)
            status = "replaced"
        _insert_run(conn, record)
    return status


def _delete_run(conn: Connection, run_pk: int) -> None:
    v = schema.variants
    variant_pks = sa.select(v.c.id).where(v.c.run_pk == run_pk).scalar_subquery()
    conn.execute(sa.delete(schema.samples).where(schema.samples.c.variant_pk.in_(variant_pks)))
    conn.execute(sa.delete(schema.counters).where(schema.counters.c.variant_pk.in_(variant_pks)))
    conn.execute(sa.delete(v).where(v.c.run_pk == run_pk))
    conn.execute(sa.delete(schema.runs).where(schema.runs.c.id == run_pk))


def _insert_run(conn: Connection, record: RunRecord) -> None:
    run_pk = conn.execute(
        schema.runs.insert().returning(schema.runs.c.id),
        {
            "run_id": record.run_id,
            "content_hash": record.content_hash,
            "source_kind": record.source_kind,
            "host": record.host,
            "host_fingerprint": record.host_fingerprint,
            "cpu_model_name": record.cpu_model_name,
            "kernel_release": record.kernel_release,
            "kernel_version": record.kernel_version,
            "kernel_build_id": record.kernel_build_id,
            "kernel_label": record.kernel_label,
            "suite_version": record.suite_version,
            "suite_commit": record.suite_commit,
            "started_utc": record.started_utc,
            "finished_utc": record.finished_utc,
            "kvm_implementation": record.kvm_implementation,
            "emulator": record.emulator,
            "options_json": record.options_json,
            "manifest_json": record.manifest_json,
            "ingested_utc": utcnow(),
            "marked_good": False,
        },
    ).scalar_one()
    if not record.variants:
        return
    variant_pks = conn.execute(
        schema.variants.insert().returning(schema.variants.c.id, sort_by_parameter_order=True),
        [
            {
                "run_pk": run_pk,
                "name": v.name,
                "workload": v.workload,
                "kind": v.kind,
                "cet": v.cet,
                "cet_on": v.cet_on,
                "status": v.status,
                "reason": v.reason,
                "refused_by": v.refused_by,
                "refusals": json.dumps([{"by": by, "reason": why} for by, why in v.refusals]) if v.refusals else None,
                "interference": json.dumps(v.interference, sort_keys=True) if v.interference else None,
                "disturbance": v.disturbance,
                "unit": v.unit,
                "op": v.op,
                "emulated": v.emulated,
                "n_samples": len(v.values),
                "cycles_per_op_median": v.cycles_per_op_median,
                "perf_reason": v.perf_reason,
            }
            for v in record.variants
        ],
    ).scalars().all()
    samples = [
        {
            "variant_pk": pk,
            "idx": i,
            "value": value,
            "cycles": v.cycles[i] if i < len(v.cycles) else None,
            "process": v.processes[i] if i < len(v.processes) else None,
        }
        for pk, v in zip(variant_pks, record.variants, strict=True)
        for i, value in enumerate(v.values)
    ]
    if samples:
        conn.execute(schema.samples.insert(), samples)
    counters = [
        {"variant_pk": pk, "event": c.event, "count": c.count, "per_op": c.per_op, "unit": c.unit,
         "state": c.state, "running_pct": c.running_pct, "note": c.note}
        for pk, v in zip(variant_pks, record.variants, strict=True)
        for c in v.counters
    ]
    if counters:
        conn.execute(schema.counters.insert(), counters)
