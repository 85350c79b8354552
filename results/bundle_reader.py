"""Read a run bundle directory (docs/bundle-format.md, schema 1) into a RunRecord.

Every file the manifest names is read once: its bytes feed both the content hash and the parse,
so what is hashed is exactly what is stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from pathlib import Path
from typing import Any

from .errors import InputError, InputSchemaTooNew
from .pyperf_reader import load_json, parse_pyperf
from .records import RUN_ID_MAX, VARIANT_STATUSES, CounterRecord, Fields, RunRecord, VariantRecord, as_float

BUNDLE_SCHEMA = 1
MANIFEST = "manifest.json"


class _BundleFiles:
    """Reads files inside one bundle and remembers their hashes for the content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = str(root)
        self.hashes: dict[str, str] = {}

    def read(self, rel: str, where: str) -> bytes:
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise InputError(self.path, f"{where}: path {rel!r} points outside the bundle")
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise InputError(self.path, f"{where}: {rel} is missing") from None
        except OSError as exc:
            raise InputError(self.path, f"{where}: cannot read {rel}: {exc.strerror}") from None
        self.hashes[rel] = hashlib.sha256(data).hexdigest()
        return data

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for rel in sorted(self.hashes):
            digest.update(f"{rel}\0{self.hashes[rel]}\n".encode())
        return digest.hexdigest()


def read_bundle(root: Path) -> RunRecord:
    files = _BundleFiles(root)
    if not (root / MANIFEST).is_file():
        raise InputError(files.path, f"not a run bundle: {MANIFEST} is missing")
    raw_manifest = files.read(MANIFEST, MANIFEST)
    manifest = Fields(files.path, MANIFEST, load_json(files.path, MANIFEST, raw_manifest))
    _check_schema(manifest)
    host = manifest.obj("host", required=False)
    kernel = manifest.obj("kernel", required=False)
    suite = manifest.obj("suite", required=False)
    kvm = manifest.obj("kvm", required=False)
    backend = manifest.obj("backend", required=False)
    options = manifest.doc.get("options")
    entries = manifest.obj("variants")
    variants = [_read_variant(files, name, entries.obj(name)) for name in entries.names()]
    run_id = str(manifest.text("run_id", required=True))
    if len(run_id) > RUN_ID_MAX:
        raise manifest.fail(f"run_id is {len(run_id)} characters long; at most {RUN_ID_MAX} are stored")
    return RunRecord(
        run_id=run_id,
        content_hash=files.content_hash(),
        source_kind="bundle",
        started_utc=manifest.time("started_utc", required=True),  # type: ignore[arg-type]
        finished_utc=manifest.time("finished_utc"),
        manifest_json=raw_manifest.decode(),
        host=host.text("hostname"),
        host_fingerprint=host.text("fingerprint"),
        cpu_model_name=host.text("cpu_model_name"),
        kernel_release=kernel.text("release"),
        kernel_version=kernel.text("version"),
        kernel_build_id=kernel.text("build_id"),
        kernel_label=kernel.text("label"),
        suite_version=suite.text("version"),
        suite_commit=suite.text("git_commit"),
        kvm_implementation=kvm.text("implementation"),
        emulator=backend.text("emulator"),
        options_json=None if options is None else json.dumps(options, sort_keys=True),
        variants=variants,
    )


def _check_schema(manifest: Fields) -> None:
    if manifest.doc.get("kind") != "cetbench-run":
        raise manifest.fail(f"kind is {manifest.doc.get('kind')!r}, expected 'cetbench-run'")
    schema = manifest.doc.get("schema")
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise manifest.fail(f"schema must be a positive integer, got {schema!r}")
    if schema > BUNDLE_SCHEMA:
        raise InputSchemaTooNew(
            manifest.path,
            f"{MANIFEST}: bundle schema {schema} is newer than the {BUNDLE_SCHEMA} this cetbench "
            "reads: upgrade cetbench to ingest it",
        )


def _read_variant(files: _BundleFiles, name: str, entry: Fields) -> VariantRecord:
    status = entry.text("status", required=True)
    if status not in VARIANT_STATUSES:
        raise entry.fail(f"status {status!r} is not one of {', '.join(VARIANT_STATUSES)}")
    variant = VariantRecord(
        name=name,
        status=str(status),
        workload=entry.text("workload"),
        kind=entry.text("kind"),
        cet=entry.text("cet"),
        cet_on=entry.flag("cet_on"),
        reason=entry.text("reason"),
        refused_by=entry.text("refused_by"),
        refusals=entry.refusals("refusals"),
        unit=entry.text("unit"),
        op=entry.text("op"),
        emulated=bool(entry.flag("emulated", default=False)),
    )
    seen = entry.obj("interference", required=False)
    if seen.doc:
        variant.interference = seen.doc
        variant.disturbance = seen.text("disturbed")
    if status != "measured":
        return variant  # unsupported / failed / pending variants carry no numbers
    where = f"variant {name!r}"
    pyperf_rel = entry.text("pyperf", required=True)
    label = f"{where}: {pyperf_rel}"
    doc = load_json(files.path, label, files.read(str(pyperf_rel), where))
    _, benchmarks = parse_pyperf(files.path, label, doc)
    bench = benchmarks[0] if len(benchmarks) == 1 else next(
        (b for b in benchmarks if b.name == name), None
    )
    if bench is None:
        raise entry.fail(f"{pyperf_rel} has several benchmarks and none is named {name!r}")
    if not bench.values:
        raise entry.fail(f"status is measured but {pyperf_rel} holds no values")
    if variant.unit and variant.unit != bench.unit:
        raise entry.fail(f"unit {variant.unit!r} but {pyperf_rel} says {bench.unit!r}")
    variant.unit = variant.unit or bench.unit
    variant.values = bench.values
    variant.processes = list(bench.processes)
    raw_rel = entry.text("raw")
    if raw_rel:
        records = _read_jsonl(files, raw_rel, where)
        variant.cycles, variant.cycles_per_op_median = cycles_per_op(variant.values, records, variant.kind)
    perf_rel = entry.text("perf")
    if perf_rel:
        _read_perf(files, perf_rel, where, variant)
    return variant


