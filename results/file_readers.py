"""Read a lone pyperf or pytest-benchmark JSON file into a RunRecord.

Assumptions (what these formats do not say, and how we fill it):

pyperf (a BenchmarkSuite file, format 1.0): each benchmark becomes one measured variant whose
samples are the runs' values (seconds per op for unit "second"). Host fields come from the
metadata: hostname -> host, cpu_model_name, platform ("Linux-<release>-<machine>-with-...") ->
kernel release. pyperf's "date" metadata is local time without a zone: it is taken as UTC.
Without any date, the file's modification time is used.

pytest-benchmark (--benchmark-json): each benchmark becomes one measured variant; its samples are
`stats.data` (one per round: seconds per call of the benchmarked function; pytest-benchmark
already divides a round by its iterations). When `extra_info` says how many native ops one call
runs (`ops_per_iteration`, or `iterations` for short) the samples are divided by it: seconds per
op. machine_info.node -> host, machine_info.cpu.brand_raw -> cpu_model_name,
machine_info.release -> kernel release, commit_info.id -> suite commit; the file's `datetime`
-> started. extra_info may also give variant, workload, cet, cet_on, op, emulated, unit,
cycles_per_op, kernel_version, kernel_build_id, kernel_label, host_fingerprint, suite_version.
Everything but the per-round data is kept verbatim in the run's manifest_json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from typing import Any

from .errors import InputError
from .pyperf_reader import parse_pyperf
from .records import Fields, RunRecord, VariantRecord, check_values, parse_utc, split_variant_name


def _run_id(kind: str, started: dt.datetime, host: str | None, content_hash: str) -> str:
    # Shaped like a bundle's run id, prefixed with the source kind; the host name is cut so that the
    # id fits the store (RUN_ID_MAX).
    return f"{kind}-{started:%Y%m%dT%H%M%SZ}-{(host or 'unknown')[:100]}-{content_hash[:6]}"


def _kernel_release_from_platform(platform: Any) -> str | None:
    # platform.platform(): "Linux-6.1.0-18-amd64-x86_64-with-glibc2.36"
    if not isinstance(platform, str) or not platform.startswith("Linux-"):
        return None
    head = platform[len("Linux-"):].split("-with-", 1)[0]
    release, _, _machine = head.rpartition("-")
    return release or None


def read_pyperf_file(path: str, data: bytes, doc: Any) -> RunRecord:
    label = "pyperf JSON"
    suite_md, benchmarks = parse_pyperf(path, label, doc)
    content_hash = hashlib.sha256(data).hexdigest()
    fail = lambda m: InputError(path, f"{label}: date: {m}")  # noqa: E731
    dates = sorted(parse_utc(d, fail) for b in benchmarks for d in b.dates)
    if dates:
        started, finished = dates[0], dates[-1]
    else:
        started = dt.datetime.fromtimestamp(os.path.getmtime(path), dt.UTC)
        finished = None
    md = Fields(path, f"{label}: metadata", {**suite_md, **benchmarks[0].metadata})
    variants = []
    for bench in benchmarks:
        workload, cet, cet_on = split_variant_name(path, f"{label}: benchmark {bench.name!r}", bench.name)
        variants.append(
            VariantRecord(
                name=bench.name, status="measured", workload=workload, cet=cet, cet_on=cet_on,
                unit=bench.unit, values=bench.values, processes=list(bench.processes),
            )
        )
    host = md.text("hostname")
    verbatim = {
        "format": "pyperf",
        "version": doc.get("version"),
        "metadata": suite_md,
        "benchmarks": [{"name": b.name, "metadata": b.metadata} for b in benchmarks],
    }
    return RunRecord(
        run_id=_run_id("pyperf", started, host, content_hash),
        content_hash=content_hash,
        source_kind="pyperf",
        started_utc=started,
        finished_utc=finished,
        manifest_json=json.dumps(verbatim, sort_keys=True),
        host=host,
        cpu_model_name=md.text("cpu_model_name") or None,
        kernel_release=_kernel_release_from_platform(md.text("platform")),
        variants=variants,
    )


def is_pytest_benchmark(doc: Any) -> bool:
    return isinstance(doc, dict) and "machine_info" in doc and "benchmarks" in doc


def read_pytest_benchmark_file(path: str, data: bytes, doc: Any) -> RunRecord:
    top = Fields(path, "pytest-benchmark JSON", doc)
    machine = top.obj("machine_info")
    commit = top.obj("commit_info", required=False)
    cpu = machine.obj("cpu", required=False)
    started = top.time("datetime", required=True)
    assert started is not None
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list) or not benchmarks:
        raise top.fail("no benchmarks")
    entries = [Fields(path, f"pytest-benchmark JSON: benchmark {i}", b) for i, b in enumerate(benchmarks)]
    names = [str(e.doc.get("name")) for e in entries]
    extras = [e.obj("extra_info", required=False) for e in entries]
    variants = [
        _pytest_variant(entry, extra, names.count(name) > 1)
        for name, entry, extra in zip(names, entries, extras, strict=True)
    ]
    if len({v.name for v in variants}) != len(variants):
        raise top.fail("benchmark names repeat")
    first = extras[0]
    content_hash = hashlib.sha256(data).hexdigest()
    host = machine.text("node")
    verbatim = {k: v for k, v in doc.items() if k != "benchmarks"}
    verbatim["format"] = "pytest-benchmark"
    verbatim["benchmarks"] = [{k: v for k, v in b.items() if k != "stats"} for b in benchmarks]
    return RunRecord(
        run_id=_run_id("pytest-benchmark", started, host, content_hash),
        content_hash=content_hash,
        source_kind="pytest-benchmark",
        started_utc=started,
        manifest_json=json.dumps(verbatim, sort_keys=True),
        host=host,
        host_fingerprint=first.text("host_fingerprint") or None,
        cpu_model_name=cpu.text("brand_raw"),
        kernel_release=machine.text("release"),
        kernel_version=first.text("kernel_version") or None,
        kernel_build_id=first.text("kernel_build_id") or None,
        kernel_label=first.text("kernel_label") or None,
        suite_version=first.text("suite_version") or None,
        suite_commit=commit.text("id"),
        variants=variants,
    )


def _pytest_variant(entry: Fields, extra: Fields, name_repeats: bool) -> VariantRecord:
    name = extra.text("variant") or entry.text("fullname" if name_repeats else "name", required=True)
    assert name is not None
    stats = entry.obj("stats")
    if stats.doc.get("data") is None:
        raise stats.fail(
            f"benchmark {name!r} has no per-round data (stats.data): write it with "
            "--benchmark-json, or --benchmark-save with --benchmark-save-data"
        )
    where = f"pytest-benchmark JSON: benchmark {name!r}"
    values = check_values(entry.path, where, stats.doc["data"])
    ops = extra.number("ops_per_iteration")
    ops = extra.number("iterations") if ops is None else ops
    ops = 1.0 if ops is None else ops
    if ops <= 0:
        raise extra.fail(f"ops per iteration must be > 0, got {ops!r}")
    # Seconds per op must still be finite and > 0 after the division (1e-7 / 1e308 is 0.0).
    per_op = check_values(entry.path, f"{where}: stats.data divided by {ops:g} ops per iteration",
                          [v / ops for v in values])
    parsed_workload, parsed_cet, parsed_on = split_variant_name(entry.path, where, name)
    cet = extra.text("cet") or parsed_cet
    return VariantRecord(
        name=name,
        status="measured",
        workload=extra.text("workload") or parsed_workload,
        cet=cet,
        cet_on=extra.flag("cet_on", default=parsed_on),
        unit=extra.text("unit") or "second",
        op=extra.text("op"),
        emulated=bool(extra.flag("emulated", default=False)),
        values=per_op,
        cycles_per_op_median=extra.number("cycles_per_op", minimum=0),
    )
