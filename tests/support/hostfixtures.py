"""Fixture hosts for the probe, written from the documented formats of /proc, /sys and CPUID.

Each host is a directory tree (proc/, sys/, boot/, dev/) plus what the native CPUID/KVM reader would
print for it. The CPUID values follow the SDM's register layouts; vendors' signatures are the real ones.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTEL = struct.unpack("<III", b"GenuineIntel")  # ebx, edx, ecx order below
AMD = struct.unpack("<III", b"AuthenticAMD")


def entry(leaf: int, subleaf: int, eax: int = 0, ebx: int = 0, ecx: int = 0, edx: int = 0) -> dict[str, int]:
    return {"leaf": leaf, "subleaf": subleaf, "eax": eax, "ebx": ebx, "ecx": ecx, "edx": edx}


def vendor_leaf(vendor: tuple[int, int, int], max_leaf: int = 0x1F) -> dict[str, int]:
    ebx, edx, ecx = vendor
    return entry(0, 0, max_leaf, ebx, ecx, edx)


def brand_leaves(name: str) -> list[dict[str, int]]:
    raw = name.encode().ljust(48, b"\0")
    words = struct.unpack("<12I", raw)
    return [entry(0x80000002 + i, 0, *words[4 * i : 4 * i + 4]) for i in range(3)]


@dataclass
class FixtureHost:
    name: str
    vendor: tuple[int, int, int]
    signature: int  # CPUID.01H:EAX
    brand: str
    leaf7_ecx: int
    leaf7_edx: int
    leafd1_eax: int
    leafd1_ecx: int
    kvm_leaf7_ecx: int | None  # None: no /dev/kvm
    kvm_leaf7_edx: int = 0
    kvm_leafd1_ecx: int = 0
    kvm_leafd1_eax: int = 0
    kvm_module: str | None = "kvm_intel"
    cpuinfo_flags: tuple[str, ...] = ()
    cmdline: str = "ro quiet"
    config: dict[str, str] | None = field(default_factory=dict)  # None: no config anywhere
    release: str = "6.18.0"
    expected: dict[str, tuple[bool, str | None]] = field(default_factory=dict)
    kvm_parameters: dict[str, str] = field(default_factory=dict)  # /sys/module/<kvm_module>/parameters
    msr_xss: int | None = None  # IA32_XSS as /dev/cpu/0/msr gives it (None: no msr driver)

    def native(self) -> dict[str, Any]:
        cpuid = [
            vendor_leaf(self.vendor),
            entry(1, 0, self.signature),
            entry(7, 0, 0, 0, self.leaf7_ecx, self.leaf7_edx),
            entry(0xD, 1, self.leafd1_eax, 0, self.leafd1_ecx),
            entry(0x80000000, 0, 0x80000008),
            *brand_leaves(self.brand),
        ]
        if self.kvm_leaf7_ecx is None:
            kvm: dict[str, Any] = {"device": "/dev/kvm", "error": "open /dev/kvm: No such file or directory",
                                   "errno": 2}
        else:
            kvm = {"device": "/dev/kvm", "error": None, "errno": None, "api_version": 12, "supported_cpuid": [
                vendor_leaf(self.vendor),
                entry(7, 0, 0, 0, self.kvm_leaf7_ecx, self.kvm_leaf7_edx),
                entry(0xD, 1, self.kvm_leafd1_eax, 0, self.kvm_leafd1_ecx),
            ]}
        return {"cpuid": cpuid, "kvm": kvm}

    def write_tree(self, root: Path) -> Path:
        def put(rel: str, data: str | bytes) -> None:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if isinstance(data, bytes) else data.encode())

        put("proc/cpuinfo", (
            f"processor\t: 0\nvendor_id\t: {struct.pack('<III', *self.vendor).decode()}\n"
            f"model name\t: {self.brand}\nmicrocode\t: 0x2b000603\n"
            f"flags\t\t: fpu vme de pse tsc msr pae {' '.join(self.cpuinfo_flags)}\n\n"
        ))
        put("proc/cmdline", self.cmdline + "\n")
        put("proc/sys/kernel/osrelease", self.release + "\n")
        put("proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC Tue Nov 18 10:00:00 UTC 2026\n")
        put("proc/sys/kernel/perf_event_paranoid", "2\n")
        put("proc/loadavg", "0.10 0.20 0.30 1/200 1234\n")
        # An ELF note section with one GNU build-id note: namesz=4, descsz=20, type=3.
        put("sys/kernel/notes", struct.pack("<III", 4, 20, 3) + b"GNU\0" + bytes(range(20)))
        put("sys/devices/system/cpu/smt/active", "1\n")
        put("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance\n")
        if self.config is not None:
            text = "".join(
                f"CONFIG_{k}={v}\n" if v != "n" else f"# CONFIG_{k} is not set\n" for k, v in self.config.items()
            )
            put("proc/config.gz", gzip.compress(text.encode()))
        if self.kvm_leaf7_ecx is not None:
            put("dev/kvm", "")
        if self.msr_xss is not None:  # the msr driver reads MSR n at file offset n
            put("dev/cpu/0/msr", bytes(0xDA0) + self.msr_xss.to_bytes(8, "little"))
        if self.kvm_module:
            (root / "sys/module" / self.kvm_module).mkdir(parents=True, exist_ok=True)
            for name, value in self.kvm_parameters.items():
                put(f"sys/module/{self.kvm_module}/parameters/{name}", value + "\n")
        return root


SHSTK_ECX, IBT_EDX, XSAVES_EAX, CET_XSS = 1 << 7, 1 << 20, 0xF, (1 << 11) | (1 << 12)
CET_CONFIG = {"X86_USER_SHADOW_STACK": "y", "X86_KERNEL_IBT": "y"}
NO_CET_CONFIG = {"X86_USER_SHADOW_STACK": "n", "X86_KERNEL_IBT": "n"}


HOSTS = {
    "intel-spr-cet": FixtureHost(
        "intel-spr-cet", INTEL, 0x000806F8, "Intel(R) Xeon(R) Platinum 8480+",
        SHSTK_ECX, IBT_EDX, XSAVES_EAX, CET_XSS | (1 << 8),
        kvm_leaf7_ecx=SHSTK_ECX, kvm_leaf7_edx=IBT_EDX, kvm_leafd1_ecx=CET_XSS, kvm_leafd1_eax=XSAVES_EAX,
        cpuinfo_flags=("shstk", "ibt", "user_shstk"), config=CET_CONFIG, release="7.2.0",
        kvm_parameters={"cet": "Y", "ept": "Y"},  # Linux >= 7.1 has kvm_intel's `cet`
        msr_xss=0x1800,
    ),
    # The same host booted with ibt=off: the kernel clears its IBT feature, so the cpuinfo flag goes
    # and KVM (which builds its capabilities from the kernel's) stops offering IBT; SHSTK stays.
    "intel-spr-ibt-off": FixtureHost(
        "intel-spr-ibt-off", INTEL, 0x000806F8, "Intel(R) Xeon(R) Platinum 8480+",
        SHSTK_ECX, IBT_EDX, XSAVES_EAX, CET_XSS | (1 << 8),
        kvm_leaf7_ecx=SHSTK_ECX, kvm_leaf7_edx=0, kvm_leafd1_ecx=CET_XSS, kvm_leafd1_eax=XSAVES_EAX,
        cpuinfo_flags=("shstk", "user_shstk"), cmdline="ro quiet ibt=off", config=CET_CONFIG,
        msr_xss=0x9800,  # arch LBR (0x8000) beside CET_U|CET_S: no guest can match it
    ),
    "amd-zen4": FixtureHost(
        "amd-zen4", AMD, 0x00A10F11, "AMD EPYC 9654 96-Core Processor",
        SHSTK_ECX, 0, XSAVES_EAX, CET_XSS,
        kvm_leaf7_ecx=SHSTK_ECX, kvm_leafd1_ecx=CET_XSS, kvm_leafd1_eax=XSAVES_EAX, kvm_module="kvm_amd",
        cpuinfo_flags=("shstk", "user_shstk"), config=CET_CONFIG, msr_xss=0x1800,
    ),
    # Like this project's machines: the CPU enumerates SHSTK, but the kernel is built without user
    # shadow stacks and a software KVM offers no CET.
    "no-cet-like-ci": FixtureHost(
        "no-cet-like-ci", AMD, 0x00B00F21, "AMD EPYC",
        SHSTK_ECX, 0, XSAVES_EAX, CET_XSS,
        kvm_leaf7_ecx=0, kvm_leafd1_ecx=0, kvm_leafd1_eax=0, kvm_module="kvm_pvm", config=NO_CET_CONFIG,
    ),
    # An older CPU without CET, no kernel config anywhere and no /dev/kvm.
    "intel-skylake-no-kvm": FixtureHost(
        "intel-skylake-no-kvm", INTEL, 0x00050654, "Intel(R) Xeon(R) Gold 6148",
        0, 0, XSAVES_EAX, 0, kvm_leaf7_ecx=None, kvm_module=None, config=None,
    ),
}
