"""Which variants can run on a probed host, and why not, in the words of whoever refuses.

`plan(facts, variants)` is decided once per run; the runner, `explain`, the pytest-benchmark front
door, the probe's output and the run manifest all read its `Decision`s. Pure functions of the host
facts, so the same rules are tested on fixture hosts and applied here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cetbench import arch
from cetbench.facts import CpuFacts, HostFacts, KernelFacts, KvmFacts, QemuFacts
from cetbench.probe_kvm import missing_xss_components
from cetbench.probe_qemu import qemu_accel
from cetbench.workloads.table import Variant
from cetbench.workloads.variants import GUEST, HOST, LINUX

Refusal = tuple[str, str]  # (who refused: cpu | kernel | kvm | host | workload, their words)


@dataclass(frozen=True)
class Decision:
    variant: Variant
    runnable: bool
    refusals: tuple[Refusal, ...] = ()
    #: It runs where time is not hardware time (a guest on a KVM without VMX/SVM): every figure
    #: it gives is labelled emulated.
    emulated: bool = False

    @property
    def reason(self) -> str | None:
        return "; ".join(why for _, why in self.refusals) or None

    @property
    def refused_by(self) -> str | None:
        return self.refusals[0][0] if self.refusals else None

    def to_json(self) -> dict[str, Any]:
        """A row of the probe document's `variants[]`."""
        v = self.variant
        return {"name": v.name, "workload": v.workload.name, "kind": v.workload.kind, "cet": v.config,
                "runnable": self.runnable, "reason": self.reason, "refused_by": self.refused_by}


@dataclass(frozen=True)
class Plan:
    decisions: tuple[Decision, ...]

    def of(self, variant: Variant) -> Decision:
        for d in self.decisions:
            if d.variant == variant:
                return d
        raise KeyError(variant.name)

    def to_json(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self.decisions]


def host_shstk_refusals(cpu: CpuFacts, kernel: KernelFacts) -> list[Refusal]:
    refusals: list[Refusal] = []
    if cpu.shstk is False:
        refusals.append(("cpu", f"CPU lacks SHSTK ({arch.CPUID_SHSTK.describe()}=0)"))
    if kernel.config.get(arch.CONFIG_USER_SHSTK) == "n":
        refusals.append(("kernel", f"kernel built without CONFIG_{arch.CONFIG_USER_SHSTK}"))
    if kernel.cmdline.get("nousershstk"):
        refusals.append(("kernel", "kernel booted with nousershstk"))
    if not refusals and kernel.cpuinfo_flags.get(arch.CPUINFO_FLAG_USER_SHSTK) is False:
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


def guest_refusals(kvm: KvmFacts, cpu: CpuFacts, features: frozenset[str],
                   needs: frozenset[str] = frozenset()) -> list[Refusal]:
    if not kvm.openable:
        return [("kernel", f"KVM unusable: {kvm.error}")]
    refusals: list[Refusal] = []
    if kvm.implementation == "kvm_pvm":
        refusals += [("kvm", PVM_LIMITS[n]) for n in sorted(needs) if n in PVM_LIMITS]
    if "xsaves" in needs and not kvm.supported.xsaves:
        refusals.append(("kvm", f"KVM does not offer XSAVES: KVM_GET_SUPPORTED_CPUID {arch.CPUID_XSAVES.describe()}=0"))
    amd_no_ibt = "ibt" in features and cpu.is_amd
    if amd_no_ibt:
        refusals.append(("cpu", "AMD CPUs implement shadow stack only, no IBT"))
    for feature, flag, offered in (("shstk", arch.CPUID_SHSTK, kvm.offers_shstk),
                                   ("ibt", arch.CPUID_IBT, kvm.offers_ibt)):
        if feature not in features or offered or (feature == "ibt" and amd_no_ibt):
            continue
        reason = f"KVM does not offer {feature.upper()}: KVM_GET_SUPPORTED_CPUID {flag.describe()}=0"
        missing = missing_xss_components(kvm.supported)
        if missing:
            reason += f", supported XSS lacks {' and '.join(missing)}"
        if getattr(cpu, feature) is False:
            reason += f" (host CPU lacks {feature.upper()}: {flag.describe()}=0)"
        refusals.append(("kvm", reason))
    return refusals


