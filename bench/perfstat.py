"""Run `perf stat` through subprocess and read its CSV output.

perf's -x output is one line per event: count, unit, event name, run time, percentage, ... A count
field of "<not supported>" or "<not counted>" is perf's own verdict on the event and is kept verbatim.
The separator is the ASCII unit separator, which cannot appear in an event name.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SEP = "\x1f"

# (returncode, stdout, stderr) of a command; injectable so tests can replay recorded perf output.
CommandRunner = Callable[[Sequence[str], float], tuple[int, str, str]]


def run_command(cmd: Sequence[str], timeout: float) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        return 127, "", f"{cmd[0]}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return 124, "", f"{cmd[0]} timed out after {timeout:g} s"
    return proc.returncode, proc.stdout, proc.stderr


@dataclass(frozen=True)
class EventCount:
    event: str
    count: float | None
    state: str  # "counted" | "not supported" | "not counted" | "unavailable"
    note: str | None = None


def perf_binary() -> str | None:
    return shutil.which("perf")


def parse_stat_csv(text: str) -> dict[str, EventCount]:
    events: dict[str, EventCount] = {}
    for line in text.splitlines():
        fields = line.split(SEP)
        if len(fields) < 3 or not fields[2]:
            continue
        raw, name = fields[0].strip(), fields[2].strip()
        if raw.startswith("<") and raw.endswith(">"):
            events[name] = EventCount(name, None, raw.strip("<>"), f"perf: {raw}")
            continue
        try:
            events[name] = EventCount(name, float(raw), "counted")
        except ValueError:
            events[name] = EventCount(name, None, "unavailable", f"perf printed {raw!r}")
    return events


def first_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and SEP not in ln]
    # perf often splits one message over lines ("Error:" then the explanation): keep two.
    return " ".join(lines[:2]) if lines else "no message"
