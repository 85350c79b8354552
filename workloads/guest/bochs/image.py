"""Build a 1.44 MB floppy image that boots a cetbench guest image under bochs.

Sector 0 is boot.S (real mode -> the long-mode boot state of workloads/guest/abi.h); sectors 1..N
hold the flat guest image. The per-run struct guest_params and the image size are patched into the
boot sector at the symbols boot_params, boot_guest_sectors and boot_guest_bytes (read from boot.elf).
"""

from __future__ import annotations

import struct

from cetbench.workloads.guest.bochs.cdefs import abi
from cetbench.workloads.guest.bochs.programs import SECTOR, boot_sector

FLOPPY_BYTES = 1474560  # 80 cylinders x 2 heads x 18 sectors x 512
# boot.S stages the image at 0x10000 below 1 MiB and must stay clear of the EBDA (~0x9FC00).
MAX_GUEST_BYTES = 0x80000

# struct guest_params (abi.h): magic, abi_version, platform, vendor, workload, cet (u32 each),
# iterations, inject_cycles (u64), msr_index, save_method_max, cetu, xss_set, xss_value, reserved[3]
# (u32). tests check it against gcc.
PARAMS_FORMAT = "<6I2QI7I"
PARAMS_BYTES = struct.calcsize(PARAMS_FORMAT)


class ImageError(RuntimeError):
    """The floppy image could not be built; the message says why."""


def params_bytes(
    workload: int,
    cet: int,
    iterations: int,
    *,
    vendor: int | None = None,
    inject_cycles: int = 0,
    msr_index: int = 0,
    cetu: int = 0,
    xss: int | None = None,
) -> bytes:
    """struct guest_params for a bochs run (platform = PLATFORM_BOCHS, vendor Intel by default)."""
    a = abi()
    return struct.pack(
        PARAMS_FORMAT,
        a["GUEST_PARAMS_MAGIC"],
        a["GUEST_ABI_VERSION"],
        a["PLATFORM_BOCHS"],
        a["VENDOR_INTEL"] if vendor is None else vendor,
        workload,
        cet,
        iterations,
        inject_cycles,
        msr_index,
        0,  # save_method_max: no cap
        cetu,
        int(xss is not None),
        xss or 0,
        *([0] * 3),
    )


def floppy_image(guest: bytes, params: bytes) -> bytes:
    """The whole 1.44 MB floppy: patched boot sector, then the guest image from sector 1."""
    if not guest:
        raise ImageError("guest image is empty")
    limit = min(MAX_GUEST_BYTES, abi()["GUEST_IMAGE_MAX_BYTES"])
    if len(guest) > limit:
        raise ImageError(f"guest image is {len(guest)} bytes; the bochs loader takes at most {limit}")
    if len(params) != PARAMS_BYTES:
        raise ImageError(f"guest_params must be {PARAMS_BYTES} bytes, got {len(params)}")
    boot = boot_sector()
    sector0 = bytearray(boot.code)
    struct.pack_into("<H", sector0, boot.offsets["boot_guest_sectors"], -(-len(guest) // SECTOR))
    struct.pack_into("<I", sector0, boot.offsets["boot_guest_bytes"], len(guest))
    sector0[boot.offsets["boot_params"] : boot.offsets["boot_params"] + PARAMS_BYTES] = params
    image = bytearray(FLOPPY_BYTES)
    image[:SECTOR] = sector0
    image[SECTOR : SECTOR + len(guest)] = guest
    return bytes(image)
