"""The table of workloads: adding one is one entry here plus its native function.

Like kvm-unit-tests' x86/vmexit.c, each entry is a name, the native program that runs it, what
one op is, and what it needs. A *variant* is a workload under one configuration; the variant
grammar (names, CET axes, off partners, selection) is workloads/variants.py.

The guest workloads' native side is part of their row (`GuestCode`): the guest and the micro-VMM
compile a header generated from this table (`guest_header`), so the list exists once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cetbench.workloads import variants
from cetbench.workloads.variants import (
    GUEST,
    HOST,
    LINUX,
    UnknownVariantError,
    VariantName,
    VariantNameError,
    configs_of,
    kind_of,
    parse,
)

#: What a guest op costs in VM exits: (C enumerator, meaning). The order fixes the C values.
GUEST_EXITS = (
    ("WL_EXIT_KERNEL", "one VM exit per op, handled in KVM (KVM_RUN does not return)"),
    ("WL_EXIT_USERSPACE", "one VM exit per op returned to the VMM (KVM_EXIT_IO on PORT_OP)"),
    ("WL_EXIT_NONE", "none: the op stays inside the guest"),
    ("WL_EXIT_FAULT", "none: the op raises an exception the guest reports (PORT_DONE)"),
    ("WL_EXIT_HANG", "none: the guest never finishes"),
    ("WL_EXIT_CET_LOST", "none: the op turns CET off; the guest reports GUEST_STATUS_CET_LOST"),
)


@dataclass(frozen=True)
class GuestCode:
    """A guest workload's native side: one row of the generated guest/workload_list.h."""

    id: int  # GW_* in the guest ABI (params.workload); never reuse a number
    name: str  # cetbench-vmm --workload NAME
    ring: int  # privilege level of the timed loop: 0 guest kernel, 3 a guest task
    exit: str  # a GUEST_EXITS enumerator
    setup: str  # guest function run once before the loop; returns the op to time
    op: str | None  # one op (None when `run` drives the loop itself)
    what: str  # what one op does
    run: str = "timed_loop"  # the timed loop

    @property
    def enumerator(self) -> str:
        return "GW_" + self.name.upper().replace("-", "_")


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # variants.HOST | variants.GUEST | variants.LINUX
    program: str  # recipe name in workloads/recipes.py
    op: str  # what one op is, for tables and reports
    #: perf events with a fixed count per op; the first is the summary's
    key_events: tuple[str, ...]
    description: str
    #: further perf events to count for this workload (globs allowed), beyond the suite's defaults
    events: tuple[str, ...] = ()
    #: capabilities beyond long mode a guest needs ("hypercall"; "ring3" follows from the code)
    extra_needs: frozenset[str] = frozenset()
    guest: GuestCode | None = None
    #: arguments that select this workload in a program that runs several (guests: from `guest`)
    program_args: tuple[str, ...] = ()
    #: optional axes this workload is measured along, with the values it measures (variants.py):
    #: each is an isolating pair with the configuration that leaves the axis unset
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: linux.* only: ops per worker process in the guest, fixed when the guest's job list is written
    #: (no calibration run inside a boot): about 50 ms each under TCG, which makes some ops (a pipe
    #: round trip, a signal) a thousand times dearer than on hardware
    guest_ops: int = 20_000

    def __post_init__(self) -> None:
        if kind_of(self.name) != self.kind:
            raise ValueError(f"workload {self.name!r} must be named {self.kind}.<something>")

    @property
    def args(self) -> tuple[str, ...]:
        return ("--workload", self.guest.name) if self.guest else self.program_args

    @property
    def needs(self) -> frozenset[str]:
        ring3 = frozenset({"ring3"}) if self.guest and self.guest.ring == 3 else frozenset()
        return self.extra_needs | ring3

    @cached_property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(Variant(self, VariantName(self.name, c)) for c in configs_of(self.kind, dict(self.options)))


@dataclass(frozen=True)
class Variant:
    workload: Workload
    id: VariantName = field(compare=True)

    @property
    def name(self) -> str:
        return str(self.id)

    @property
    def config(self) -> str:
        """The configuration in brackets (the store's `cet` column)."""
        return self.id.config_text

    @property
    def cet_on(self) -> bool:
        return bool(self.id.cet_on)

    @property
    def cet_features(self) -> frozenset[str]:
        return self.id.cet_features

    def native_args(self) -> tuple[str, ...]:
        return (*self.workload.args, *self.id.native_args())


_FPU = "x86_fpu:*"  # the XSAVES/XRSTORS path: x86_fpu_regs_(de)activated, before/after_save, ...

