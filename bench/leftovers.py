"""Processes a killed run left behind, found by the bundle they work for and killed before a resume.

A run killed with SIGKILL cannot stop its children: pyperf's master runs in a session of its own
(so a timeout can kill its whole tree), and its workers, the native workloads, the VMM and a perf
pass run on. Left alone, they keep timing loops on the CPU the resumed run measures on and append
records to the variant's files. Every process a run starts carries the bundle in its environment
(`CETBENCH_BUNDLE`), which its descendants inherit; `--resume` kills those first.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "CETBENCH_BUNDLE"


@contextmanager
def marked(root: Path) -> Iterator[None]:
    """Children started inside the block carry `root` in their environment."""
    before = os.environ.get(ENV)
    os.environ[ENV] = str(root.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def working_for(root: Path) -> list[int]:
    """Processes (but this one) that carry the mark of the bundle at `root`."""
    mark = f"{ENV}={root.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or another user's
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie no longer runs; its parent may never reap it


def kill_leftovers(root: Path, wait_s: float = 10.0) -> int:
    """SIGKILL every process still working for the bundle at `root`; wait until they are gone.
    Returns how many there were."""
    killed: set[int] = set()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        # Again until none is found: a parent killed after its scan may have forked a child meanwhile.
        found = [p for p in working_for(root) if _alive(p)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed.update(found)
        while any(_alive(p) for p in found) and time.monotonic() < deadline:
            time.sleep(0.01)
    return len(killed)
