"""CET-on code executed on an emulated CET CPU: bochs 2.7, cpu model `tigerlake` (issue 8).

No machine here has CET, so this is where the guest's CET setup, its SYSCALL path with IBT and a user
shadow stack, and its context switch actually run with CET on. Three layers, each needing the one before:
  1. the BIOS boot path (workloads/guest/bochs/boot.S) hands over abi.h's boot state (stub guest);
  2. the emulated CPU implements the CET pieces we rely on (cet_probe.c asks it directly);
  3. the cetbench guest itself: every CET configuration runs each workload with CET verified on, before
     and after the timed loop, and no #CP; the two fault tests raise #CP with the SDM error codes (a run
     without #CP fails); a loop that turns CET off ends with the CET-lost status naming the register.
bochs wall-clock times are emulation times and are never reported or asserted.
"""

from __future__ import annotations

import os
import struct
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from cetbench import arch
from cetbench.native import GUEST_IMAGE
from cetbench.workloads.build import build, elf_symbols
from cetbench.workloads.guest.bochs import image, programs, run
from cetbench.workloads.guest.bochs.cdefs import GUEST_DIR, abi, c_constants
from cetbench.workloads.guest.bochs.probe import probe_ids, run_probe
from cetbench.workloads.table import guest_codes

# abi.h's constants and the guest workload ids (GW_*, owned by workloads/table.py)
ABI = {**abi(), **{code.enumerator: code.id for code in guest_codes()}}
MISSING = run.bochs_missing()


@pytest.fixture(scope="module")
def bochs_installed():
    """Skip (or, in CI, fail) the emulator tests when bochs is missing; the others still run."""
    if MISSING:
        if os.environ.get("CI"):  # CI must show these runs, never skip them
            pytest.fail(f"{MISSING}; CI must run tools/install-bochs before the tests")
        pytest.skip(MISSING)


def _why(r: run.BochsRun) -> str:
    return "\n" + r.describe()


# ---- image and parsing (no emulator) --------------------------------------------------------------


def test_params_layout_matches_abi_h(tmp_path):
    """image.PARAMS_FORMAT and boot.S's PARAMS_BYTES agree with the C compiler's view of abi.h."""
    src = tmp_path / "layout.c"
    src.write_text(
        textwrap.dedent("""
        #include <stddef.h>
        #include <stdio.h>
        #include "guest/abi.h"
        int main(void) {
            printf("%zu %zu %zu %zu %zu %zu\\n", sizeof(struct guest_params),
                   offsetof(struct guest_params, workload), offsetof(struct guest_params, iterations),
                   offsetof(struct guest_params, msr_index), sizeof(struct guest_result),
                   offsetof(struct guest_params, inject_cycles));
            return 0;
        }""")
    )
    exe = tmp_path / "layout"
    subprocess.run(["cc", f"-I{GUEST_DIR.parent}", str(src), "-o", str(exe)], check=True)
    size, workload, iterations, msr_index, result_size, inject = map(int, subprocess.check_output([str(exe)]).split())
    assert size == image.PARAMS_BYTES == struct.calcsize(image.PARAMS_FORMAT)
    packed = image.params_bytes(workload=0x11223344, cet=3, iterations=0x55, inject_cycles=0x66, msr_index=0x77)
    assert struct.unpack_from("<I", packed, workload)[0] == 0x11223344
    assert struct.unpack_from("<Q", packed, iterations)[0] == 0x55
    assert struct.unpack_from("<Q", packed, inject)[0] == 0x66
    assert struct.unpack_from("<I", packed, msr_index)[0] == 0x77
    assert c_constants(programs.BOCHS_DIR / "boot.S")["PARAMS_BYTES"] == size
    assert result_size <= 0x1000  # boot.S zeroes one page at GUEST_RESULT_GPA


def test_floppy_image_layout():
    guest = bytes(range(256)) * 5  # 1280 bytes: 3 sectors
    params = image.params_bytes(workload=5, cet=2, iterations=7)
    floppy = image.floppy_image(guest, params)
    assert len(floppy) == image.FLOPPY_BYTES
    assert floppy[510:512] == b"\x55\xaa"
    off = programs.boot_sector().offsets
    assert struct.unpack_from("<H", floppy, off["boot_guest_sectors"])[0] == 3
    assert struct.unpack_from("<I", floppy, off["boot_guest_bytes"])[0] == len(guest)
    assert floppy[off["boot_params"] : off["boot_params"] + len(params)] == params
    assert floppy[512 : 512 + len(guest)] == guest
    with pytest.raises(image.ImageError, match="at most"):
        image.floppy_image(b"\x90" * (image.MAX_GUEST_BYTES + 1), params)
    with pytest.raises(image.ImageError, match="empty"):
        image.floppy_image(b"", params)


