"""bench/arch.py and workloads/native/cet_arch.h must state the same architectural numbers."""

from __future__ import annotations

import re
from pathlib import Path

from cetbench import arch

HEADER = Path(__file__).resolve().parent.parent / "workloads/native/cet_arch.h"

# C macro name -> Python value it must equal.
PAIRS = {
    "CPUID7_ECX_SHSTK": 1 << arch.CPUID_SHSTK.bit,
    "CPUID7_EDX_IBT": 1 << arch.CPUID_IBT.bit,
    "CPUIDD1_EAX_XSAVES": 1 << arch.CPUID_XSAVES.bit,
    "CPUIDD1_ECX_XSS_CET_U": 1 << arch.CPUID_XSS_CET_U.bit,
    "CPUIDD1_ECX_XSS_CET_S": 1 << arch.CPUID_XSS_CET_S.bit,
    "CR0_WP": arch.CR0_WP,
    "CR4_CET": arch.CR4_CET,
    "MSR_IA32_U_CET": arch.MSR_IA32_U_CET,
    "MSR_IA32_S_CET": arch.MSR_IA32_S_CET,
    "MSR_IA32_PL0_SSP": arch.MSR_IA32_PL0_SSP,
    "MSR_IA32_PL3_SSP": arch.MSR_IA32_PL3_SSP,
    "MSR_IA32_INT_SSP_TAB": arch.MSR_IA32_INT_SSP_TAB,
    "MSR_IA32_XSS": arch.MSR_IA32_XSS,
    "CET_SHSTK_EN": arch.CET_SHSTK_EN,
    "CET_WRSS_EN": arch.CET_WRSS_EN,
    "CET_ENDBR_EN": arch.CET_ENDBR_EN,
    "CET_WAIT_ENDBR": arch.CET_WAIT_ENDBR,
    "XFEATURE_CET_USER": arch.XFEATURE_CET_USER,
    "XFEATURE_CET_KERNEL": arch.XFEATURE_CET_KERNEL,
    "VECTOR_CP": arch.VECTOR_CP,
    "CP_ERR_NEAR_RET": arch.CP_ERR_NEAR_RET,
    "CP_ERR_ENDBRANCH": arch.CP_ERR_ENDBRANCH,
    "ARCH_SHSTK_ENABLE": arch.ARCH_SHSTK_ENABLE,
    "ARCH_SHSTK_STATUS": arch.ARCH_SHSTK_STATUS,
    "ARCH_SHSTK_SHSTK": arch.ARCH_SHSTK_SHSTK,
    "NR_arch_prctl_x86_64": arch.NR_ARCH_PRCTL_X86_64,
    "SEGV_CPERR_CODE": arch.SEGV_CPERR,
    "EXIT_UNSUPPORTED": arch.EXIT_UNSUPPORTED,
    "EXIT_FAILED": arch.EXIT_FAILED,
}


def c_value(expr: str) -> int:
    expr = re.sub(r"(?<=[0-9a-fA-F])u?ll?\b|(?<=[0-9a-fA-F])u\b", "", expr.strip())
    if not re.fullmatch(r"[0-9a-fA-Fx()<< ]+", expr):
        raise ValueError(f"unsupported macro expression {expr!r}")
    return int(eval(expr, {"__builtins__": {}}))  # only digits, parentheses and shifts reach here


def header_macros() -> dict[str, int]:
    macros = {}
    for line in HEADER.read_text().splitlines():
        m = re.match(r"#define\s+(\w+)\s+([^/]+?)\s*(/\*.*)?$", line)
        if m:
            try:
                macros[m.group(1)] = c_value(m.group(2))
            except ValueError:
                continue
    return macros


def test_c_header_matches_python_constants() -> None:
    macros = header_macros()
    missing = sorted(set(PAIRS) - set(macros))
    assert not missing, f"cet_arch.h lacks {missing}"
    wrong = {name: (macros[name], want) for name, want in PAIRS.items() if macros[name] != want}
    assert not wrong, f"C and Python disagree: {wrong}"
