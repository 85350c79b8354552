"""cetbench-vmm on the real /dev/kvm: the JSON protocol, exit counts per op, fault reports (vector and
RIP against the guest's symbol table), the timeout, CET configurations KVM does not offer (with KVM's
reason) and bad arguments. Functional checks only: no timing thresholds.

Iteration counts stay small: under a software KVM (kvm_pvm) one exit costs tens of microseconds.
"""

from __future__ import annotations

import os

import pytest

from cetbench.workloads.guest.bochs.cdefs import abi
from tests.support import independent
from tests.support.vmm import build_all, kvm_usable, result_stub_guest, run_vmm

pytestmark = pytest.mark.skipif(kvm_usable() is not None, reason=str(kvm_usable()))

N = 200
EXIT_MEASURED, EXIT_USAGE, EXIT_UNSUPPORTED, EXIT_FAILED = 0, 2, 3, 4
PVM = os.path.isdir("/sys/module/kvm_pvm")  # the software KVM: runs no architectural ring 3
PVM_REFUSED = ("hypercall", "syscall", "ctxswitch")


@pytest.fixture(scope="module")
def built():
    return build_all()


def run(built, workload, *extra, cet="none", n=N, timeout=60.0):
    args = ["--guest", str(built.guest), "--workload", workload, "--cet", cet, "--iterations", str(n)]
    return run_vmm(built, *args, *extra, timeout=timeout)


def measured(r, n=N):
    assert r.rc == EXIT_MEASURED, r.stdout + r.stderr
    d = r.doc
    assert d["iterations"] == n and d["elapsed_ns"] > 0 and d["tsc_ticks"] > 0 and d["guest_cycles"] > 0
    assert d["cet"] == "none" and d["cet_active"] == "none" and d["kvm_api"] == 12
    assert d["vendor"] in ("amd", "intel")
    assert d["save_method"] in ("fxsave", "xsave", "xsavec", "xsaves")
    assert d["loop_exits"]["intr"] == 0 and d["loop_exits"]["io_other"] == 0
    # CET read back before and after the timed loop: the same (none), in the same registers
    before, after = d["readback"], d["readback_after"]
    assert before["cet_active"] == after["cet_active"] == "none"
    assert all(after[k] == before[k] for k in ("cr4", "xss", "u_cet", "s_cet", "pl3_ssp"))
    return d


# ---- exits per op ---------------------------------------------------------------------------


@pytest.mark.parametrize("workload", ["cpuid", "msr"])
def test_kernel_handled_exits_never_reach_the_vmm_inside_the_loop(built, workload):
    d = measured(run(built, workload))
    assert d["loop_exits"]["io_op"] == 0
    # outside the loop: the two PHASE marks and PORT_DONE, nothing else
    assert d["exits"]["io"] == 3 and d["exits"]["io_phase"] == 2 and d["exits"]["io_done"] == 1
    assert d["exits"]["hlt"] == d["exits"]["mmio"] == d["exits"]["other"] == 0


def test_msr_workload_reads_apicbase(built):
    d = measured(run(built, "msr"))
    assert d["msr_index"] == "0x1b"


def test_pio_makes_exactly_one_userspace_exit_per_op(built):
    d = measured(run(built, "pio"))
    assert d["loop_exits"]["io_op"] == N
    assert d["exits"]["io_op"] == N and d["exits"]["io"] == N + 3


@pytest.mark.parametrize("workload", PVM_REFUSED)
def test_workloads_kvm_pvm_cannot_run(built, workload):
    r = run(built, workload)
    if PVM:
        assert r.rc == EXIT_UNSUPPORTED, r.stdout
        assert r.doc["refused_by"] == "kvm" and "pvm-spec" in r.doc["unsupported"]
    else:
        d = measured(r)
        assert d["loop_exits"]["io_op"] == 0 and d["exits"]["io"] == 3
        if workload == "hypercall":
            assert d["hypercall_insn"] == ("vmmcall" if d["vendor"] == "amd" else "vmcall")


