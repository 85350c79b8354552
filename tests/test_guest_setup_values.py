"""The CET setup the guest performs, per configuration, checked against the SDM encodings.

Reads `cetbench-vmm --explain` (values computed by guest/cet_setup.h, the code the guest runs) and
compares with bench/arch.py and the SDM numbers written out here. Needs no /dev/kvm: the explain
output shows the variant as on a host whose KVM offers it.
"""

from __future__ import annotations

import pytest

from cetbench import arch
from tests.support.vmm import build_all, run_vmm

CONFIGS = ["none", "ibt", "shstk", "ibt+shstk"]
# SDM vol. 3A 4.5 (4-level paging entries): the bits a shadow-stack leaf is defined by.
PTE_P, PTE_RW, PTE_US, PTE_A, PTE_D, PTE_PS = 1 << 0, 1 << 1, 1 << 2, 1 << 5, 1 << 6, 1 << 7
EFER_SCE, EFER_LME, EFER_LMA = 1 << 0, 1 << 8, 1 << 10
MSR_STAR, MSR_LSTAR, MSR_FMASK = 0xC0000081, 0xC0000082, 0xC0000084


@pytest.fixture(scope="module")
def built():
    return build_all()


def explain(built, cet, workload="syscall", vendor="intel"):
    r = run_vmm(built, "--explain", "--workload", workload, "--cet", cet, "--vendor", vendor)
    assert r.rc == 0, r.stderr
    return r.doc


def h(s):
    return int(s, 16)


@pytest.mark.parametrize("cet", CONFIGS)
def test_control_registers(built, cet):
    d = explain(built, cet)
    on = cet != "none"
    assert bool(h(d["cr4"]) & arch.CR4_CET) == on  # CR4.CET, bit 23
    assert h(d["cr4"]) >> 23 & 1 == on
    assert h(d["cr0"]) & arch.CR0_WP  # CR4.CET may only be set with CR0.WP = 1
    assert h(d["efer"]) & (EFER_SCE | EFER_LME | EFER_LMA) == EFER_SCE | EFER_LME | EFER_LMA


@pytest.mark.parametrize("cet", CONFIGS)
def test_cet_msrs(built, cet):
    d = explain(built, cet)
    msrs = d["msrs"]
    shstk, ibt = "shstk" in cet, "ibt" in cet
    assert h(msrs["IA32_U_CET"]["index"]) == arch.MSR_IA32_U_CET
    assert h(msrs["IA32_S_CET"]["index"]) == arch.MSR_IA32_S_CET
    assert h(msrs["IA32_PL3_SSP"]["index"]) == arch.MSR_IA32_PL3_SSP
    assert h(msrs["IA32_XSS"]["index"]) == arch.MSR_IA32_XSS
    if cet == "none":
        assert not msrs["IA32_U_CET"]["written"] and not msrs["IA32_S_CET"]["written"]
    else:
        assert h(msrs["IA32_U_CET"]["value"]) == (arch.CET_SHSTK_EN if shstk else 0)
        assert h(msrs["IA32_S_CET"]["value"]) == (arch.CET_ENDBR_EN if ibt else 0)
    assert d["u_cet_bits"] == (["SH_STK_EN"] if shstk else [])
    assert d["s_cet_bits"] == (["ENDBR_EN"] if ibt else [])  # kernel IBT; no supervisor shadow stack
    assert msrs["IA32_PL3_SSP"]["written"] == shstk
    # supervisor shadow stacks are not used: PL0_SSP and the interrupt SSP table stay untouched
    assert h(msrs["IA32_PL0_SSP"]["index"]) == arch.MSR_IA32_PL0_SSP and not msrs["IA32_PL0_SSP"]["written"]
    assert h(msrs["IA32_INTERRUPT_SSP_TABLE_ADDR"]["index"]) == arch.MSR_IA32_INT_SSP_TAB
    assert not msrs["IA32_INTERRUPT_SSP_TABLE_ADDR"]["written"]
    assert d["supervisor_shadow_stack"] is False


@pytest.mark.parametrize("cet", CONFIGS)
def test_xss_and_state_save(built, cet):
    d = explain(built, cet)
    xss = d["msrs"]["IA32_XSS"]
    if cet != "none":  # a host that offers CET offers XSAVES (KVM's rule), so the guest uses it
        assert d["save_method"] == "xsaves" and xss["written"]
    if d["save_method"] == "xsaves":
        want = arch.XSS_CET_U if "shstk" in cet else 0  # CET_U (bit 11) carries U_CET and PL3_SSP
        assert h(xss["value"]) == want
        assert not h(xss["value"]) & arch.XSS_CET_S  # CET_S: supervisor SSPs, unused
        assert d["cet_u_switch"].startswith("xsaves" if "shstk" in cet else "none")


