"""A lab boot as an ordinary run bundle: the variants the suite selected, run once each in the emulated
CET lab (two iteration counts), written in the bundle format `cetbench run` writes, so ingest, compare,
overhead, trend and every report read it like any run.

What differs is said in the bundle itself: its host facts are the lab guest's (the ordinary probe run
on the guest's files), `backend` names the emulator (every figure of the run is labelled with it),
every variant is `emulated`, and its perf counts are the lab's tracepoint counts per op (the difference
of the two runs over their difference in ops). Its times are path lengths on an emulated CPU, never
hardware time (docs/lab.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyperf

from cetbench import manifest as mf
from cetbench.lab.jobs import JobResult
from cetbench.lab.probe_tree import lab_host_facts
from cetbench.lab.run import LabRun
from cetbench.lab.suite import ITERATIONS, LabVariant, summarize
from cetbench.plan import plan
from cetbench.probe import document
from cetbench.results.bundle import Bundle, atomic_write_json
from cetbench.workloads.table import Variant, all_variants
from cetbench.workloads.variants import GUEST

BACKEND = "lab"
LAB_DIR = "lab"  # the boot's own files inside the bundle


def _runs(variant: Variant, results: dict[str, JobResult]) -> list[pyperf.Run]:
    """Each of the two jobs as one pyperf run (a worker process) of one value: seconds per op."""
    out = []
    for scale in (1, 2):
        record = results[f"{variant.name}x{scale}"].record or {}
        iterations, elapsed = record.get("iterations"), record.get("elapsed_ns")
        if isinstance(iterations, int) and iterations > 0 and isinstance(elapsed, int) and elapsed > 0:
            md = {"name": variant.name, "unit": "second", "loops": iterations, "lab_job": f"{variant.name}x{scale}"}
            out.append(pyperf.Run([elapsed / 1e9 / iterations], metadata=md, collect_metadata=False))
    return out


def _perf_doc(row: LabVariant, n: int) -> dict[str, object]:
    events = {e: {"count": round(v * n), "per_op": v, "state": "counted", "note": None, "unit": None,
                  "running_pct": None} for e, v in row.per_op.items()}
    events.update({e: {"count": None, "per_op": None, "state": "not counted", "note": why, "unit": None,
                       "running_pct": None} for e, why in row.uncounted.items()})
    return {"schema": 1, "available": True, "reason": None, "command": None, "returncode": 0,
            "ops_requested": n, "ops": n, "inherit": True, "requested": [*row.per_op, *row.uncounted],
            "key_events": list(row.variant.workload.key_events), "events": events, "workload": row.outcome.record,
            "scope": f"emulated lab: tracepoint counts of a {2 * n}-op run less those of an {n}-op run, over {n} ops "
                     "(start-up and teardown cancel)"}


def storable(value: Any) -> Any:
    """`value` with its text as a store can hold it: the guest's files and serial lines may put a NUL or a
    lone surrogate (a workload's JSON "\\ud800") into a release, a reason or a fact, and one such
    character would have the whole run refused at ingest; they are written escaped (`\\x00`, `\\ud800`)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
            return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def write_bundle(root: Path, run: LabRun, workdir: Path, variants: Sequence[Variant],
                 kernel_label: str | None) -> Bundle:
    """The bundle of one lab boot, created at `root` (new or empty); the boot's work directory (bochsrc,
    serial log, the guest's probe files) moves into it as `lab/`."""
    facts = lab_host_facts(run, workdir / "probe")
    full = plan(facts, [*all_variants(), *(v for v in variants if v not in all_variants())])
    results = {r.id: r for r in run.jobs}
    manifest: dict[str, Any] = {
        "run_id": mf.new_run_id(), "started_utc": mf.utc_now(), "finished_utc": None,
        "host": {**mf.host_section(facts), "hostname": f"cetbench-lab ({run.emulator})"},
        "kernel": mf.kernel_section(facts, kernel_label), "suite": mf.suite_section(), "kvm": mf.kvm_section(facts),
        "backend": {"name": BACKEND, "emulator": run.emulator, "kernel": run.kernel.to_json(),
                    "boot_s": run.boot_s, "total_s": run.total_s, "completed": run.completed, "failure": run.failure,
                    "serial_log": str(Path(LAB_DIR) / run.serial_log.relative_to(workdir))},
        "options": {"lab": True, "iterations": ITERATIONS, "only": None, "pyperf": [], "perf": "lab"},
        "binaries": {}, "probe": document(facts, full), "variants": {},
    }
    bundle = Bundle.create(root, storable(manifest))
    shutil.move(workdir, root / LAB_DIR)
    rows = summarize(variants, results)
    for row in rows:
        v, decision = row.variant, full.of(row.variant)
        entry: dict[str, object] = {
            "workload": v.workload.name, "kind": v.workload.kind, "cet": v.config, "cet_on": v.cet_on,
            "op": v.workload.op, "unit": "second", "emulated": True, "pyperf": None, "raw": None, "perf": None,
            "status": row.outcome.status, "reason": row.outcome.reason, "refused_by": row.outcome.refused_by,
            "refusals": [{"by": row.outcome.refused_by or "workload", "reason": row.outcome.reason}]
            if row.outcome.status == "unsupported" else []}
        if not decision.runnable:  # the lab's own plan refuses it: the same rule as on a host
            entry.update(status="unsupported", reason=decision.reason, refused_by=decision.refused_by,
                         refusals=[{"by": by, "reason": why} for by, why in decision.refusals])
        elif row.outcome.measured:
            runs = _runs(v, results)
            pyperf_path = bundle.variant_path(v.name, "pyperf.json")
            raw_path = bundle.variant_path(v.name, "raw.jsonl")
            pyperf.BenchmarkSuite([pyperf.Benchmark(runs)]).dump(str(pyperf_path), replace=True)
            records = (json.dumps(results[f"{v.name}x{k}"].record or {}, separators=(",", ":")) for k in (1, 2))
            raw_path.write_text("".join(f"{r}\n" for r in records))
            n = ITERATIONS["guest" if v.workload.kind == GUEST else "host"]
            perf_path = bundle.variant_path(v.name, "perf.json")
            atomic_write_json(perf_path, _perf_doc(row, n))
            entry.update(pyperf=bundle.rel(pyperf_path), raw=bundle.rel(raw_path), perf=bundle.rel(perf_path))
        bundle.manifest["variants"][v.name] = storable(entry)
    bundle.manifest["finished_utc"] = mf.utc_now()
    bundle.save()
    return bundle