KVM_CET_PARAMETER = ("kvm_intel", "cet")  # Linux >= 7.1, vmx.c `enable_cet` (docs/mechanisms.md)


def kvm_knob_refusals(kvm: KvmFacts) -> list[Refusal]:
    """Why the host cannot run a variant that reloads kvm_intel with `cet=` (the kvmcet axis)."""
    module, name = KVM_CET_PARAMETER
    if kvm.implementation != module:
        return [("kvm", f"{kvm.implementation or 'no KVM module'}: the CET knob is {module}'s `{name}` parameter "
                        "(VMX); there is no such parameter here")]
    if name not in kvm.parameters:
        return [("kernel", f"{module} has no `{name}` parameter (/sys/module/{module}/parameters/{name}); it "
                           "exists from Linux 7.1 (commit 2d5d3fc593c9)")]
    return [("host", kvm.reload_refusal)] if kvm.reload_refusal else []


#: The only XSS bits KVM lets a guest set (v6.18.5 arch/x86/kvm/x86.c KVM_SUPPORTED_XSS).
KVM_SUPPORTED_XSS = arch.XSS_CET_U | arch.XSS_CET_S


def xss_match_refusals(cpu: CpuFacts) -> list[Refusal]:
    """Why a guest cannot be given the host's IA32_XSS here (the xss=host axis)."""
    if cpu.xss is None:
        return [("host", f"the host's IA32_XSS is unknown: {cpu.unknown.get('xss', 'not read')}")]
    extra = int(cpu.xss, 16) & ~KVM_SUPPORTED_XSS
    if extra:
        return [("kvm", f"the host's IA32_XSS {cpu.xss} has bits (0x{extra:x}) KVM never lets a guest set "
                        "(KVM_SUPPORTED_XSS is CET_U|CET_S): no guest can match it, every XSAVES guest pays "
                        "the switch")]
    return []


def linux_refusals(qemu: QemuFacts | None, features: frozenset[str]) -> list[Refusal]:
    """Why QEMU cannot run a Linux guest whose vCPU offers these CET features, in QEMU's words (the guest
    kernel and the workload may still refuse at run time, bench/linux_guest.py)."""
    if qemu is None:  # not probed: QEMU decides at run time
        return []
    if qemu.error:
        return [("qemu", qemu.error)]
    said = qemu.refusals.get("+".join(sorted(features))) if features else None
    return [("qemu", f"QEMU ({qemu.accel.upper()}): {said}")] if said else []


def refusals_of(variant: Variant, facts: HostFacts) -> list[Refusal]:
    kind = variant.workload.kind
    if kind == HOST:
        return host_shstk_refusals(facts.cpu, facts.kernel) if "shstk" in variant.cet_features else []
    if kind == GUEST:
        refusals = guest_refusals(facts.kvm, facts.cpu, variant.cet_features, variant.workload.needs)
        if variant.id.value("kvmcet") is not None:
            refusals += kvm_knob_refusals(facts.kvm)
        if variant.id.value("xss") is not None:
            refusals += xss_match_refusals(facts.cpu)
        return refusals
    if kind == LINUX:
        return linux_refusals(facts.qemu, variant.cet_features)
    raise ValueError(f"no rule decides where a {kind!r} workload can run")


def decide(variant: Variant, facts: HostFacts) -> Decision:
    refusals = refusals_of(variant, facts)
    kind = variant.workload.kind
    emulated = (kind == GUEST and facts.kvm.emulated) or (kind == LINUX and qemu_accel(facts.kvm)[0] != "kvm")
    return Decision(variant, not refusals, tuple(refusals), emulated)


def plan(facts: HostFacts, variants: Sequence[Variant]) -> Plan:
    return Plan(tuple(decide(v, facts) for v in variants))
