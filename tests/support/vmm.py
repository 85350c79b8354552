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

from cetbench.workloads.build import build


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


# A guest that only writes a struct guest_result and stops (PORT_DONE): shows how the VMM reports a
# result the real guest cannot produce on this host (e.g. CET lost during the loop, which needs CET).
_RESULT_STUB = r"""
#include "guest/abi.h"
__attribute__((section(".text.entry"), noreturn)) void guest_entry(void)
{
	volatile struct guest_result *r = (volatile struct guest_result *)(unsigned long)GUEST_RESULT_GPA;
	const char *d = STUB_DETAIL;

	r->ops = STUB_OPS;
	r->cet_active = STUB_CET_ACTIVE;
	r->cet_active_before = STUB_CET_BEFORE;
	r->u_cet = STUB_U_CET;
	r->after_valid = STUB_AFTER_VALID;
	r->cet_active_after = STUB_CET_AFTER;
	r->u_cet_after = STUB_U_CET_AFTER;
	r->after_tasks = 1;
	r->ssp_after[0] = 0x1230;
	for (int i = 0; d[i]; i++)
		r->detail[i] = d[i];
	r->status = STUB_STATUS;
	__asm__ volatile("outb %%al, %%dx" : : "a"(1), "d"(PORT_DONE));
	for (;;)
		__asm__ volatile("hlt");
}
"""


_STUB_FIELDS = ("status", "ops", "cet_active", "cet_before", "u_cet", "after_valid", "cet_after", "u_cet_after")
_STUB_FLAGS = "-O2 -Wall -Werror -ffreestanding -fno-pic -mno-red-zone -mgeneral-regs-only -nostdlib -static -no-pie"


def result_stub_guest(out_dir: Path, detail: str = "", **fields: int) -> Path:
    """A flat guest image (linked by the guest's own linker script) whose struct guest_result holds
    `fields` (any of _STUB_FIELDS, 0 when not given) and `detail`."""
    workloads = Path(__file__).resolve().parents[2] / "workloads"
    src, elf, flat = out_dir / "stub.c", out_dir / "stub.elf", out_dir / "stub.bin"
    src.write_text(_RESULT_STUB)
    defines = [f"-DSTUB_{k.upper()}={fields.get(k, 0)}" for k in _STUB_FIELDS]
    link = [f"-Wl,-T,{workloads / 'guest' / 'guest.ld'}", "-Wl,--build-id=none"]
    cc = [os.environ.get("CC", "cc"), *_STUB_FLAGS.split(), f"-I{workloads}", *link, *defines]
    subprocess.run([*cc, f"-DSTUB_DETAIL={json.dumps(detail)}", str(src), "-o", str(elf)], check=True)
    subprocess.run(["objcopy", "-O", "binary", str(elf), str(flat)], check=True)
    return flat


def kvm_usable() -> str | None:
    """None when /dev/kvm can be opened read-write, else why not."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as exc:
        return f"/dev/kvm not usable here: {exc.strerror}"
    os.close(fd)
    return None
