"""The table of workloads: adding one is one entry here plus its native function.

Like kvm-unit-tests' x86/vmexit.c, each entry is a name, the native program that runs it and the
arguments that select it. A *variant* is a workload under one CET configuration; its name reads
`workload[config]`, e.g. `host.syscall[shstk=on]` or `guest.vmexit.pio[cet=ibt+shstk]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOST_CET_CONFIGS = ("shstk=off", "shstk=on")
GUEST_CET_CONFIGS = ("cet=none", "cet=ibt", "cet=shstk", "cet=ibt+shstk")
CET_OFF = {"host": "shstk=off", "guest": "cet=none"}


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # "host" | "guest"
    program: str  # recipe name in workloads/recipes.py
    args: tuple[str, ...]  # arguments that select this workload in the program
    op: str  # what one op is, for tables and reports
    key_events: tuple[str, ...]  # perf events with a fixed count per op; the first is the summary's
    description: str
    needs: frozenset[str] = frozenset()  # guest capabilities beyond long mode: "ring3", "hypercall"

    @property
    def cet_configs(self) -> tuple[str, ...]:
        return HOST_CET_CONFIGS if self.kind == "host" else GUEST_CET_CONFIGS


@dataclass(frozen=True)
class Variant:
    workload: Workload
    cet: str

    @property
    def name(self) -> str:
        return f"{self.workload.name}[{self.cet}]"

    @property
    def cet_on(self) -> bool:
        return self.cet != CET_OFF[self.workload.kind]

    @property
    def cet_features(self) -> frozenset[str]:
        """The CET features this variant turns on: subsets of {"shstk", "ibt"}."""
        value = self.cet.split("=", 1)[1]
        if value in ("off", "none"):
            return frozenset()
        if self.workload.kind == "host":
            return frozenset({"shstk"})
        return frozenset(value.split("+"))

    def native_args(self) -> tuple[str, ...]:
        value = self.cet.split("=", 1)[1]
        flag = "--shstk" if self.workload.kind == "host" else "--cet"
        return (*self.workload.args, flag, value)


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "host.syscall", "host", "host_syscall", (), "getppid syscall",
        ("syscalls:sys_enter_getppid", "raw_syscalls:sys_enter"),
        "raw getppid syscall loop (the op of `perf bench syscall basic`)",
    ),
    Workload(
        "host.ctxswitch", "host", "host_ctxswitch", (), "pipe round trip (2 switches)",
        ("context-switches", "x86_fpu:x86_fpu_regs_deactivated"),
        "two processes pass a byte through two pipes (the op of `perf bench sched pipe`)",
    ),
    Workload(
        "host.signal", "host", "host_signal", (), "signal delivery + sigreturn",
        ("syscalls:sys_enter_rt_sigreturn", "x86_fpu:x86_fpu_regs_activated"),
        "raise a signal to itself, trivial handler, sigreturn",
    ),
    Workload(
        "guest.vmexit.cpuid", "guest", "cetbench-vmm", ("--workload", "cpuid"), "CPUID exit (in-kernel)",
        ("kvm:kvm_cpuid", "kvm:kvm_exit", "kvm:kvm_userspace_exit", "kvm:kvm_fpu"),
        "CPUID leaf 0 per op: a VM exit KVM handles in the kernel (VMCS CET state only)",
    ),
    Workload(
        "guest.vmexit.hypercall", "guest", "cetbench-vmm", ("--workload", "hypercall"),
        "hypercall exit (in-kernel)", ("kvm:kvm_hypercall", "kvm:kvm_exit", "kvm:kvm_userspace_exit"),
        "VMCALL/VMMCALL KVM_HC_VAPIC_POLL_IRQ per op: answered inside KVM",
        frozenset({"hypercall"}),
    ),
    Workload(
        "guest.vmexit.msr", "guest", "cetbench-vmm", ("--workload", "msr"), "RDMSR exit (in-kernel)",
        ("kvm:kvm_msr", "kvm:kvm_exit", "kvm:kvm_userspace_exit"),
        "RDMSR IA32_APICBASE per op: intercepted and emulated inside KVM on Intel and AMD",
    ),
    Workload(
        "guest.vmexit.pio", "guest", "cetbench-vmm", ("--workload", "pio"), "port-I/O exit to the VMM",
        ("kvm:kvm_userspace_exit", "kvm:kvm_pio", "kvm:kvm_fpu", "kvm:kvm_exit"),
        "OUT to a port the micro-VMM serves: every op returns from KVM_RUN (guest FPU put/load)",
    ),
    Workload(
        "guest.syscall", "guest", "cetbench-vmm", ("--workload", "syscall"), "guest SYSCALL/SYSRET",
        ("kvm:kvm_exit",),
        "ring 3 SYSCALL -> guest kernel entry -> SYSRET inside the guest, no VM exit",
        frozenset({"ring3"}),
    ),
    Workload(
        "guest.ctxswitch", "guest", "cetbench-vmm", ("--workload", "ctxswitch"), "guest task switch",
        ("kvm:kvm_exit",),
        "the guest kernel switches between two ring-3 tasks, saving their state (CET_U with shstk)",
        frozenset({"ring3"}),
    ),
)


def all_variants() -> list[Variant]:
    return [Variant(w, c) for w in WORKLOADS for c in w.cet_configs]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A glob where only * and ? are wildcards: brackets are literal, because variant names carry
    them (fnmatch would read `host.syscall[shstk=on]` as a character class)."""
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"{body}\\Z")


def select(patterns: list[str] | None) -> list[Variant]:
    """Variants whose name matches any glob pattern (all when none given). Raises on a pattern
    that matches nothing, naming the known variants, so a typo never silently runs nothing."""
    variants = all_variants()
    if not patterns:
        return variants
    chosen = []
    for pattern in patterns:
        regex = pattern_regex(pattern)
        hits = [v for v in variants if regex.match(v.name)]
        if not hits:
            known = ", ".join(v.name for v in variants)
            raise LookupError(f"--only {pattern!r} matches no variant; known variants: {known}")
        chosen += [v for v in hits if v not in chosen]
    return [v for v in variants if v in chosen]


def by_name(name: str) -> Variant:
    for v in all_variants():
        if v.name == name:
            return v
    raise LookupError(f"unknown variant {name!r}")