def test_parse_result_line():
    console = 'noise\nCETBENCH-RESULT status=2 vector=21 fault_rip=0x20013a detail="no #CP: ran \\"off\\""\nmore\n'
    assert run.parse_result(console) == {
        "status": 2,
        "vector": 21,
        "fault_rip": 0x20013A,
        "detail": 'no #CP: ran "off"',
    }
    assert run.parse_result("CETBENCH-RESULTS status=1\n") is None


def test_readback_before_and_after_the_loop():
    regs = "cet_active=0 cet_active_before=2 cr4=0x840620 xss=0x0 u_cet=0x1 s_cet=0x0 pl3_ssp=0x402ff8 ssp=0x402ff8"
    after = (
        "after_valid=1 cet_active_after=0 after_tasks=3 cr4_after=0x840620 xss_after=0x0 u_cet_after=0x0"
        " s_cet_after=0x0 pl3_ssp_after=0x402fe8 ssp_after0=0x0 ssp_after1=0x404ff8"
    )
    res = run.parse_result(f'CETBENCH-RESULT status=5 {regs} {after} detail="U_CET 0x1 -> 0x0"\n')
    assert res is not None
    assert run.readback_before(res) == run.CetReadback(2, 0x840620, 0, 1, 0, 0x402FF8, {0: 0x402FF8})
    assert run.readback_after(res) == run.CetReadback(0, 0x840620, 0, 0, 0, 0x402FE8, {0: 0, 1: 0x404FF8})
    assert run.readback_after({**res, "after_valid": 0}) is None
    with pytest.raises(ValueError, match="u_cet_after"):
        run.readback_after({k: v for k, v in res.items() if k != "u_cet_after"})


# ---- layer 1: the boot path, with the stub guest --------------------------------------------------


@pytest.mark.usefixtures("bochs_installed")
def test_boot_path_hands_over_abi_boot_state():
    r = run.run_guest(programs.stub_guest_image(), workload=ABI["GW_SYSCALL"], cet=3, iterations=7)
    assert r.shutdown_requested and not r.timed_out, _why(r)
    res = r.result
    assert res is not None, _why(r)
    assert res["status"] == ABI["GUEST_STATUS_OK"], _why(r)  # params magic seen by the guest
    assert (res["cr0"], res["cr4"], res["efer"]) == (
        ABI["GUEST_BOOT_CR0"],
        ABI["GUEST_BOOT_CR4"],
        ABI["GUEST_BOOT_EFER"],
    )
    assert res["stub_boot_rsp"] == ABI["GUEST_BOOT_STACK_TOP"]
    assert (res["stub_platform"], res["stub_workload"], res["stub_cet"], res["stub_iterations"]) == (
        ABI["PLATFORM_BOCHS"],
        ABI["GW_SYSCALL"],
        3,
        7,
    )
    assert res["stub_result_zero"] == 1
    # the CPU model is the CET one: SHSTK and IBT enumerated
    assert res["cpuid7_ecx"] & (1 << arch.CPUID_SHSTK.bit) and res["cpuid7_edx"] & (1 << arch.CPUID_IBT.bit)


@pytest.mark.usefixtures("bochs_installed")
def test_guest_that_never_ends_is_killed_at_timeout():
    hang = b"\xeb\xfe"  # jmp . at GUEST_IMAGE_GPA
    r = run.run_guest(hang, workload=1, cet=0, iterations=1, timeout=3)
    assert r.timed_out and r.result is None and not r.shutdown_requested
    assert "timed out" in r.describe()


@pytest.mark.usefixtures("bochs_installed")
def test_triple_fault_ends_bochs_with_its_panic():
    r = run.run_guest(b"\x0f\x0b", workload=1, cet=0, iterations=1)  # UD2, no IDT of its own
    assert not r.timed_out and r.result is None and not r.shutdown_requested
    assert r.panic is not None and "3rd" in r.panic, _why(r)


