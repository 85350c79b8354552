"""Helpers for the micro-VMM tests (tests/test_vmm.py, test_guest_setup_values.py).

The programs come from the project's native build (recipes cetbench-vmm and cetbench-guest), so
the tests run exactly what `cetbench run` runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workloads.build import build


@dataclass(frozen=True)
class Built:
    vmm: Path
    guest: Path  # flat image
    guest_elf: Path

    def symbol(self, name: str) -> int:
        out = subprocess.run(["nm", str(self.guest_elf)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2] == name:
                return int(parts[0], 16)
        raise KeyError(name)


def build_all() -> Built:
    """The micro-VMM and guest exactly as the suite builds them (workloads/build.py)."""
    guest = build("cetbench-guest")
    return Built(vmm=build("cetbench-vmm").path, guest=guest.path, guest_elf=guest.elf)


@dataclass
class Run:
    rc: int
    doc: dict | None
    stdout: str
    stderr: str


def run_vmm(built: Built, *args: str, timeout: float = 60.0) -> Run:
    proc = subprocess.run([str(built.vmm), *args], capture_output=True, text=True, timeout=timeout, check=False)
    lines = proc.stdout.splitlines()
    doc = json.loads(lines[0]) if len(lines) == 1 else None
    return Run(proc.returncode, doc, proc.stdout, proc.stderr)


def kvm_usable() -> str | None:
    """None when /dev/kvm can be opened read-write, else why not."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as exc:
        return f"/dev/kvm not usable here: {exc.strerror}"
    os.close(fd)
    return None
