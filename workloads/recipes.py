"""How each native program is built: data, read by workloads/build.py.

Paths are relative to the workloads/ folder. `headers` lists every header a program includes, so a
change to one rebuilds it (the cache key hashes exactly these files).
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMMON_CFLAGS = ("-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class Recipe:
    name: str
    sources: tuple[str, ...]
    headers: tuple[str, ...] = ()
    cflags: tuple[str, ...] = COMMON_CFLAGS
    ldflags: tuple[str, ...] = ()
    linker_script: str | None = None
    #: headers written at build time (workloads/build.py GENERATED), included as "<name>"
    generated: tuple[str, ...] = ()
    flat_binary: bool = False  # also objcopy the ELF to a flat image (guests)
    notes: str = field(default="", compare=False)


_ARCH = ("native/cet_arch.h",)
_GUEST_HEADERS = ("guest/abi.h", "guest/cet_setup.h", "guest/guest.h", *_ARCH)
_GUEST_LIST = ("guest/workload_list.h",)  # generated from workloads/table.py

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "cetbench-probe",
            sources=("native/probe.c",),
            headers=_ARCH,
            notes="raw CPUID leaves and KVM_GET_SUPPORTED_CPUID as JSON for `cetbench probe`",
        ),
        *(
            Recipe(
                f"host_{name}",
                sources=(f"host/host_{name}.c", "host/common.c"),
                headers=(*_ARCH, "host/common.h"),
                cflags=(*COMMON_CFLAGS, "-fcf-protection=full"),
            )
            for name in ("syscall", "ctxswitch", "signal")
        ),
        *(
            Recipe(
                f"linux_vmexit_{op}",
                sources=("linux/linux_vmexit.c", "host/common.c"),
                headers=(*_ARCH, "host/common.h"),
                cflags=(*COMMON_CFLAGS, "-fcf-protection=full", f"-DCB_OP_{op.upper()}"),
                notes="a VM exit from a Linux guest's user space (the linux.vmexit.* workloads, run under QEMU)",
            )
            for op in ("cpuid", "pio")
        ),
        Recipe(
            "cetbench-guest",
            sources=tuple(f"guest/{f}" for f in (
                "entry.S", "main.c", "desc.c", "cet.c", "kernel.c", "workloads.c", "platform.c", "lib.c")),
            headers=_GUEST_HEADERS,
            generated=_GUEST_LIST,
            # Freestanding ring-0 code: no red zone (exceptions), no SSE in the kernel (the context switch
            # owns that state), ENDBR64 at every function (IBT), no jump tables (they would need NOTRACK),
            # no loop-to-memset rewriting inside memset itself.
            cflags=(*COMMON_CFLAGS, "-ffreestanding", "-fno-pic", "-fno-pie", "-mno-red-zone",
                    "-mgeneral-regs-only", "-mcmodel=small", "-fcf-protection=full", "-fno-jump-tables",
                    "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
                    "-fno-tree-loop-distribute-patterns"),
            ldflags=("-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-z,noexecstack"),
            linker_script="guest/guest.ld",
            flat_binary=True,
            notes="the freestanding guest image both the micro-VMM and the bochs loader boot (guest/abi.h)",
        ),
        Recipe(
            "cetbench-vmm",
            sources=tuple(f"vmm/{f}" for f in (
                "vmm_main.c", "vmm_kvm.c", "vmm_cpuid.c", "vmm_report.c", "vmm_explain.c", "vmm_json.c")),
            headers=("vmm/vmm.h", *_GUEST_HEADERS),
            generated=_GUEST_LIST,
            notes="the micro-VMM on /dev/kvm that runs cetbench-guest",
        ),
        Recipe("peer_loops", sources=("native/peer_loops.c", "host/common.c"),
               headers=(*_ARCH, "host/common.h"), cflags=(*COMMON_CFLAGS, "-fcf-protection=full"),
               notes="benchmark-only: perf bench's syscall and pipe loops and ours, one difference at a time "
                     "(benchmarks/peer_compare.py)"),
        Recipe("test_misbehave", sources=("native/test_misbehave.c",), headers=_ARCH,
               notes="test-only: a workload that crashes, hangs or fails on request"),
        Recipe("test_shstk_violation", sources=("native/test_shstk_violation.c", "host/common.c"),
               headers=(*_ARCH, "host/common.h"), cflags=(*COMMON_CFLAGS, "-fcf-protection=full"),
               notes="test-only: a shadow-stack violation must be a SIGSEGV with si_code SEGV_CPERR"),
        Recipe(
            "cetbench-lab-agent",
            sources=tuple(f"lab/{f}" for f in ("agent_main.c", "agent_job.c", "agent_out.c", "agent_perf.c",
                                                "agent_kmod.c")),
            headers=("lab/agent.h",),
            notes="runs inside the emulated CET lab (bench/lab): jobs, tracepoint counters, serial lines",
        ),
    )
}
