"""CPU facts from raw CPUID leaves (read by the native cetbench-probe) and /proc/cpuinfo."""

from __future__ import annotations

import os
import struct
from typing import Any

from cetbench import arch
from cetbench.facts import CpuFacts
from cetbench.hostview import HostView

Leaves = dict[tuple[int, int], dict[str, int]]


def leaves_from_native(entries: list[dict[str, int]]) -> Leaves:
    return {(e["leaf"], e["subleaf"]): e for e in entries}


def bit(leaves: Leaves, flag: arch.CpuidBit) -> bool | None:
    """The bit's value, or None when the leaf was not read (the CPU's maximum leaf is lower)."""
    entry = leaves.get((flag.leaf, flag.subleaf))
    return None if entry is None else flag.test(entry[flag.register])


def _vendor(leaves: Leaves) -> str | None:
    e = leaves.get((0, 0))
    if e is None:
        return None
    return struct.pack("<III", e["ebx"], e["edx"], e["ecx"]).decode("ascii", "replace")


def _brand(leaves: Leaves) -> str | None:
    parts = [leaves.get((leaf, 0)) for leaf in (0x80000002, 0x80000003, 0x80000004)]
    if any(p is None for p in parts):
        return None
    raw = b"".join(struct.pack("<IIII", p["eax"], p["ebx"], p["ecx"], p["edx"]) for p in parts if p)
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").strip() or None


def _signature(leaves: Leaves) -> tuple[int, int, int] | None:
    """Display family/model/stepping as the SDM defines them from CPUID.01H:EAX."""
    e = leaves.get((1, 0))
    if e is None:
        return None
    eax = e["eax"]
    base_family, base_model, stepping = (eax >> 8) & 0xF, (eax >> 4) & 0xF, eax & 0xF
    family = base_family + ((eax >> 20) & 0xFF if base_family == 0xF else 0)
    model = base_model | (((eax >> 16) & 0xF) << 4 if base_family in (0x6, 0xF) else 0)
    return family, model, stepping


def cpuinfo_fields(view: HostView) -> tuple[dict[str, str], str | None]:
    """Fields of the first processor block of /proc/cpuinfo."""
    text, err = view.read_text("proc/cpuinfo")
    if text is None:
        return {}, err
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields, None


def read_msr(view: HostView, index: int, cpu: int = 0) -> tuple[int | None, str | None]:
    """An MSR through the msr driver (/dev/cpu/N/msr: pread at the MSR's index), or why not."""
    path = view.path(f"dev/cpu/{cpu}/msr")
    try:
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), 8, index)
    except OSError as exc:
        return None, f"/dev/cpu/{cpu}/msr: {exc.strerror or exc} (needs root and the msr module)"
    if len(data) != 8:
        return None, f"/dev/cpu/{cpu}/msr: short read at 0x{index:x}"
    return int.from_bytes(data, "little"), None


def probe_cpu(native: dict[str, Any] | None, native_error: str | None, view: HostView) -> CpuFacts:
    unknown: dict[str, str] = {}
    info, info_err = cpuinfo_fields(view)
    leaves = leaves_from_native(native.get("cpuid", [])) if native else {}
    if not leaves:
        why = native_error or "the native CPUID reader returned nothing"
        for key in ("vendor", "signature", "shstk", "ibt", "xsaves", "xss_cet_u", "xss_cet_s"):
            unknown[key] = why
    sig = _signature(leaves)

    def raw(flag: arch.CpuidBit) -> str | None:
        e = leaves.get((flag.leaf, flag.subleaf))
        return None if e is None else f"0x{e[flag.register]:08x}"

    microcode = info.get("microcode")
    if microcode is None:
        unknown["microcode"] = info_err or "/proc/cpuinfo has no microcode field"
    xss, xss_err = read_msr(view, arch.MSR_IA32_XSS)
    if xss is None:
        unknown["xss"] = xss_err or "unreadable"
    return CpuFacts(
        vendor=_vendor(leaves) or info.get("vendor_id"),
        family=sig[0] if sig else None,
        model=sig[1] if sig else None,
        stepping=sig[2] if sig else None,
        model_name=_brand(leaves) or info.get("model name"),
        microcode=microcode,
        shstk=bit(leaves, arch.CPUID_SHSTK),
        ibt=bit(leaves, arch.CPUID_IBT),
        xsaves=bit(leaves, arch.CPUID_XSAVES),
        xss_cet_u=bit(leaves, arch.CPUID_XSS_CET_U),
        xss_cet_s=bit(leaves, arch.CPUID_XSS_CET_S),
        raw={
            "cpuid_7_0_ecx": raw(arch.CPUID_SHSTK),
            "cpuid_7_0_edx": raw(arch.CPUID_IBT),
            "cpuid_d_1_eax": raw(arch.CPUID_XSAVES),
            "cpuid_d_1_ecx": raw(arch.CPUID_XSS_CET_U),
        },
        unknown=unknown,
        xss=None if xss is None else f"0x{xss:x}",
    )
