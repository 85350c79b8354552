"""The end-of-run summary: one row per variant, and CET on beside CET off for each workload."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pyperf

from cetbench.perf_pass import key_event_per_op

EMULATED_NOTE = "emulated KVM: not a hardware timing"


def _cycles_per_op(raw_path: Path) -> float | None:
    """Median cycles per op over the records at the largest iteration count: pyperf's calibration
    records of a few iterations cost far more per op and are not samples."""
    records = []
    try:
        lines = raw_path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        cycles = rec.get("guest_cycles", rec.get("tsc_ticks"))
        if cycles and rec.get("iterations"):
            records.append((rec["iterations"], cycles / rec["iterations"]))
    if not records:
        return None
    top = max(n for n, _ in records)
    return statistics.median(c for n, c in records if n == top)


def variant_rows(root: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, v in manifest["variants"].items():
        row: dict[str, Any] = {"variant": name, "workload": v["workload"], "cet": v["cet"], "cet_on": v["cet_on"],
                               "status": v["status"], "reason": v.get("reason"), "op": v.get("op"),
                               "emulated": v.get("emulated", False), "median_ns": None, "stdev_ns": None,
                               "values": 0, "cycles_per_op": None, "key_event": None, "events_per_op": None}
        if v["status"] == "measured" and v.get("pyperf"):
            bench = pyperf.BenchmarkSuite.load(str(root / v["pyperf"])).get_benchmarks()[0]
            row["median_ns"] = bench.median() * 1e9
            row["stdev_ns"] = bench.stdev() * 1e9 if bench.get_nvalue() > 1 else 0.0
            row["values"] = bench.get_nvalue()
            if v.get("raw"):
                row["cycles_per_op"] = _cycles_per_op(root / v["raw"])
            if v.get("perf"):
                row["key_event"], row["events_per_op"] = key_event_per_op(root / v["perf"])
        rows.append(row)
    return rows


def side_by_side(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each CET-on variant with its workload's CET-off figure, where both were measured."""
    off = {r["workload"]: r for r in rows if not r["cet_on"]}
    pairs = []
    for r in rows:
        base = off.get(r["workload"])
        if not r["cet_on"] or base is None:
            continue
        pair = {"workload": r["workload"], "cet": r["cet"], "off_ns": base["median_ns"], "on_ns": r["median_ns"],
                "on_status": r["status"], "on_reason": r["reason"], "delta_pct": None, "emulated": r["emulated"]}
        if base["median_ns"] and r["median_ns"]:
            pair["delta_pct"] = 100.0 * (r["median_ns"] / base["median_ns"] - 1.0)
        pairs.append(pair)
    return pairs