# The raw price of the instructions behind `cetu_fpu_swap` (docs/mechanisms.md), measured in the
# guest kernel as kvm-unit-tests does: the XSAVES/XRSTORS of every enabled component, with CET_USER
# live (shstk's natural state), in its init state (cetu=init) or out of IA32_XSS (cetu=off).
_XSAVE_OPTIONS = (("cetu", ("init", "off")),)

# A Linux guest under QEMU runs the host workloads' programs and the linux_vmexit ones; each is
# measured with the guest kernel's IBT on and off wherever the vCPU offers IBT (the kibt axis).
# Their key events are the guest kernel's own tracepoints, counted inside the guest; kvm:* ones are
# counted on the host, around QEMU, where QEMU runs on KVM (bench/linux_guest).
_LINUX_OPTIONS = (("kibt", ("off",)),)

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "host.syscall", HOST, "host_syscall", "getppid syscall",
        ("syscalls:sys_enter_getppid", "raw_syscalls:sys_enter"),
        "raw getppid syscall loop (the op of `perf bench syscall basic`)",
    ),
    Workload(
        "host.ctxswitch", HOST, "host_ctxswitch", "pipe round trip (2 switches)",
        ("context-switches", "x86_fpu:x86_fpu_regs_deactivated"),
        "two processes pass a byte through two pipes (the op of `perf bench sched pipe`)",
        events=(_FPU,),
    ),
    Workload(
        "host.signal", HOST, "host_signal", "signal delivery + sigreturn",
        ("syscalls:sys_enter_rt_sigreturn", "x86_fpu:x86_fpu_regs_activated"),
        "raise a signal to itself, trivial handler, sigreturn",
        events=(_FPU,),
    ),
    Workload(
        "guest.vmexit.cpuid", GUEST, "cetbench-vmm", "CPUID exit (in-kernel)",
        ("kvm:kvm_cpuid", "kvm:kvm_exit", "kvm:kvm_userspace_exit", "kvm:kvm_fpu"),
        "CPUID leaf 0 per op: a VM exit KVM handles in the kernel (VMCS CET state only)",
        guest=GuestCode(1, "cpuid", 0, "WL_EXIT_KERNEL", "setup_vmexit", "op_cpuid", "CPUID leaf 0"),
        # the VMCS CET load per exit, on and off; the guest's XSS matching the host's, or not
        options=(("kvmcet", ("0", "1")), ("xss", ("host",))),
    ),
    Workload(
        "guest.vmexit.hypercall", GUEST, "cetbench-vmm", "hypercall exit (in-kernel)",
        ("kvm:kvm_hypercall", "kvm:kvm_exit", "kvm:kvm_userspace_exit"),
        "VMCALL/VMMCALL KVM_HC_VAPIC_POLL_IRQ per op: answered inside KVM",
        extra_needs=frozenset({"hypercall"}),
        guest=GuestCode(2, "hypercall", 0, "WL_EXIT_KERNEL", "setup_hypercall", "op_vmcall",
                        "VMCALL (Intel) / VMMCALL (AMD) with RAX=KVM_HC_VAPIC_POLL_IRQ"),
    ),
    Workload(
        "guest.vmexit.msr", GUEST, "cetbench-vmm", "RDMSR exit (in-kernel)",
        ("kvm:kvm_msr", "kvm:kvm_exit", "kvm:kvm_userspace_exit"),
        "RDMSR IA32_APICBASE per op: intercepted and emulated inside KVM on Intel and AMD",
        guest=GuestCode(3, "msr", 0, "WL_EXIT_KERNEL", "setup_vmexit", "op_rdmsr",
                        "RDMSR of params.msr_index (default IA32_APICBASE)"),
    ),
    Workload(
        "guest.vmexit.pio", GUEST, "cetbench-vmm", "port-I/O exit to the VMM",
        ("kvm:kvm_userspace_exit", "kvm:kvm_pio", "kvm:kvm_fpu", "kvm:kvm_exit"),
        "OUT to a port the micro-VMM serves: every op returns from KVM_RUN (guest FPU put/load)",
        events=(_FPU,),
        guest=GuestCode(4, "pio", 0, "WL_EXIT_USERSPACE", "setup_vmexit", "op_out", "OUT to PORT_OP"),
        options=(("cetu", ("init",)),),  # CET_USER in KVM's FPU swap: live (shstk's natural state) vs init
    ),
    Workload(
        "guest.syscall", GUEST, "cetbench-vmm", "guest SYSCALL/SYSRET",
        ("kvm:kvm_exit",),
        "ring 3 SYSCALL -> guest kernel entry -> SYSRET inside the guest, no VM exit",
        guest=GuestCode(5, "syscall", 3, "WL_EXIT_NONE", "setup_plain", "op_syscall",
                        "ring 3 SYSCALL -> guest kernel entry (LSTAR) -> SYSRET"),
    ),
    Workload(
        "guest.ctxswitch", GUEST, "cetbench-vmm", "guest task switch",
        ("kvm:kvm_exit",),
        "the guest kernel switches between two ring-3 tasks, saving their state (CET_U with shstk)",
        guest=GuestCode(6, "ctxswitch", 3, "WL_EXIT_NONE", "setup_ctxswitch", None,
                        "task SYSCALL yield -> save GPRs + state area (+ CET_U) -> restore the other task -> SYSRET",
                        run="ctx_loop"),
    ),
    Workload(
        "guest.xsave.xsaves", GUEST, "cetbench-vmm", "XSAVES of the enabled state (CPL0)", ("kvm:kvm_exit",),
        "XSAVES of XCR0 | IA32_XSS into a 64-byte aligned area per op, inside the guest (no VM exit)",
        extra_needs=frozenset({"xsaves"}), options=_XSAVE_OPTIONS,
        guest=GuestCode(7, "xsaves", 0, "WL_EXIT_NONE", "setup_xsave", "op_xsaves",
                        "XSAVES of every enabled component (XCR0 | IA32_XSS)"),
    ),
    Workload(
        "guest.xsave.xrstors", GUEST, "cetbench-vmm", "XRSTORS of the enabled state (CPL0)", ("kvm:kvm_exit",),
        "XRSTORS of XCR0 | IA32_XSS from an area XSAVES filled before the loop, per op, inside the guest",
        extra_needs=frozenset({"xsaves"}), options=_XSAVE_OPTIONS,
        guest=GuestCode(8, "xrstors", 0, "WL_EXIT_NONE", "setup_xsave", "op_xrstors",
                        "XRSTORS of every enabled component from an area saved before the loop"),
    ),
    Workload(
        "linux.syscall", LINUX, "host_syscall", "getppid syscall in the guest",
        ("raw_syscalls:sys_enter", "syscalls:sys_enter_getppid"),
        "host.syscall's loop in a Linux guest: the guest kernel's own (IBT-checked) syscall entry",
        options=_LINUX_OPTIONS,
    ),
    Workload(
        "linux.ctxswitch", LINUX, "host_ctxswitch", "pipe round trip in the guest (2 switches)",
        ("sched:sched_switch", "x86_fpu:x86_fpu_regs_deactivated"),
        "host.ctxswitch's two processes in a Linux guest: the guest kernel saves each task's state (CET_USER "
        "with shstk) on every switch", events=(_FPU,), options=_LINUX_OPTIONS, guest_ops=100,
    ),
    Workload(
        "linux.signal", LINUX, "host_signal", "signal delivery + sigreturn in the guest",
        ("syscalls:sys_enter_rt_sigreturn", "x86_fpu:x86_fpu_regs_activated"),
        "host.signal in a Linux guest: the guest kernel's signal frame (a shadow-stack token with shstk)",
        events=(_FPU,), options=_LINUX_OPTIONS, guest_ops=250,
    ),
    Workload(
        "linux.vmexit.cpuid", LINUX, "linux_vmexit_cpuid", "CPUID exit from guest user space",
        ("kvm:kvm_exit", "kvm:kvm_userspace_exit"),
        "CPUID leaf 0 in a guest task: a VM exit KVM answers in the kernel (none under TCG)",
        options=_LINUX_OPTIONS, guest_ops=500_000,
    ),
    Workload(
        "linux.vmexit.pio", LINUX, "linux_vmexit_pio", "port-I/O exit to QEMU from guest user space",
        ("kvm:kvm_userspace_exit", "kvm:kvm_pio", "kvm:kvm_exit", "kvm:kvm_fpu"),
        "OUT to QEMU's port 0x80 in a guest task: every op returns from KVM_RUN to QEMU (none under TCG)",
        options=_LINUX_OPTIONS, guest_ops=200_000,
    ),
)

