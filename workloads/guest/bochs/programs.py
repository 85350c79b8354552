"""Build what bochs boots: the boot sector, the test-only stub and CET probe, and the cetbench guest.

Each is compiled with the system C compiler into a flat binary (objcopy -O binary) plus its ELF (for
symbols), cached under the project's build cache by a hash of the inputs and flags.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cetbench.workloads.build import cache_root, elf_symbols
from cetbench.workloads.guest.bochs.cdefs import GUEST_DIR, abi

BOCHS_DIR = Path(__file__).resolve().parent
SECTOR = 512
BOOT_LINK_ADDR = 0x7C00

# Every image here is freestanding: no libc, no PIE, no build-id note ahead of the code.
_COMMON_FLAGS = ("-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-z,noexecstack")
# C guests: freestanding, no red zone (exceptions use the same stack), no SSE in C, ENDBR64 at every
# function (IBT on in the guest kernel).
_FREESTANDING_C = (
    "-O2",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffreestanding",
    "-fno-pic",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-mno-red-zone",
    "-mgeneral-regs-only",
    "-fcf-protection=full",
    f"-I{GUEST_DIR.parent}",
)


class BuildError(RuntimeError):
    """An image for bochs could not be built; the message says why."""


def _build(
    name: str, sources: tuple[str, ...], flags: tuple[str, ...], extra_inputs: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Compile+link `sources` (relative to this folder) into (elf, flat binary); cached by content."""
    h = hashlib.sha256(repr(flags).encode())
    for src in sorted({*sources, *extra_inputs, "probe.ld", "../abi.h", "../../native/cet_arch.h"}):
        h.update((BOCHS_DIR / src).read_bytes())
    out = cache_root() / f"bochs-{name}-{h.hexdigest()[:16]}"
    elf, flat = out / f"{name}.elf", out / f"{name}.bin"
    if flat.exists():
        return elf, flat
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=out.parent) as tmp:
        stage = Path(tmp) / "out"
        stage.mkdir()
        for cmd in (
            [
                os.environ.get("CC", "cc"),
                *_COMMON_FLAGS,
                *flags,
                *(str(BOCHS_DIR / s) for s in sources),
                "-o",
                str(stage / elf.name),
            ],
            ["objcopy", "-O", "binary", str(stage / elf.name), str(stage / flat.name)],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise BuildError(f"{name}: {Path(cmd[0]).name} failed: {proc.stderr.strip()[:400]}")
        try:
            os.rename(stage, out)
        except OSError:
            if not flat.exists():  # not a lost race with another builder: a real failure
                raise
    return elf, flat


@dataclass(frozen=True)
class BootSector:
    code: bytes  # 512 bytes, signature included
    offsets: dict[str, int]  # patch points, offsets into `code`


@lru_cache(maxsize=1)
def boot_sector() -> BootSector:
    elf, flat = _build("boot", ("boot.S",), (f"-Wl,-Ttext={BOOT_LINK_ADDR:#x}", "-Wl,-e,_start"))
    code = flat.read_bytes()
    if len(code) != SECTOR or code[510:] != b"\x55\xaa":
        raise BuildError(f"boot.S must assemble to one 512-byte sector with 55 AA, got {len(code)} bytes")
    syms = elf_symbols(elf)
    offsets = {n: syms[n] - BOOT_LINK_ADDR for n in ("boot_guest_sectors", "boot_guest_bytes", "boot_params")}
    return BootSector(code, offsets)


def stub_guest_image() -> bytes:
    """The test-only stub guest (stub_guest.S), linked at GUEST_IMAGE_GPA."""
    _, flat = _build("stub-guest", ("stub_guest.S",), (f"-Wl,-Ttext={abi()['GUEST_IMAGE_GPA']:#x}", "-Wl,-e,_start"))
    return flat.read_bytes()


def cet_probe_image() -> bytes:
    """The test-only CET capability probe (cet_probe.c): asks the emulated CPU what CET it has."""
    flags = (
        *_FREESTANDING_C,
        f"-Wl,-T,{BOCHS_DIR / 'probe.ld'}",
        f"-Wl,--defsym=GUEST_IMAGE_GPA={abi()['GUEST_IMAGE_GPA']:#x}",
        "-Wl,-e,_start",
    )
    _, flat = _build("cet-probe", ("cet_probe.c",), flags)
    return flat.read_bytes()