# ---- layer 2: what the emulated CPU implements (cet_probe.c) --------------------------------------

PROBES = probe_ids()
SS_REGION = c_constants(programs.BOCHS_DIR / "cet_probe.c")["SS_REGION"]  # the probe's shadow-stack pages
SSS_TOKEN = SS_REGION + 0xFF8  # supervisor shadow stack: token in the top slot of its page
USS_TOP = SS_REGION + 0x2000  # user shadow stack: the page after it, PL3_SSP = its top


@pytest.fixture(scope="module")
def probes(bochs_installed):
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(PROBES, pool.map(run_probe, PROBES.values()), strict=False))


def _steps(probes, name):
    report = probes[name]
    assert report.ended, _why(report.run)
    return report.steps


def test_bochs_cet_registers(probes):
    s = _steps(probes, "PROBE_REGS")
    assert s["cr4.cet"]["outcome"] == "ok" and s["cr4.cet"]["cr4"] & arch.CR4_CET
    for step in (
        "wrmsr.s_cet",
        "wrmsr.s_cet#2",
        "wrmsr.u_cet",
        "wrmsr.pl0_ssp",
        "wrmsr.pl3_ssp",
        "wrmsr.int_ssp_tab",
        "wrmsr.xss",
        "wrmsr.xss#2",
        "wrmsr.xss#3",
    ):
        assert s[step]["outcome"] == "ok" and s[step]["rdmsr_ok"] == 1, step
        assert s[step]["readback"] == s[step]["value"], step
    # XRSTORS loads CET_U (U_CET, PL3_SSP) from a compacted area
    assert s["xrstors"]["outcome"] == "ok"
    assert (s["xrstors"]["u_cet"], s["xrstors"]["pl3_ssp"]) == (arch.CET_ENDBR_EN, USS_TOP - 0x10)


def test_bochs_kernel_ibt(probes):
    s = _steps(probes, "PROBE_IBT")
    assert s["ibt.call_endbr"]["outcome"] == "ok" and s["ibt.call_endbr"]["s_cet"] == arch.CET_ENDBR_EN
    assert (s["exception"]["vector"], s["exception"]["error_code"]) == (arch.VECTOR_CP, arch.CP_ERR_ENDBRANCH)


@pytest.mark.parametrize("probe", ["PROBE_SSS", "PROBE_SSS_CP"])
def test_bochs_supervisor_shadow_stack(probes, probe):
    s = _steps(probes, probe)
    token = SSS_TOKEN
    assert s["setssbsy"]["outcome"] == "ok" and s["setssbsy"]["ssp"] == token
    assert s["setssbsy"]["token"] == token | 1  # busy bit set
    assert s["sss.call_ret"]["ssp_in_callee"] == token - 8 and s["sss.call_ret"]["ssp_after"] == token
    assert s["incssp"]["outcome"] == "ok" and s["incssp"]["delta"] == 8
    assert s["wrss"]["outcome"] == "ok" and s["wrss"]["read"] == 0x1234
    sw = s["rstorssp_saveprevssp"]
    assert sw["ssp_on_second_stack"] == SS_REGION + 0x7F8 and sw["ssp_after_saveprevssp"] == SS_REGION + 0x800
    assert sw["ssp_back"] == sw["old_ssp"]
    exc = s["exception"]
    if probe == "PROBE_SSS":  # an ordinary write to a shadow-stack page: #PF, present + write
        assert (exc["vector"], exc["error_code"]) == (14, 0x3)
    else:
        assert (exc["vector"], exc["error_code"]) == (arch.VECTOR_CP, arch.CP_ERR_NEAR_RET)


@pytest.mark.parametrize(
    "probe, expect",
    [("PROBE_USER", None), ("PROBE_USER_CP", arch.CP_ERR_NEAR_RET), ("PROBE_USER_IBT_CP", arch.CP_ERR_ENDBRANCH)],
)
def test_bochs_user_shadow_stack_and_syscall(probes, probe, expect):
    s = _steps(probes, probe)
    top = USS_TOP
    assert s["user.enter"]["pl3_ssp"] == top and s["user.enter"]["u_cet"] & arch.CET_SHSTK_EN
    # SYSCALL parks the ring-3 SSP in IA32_PL3_SSP, SYSRET brings it back; CALL/RET push/pop 8 bytes
    assert s["user.syscall"]["user_ssp"] == top - 8
    assert s["user.syscall"]["pl3_ssp_in_kernel"] == top
    assert s["user.syscall#2"]["user_ssp"] == top
    if expect is None:
        assert s["user.done"]["syscalls"] == 3 and "exception" not in s
    else:
        exc = s["exception"]
        assert (exc["vector"], exc["error_code"], exc["cs"]) == (arch.VECTOR_CP, expect, 0x23)