#: Guest code that proves the suite's own checks (fault reports, #CP, the after-loop CET check);
#: never a variant.
TEST_GUEST_CODE: tuple[GuestCode, ...] = (
    GuestCode(100, "test-ud2", 0, "WL_EXIT_FAULT", "setup_plain", "op_ud2", "UD2: #UD (vector 6) at ud2_insn"),
    GuestCode(101, "test-gp", 0, "WL_EXIT_FAULT", "setup_plain", "op_gp",
              "load from a non-canonical address: #GP(0) (vector 13) at gp_insn"),
    GuestCode(102, "test-hang", 0, "WL_EXIT_HANG", "setup_plain", "op_hang", "endless loop"),
    GuestCode(103, "test-cp-ret", 3, "WL_EXIT_FAULT", "setup_plain", "op_cp_ret",
              "ring 3 RET to an overwritten return address: #CP(1) at cp_ret_insn with SHSTK"),
    GuestCode(104, "test-cp-endbr", 0, "WL_EXIT_FAULT", "setup_plain", "op_cp_endbr",
              "ring 0 JMP *%rax to a target without ENDBR64: #CP(3) at cp_endbr_target with IBT"),
    GuestCode(105, "test-cet-lost", 3, "WL_EXIT_CET_LOST", "setup_plain", "op_cet_lost",
              "ring 3 SYSCALL; the kernel clears U_CET.SH_STK_EN (shstk), S_CET.ENDBR_EN (ibt): CET_LOST "
              "after the loop"),
)


