"""Reading the lab's serial console: the agent's framed lines among the kernel's own messages.

The agent writes `CETBENCH-LAB <kind> <crc32> <json>` (workloads/lab/agent.h). A line whose CRC or
JSON does not check out was cut or mixed with a kernel message on the console: it is reported as
garbled, never half-read. A kernel panic line ends the lab early; the words of a panic inside a good
agent line (a workload's output) are not one.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

TAG = "CETBENCH-LAB"
_LINE = re.compile(TAG + r" (\w+) ([0-9a-f]{8}) (.*)$")
PANIC = "Kernel panic - not syncing"
#: Kernel messages worth surfacing when a run goes wrong.
KERNEL_TROUBLE = ("Kernel panic", "BUG:", "Oops:", "general protection fault", "WARNING:", "Call Trace:")


@dataclass(frozen=True)
class LabLine:
    kind: str  # mark | file | start | job
    data: dict[str, Any]
    line_no: int  # 1-based line of the serial log
    seen_s: float | None = None  # host seconds since boot start when the line was first read


@dataclass(frozen=True)
class Garbled:
    kind: str
    line_no: int
    text: str
    why: str


@dataclass
class SerialFollower:
    """Feed it the serial log as it grows; it yields each complete line's meaning once."""

    lines: list[LabLine] = field(default_factory=list)
    garbled: list[Garbled] = field(default_factory=list)
    panic: str | None = None
    trouble: list[str] = field(default_factory=list)
    _partial: str = ""
    _line_no: int = 0

    def feed(self, text: str, now: float | None = None) -> list[LabLine]:
        new: list[LabLine] = []
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        for raw in pieces:
            self._line_no += 1
            line = raw.rstrip("\r")
            found = self._parse(line, now)
            if found is not None:
                self.lines.append(found)
                new.append(found)
        return new

    def finish(self, now: float | None = None) -> list[LabLine]:
        """The last line even without its newline (the log of a killed machine)."""
        rest, self._partial = self._partial, ""
        return self.feed(rest + "\n", now) if rest else []

    def _parse(self, line: str, now: float | None) -> LabLine | None:
        pos = line.find(TAG + " ")
        found = self._framed(line[pos:], now) if pos >= 0 else None
        console = line[:pos] if found is not None else line  # the kernel's text: all but a good agent line
        if PANIC in console and self.panic is None:
            self.panic = console[console.index("Kernel panic"):].strip()
        if any(t in line for t in KERNEL_TROUBLE) and TAG not in line and len(self.trouble) < 50:
            self.trouble.append(line.strip())
        return found

    def _framed(self, text: str, now: float | None) -> LabLine | None:
        """The agent line `text` (from the tag on), or None when it is garbled."""
        m = _LINE.match(text)
        if m is None:
            self.garbled.append(Garbled("?", self._line_no, text[:200], "no kind and CRC after the tag"))
            return None
        kind, crc, body = m.group(1), m.group(2), m.group(3)
        if f"{zlib.crc32(body.encode('latin-1', 'replace')):08x}" != crc:
            self.garbled.append(Garbled(kind, self._line_no, body[:200], "CRC mismatch: the line was cut or mixed"))
            return None
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # ValueError: also an integer of 5000 digits
            why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)[:100]
            self.garbled.append(Garbled(kind, self._line_no, body[:200], f"not JSON: {why}"))
            return None
        if not isinstance(data, dict):
            self.garbled.append(Garbled(kind, self._line_no, body[:200], "not a JSON object"))
            return None
        return LabLine(kind, data, self._line_no, now)


def parse_serial(text: str) -> SerialFollower:
    """Every line of a whole serial log."""
    follower = SerialFollower()
    follower.feed(text)
    follower.finish()
    return follower
