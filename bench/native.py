"""Run one native workload program and read its one-line JSON answer (the native protocol).

The program decides, by its exit status, whether it measured (0), was refused by the CPU, kernel or
KVM (3, unsupported) or failed (4, or anything else); see workloads/native/cet_arch.h.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cetbench import arch


@dataclass(frozen=True)
class NativeOutcome:
    status: str  # "measured" | "unsupported" | "failed"
    record: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    refused_by: str | None = None

    @property
    def measured(self) -> bool:
        return self.status == "measured"


def last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _describe_failure(code: int, record: dict[str, Any] | None, stderr: str) -> str:
    if record and record.get("error"):
        details = ", ".join(f"{k}={v}" for k, v in record.items() if k != "error")
        return f"{record['error']} ({details})" if details else str(record["error"])
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}" + (f": {stderr.strip()[:300]}" if stderr else "")
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    return f"exit status {code}: {tail[:300]}"


def run_native(cmd: Sequence[str], timeout: float) -> NativeOutcome:
    """Run `cmd`; a hang is killed (with its whole process group: ctxswitch forks) at `timeout`."""
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    except OSError as exc:
        return NativeOutcome("failed", reason=f"could not start {cmd[0]}: {exc.strerror}")
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return NativeOutcome("failed", reason=f"timed out after {timeout:g} s (killed)")
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
    record = last_json_line(stdout)
    code = proc.returncode
    if code == arch.EXIT_MEASURED and record and "iterations" in record:
        return NativeOutcome("measured", record)
    if code == arch.EXIT_UNSUPPORTED and record and record.get("unsupported"):
        return NativeOutcome("unsupported", record, str(record["unsupported"]), record.get("refused_by"))
    return NativeOutcome("failed", record or {}, _describe_failure(code, record, stderr))


def check_cet_state(record: dict[str, Any], kind: str, cet: str) -> str | None:
    """Why a measured record does not show the CET state the variant names, or None if it does.
    A CET-on figure taken with CET off would be a lie; so would an off figure with CET on."""
    value = cet.split("=", 1)[1]
    if kind == "host":
        observed = record.get("shstk")
        if observed != value:
            return f"workload ran with shstk={observed} although the variant asks shstk={value}"
        return None
    observed = record.get("cet_active", record.get("cet"))
    if observed is None:
        return "guest did not report its CET state"
    if observed != value:
        return f"guest ran with cet={observed} although the variant asks cet={value}"
    return None