def guest_codes() -> tuple[GuestCode, ...]:
    return (*(w.guest for w in WORKLOADS if w.guest), *TEST_GUEST_CODE)


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def guest_header() -> str:
    """guest/workload_list.h: the guest workload ids and the X-macro row of each (generated from
    this table at build time; workloads/build.py)."""
    codes = guest_codes()
    lines = [
        "/* Generated from workloads/table.py by workloads/build.py: edit the table, not this file.",
        " * X(id, name, ring, exit, setup, op, run, what one op does) */",
        "#ifndef CETBENCH_WORKLOAD_LIST_H",
        "#define CETBENCH_WORKLOAD_LIST_H",
        "",
        "enum workload_exit {",
        *(f"\t{name} = {i}," for i, (name, _) in enumerate(GUEST_EXITS, start=1)),
        "};",
        "#define WORKLOAD_EXIT_WHAT { \\",
        *(f"\t[{name}] = {_c_string(what)}, \\" for name, what in GUEST_EXITS),
        "}",
        "",
        "enum guest_workload {",
        *(f"\t{c.enumerator} = {c.id}," for c in codes),
        "};",
        "",
        "#define GUEST_WORKLOADS(X) \\",
        *(f"\tX({c.enumerator}, {_c_string(c.name)}, {c.ring}, {c.exit}, {c.setup}, {c.op or 0}, {c.run}, "
          f"{_c_string(c.what)}) \\" for c in codes),
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def all_variants() -> list[Variant]:
    return [v for w in WORKLOADS for v in w.variants]


def select(patterns: list[str] | None) -> list[Variant]:
    """The variants matching any glob (all when none); a pattern matching nothing raises
    UnknownVariantError naming the known variants. A variant that sets an opt-in axis (one that
    changes the host, such as reloading kvm_intel) is chosen only by a pattern naming that axis.
    A pattern that is a whole variant name along a numeric axis (`inject=300`) names that variant."""
    every = all_variants() + [v for v in (_exact(p) for p in patterns or ()) if v is not None]
    names = list(dict.fromkeys(v.name for v in every))
    chosen = set(variants.select(names, patterns))
    seen: set[str] = set()
    out = []
    for v in every:
        if v.name in chosen and v.name not in seen and all(
                any(variants.names_axis(p, axis) for p in patterns or ()) for axis in v.id.opt_in_axes):
            seen.add(v.name)
            out.append(v)
    return out


def _exact(pattern: str) -> Variant | None:
    """The variant a pattern without wildcards names, if it is one of a known workload whose
    configuration sets only axes of its kind (e.g. a numeric axis the table cannot list)."""
    if "*" in pattern or "?" in pattern:
        return None
    try:
        wanted = parse(pattern)
    except VariantNameError:
        return None
    workload = next((w for w in WORKLOADS if w.name == wanted.workload), None)
    if workload is None or {a for a, _ in wanted.config} - {a.name for a in variants.axes_of(workload.kind)}:
        return None
    base = [v for v in workload.variants if all(x in wanted.config for x in v.id.config)]
    return Variant(workload, wanted) if base else None


def by_name(name: str) -> Variant:
    try:
        wanted = parse(name)
    except VariantNameError as exc:
        wanted = None
        why = str(exc)
    for v in all_variants():
        if v.id == wanted:
            return v
    exact = _exact(name) if wanted is not None else None
    if exact is not None:
        return exact
    known = ", ".join(v.name for v in all_variants())
    raise UnknownVariantError(f"{why if wanted is None else f'unknown variant {name!r}'}; known: {known}")