@pytest.mark.parametrize("cet", CONFIGS)
def test_guest_cpuid_bits(built, cet):
    c = explain(built, cet)["guest_cpuid"]
    assert h(c["7.0.ecx"]) >> arch.CPUID_SHSTK.bit & 1 == ("shstk" in cet)
    assert h(c["7.0.edx"]) >> arch.CPUID_IBT.bit & 1 == ("ibt" in cet)
    assert h(c["0xd.1.ecx"]) >> arch.CPUID_XSS_CET_U.bit & 1 == (cet != "none")
    assert h(c["0xd.1.ecx"]) >> arch.CPUID_XSS_CET_S.bit & 1 == (cet != "none")


@pytest.mark.parametrize("cet", ["shstk", "ibt+shstk"])
def test_shadow_stack_layout_and_page_attributes(built, cet):
    d = explain(built, cet, workload="ctxswitch")
    stacks = d["shadow_stacks"]
    assert [s["task"] for s in stacks] == [0, 1]
    region = h(d["page_tables"]["split_region"])
    for s in stacks:
        base, top, pte = h(s["base"]), h(s["top"]), h(s["pte"])
        assert top - base == 4096 and base % 4096 == 0
        assert region <= base < region + (2 << 20)
        # SDM: a shadow-stack page has R/W=0 and Dirty=1 in its leaf entry; CPL3 needs U/S=1
        assert pte & PTE_P and not pte & PTE_RW and pte & PTE_D and pte & PTE_US
        assert pte & ~0xFFF == base
        assert s["pte_bits"] == {"P": 1, "R/W": 0, "U/S": 1, "A": 1, "D": 1}
        # SSP starts at the top (8-byte aligned), empty: SYSRET takes PL3_SSP without a token
        assert h(s["initial_ssp"]) == top and top % 8 == 0
        assert s["token"] is None
        # guard pages either side are not present
        assert h(s["guard_below_pte"]) == 0 and h(s["guard_above_pte"]) == 0
        assert h(s["guard_below"]) == base - 4096 and h(s["guard_above"]) == top
    # RDSSPQ one CALL deep as each task leaves ring 3 (task 0's probe; every task after the loop)
    assert all(h(s["readback_ssp"]) == h(s["initial_ssp"]) - 8 for s in stacks)
    assert h(d["msrs"]["IA32_PL3_SSP"]["value"]) == h(stacks[0]["initial_ssp"])
    pde = h(d["page_tables"]["split_pde"])  # non-leaf: R/W=1 so the leaf decides; not a 2 MiB page
    assert pde & PTE_P and pde & PTE_RW and pde & PTE_US and not pde & PTE_PS
    assert pde & ~0xFFF == h(d["page_tables"]["split_pt"])


@pytest.mark.parametrize("cet", ["none", "ibt"])
def test_no_shadow_stacks_without_shstk(built, cet):
    d = explain(built, cet)
    assert d["shadow_stacks"] == [] and d["cet_u_switch"] == "none"


def test_syscall_msrs(built):
    msrs = explain(built, "ibt+shstk")["msrs"]
    star = h(msrs["IA32_STAR"]["value"])
    assert h(msrs["IA32_STAR"]["index"]) == MSR_STAR and h(msrs["IA32_LSTAR"]["index"]) == MSR_LSTAR
    assert star >> 32 & 0xFFFF == 0x08  # SYSCALL: CS = 0x08, SS = 0x10
    assert star >> 48 == 0x18  # SYSRET (64-bit): CS = 0x18 + 16 | 3, SS = 0x18 + 8 | 3
    fmask = h(msrs["IA32_FMASK"]["value"])
    assert h(msrs["IA32_FMASK"]["index"]) == MSR_FMASK and fmask & (1 << 9)  # IF cleared on entry


@pytest.mark.parametrize("vendor, insn", [("intel", "vmcall"), ("amd", "vmmcall")])
def test_hypercall_instruction_follows_the_vendor(built, vendor, insn):
    loop = explain(built, "none", workload="hypercall", vendor=vendor)["loop"]
    assert loop["hypercall_insn"] == insn and loop["hypercall_nr"] == 1  # KVM_HC_VAPIC_POLL_IRQ


def test_ibt_is_refused_on_amd_by_the_cpu(built):
    kvm = explain(built, "ibt", workload="cpuid", vendor="amd")["kvm"]
    if kvm["status"] != "unavailable":
        assert kvm["status"] == "unsupported" and kvm["refused_by"] == "cpu"


@pytest.mark.parametrize(
    "workload, exit_kind",
    [
        ("cpuid", "in KVM"),
        ("msr", "in KVM"),
        ("pio", "KVM_EXIT_IO"),
        ("syscall", "none"),
        ("ctxswitch", "none"),
        ("test-cet-lost", "GUEST_STATUS_CET_LOST"),
    ],
)
def test_loop_exit_is_named(built, workload, exit_kind):
    loop = explain(built, "none", workload=workload)["loop"]
    assert exit_kind in loop["vm_exit"]
    assert loop["ring"] == (3 if workload in ("syscall", "ctxswitch", "test-cet-lost") else 0)
    # CET is read back before and after the loop, by every ring-3 task as it leaves
    assert "before and after the loop" in loop["cet_check"] and "RDSSPQ" in loop["cet_check"]
