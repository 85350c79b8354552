"""The lab's guest files as a directory tree, so the host-side probe judges the lab with its own code.

`cetbench.probe.collect(view=HostView(tree), native=run.native_probe, ...)` then reads the guest's
/proc, /sys and /boot exactly as it reads a real host's; `lab_host_facts` does that call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from cetbench.facts import HostFacts
from cetbench.hostview import HostView
from cetbench.lab.errors import LabError
from cetbench.lab.serial import BINARY_PROBE_FILES

if TYPE_CHECKING:
    from cetbench.lab.run import LabRun

NO_PERF = "no perf binary in the lab image: the lab counts tracepoints with cetbench-lab-agent (perf_event_open)"


def write_probe_tree(probe_files: Mapping[str, str], root: Path) -> HostView:
    """Write each guest file under `root` (hex ones decoded) and return a HostView of the tree."""
    for rel, contents in probe_files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise LabError(f"probe file path {rel!r} is not a relative path inside the guest")
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = bytes.fromhex(contents) if rel in BINARY_PROBE_FILES else contents.encode("latin-1", "replace")
        target.write_bytes(data)
    return HostView(root)


def _no_perf(cmd: Sequence[str], timeout: float) -> tuple[int, str, str]:
    return 127, "", NO_PERF


def cpu_count(probe_files: Mapping[str, str]) -> int:
    return sum(1 for ln in probe_files.get("proc/cpuinfo", "").splitlines() if ln.startswith("processor")) or 1


def lab_host_facts(run: LabRun, tree: Path) -> HostFacts:
    """The lab guest's facts through the ordinary probe: CPU (cpuinfo + the guest's CPUID), kernel
    (release, version, build-id, cmdline, config), KVM (the guest's KVM_GET_SUPPORTED_CPUID), perf."""
    from cetbench.probe import collect  # the probe imports the native build; only needed here

    view = write_probe_tree(run.probe_files, tree)
    error = None if run.native_probe else "cetbench-probe gave no JSON inside the lab"
    return collect(view=view, native=run.native_probe, native_error=error, run=_no_perf, perf="perf",
                   ncpus=cpu_count(run.probe_files), euid=0)  # the lab's agent runs everything as root
