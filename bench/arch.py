"""Architectural and kernel-ABI constants the Python side uses, each with its source.

The C twin is workloads/native/cet_arch.h; tests/test_arch_consistency.py keeps the two equal.
"""

from __future__ import annotations

from typing import NamedTuple


class CpuidBit(NamedTuple):
    leaf: int
    subleaf: int
    register: str  # "eax" | "ebx" | "ecx" | "edx"
    bit: int

    def describe(self) -> str:
        return f"CPUID.{self.leaf:X}.{self.subleaf}:{self.register.upper()}[{self.bit}]"

    def test(self, value: int) -> bool:
        return bool((value >> self.bit) & 1)


# Intel SDM vol. 2A, CPUID, leaf 07H (structured extended features) and leaf 0DH sub-leaf 1.
CPUID_SHSTK = CpuidBit(0x7, 0, "ecx", 7)  # CET_SS
CPUID_IBT = CpuidBit(0x7, 0, "edx", 20)  # CET_IBT
CPUID_XSAVES = CpuidBit(0xD, 1, "eax", 3)  # XSAVES/XRSTORS and IA32_XSS
CPUID_XSS_CET_U = CpuidBit(0xD, 1, "ecx", 11)  # IA32_XSS may enable CET_U state
CPUID_XSS_CET_S = CpuidBit(0xD, 1, "ecx", 12)  # IA32_XSS may enable CET_S state
CPUID_XSAVE = CpuidBit(0x1, 0, "ecx", 26)  # XSAVE/XRSTOR, XCR0

# Control registers: SDM vol. 3A, 2.5 "Control Registers".
CR0_WP = 1 << 16  # CR4.CET may be set only while CR0.WP = 1
CR4_CET = 1 << 23  # Linux X86_CR4_CET_BIT

# MSRs: SDM vol. 4; Linux arch/x86/include/asm/msr-index.h.
MSR_IA32_U_CET = 0x6A0
MSR_IA32_S_CET = 0x6A2
MSR_IA32_PL0_SSP = 0x6A4
MSR_IA32_PL1_SSP = 0x6A5
MSR_IA32_PL2_SSP = 0x6A6
MSR_IA32_PL3_SSP = 0x6A7
MSR_IA32_INT_SSP_TAB = 0x6A8
MSR_IA32_XSS = 0xDA0

# U_CET/S_CET bits: SDM vol. 3A CET chapter; Linux msr-index.h CET_*.
CET_SHSTK_EN = 1 << 0
CET_WRSS_EN = 1 << 1
CET_ENDBR_EN = 1 << 2
CET_LEG_IW_EN = 1 << 3
CET_NO_TRACK_EN = 1 << 4
CET_SUPPRESS_DIS = 1 << 5
CET_SUPPRESS = 1 << 10
CET_WAIT_ENDBR = 1 << 11

# XSAVE state components: SDM vol. 1, 13.1; Linux asm/fpu/types.h XFEATURE_CET_USER/KERNEL.
XFEATURE_CET_USER = 11
XFEATURE_CET_KERNEL = 12
XSS_CET_U = 1 << XFEATURE_CET_USER
XSS_CET_S = 1 << XFEATURE_CET_KERNEL

# VMCS field encodings: SDM vol. 3D appendix B; Linux arch/x86/include/asm/vmx.h.
VMCS_GUEST_S_CET = 0x6828
VMCS_GUEST_SSP = 0x682A
VMCS_GUEST_INTR_SSP_TABLE = 0x682C
VMCS_HOST_S_CET = 0x6C18
VMCS_HOST_SSP = 0x6C1A
VMCS_HOST_INTR_SSP_TABLE = 0x6C1C
VM_EXIT_LOAD_CET_STATE = 1 << 28
VM_ENTRY_LOAD_CET_STATE = 1 << 20

# Exceptions: SDM vol. 3A 6.15 and the CET chapter (#CP error codes).
VECTOR_UD = 6
VECTOR_GP = 13
VECTOR_CP = 21
CP_ERR_NEAR_RET = 1
CP_ERR_FAR_RET_IRET = 2
CP_ERR_ENDBRANCH = 3
CP_ERR_RSTORSSP = 4
CP_ERR_SETSSBSY = 5

# Linux user shadow stack ABI: arch/x86/include/uapi/asm/prctl.h, Documentation/arch/x86/shstk.rst.
NR_ARCH_PRCTL_X86_64 = 158
ARCH_SHSTK_ENABLE = 0x5001
ARCH_SHSTK_DISABLE = 0x5002
ARCH_SHSTK_LOCK = 0x5003
ARCH_SHSTK_UNLOCK = 0x5004
ARCH_SHSTK_STATUS = 0x5005
ARCH_SHSTK_SHSTK = 1 << 0
ARCH_SHSTK_WRSS = 1 << 1
# si_code of the SIGSEGV a user-mode #CP raises: include/uapi/asm-generic/siginfo.h SEGV_CPERR,
# sent by arch/x86/kernel/cet.c do_user_cp_fault.
SEGV_CPERR = 10

# Kernel configuration and boot options that decide CET support (Documentation/arch/x86/shstk.rst,
# Documentation/admin-guide/kernel-parameters.txt).
CONFIG_USER_SHSTK = "X86_USER_SHADOW_STACK"
CONFIG_KERNEL_IBT = "X86_KERNEL_IBT"
CPUINFO_FLAG_USER_SHSTK = "user_shstk"
CPUINFO_FLAG_IBT = "ibt"
CPUINFO_FLAG_SHSTK = "shstk"

# Exit statuses shared by every native workload (cet_arch.h EXIT_*).
EXIT_MEASURED = 0
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 3
EXIT_FAILED = 4