# ---- layer 3: the cetbench guest -------------------------------------------------------------------

CET_CONFIGS = {
    "none": 0,
    "ibt": ABI["GUEST_CET_IBT"],
    "shstk": ABI["GUEST_CET_SHSTK"],
    "ibt+shstk": ABI["GUEST_CET_IBT"] | ABI["GUEST_CET_SHSTK"],
}
# guest.syscall and guest.ctxswitch run whole; the VM-exit loops run their in-guest part (on bochs
# the guest replaces the exit instruction by nothing, and the PIO port has no device behind it).
POSITIVE = ("GW_SYSCALL", "GW_CTXSWITCH", "GW_CPUID", "GW_HYPERCALL", "GW_MSR", "GW_PIO", "GW_XSAVES", "GW_XRSTORS")
ITERATIONS = 5  # bochs is an emulator: a handful of ops proves the path, timing is meaningless here
# (workload, cet config) -> the #CP error code it must raise, or None: no #CP without that feature
NEGATIVE = {
    ("GW_TEST_CP_RET", "shstk"): arch.CP_ERR_NEAR_RET,
    ("GW_TEST_CP_RET", "ibt+shstk"): arch.CP_ERR_NEAR_RET,
    ("GW_TEST_CP_ENDBR", "ibt"): arch.CP_ERR_ENDBRANCH,
    ("GW_TEST_CP_ENDBR", "ibt+shstk"): arch.CP_ERR_ENDBRANCH,
    ("GW_TEST_CP_RET", "none"): None,
    ("GW_TEST_CP_RET", "ibt"): None,
    ("GW_TEST_CP_ENDBR", "none"): None,
    ("GW_TEST_CP_ENDBR", "shstk"): None,
}
# GW_TEST_CET_LOST clears, inside its loop, the enable bit of each feature on: cet config -> the
# registers the CET-lost detail must name ("none": nothing to lose, the run ends OK)
CET_LOST = {
    "shstk": ("U_CET 0x1 -> 0x0",),
    "ibt": ("S_CET 0x4 -> 0x0",),
    "ibt+shstk": ("S_CET 0x4 -> 0x0", "U_CET 0x1 -> 0x0"),
    "none": (),
}
RING3_TASKS = {"GW_SYSCALL": {0}, "GW_CTXSWITCH": {0, 1}}  # ring-0 loops: a probe task with shstk


@pytest.fixture(scope="module")
def guest():
    return build(GUEST_IMAGE)  # the image exactly as the micro-VMM runs it


@pytest.fixture(scope="module")
def guest_runs(bochs_installed, guest):
    """Every guest run of this module, two bochs at a time (one per core)."""
    img = guest.path.read_bytes()
    keys = [(w, c) for w in POSITIVE for c in CET_CONFIGS] + list(NEGATIVE)
    keys += [("GW_TEST_CET_LOST", c) for c in CET_LOST]

    def one(key):
        return run.run_guest(img, ABI[key[0]], CET_CONFIGS[key[1]], ITERATIONS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(keys, pool.map(one, keys), strict=False))


def _result(r: run.BochsRun) -> dict:
    assert r.shutdown_requested and not r.timed_out and r.panic is None, _why(r)
    assert r.result is not None, _why(r)
    return r.result


def _assert_cet_state(state: run.CetReadback, cet: int, save_method: int, cpuid_d1_ecx: int) -> None:
    """The registers of `state` hold exactly the configuration `cet` asks for (the guest's verdict too)."""
    ibt, shstk = bool(cet & ABI["GUEST_CET_IBT"]), bool(cet & ABI["GUEST_CET_SHSTK"])
    assert state.cet_active == cet  # the guest read its CET state back and found what was asked
    assert bool(state.cr4 & arch.CR4_CET) == (ibt or shstk)
    assert bool(state.s_cet & arch.CET_ENDBR_EN) == ibt and not state.s_cet & arch.CET_SHSTK_EN
    assert bool(state.u_cet & arch.CET_SHSTK_EN) == shstk and not state.u_cet & arch.CET_ENDBR_EN
    # CET_U goes through IA32_XSS only where CPUID says XSS can hold it (not on bochs 2.7: 0xD.1 ECX=0)
    xss_cet_u = shstk and save_method == ABI["SAVE_XSAVES"] and cpuid_d1_ecx & arch.XSS_CET_U
    assert state.xss == (arch.XSS_CET_U if xss_cet_u else 0)
    if not shstk:  # RDSSPQ is a NOP in ring 3 without a user shadow stack
        assert state.pl3_ssp == 0 and set(state.task_ssp.values()) <= {0}