@pytest.mark.skipif(not PVM, reason="shows why kvm_pvm refuses: only on kvm_pvm")
def test_kvm_pvm_refusal_is_warranted(built):
    r = run(built, "syscall", "--ignore-kvm-limits", n=3)
    assert r.rc == EXIT_FAILED and r.doc["error"] in ("guest exception", "triple fault (KVM_EXIT_SHUTDOWN)")
    r = run(built, "hypercall", "--ignore-kvm-limits", "--timeout-s", "1", n=3)
    assert r.rc == EXIT_FAILED and r.doc["error"] == "timeout"


def test_inject_cycles_is_calibrated_in_the_guest(built):
    d = measured(run(built, "cpuid", "--inject-cycles", "1000000", n=20), n=20)
    assert d["inject_cycles"] == 1000000 and d["inject_units"] > 0


def test_cpu_pinning_is_reported(built):
    d = measured(run(built, "cpuid", "--cpu", "0", n=5), n=5)
    assert d["cpu"] == 0


# ---- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "workload, vector, symbol", [("test-ud2", 6, "ud2_insn"), ("test-gp", 13, "gp_insn")]
)
def test_guest_exception_reports_vector_and_rip(built, workload, vector, symbol):
    r = run(built, workload)
    assert r.rc == EXIT_FAILED, r.stdout
    assert r.doc["error"] == "guest exception"
    assert r.doc["vector"] == vector and r.doc["error_code"] == 0
    assert int(r.doc["rip"], 16) == built.symbol(symbol)


def test_hang_is_ended_by_the_timeout(built):
    r = run(built, "test-hang", "--timeout-s", "1", timeout=30)
    assert r.rc == EXIT_FAILED and r.doc["error"] == "timeout" and r.doc["timeout_s"] == 1


def test_cp_test_without_cet_reports_no_exception(built):
    r = run(built, "test-cp-endbr")
    assert r.rc == EXIT_FAILED and r.doc["error"] == "expected exception did not occur"


# ---- CET lost during the loop (needs CET to happen for real: a stub guest reports it here) ----------

ABI = abi()


def test_cet_lost_in_the_loop_is_a_failure_with_both_readbacks(built, tmp_path):
    detail = "U_CET 0x1 -> 0x0, task 0 SSP 0x402ff8 -> 0x0 after the loop"
    lost, shstk = ABI["GUEST_STATUS_CET_LOST"], ABI["GUEST_CET_SHSTK"]
    stub = result_stub_guest(tmp_path, detail, status=lost, ops=N, cet_before=shstk, u_cet=1, after_valid=1)
    r = run_vmm(built, "--guest", str(stub), "--workload", "cpuid", "--iterations", str(N))
    assert r.rc == EXIT_FAILED, r.stdout
    assert r.doc["error"] == "guest CET state changed during the timed loop" and r.doc["detail"] == detail
    assert r.doc["readback"]["cet_active"] == "shstk" and r.doc["readback"]["u_cet"] == "0x1"
    after = r.doc["readback_after"]
    assert after["cet_active"] == "none" and after["u_cet"] == "0x0"
    assert after["task_ssp"] == [{"task": 0, "ssp": "0x1230"}]


def test_ok_without_the_after_loop_readback_is_a_failure(built, tmp_path):
    stub = result_stub_guest(tmp_path, status=ABI["GUEST_STATUS_OK"], ops=N)
    r = run_vmm(built, "--guest", str(stub), "--workload", "cpuid", "--iterations", str(N))
    assert r.rc == EXIT_FAILED, r.stdout
    assert r.doc["error"] == "guest did not read its CET state back after the loop"
    assert "readback_after" not in r.doc


def test_image_links_where_the_abi_loads_it(built):
    assert built.symbol("guest_entry") == 0x200000  # GUEST_IMAGE_GPA
    assert built.symbol("__image_end") <= 0x400000  # below GUEST_SPLIT_REGION_GPA


# ---- CET configurations KVM does not offer -------------------------------------------------


def _kvm_bits():
    sup = independent.kvm_supported_cpuid()
    _, ebx, ecx, edx = sup.get((0, 0), (0, 0, 0, 0))
    vendor = "amd" if (ebx, edx, ecx) == (0x68747541, 0x69746E65, 0x444D4163) else "intel"
    leaf7 = sup.get((7, 0), (0, 0, 0, 0))
    return vendor, bool(leaf7[2] >> 7 & 1), bool(leaf7[3] >> 20 & 1)


