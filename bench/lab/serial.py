"""Reading the lab's serial console: the agent's framed lines among the kernel's own messages.

The agent writes `CETBENCH-LAB <kind> <crc32> <json>` (workloads/lab/agent.h). A line whose CRC or
JSON does not check out was cut or mixed with a kernel message on the console: it is reported as
garbled, never half-read; so is one whose CRC checks out but whose job index or probe file path is
not one the agent writes (another agent's bug or version: the line cannot be put where it belongs).
A kernel panic line ends the lab early; the words of a panic inside an agent line (a workload's
output) are not one.
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
#: Probe files the agent sends as hex (binary contents).
BINARY_PROBE_FILES = frozenset({"sys/kernel/notes", "dev/cpu/0/msr"})
MSR_FILE = "dev/cpu/0/msr"
#: MSR lines are taken for the low MSR range only (IA32_XSS is 0xDA0): the probe tree holds the msr file
#: as plain bytes up to the highest offset sent.
MSR_LIMIT = 0x2000
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_PATH_MAX_PARTS, _PATH_MAX_BYTES = 16, 1024


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
    _files: dict[str, int] = field(default_factory=dict)  # probe file path -> the line that first sent it
    _dirs: dict[str, int] = field(default_factory=dict)  # the directories those paths imply -> that line

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
        problem = self._routing_problem(kind, data)
        if problem:
            self.garbled.append(Garbled(kind, self._line_no, body[:200], problem))
            return None
        return LabLine(kind, data, self._line_no, now)

    def _routing_problem(self, kind: str, data: dict[str, Any]) -> str | None:
        """Why a line cannot be put where it belongs: a start or job line without a job index, a file line
        without a path the probe tree can hold (None: it can)."""
        if kind in ("start", "job"):
            index = data.get("index")
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                return f"its job index {_short(index)} is not a number >= 0"
        if kind != "file":
            return None
        path = data.get("path")
        problem = _guest_path_problem(path)
        if problem or not isinstance(path, str):
            return problem or "no path"
        if path == "boot" or path.startswith("boot/"):
            return "the guest's /boot is never sent: the probe tree's is the host's copy of the kernel config"
        if "exists" in data and not isinstance(data["exists"], bool):
            return f"exists is {_short(data['exists'])}, not true or false"
        if "data" in data:
            contents = data["data"]
            if not isinstance(contents, str):
                return f"the data of {path} is {_short(contents)}, not text"
            if path in BINARY_PROBE_FILES and not _HEX.fullmatch(contents):
                return f"the data of {path} is not hex"
        if "offset" in data:
            offset = data["offset"]
            if path != MSR_FILE or "data" not in data or len(data["data"]) != 16:
                return f"an offset is only sent with the 8 bytes of an MSR of {MSR_FILE}"
            if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < MSR_LIMIT:
                return f"MSR offset {_short(offset)} is not in 0..0x{MSR_LIMIT - 1:x}"
        for at in range(len(path)):  # a file where another line put a directory, or the other way round
            if path[at] == "/" and path[:at] in self._files:
                return f"{path[:at]} is a file (serial log line {self._files[path[:at]]}), not a directory"
        if path in self._dirs:
            return f"{path} is a directory (serial log line {self._dirs[path]}), not a file"
        self._files.setdefault(path, self._line_no)
        for at in range(len(path)):
            if path[at] == "/":
                self._dirs.setdefault(path[:at], self._line_no)
        return None


def _short(value: object) -> str:
    return repr(value)[:40]


def _guest_path_problem(path: object) -> str | None:
    """Why `path` is not a guest file the agent dumps, as it sends it (relative, no `.`/`..`)."""
    if not isinstance(path, str) or not path:
        return f"path {_short(path)} is not a file name"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return f"path {_short(path)} is not a relative path inside the guest"
    if any(not " " <= c <= "\xff" or c == "\x7f" for c in path):  # the agent sends bytes: code points <= 0xff
        return f"path {_short(path)} holds a character the agent does not send"
    too_long = len(path.encode()) > _PATH_MAX_BYTES or any(len(p.encode()) > 255 for p in parts)
    if too_long or len(parts) > _PATH_MAX_PARTS:
        return f"path {_short(path)} is too long or too deep for a probe file"
    return None


def parse_serial(text: str) -> SerialFollower:
    """Every line of a whole serial log."""
    follower = SerialFollower()
    follower.feed(text)
    follower.finish()
    return follower