@pytest.mark.parametrize("cet_name", CET_CONFIGS)
@pytest.mark.parametrize("workload", POSITIVE)
def test_guest_workload_runs_with_cet_verified_on(guest_runs, workload, cet_name):
    cet = CET_CONFIGS[cet_name]
    r = guest_runs[(workload, cet_name)]
    res = _result(r)
    assert res["status"] == ABI["GUEST_STATUS_OK"], _why(r)
    assert res["vector"] == 0 and res["error_code"] == 0  # no exception, #CP or other
    assert res["ops"] == ITERATIONS
    assert res["cet_active"] == cet  # what held both before and after the loop
    assert res["cr0"] & arch.CR0_WP
    shstk = bool(cet & ABI["GUEST_CET_SHSTK"])
    before = run.readback_before(res)
    _assert_cet_state(before, cet, res["save_method"], res["cpuid_d1_ecx"])
    if shstk:  # PL3_SSP inside the guest's shadow-stack area; ring 3 really ran on it (ssp)
        assert res["pl3_ssp"] and res["pl3_ssp"] % 8 == 0 and res["ssp"] == res["pl3_ssp"], _why(r)
    assert res["save_method"] == ABI["SAVE_XSAVES"]  # bochs tigerlake enumerates XSAVES

    # after the timed loop: the same configuration, the same registers, every ring-3 task on its stack
    after = run.readback_after(res)
    assert after is not None, _why(r)
    _assert_cet_state(after, cet, res["save_method"], res["cpuid_d1_ecx"])
    assert (after.cr4, after.xss, after.u_cet, after.s_cet) == (before.cr4, before.xss, before.u_cet, before.s_cet)
    tasks = RING3_TASKS.get(workload, {0} if shstk else set())
    assert set(after.task_ssp) == tasks, _why(r)
    if shstk:  # each task left one CALL below the top of its own shadow stack
        assert after.task_ssp[0] == before.task_ssp[0]
        assert len(set(after.task_ssp.values())) == len(tasks) and all(v % 8 == 0 for v in after.task_ssp.values())
        assert after.pl3_ssp in after.task_ssp.values()  # the last task's SYSCALL parked its SSP there
    assert res["detail"] == ""


@pytest.mark.parametrize("cet_name", CET_LOST)
def test_guest_reports_cet_lost_in_the_loop(guest_runs, cet_name):
    """A loop whose kernel side turns CET off (GW_TEST_CET_LOST) cannot pass as CET-on: the after-loop
    readback shows it, the status is CET-lost and the detail names the register and both values."""
    r = guest_runs[("GW_TEST_CET_LOST", cet_name)]
    res = _result(r)
    assert res["ops"] == ITERATIONS and res["vector"] == 0, _why(r)  # the loop itself completed
    after = run.readback_after(res)
    assert after is not None, _why(r)
    if not CET_LOST[cet_name]:  # control: nothing on, nothing lost
        assert res["status"] == ABI["GUEST_STATUS_OK"] and after.cet_active == 0, _why(r)
        return
    assert res["status"] == ABI["GUEST_STATUS_CET_LOST"], _why(r)
    assert res["cet_active"] == 0 and after.cet_active == 0  # the run claims no CET
    assert run.readback_before(res).cet_active == CET_CONFIGS[cet_name]  # it was on before
    detail = str(res["detail"])
    assert detail.endswith(" after the loop") and all(d in detail for d in CET_LOST[cet_name]), detail
    if "shstk" in cet_name:  # and ring 3 saw it: RDSSPQ, a NOP without a shadow stack, left 0
        assert after.task_ssp == {0: 0} and "task 0 SSP" in detail and after.u_cet == 0


