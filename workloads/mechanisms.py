"""The CET mechanisms the suite prices, one entry each: what is paid, when, what toggles it, the
variant axis that isolates it and the event that counts how often it is paid per op.

The map with its kernel-source citations is docs/mechanisms.md; this table is its machine-readable
half, read by `cetbench explain` (which mechanisms a variant pays) and by the cost model in
analysis/costmodel.py (the per-op count of each mechanism in each variant). Standard library only.

Counts are perf event specs: `subsystem:event`, optionally `subsystem:event if FILTER` (a
tracepoint filter; the perf pass and the lab count such a spec apart from the plain event).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cetbench.workloads.variants import VariantName

# x86_fpu events carry the header of the fpstate just activated (arch/x86/include/asm/trace/fpu.h):
# xcomp_bv has CET_KERNEL (0x1000) only in a guest fpstate; xfeatures has CET_USER (0x800) when
# that component was live when the state was saved.
GUEST_CETU_LIVE_LOAD = "x86_fpu:x86_fpu_regs_activated if (xcomp_bv & 0x1000) && (xfeatures & 0x800)"
TASK_CETU_LIVE_SAVE = "x86_fpu:x86_fpu_regs_deactivated if xfeatures & 0x800"
XSS_WRITE = "msr:write_msr if msr == 0xda0"  # MSR_IA32_XSS
PL3_SSP_WRITE = "msr:write_msr if msr == 0x6a7"  # MSR_IA32_PL3_SSP

Counts = Mapping[str, float]  # event spec -> count per op


@dataclass(frozen=True)
class Mechanism:
    id: str
    what: str
    paid: str
    toggle: str
    #: the variant axis whose values turn this mechanism on and off, all else equal; None when no
    #: software can (it is part of every op's baseline and no pair isolates it)
    isolated_by: str | None
    counted_by: tuple[str, ...]  # the event specs the count per op is read from
    #: how many times per op a variant pays it, from its counts; None when a count is missing
    per_op: Callable[[VariantName, Counts], float | None]
    #: the workload kinds where it is paid
    kinds: frozenset[str]
    #: the workloads whose pair along `isolated_by` isolates it
    pair_workloads: tuple[str, ...] = ()


def _count(spec: str) -> Callable[[VariantName, Counts], float | None]:
    return lambda _v, counts: counts.get(spec)


def _vmcs_cet(v: VariantName, counts: Counts) -> float | None:
    exits = counts.get("kvm:kvm_exit")
    if exits is None:
        return None
    return 0.0 if v.value("kvmcet") == "0" else exits


MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism(
        "vmcs_cet", "VMCS load of CET state (S_CET, SSP, interrupt SSP table) on every VM entry and exit",
        "every VM entry and exit of every vCPU whose VMCS has the load-CET-state controls, whatever the "
        "guest's CPUID (v6.18 init_vmcs)",
        "the CPU's VMX controls; kvm_intel cet=0 (Linux >= 7.1)", "kvmcet", ("kvm:kvm_exit",), _vmcs_cet,
        frozenset({"guest"}), ("guest.vmexit.cpuid",)),
    Mechanism(
        "exit_save_cet", "VM exit saves guest S_CET, SSP and interrupt SSP table into the VMCS",
        "every VM exit on a CPU with the CET VMX controls", "nothing software can change", None,
        ("kvm:kvm_exit",), _count("kvm:kvm_exit"), frozenset({"guest"})),
    Mechanism(
        "cetu_fpu_swap", "XSAVES/XRSTORS of a live CET_USER component in KVM's guest FPU swap",
        "at every KVM_RUN entry and return (each exit to the VMM), when the guest's U_CET or PL3_SSP is "
        "non-zero (fpu_swap_kvm_fpstate); not on exits KVM handles in the kernel",
        "the guest's CET_USER state: live vs init (cetu axis)", "cetu", (GUEST_CETU_LIVE_LOAD,),
        _count(GUEST_CETU_LIVE_LOAD), frozenset({"guest"}), ("guest.vmexit.pio",)),
    Mechanism(
        "xss_switch", "IA32_XSS written before entry and after exit when the guest's XSS differs from the host's",
        "every exit of a guest with CR4.OSXSAVE and XSAVES in its CPUID (kvm_load_guest/host_xsave_state)",
        "the guest's IA32_XSS against the host's (a confound, not a CET mechanism: xss axis)", "xss",
        (XSS_WRITE,), _count(XSS_WRITE), frozenset({"guest"}), ("guest.vmexit.cpuid",)),
    Mechanism(
        "cetu_task_switch", "XSAVES/XRSTORS of a live CET_USER component at a host task switch",
        "every context switch away from (and back to) a task with its user shadow stack on (switch_fpu)",
        "the task's shadow stack (shstk axis)", "shstk", (TASK_CETU_LIVE_SAVE,), _count(TASK_CETU_LIVE_SAVE),
        frozenset({"host"}), ("host.ctxswitch",)),
    Mechanism(
        "signal_shstk_token", "shadow-stack token push at signal delivery and check at sigreturn, PL3_SSP writes",
        "every signal to a task with its user shadow stack on (setup/restore_signal_shadow_stack)",
        "the task's shadow stack (shstk axis)", "shstk", (PL3_SSP_WRITE,),
        lambda _v, c: None if c.get(PL3_SSP_WRITE) is None else c[PL3_SSP_WRITE] / 2, frozenset({"host"}),
        ("host.signal",)),
)
BY_ID = {m.id: m for m in MECHANISMS}


def paid_by(variant: VariantName, kind: str) -> list[Mechanism]:
    """The mechanisms a variant of this kind can pay (whether it does, its counts say)."""
    return [m for m in MECHANISMS if kind in m.kinds]


def isolated_by(variant: VariantName, kind: str) -> list[Mechanism]:
    """The mechanisms a variant isolates: it sets the axis that switches them, against the
    configuration that leaves that axis unset (or, for a CET axis, turns it off)."""
    return [m for m in paid_by(variant, kind) if m.isolated_by is not None and variant.workload in m.pair_workloads
            and any(axis == m.isolated_by for axis, _ in variant.config)
            and (m.isolated_by not in ("shstk", "cet") or variant.cet_on)]


def event_specs(kind: str) -> list[str]:
    """The event specs the mechanisms a workload of this kind can pay are counted by (sorted)."""
    return sorted({spec for m in MECHANISMS if kind in m.kinds for spec in m.counted_by})


def split_spec(spec: str) -> tuple[str, str | None]:
    """`event if filter` -> (event, filter); a plain event -> (event, None)."""
    event, sep, condition = spec.partition(" if ")
    return event.strip(), (condition.strip() if sep else None)
