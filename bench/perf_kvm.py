"""VM-exit reasons of a guest variant from `perf kvm stat`, when the host's KVM fires kvm:kvm_exit.

`perf kvm stat record` samples every kvm:kvm_entry/kvm:kvm_exit of the command it runs (like `perf
record`, it inherits to the child threads: the vCPU thread included) and `perf kvm -i FILE stat
report --event=vmexit` prints one row per exit reason:

                 VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time
          IO_INSTRUCTION     100000    99.93%    98.10%      1.52us     35.10us      1.71us ( +-   0.15% )
    Total Samples:100070, Total events handled time:174363.20us.

The breakdown only means something on hardware KVM (kvm_intel, kvm_amd): a software KVM such as
kvm_pvm does not fire kvm_exit at all, so the counting pass's kvm:kvm_exit count decides whether this
pass runs, and when it does not, the section says so and names the KVM implementation.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cetbench.native import last_json_line as workload_record
from cetbench.perfstat import first_error_line

# The record pass samples every entry and exit (-c 1): about 100 bytes a sample, so it is capped to
# keep the perf.data file (a temporary) to tens of MB. The cap does not bias a per-reason share.
KVM_STAT_MAX_OPS = 100_000

GroupRunner = Callable[[Sequence[str], float], tuple[int, str, str]]

_ROW = re.compile(
    r"^\s*(?P<reason>\S.*?)\s+(?P<samples>\d+)\s+(?P<samples_pct>[\d.]+)%\s+(?P<time_pct>[\d.]+)%"
    r"\s+(?P<min_us>[\d.]+)us\s+(?P<max_us>[\d.]+)us\s+(?P<avg_us>[\d.]+)us"
    r"(?:\s+\(\s*\+-\s*(?P<avg_spread_pct>[\d.]+)%\s*\))?\s*$"
)
_TOTAL = re.compile(r"Total Samples:\s*(?P<samples>\d+),\s*Total events handled time:\s*(?P<time_us>[\d.]+)us")


def parse_report(text: str) -> dict[str, Any]:
    """The rows and totals of `perf kvm stat report --event=vmexit`; lines it does not know (perf's
    "unknown kvm exit code" warnings, headers) are skipped, not guessed at."""
    exits: list[dict[str, Any]] = []
    total: dict[str, Any] = {"total_samples": None, "total_time_us": None}
    for line in text.splitlines():
        if m := _TOTAL.search(line):
            total = {"total_samples": int(m["samples"]), "total_time_us": float(m["time_us"])}
            continue
        if m := _ROW.match(line):
            row: dict[str, Any] = {"reason": m["reason"], "samples": int(m["samples"])}
            for key in ("samples_pct", "time_pct", "min_us", "max_us", "avg_us", "avg_spread_pct"):
                row[key] = float(m[key]) if m[key] is not None else None
            exits.append(row)
    return {"exits": exits, **total}


def skip_reason(exit_count: float | None, exit_state: str | None, exit_note: str | None, ops: int | None,
                kvm_impl: str | None) -> str | None:
    """Why there is no breakdown to take, or None when kvm:kvm_exit counted and one should be taken."""
    impl = kvm_impl or "unknown (the probe could not name it)"
    if exit_state != "counted":
        said = f" ({exit_note})" if exit_note else ""
        return f"kvm:kvm_exit was {exit_state or 'not requested'} in the counting pass{said}; KVM here: {impl}"
    if not exit_count:
        return (f"kvm:kvm_exit counted 0 over {ops} ops: the KVM here ({impl}) does not fire the kvm_exit "
                "tracepoint (not hardware VMX/SVM), so perf kvm stat has no exits to break down")
    return None


def breakdown(perf: str, cmd: Sequence[str], ops: int, timeout: float, run: GroupRunner) -> dict[str, Any]:
    """Record the guest command's exits with `perf kvm stat record`, then report them by reason."""
    ops = min(ops, KVM_STAT_MAX_OPS)
    out: dict[str, Any] = {"available": False, "reason": None, "ops_requested": ops, "ops": None,
                           "record_command": None, "report_command": None, "report": None, "exits": [],
                           "total_samples": None, "total_time_us": None}
    with tempfile.TemporaryDirectory(prefix="cetbench-kvmstat-") as tmp:
        data = str(Path(tmp) / "perf.data.kvm")
        record = [perf, "kvm", "stat", "record", "-q", "-o", data, "--", *cmd, "--iterations", str(ops)]
        out["record_command"] = record
        code, stdout, stderr = run(record, timeout)
        # The workload's own count of what it did, as in the counting pass.
        out["ops"] = (workload_record(stdout) or {}).get("iterations")
        if code != 0:
            out["reason"] = f"perf kvm stat record exited {code}: {first_error_line(stderr)}"
            return out
        report = [perf, "kvm", "-i", data, "stat", "report", "--event=vmexit"]
        out["report_command"] = report
        code, stdout, stderr = run(report, timeout)
    if code != 0:
        out["reason"] = f"perf kvm stat report exited {code}: {first_error_line(stderr)}"
        return out
    # perf prints the report with pr_info, i.e. on stderr; read both in case a version differs.
    text = "\n".join(filter(None, [stdout.strip("\n"), stderr.strip("\n")]))
    parsed = parse_report(text)
    out.update(parsed, report=text)
    if not parsed["exits"]:
        out["reason"] = "perf kvm stat report listed no exit reasons"
        return out
    out["available"] = True
    return out
