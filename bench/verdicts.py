"""Which variants can run on a probed host, and why not, in the words of whoever refuses.

Pure functions of the probe document, so the same rules are tested on fixture hosts and applied here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cetbench import arch
from cetbench.workloads.table import Variant


@dataclass(frozen=True)
class Verdict:
    runnable: bool
    reason: str | None = None
    refused_by: str | None = None  # "cpu" | "kernel" | "kvm"

    @classmethod
    def refuse(cls, refusals: list[tuple[str, str]]) -> Verdict:
        if not refusals:
            return cls(True)
        return cls(False, "; ".join(r for _, r in refusals), refusals[0][0])


def host_shstk_refusals(probe: dict[str, Any]) -> list[tuple[str, str]]:
    cpu, kernel = probe["cpu"], probe["kernel"]
    refusals: list[tuple[str, str]] = []
    if cpu.get("shstk") is False:
        refusals.append(("cpu", f"CPU lacks SHSTK ({arch.CPUID_SHSTK.describe()}=0)"))
    config = kernel["config"].get(arch.CONFIG_USER_SHSTK)
    if config == "n":
        refusals.append(("kernel", f"kernel built without CONFIG_{arch.CONFIG_USER_SHSTK}"))
    if kernel["cmdline"].get("nousershstk"):
        refusals.append(("kernel", "kernel booted with nousershstk"))
    flag = kernel["cpuinfo_flags"].get(arch.CPUINFO_FLAG_USER_SHSTK)
    if not refusals and flag is False:
        refusals.append(
            ("kernel", f"kernel does not enable user shadow stacks (no {arch.CPUINFO_FLAG_USER_SHSTK} "
                       "in /proc/cpuinfo flags)")
        )
    return refusals


# What kvm_pvm (a KVM that runs guests without VMX/SVM) cannot give an architectural guest; the VMM
# refuses the same (workloads/vmm), citing Documentation/virt/kvm/x86/pvm-spec.rst.
PVM_LIMITS = {
    "ring3": "kvm_pvm cannot run ring-3 guest code for a non-PVM guest (SYSRET is not allowed in PVM "
             "supervisor mode; Documentation/virt/kvm/x86/pvm-spec.rst)",
    "hypercall": "kvm_pvm does not take VMCALL/VMMCALL as a hypercall (PVM hypercalls are SYSCALL; "
                 "Documentation/virt/kvm/x86/pvm-spec.rst)",
}


def guest_refusals(probe: dict[str, Any], features: frozenset[str], needs: frozenset[str] = frozenset()
                   ) -> list[tuple[str, str]]:
    kvm, cpu = probe["kvm"], probe["cpu"]
    if not kvm["openable"]:
        return [("kernel", f"KVM unusable: {kvm['error']}")]
    refusals: list[tuple[str, str]] = []
    if kvm.get("implementation") == "kvm_pvm":
        refusals += [("kvm", PVM_LIMITS[n]) for n in sorted(needs) if n in PVM_LIMITS]
    if "ibt" in features and (cpu.get("vendor") or "") == "AuthenticAMD":
        refusals.append(("cpu", "AMD CPUs implement shadow stack only, no IBT"))
    for feature, flag in (("shstk", arch.CPUID_SHSTK), ("ibt", arch.CPUID_IBT)):
        if feature not in features or kvm[f"offers_{feature}"]:
            continue
        if any(r.startswith("AMD") for _, r in refusals) and feature == "ibt":
            continue
        sup = kvm["supported"]
        reason = f"KVM does not offer {feature.upper()}: KVM_GET_SUPPORTED_CPUID {flag.describe()}=0"
        missing = [n for n in ("CET_U", "CET_S") if not sup.get(f"xss_{n.lower()}")]
        if missing:
            reason += f", supported XSS lacks {' and '.join(missing)}"
        if cpu.get(feature) is False:
            reason += f" (host CPU lacks {feature.upper()}: {flag.describe()}=0)"
        refusals.append(("kvm", reason))
    return refusals


def judge(variant: Variant, probe: dict[str, Any]) -> Verdict:
    if variant.workload.kind == "host":
        return Verdict.refuse(host_shstk_refusals(probe) if variant.cet_on else [])
    return Verdict.refuse(guest_refusals(probe, variant.cet_features, variant.workload.needs))
