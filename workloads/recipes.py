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
    flat_binary: bool = False  # also objcopy the ELF to a flat image (guests)
    notes: str = field(default="", compare=False)


_ARCH = ("native/cet_arch.h",)

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
        Recipe("test_misbehave", sources=("native/test_misbehave.c",), headers=_ARCH,
               notes="test-only: a workload that crashes, hangs or fails on request"),
    )
}