@pytest.mark.parametrize("workload, cet_name", list(NEGATIVE))
def test_guest_cp_fault_tests(guest, guest_runs, workload, cet_name):
    """kvm-unit-tests x86/cet.c style: #CP with the SDM error code where the feature is on (a run
    without #CP fails: that is what proves CET was on), and no #CP where it is off (the control)."""
    expect = NEGATIVE[(workload, cet_name)]
    r = guest_runs[(workload, cet_name)]
    res = _result(r)
    if expect is None:
        assert res["vector"] != arch.VECTOR_CP and res["status"] != ABI["GUEST_STATUS_EXCEPTION"], _why(r)
        after = run.readback_after(res)  # the loop ran to its end with CET as asked
        assert after is not None and after.cet_active == CET_CONFIGS[cet_name], _why(r)
        return
    assert run.readback_after(res) is None  # the loop never ended: no after-loop state is claimed
    assert (res["status"], res["vector"], res["error_code"]) == (
        ABI["GUEST_STATUS_EXCEPTION"],
        arch.VECTOR_CP,
        expect,
    ), _why(r)
    site = "cp_ret_insn" if workload == "GW_TEST_CP_RET" else "cp_endbr_target"
    assert res["fault_rip"] == elf_symbols(guest.elf)[site]
    assert res["cet_active"] == CET_CONFIGS[cet_name]


@pytest.mark.usefixtures("bochs_installed")
@pytest.mark.parametrize("cet_name", ["ibt", "shstk", "ibt+shstk"])
def test_guest_refuses_cet_on_a_cpu_without_it(guest, cet_name):
    """Same guest on bochs's Ice Lake model (no CET in CPUID): setup fails naming the missing bit;
    a CET-on run never goes on with CET silently off."""
    r = run.run_guest(
        guest.path.read_bytes(), ABI["GW_SYSCALL"], CET_CONFIGS[cet_name], ITERATIONS, cpu_model="corei7_icelake_u"
    )
    res = _result(r)
    assert res["status"] == ABI["GUEST_STATUS_SETUP_FAILED"] and res["cet_active"] == 0, _why(r)
    assert res["ops"] == 0 and "CPUID.(EAX=7,ECX=0)" in res["detail"]


@pytest.mark.parametrize("cetu,expected", [("CETU_NATURAL", None), ("CETU_INIT", "CETU_INIT")])
def test_guest_leaves_cet_user_in_the_state_the_cetu_axis_asks(bochs_installed, guest, cetu: str,
                                                               expected: str | None) -> None:
    """cetu=init: U_CET and PL3_SSP are 0 while the ring-0 loop runs, and CET still holds after it.
    bochs 2.7 enumerates no XSS CET_U, so its natural state is `off` (CET_U not in IA32_XSS); the
    live case runs in the lab (a CPU whose XSS holds CET_U)."""
    r = run.run_guest(guest.path.read_bytes(), ABI["GW_CPUID"], CET_CONFIGS["shstk"], ITERATIONS, cetu=ABI[cetu])
    res = r.result
    assert res is not None and res["status"] == ABI["GUEST_STATUS_OK"], _why(r)
    natural = ABI["CETU_OFF"] if not res["cpuid_d1_ecx"] & arch.XSS_CET_U else ABI["CETU_LIVE"]
    assert res["cetu_state"] == (natural if expected is None else ABI[expected]), _why(r)
    assert res["cet_active"] == ABI["GUEST_CET_SHSTK"]  # restored: the after-loop check passed



def test_the_guest_takes_a_given_xss_only_if_its_cpuid_lets_it(bochs_installed, guest) -> None:
    """xss=host: the guest writes the host's IA32_XSS, or refuses when its CPUID forbids a bit (bochs
    2.7 enumerates no XSS component, so CET_U|CET_S must be refused and 0 accepted)."""
    img = guest.path.read_bytes()
    refused = run.run_guest(img, ABI["GW_CPUID"], CET_CONFIGS["shstk"], ITERATIONS, xss=0x1800).result
    assert refused is not None and refused["status"] == ABI["GUEST_STATUS_SETUP_FAILED"]
    assert "xss=host" in str(refused["detail"])
    taken = run.run_guest(img, ABI["GW_CPUID"], CET_CONFIGS["shstk"], ITERATIONS, xss=0).result
    assert taken is not None and taken["status"] == ABI["GUEST_STATUS_OK"] and taken["xss"] == 0