#: The fields of a raw record the reader uses (cycles_per_op): each, when present, a number >= 0.
RECORD_NUMBERS = ("iterations", "elapsed_ns", "tsc_ticks", "guest_cycles")


def _read_jsonl(files: _BundleFiles, rel: str, where: str) -> list[dict[str, Any]]:
    lines = [(n, line) for n, line in enumerate(files.read(rel, where).splitlines(), start=1) if line.strip()]
    records = _all_at_once(files.path, [line for _, line in lines])
    if records is None:  # something is wrong: read line by line to say where
        records = [load_json(files.path, f"{where}: {rel} line {n}", line) for n, line in lines]
    for (n, _), record in zip(lines, records, strict=True):
        if type(record) is not dict or not all(_fine(record.get(k)) for k in RECORD_NUMBERS):
            fields = Fields(files.path, f"{where}: {rel} line {n}", record)
            for key in RECORD_NUMBERS:
                fields.number(key, minimum=0)  # says which field is wrong
    return records


def _all_at_once(path: str, lines: list[bytes]) -> list[Any] | None:
    """Every record in one parse (a raw file holds thousands: one parse per line cost a quarter of a
    bulk ingest), or None when that cannot be trusted to be the lines' records."""
    if not all(line.strip().startswith(b"{") and line.strip().endswith(b"}") for line in lines):
        return None
    try:
        records = load_json(path, "", b"[" + b",".join(lines) + b"]")
    except InputError:
        return None
    return records if isinstance(records, list) and len(records) == len(lines) else None


def _fine(value: Any) -> bool:
    """A record field that needs no closer look: absent, or a plain number >= 0."""
    return value is None or (type(value) is int and 0 <= value < 2**63) or (
        type(value) is float and 0 <= value < math.inf)


def cycles_per_op(
    values: list[float], records: list[dict[str, Any]], kind: str | None
) -> tuple[list[float | None], float | None]:
    """Cycles per op for each sample where a raw record gives it, and the variant's median.

    The runner's pyperf value is a record's elapsed_ns / 1e9 / iterations, so a sample is tied
    to the record that reproduces it exactly (same float computation). Cycles per op of a record
    are guest_cycles (guest) or tsc_ticks, / iterations. The median is over the tied samples;
    with none tied, over the records at the largest iteration count (the calibrated loops),
    since calibration records of a few iterations carry a large per-op overhead.
    """
    key = "guest_cycles" if kind == "guest" else "tsc_ticks"
    by_value: dict[float, float] = {}
    per_op_at: dict[int, list[float]] = {}
    for record in records:
        cycles, iterations, elapsed = _number(record, key), _number(record, "iterations"), _number(record, "elapsed_ns")
        if cycles is None or iterations is None or iterations <= 0 or cycles < 0 or iterations != int(iterations):
            continue
        per_op = cycles / iterations
        per_op_at.setdefault(int(iterations), []).append(per_op)
        if elapsed is not None:
            by_value.setdefault(elapsed / 1e9 / iterations, per_op)
    per_sample = [by_value.get(v) for v in values]
    tied = [c for c in per_sample if c is not None]
    if tied:
        return per_sample, statistics.median(tied)
    if per_op_at:
        return per_sample, statistics.median(per_op_at[max(per_op_at)])
    return per_sample, None


def _number(record: dict[str, Any], key: str) -> float | None:
    try:
        value = as_float(record.get(key))
    except OverflowError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _read_perf(files: _BundleFiles, rel: str, where: str, variant: VariantRecord) -> None:
    label = f"{where}: {rel}"
    perf = Fields(files.path, label, load_json(files.path, label, files.read(rel, where)))
    if perf.flag("available", default=True) is False:
        variant.perf_reason = perf.text("reason") or "perf not available"
    events = perf.obj("events", required=False)
    for event in events.names():
        item = events.obj(event)
        variant.counters.append(
            CounterRecord(
                event, item.number("count", minimum=0), item.number("per_op", minimum=0), item.text("state"),
                item.text("note"), item.text("unit"), item.number("running_pct", minimum=0),
            )
        )
