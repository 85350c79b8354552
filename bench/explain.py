"""`cetbench explain VARIANT`: exactly what a variant sets, so a lab engineer can check it against
the SDM and the kernel ABI before trusting a CET-on number.

Guest variants are explained by the micro-VMM itself (`cetbench-vmm --explain`), from the same
setup values the guest uses; host variants by the kernel ABI calls their workload makes.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from cetbench import arch
from cetbench.facts import HostFacts
from cetbench.native import GUEST_IMAGE
from cetbench.plan import decide
from cetbench.probe_qemu import qemu_accel
from cetbench.workloads.build import build, elf_symbols
from cetbench.workloads.mechanisms import isolated_by, paid_by
from cetbench.workloads.table import Variant
from cetbench.workloads.variants import LINUX, VariantName, canonical


def explain_host(variant: Variant) -> dict[str, Any]:
    on = variant.cet_on
    return {
        "variant": variant.name,
        "program": variant.workload.program,
        "op": variant.workload.description,
        "shadow_stack": {
            "enable": (f"inline syscall {arch.NR_ARCH_PRCTL_X86_64} arch_prctl("
                       f"ARCH_SHSTK_ENABLE=0x{arch.ARCH_SHSTK_ENABLE:x}, "
                       f"ARCH_SHSTK_SHSTK=0x{arch.ARCH_SHSTK_SHSTK:x}) in main(), which then never returns "
                       "(exit through exit_group), as tools/testing/selftests/x86/test_shadow_stack.c")
            if on else "not enabled (arch_prctl not called)",
            "confirmed_by": "/proc/self/status `x86_Thread_features:` must list shstk"
                            + (" in both processes" if variant.workload.name == "host.ctxswitch" else "")
                            if on else "/proc/self/status must not list shstk",
            "on_refusal": "exit 3 with the kernel's errno: recorded unsupported, never measured" if on else None,
        },
        "timing": "CLOCK_MONOTONIC_RAW and RDTSCP around the whole loop; nothing else inside it",
    }


def explain_linux(variant: Variant, facts: HostFacts) -> dict[str, Any]:
    """A linux.* variant: its program as on a host, and the QEMU vCPU and guest kernel it runs under."""
    from cetbench.lab.qemu import cpu_option, find_qemu
    from cetbench.linux_guest import boot_config, kernel_args, offered

    config = boot_config(variant)
    accel, why = qemu_accel(facts.kvm)
    qemu = find_qemu()
    known = qemu.cpu_features if not isinstance(qemu, str) else frozenset()
    return {**explain_host(variant), "linux_guest": {
        "boot": ",".join(f"{a}={v}" for a, v in config) + ": one QEMU boot of the lab's kernel and initramfs, "
                "shared by every variant of this configuration (bench/linux_guest.py)",
        "qemu": qemu if isinstance(qemu, str) else qemu.description,
        "accel": accel + (f" ({why})" if why else ""),
        "cpu": cpu_option("host" if accel == "kvm" else "max", offered(config), known),
        "guest_kernel_args": kernel_args(config) or "(the lab's, nothing added)",
        "checked": "the guest's /proc/cpuinfo must show user_shstk when cet-ss is offered and ibt when kernel IBT "
                   "is to be on (neither otherwise), or the configuration's variants are not measured",
    }}


def explain_guest(variant: Variant, vendor: str | None) -> dict[str, Any]:
    vmm, guest = build(variant.workload.program), build(GUEST_IMAGE)
    cmd = [str(vmm.path), "--explain", *variant.native_args(), "--guest", str(guest.path)]
    if vendor:
        cmd += ["--vendor", vendor]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cetbench-vmm --explain failed: {proc.stderr.strip() or proc.stdout.strip()}")
    doc: dict[str, Any] = json.loads(proc.stdout)
    # The VMM knows the layout but not where the linker put syscall_entry; the guest ELF does.
    lstar = doc.get("msrs", {}).get("IA32_LSTAR")
    entry = elf_symbols(guest.elf).get("syscall_entry")
    if isinstance(lstar, dict) and entry is not None:
        lstar.update(value=f"0x{entry:x}", written=True,
                     note="the address of syscall_entry in the guest image, which starts with ENDBR64")
    return {"variant": variant.name, **doc}


def mechanisms(variant: Variant) -> dict[str, Any]:
    """Which CET mechanisms (docs/mechanisms.md) a variant can pay and which it isolates, against
    which variant."""
    kind = variant.workload.kind
    isolates = []
    for m in isolated_by(variant.id, kind):
        pairs = dict(variant.id.config)
        if m.isolated_by in ("shstk", "cet"):
            partner = variant.id.off_partner()
        else:
            pairs.pop(m.isolated_by or "", None)
            partner = VariantName(variant.id.workload, canonical(pairs))
        isolates.append({"mechanism": m.id, "what": m.what, "against": str(partner)})
    return {
        "can_pay": [{"mechanism": m.id, "what": m.what, "when": m.paid, "counted_by": list(m.counted_by)}
                    for m in paid_by(variant.id, kind)],
        "isolates": isolates,
        "see": "docs/mechanisms.md",
    }


def explain(variant: Variant, facts: HostFacts, vendor: str | None = None) -> dict[str, Any]:
    if variant.workload.kind == LINUX:
        doc = explain_linux(variant, facts)
    else:
        doc = explain_host(variant) if variant.workload.guest is None else explain_guest(variant, vendor)
    doc["mechanisms"] = mechanisms(variant)
    decision = decide(variant, facts)
    doc["on_this_host"] = {"runnable": decision.runnable, "reason": decision.reason,
                           "refused_by": decision.refused_by}

    return doc


def as_text(value: Any, indent: int = 0) -> list[str]:
    """A plain, indented rendering of nested dicts and lists (pastes into a mail as is)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines += as_text(item, indent + 1)
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                lines.append(f"{pad}-")
                lines += as_text(item, indent + 1)
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