@pytest.mark.parametrize("cet", ["ibt", "shstk", "ibt+shstk"])
def test_cet_configs_kvm_lacks_are_unsupported_with_its_reason(built, cet):
    vendor, shstk, ibt = _kvm_bits()
    r = run(built, "cpuid", cet=cet, n=5)
    if "ibt" in cet and vendor == "amd":
        assert r.rc == EXIT_UNSUPPORTED and r.doc["refused_by"] == "cpu"
        assert "AMD CPUs implement shadow stack only" in r.doc["unsupported"]
    elif "shstk" in cet and not shstk:
        assert r.rc == EXIT_UNSUPPORTED and r.doc["refused_by"] == "kvm"
        assert "leaf 7.0 ECX[7]=0" in r.doc["unsupported"] and "CET_U and CET_S" in r.doc["unsupported"]
    elif "ibt" in cet and not ibt:
        assert r.rc == EXIT_UNSUPPORTED and r.doc["refused_by"] == "kvm"
        assert "leaf 7.0 EDX[20]=0" in r.doc["unsupported"]
    else:  # a CET host: the guest must have turned on exactly what was asked
        assert r.rc == EXIT_MEASURED, r.stdout
        assert r.doc["cet_active"] == cet


@pytest.mark.parametrize("cet", ["ibt", "shstk"])
def test_cet_forced_past_kvm_is_never_silently_off(built, cet):
    """--ignore-kvm-limits sets the CET bit KVM does not offer: the guest must refuse or fault."""
    _vendor, shstk, ibt = _kvm_bits()
    if (shstk if cet == "shstk" else ibt):
        pytest.skip(f"KVM here offers {cet}")
    r = run(built, "cpuid", "--ignore-kvm-limits", cet=cet, n=5)
    assert r.rc == EXIT_FAILED, r.stdout
    assert r.doc["error"] in ("guest setup failed", "guest exception")
    if r.doc["error"] == "guest setup failed":
        assert "CPUID.(EAX=7,ECX=0)" in r.doc["detail"]


def test_missing_kvm_device_is_unsupported_by_the_kernel(built, tmp_path):
    r = run(built, "cpuid", "--kvm-device", str(tmp_path / "no-kvm"), n=1)
    assert r.rc == EXIT_UNSUPPORTED
    assert r.doc["refused_by"] == "kernel" and "ENOENT" in r.doc["unsupported"]


# ---- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--workload", "cpuid", "--iterations", "5"],  # no --guest
        ["--guest", "G", "--workload", "cpuid"],  # no --iterations
        ["--guest", "G", "--workload", "cpuid", "--iterations", "0"],
        ["--guest", "G", "--workload", "cpuid", "--iterations", "-3"],
        ["--guest", "G", "--workload", "nosuch", "--iterations", "5"],
        ["--guest", "G", "--workload", "cpuid", "--iterations", "5", "--cet", "full"],
        ["--guest", "G", "--workload", "cpuid", "--iterations", "5x"],
        ["--guest", "G", "--workload", "cpuid", "--iterations", "5", "--bogus"],
        ["--guest", "G", "--workload", "cpuid", "--iterations", "5", "--vendor", "amd"],
        ["--guest", "/nonexistent/guest.bin", "--workload", "cpuid", "--iterations", "5"],
        ["--guest", "G", "--workload", "cpuid", "--iterations", "5", "--cpu", "100000"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(built, args):
    args = [str(built.guest) if a == "G" else a for a in args]
    r = run_vmm(built, *args)
    assert r.rc == EXIT_USAGE and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_xsaves_workload_is_refused_in_kvms_words_where_kvm_offers_no_xsaves(built) -> None:
    """kvm_pvm here offers no XSAVES: the VMM says so (exit 3) instead of running without it."""
    sup = independent.kvm_supported_cpuid()
    eax_d1 = sup.get((0xD, 1), (0, 0, 0, 0))[0]
    if eax_d1 & (1 << 3):
        pytest.skip("this KVM offers XSAVES: nothing to refuse")
    run = run_vmm(built, "--guest", str(built.guest), "--workload", "xsaves", "--cet", "none", "--iterations", "10")
    assert run.rc == 3 and run.doc is not None, run.stdout + run.stderr
    assert run.doc["unsupported"].startswith("KVM does not offer XSAVES") and run.doc["refused_by"] == "kvm"
