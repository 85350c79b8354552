"""Host-side counts around QEMU: the kvm:* tracepoints of a Linux guest's job, which only the host sees.

Where QEMU runs on KVM, a job's VM exits are counted by `perf stat -p QEMU` started when the job's
`start` line arrives on the serial console and stopped (SIGINT) when its result line arrives. The agent
idles SETTLE_S after the start line (the job's `settle`), so perf is attached before the job starts;
the console's delay and the idle guest's few exits (its timer) then fall equally on the job's N-op and
2N-op runs and cancel in their difference, which is what a count per op is made of.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence

from cetbench.lab.serial import LabLine
from cetbench.perfstat import SEP, EventCount, first_error_line, parse_stat_csv

SETTLE_S = 1.0  # guest seconds the agent waits after a counted job's start line
STOP_TIMEOUT_S = 10.0


class HostCounter:
    """perf stat on the QEMU process for the jobs in `wanted` (job index on the console -> events)."""

    def __init__(self, perf: str, wanted: Mapping[int, Sequence[str]]) -> None:
        self.perf, self.wanted = perf, dict(wanted)
        self.pid: int | None = None
        self.running: dict[int, subprocess.Popen[str]] = {}
        self.counts: dict[int, dict[str, EventCount]] = {}
        self.errors: dict[int, str] = {}

    def attach(self, pid: int) -> None:
        """QEMU has started as `pid`."""
        self.pid = pid

    def argv(self, index: int) -> list[str]:
        selectors = [a for e in self.wanted[index] for a in ("-e", e)]
        return [self.perf, "stat", "-x", SEP, *selectors, "-p", str(self.pid)]

    def on_line(self, line: LabLine) -> None:
        index = line.data.get("index")
        if not isinstance(index, int) or index not in self.wanted:
            return
        if line.kind == "start" and index not in self.running and index not in self.counts:
            if self.pid is None:
                self.errors[index] = "QEMU's process was not known when the job started"
                return
            try:
                self.running[index] = subprocess.Popen(self.argv(index), stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            except OSError as exc:
                self.errors[index] = f"{self.perf}: {exc.strerror}"
        elif line.kind == "job" and index in self.running:
            self._stop(index)

    def _stop(self, index: int) -> None:
        proc = self.running.pop(index)
        proc.send_signal(signal.SIGINT)  # perf stat prints its counts and exits
        try:
            _, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            self.errors[index] = f"perf stat did not stop within {STOP_TIMEOUT_S:g} s of SIGINT"
            return
        counted = parse_stat_csv(stderr)
        if not counted:
            self.errors[index] = f"perf stat -p counted nothing: {first_error_line(stderr) or 'no output'}"
        self.counts[index] = counted

    def close(self) -> None:
        """Stop what still runs (a job whose result line never came): no count for it."""
        for index in list(self.running):
            self._stop(index)
            self.errors[index] = "the job's result line never arrived"
            self.counts.pop(index, None)
