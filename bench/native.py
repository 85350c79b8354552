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
from cetbench.workloads.build import BuildError, BuiltProgram, build
from cetbench.workloads.table import Variant

GUEST_IMAGE = "cetbench-guest"  # the recipe of the image every guest workload boots


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
    return classify(proc.returncode, last_json_line(stdout), stderr)


def classify(code: int, record: dict[str, Any] | None, stderr: str = "") -> NativeOutcome:
    """The protocol's verdict on a finished program: its exit status (negative: killed by that signal)
    and its last JSON line. One rule for every place a workload runs (here, the emulated lab)."""
    if code == arch.EXIT_MEASURED and record and "iterations" in record:
        return NativeOutcome("measured", record)
    if code == arch.EXIT_UNSUPPORTED and record and record.get("unsupported"):
        return NativeOutcome("unsupported", record, str(record["unsupported"]), record.get("refused_by"))
    return NativeOutcome("failed", record or {}, _describe_failure(code, record, stderr))


class Programs:
    """The native programs of a run, each built once (a build failure is remembered and given as the
    reason of every variant that needs that program)."""

    def __init__(self) -> None:
        self._built: dict[str, BuiltProgram | BuildError] = {}

    def get(self, name: str) -> BuiltProgram:
        if name not in self._built:
            try:
                self._built[name] = build(name)
            except BuildError as exc:
                self._built[name] = exc
        found = self._built[name]
        if isinstance(found, BuildError):
            raise found
        return found

    def hashes(self) -> dict[str, str]:
        """sha256 of every program built so far (recorded in run manifests)."""
        return {n: b.sha256 for n, b in self._built.items() if isinstance(b, BuiltProgram)}


def variant_command(variant: Variant, programs: Programs, cpu: int = 0, inject_cycles: int = 0) -> list[str]:
    """The native command that runs `variant`, all but `--iterations N`: the one place a variant's
    command line is written (runner, perf pass and pytest-benchmark front door alike). Raises
    BuildError when a program cannot be built."""
    cmd = [str(programs.get(variant.workload.program).path)]
    if variant.workload.guest is not None:
        cmd += ["--guest", str(programs.get(GUEST_IMAGE).path)]
    # a variant's own inject axis (a known delay) is its configuration; the run's is a self-test of all
    inject = [] if variant.id.value("inject") is not None else ["--inject-cycles", str(inject_cycles)]
    return [*cmd, *variant.native_args(), "--cpu", str(cpu), *inject]


def run_variant_once(variant: Variant, cmd: Sequence[str], iterations: int, timeout: float) -> NativeOutcome:
    """One run of `cmd` for `iterations` ops; a measured record whose CET state is not the one the
    variant names is failed, never measured."""
    outcome = run_native([*cmd, "--iterations", str(iterations)], timeout)
    if outcome.measured:
        wrong = variant.id.wrong_state(outcome.record)
        if wrong:
            return NativeOutcome("failed", outcome.record, wrong)
    return outcome
