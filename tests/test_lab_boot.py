"""One boot of the emulated CET lab (Debian's kernel on bochs `tigerlake`, set up by tools/install-lab) on
a small job list, and the facts it must show:

- host `shstk=on` runs under a real user shadow stack, and the after-loop SSP check fails a run whose
  shadow stack was lost (the test hook turns it off in the process, and in the ctxswitch peer);
- a shadow-stack violation is a SIGSEGV with si_code SEGV_CPERR, and a child without a handler dies of it;
- guest `cet=ibt+shstk` runs through the real KVM CET code with its CET state read back on, and the
  guest's own #CP tests give the SDM error codes through KVM;
- per-op event counts from two iteration counts: a CPUID exit is exactly 1 kvm_exit (reason CPUID) and
  0 kvm_fpu, a PIO exit to the VMM exactly 2 kvm_fpu (put and load) and 1 kvm_userspace_exit, and with
  the guest's CET_U state live each op's FPU load carries xfeatures bit 11 (0x800);
- kvm_intel reloaded with cet=0 makes KVM refuse guest SHSTK/IBT in its own words; cet=1 brings it back;
- the host-side probe, fed the guest's files, finds an Intel CPU with SHSTK and IBT, a CET kernel and a
  KVM offering both.
Counts and CET facts only: bochs timings are instruction counts, never asserted.
"""

from __future__ import annotations

import os
import shlex
import time

import pytest

from cetbench import arch
from cetbench.lab import ImagePrograms, LabJob, LabRun, lab_host_facts, run_lab
from cetbench.lab.bochs import cached_emulator
from cetbench.lab.install import installed
from cetbench.native import GUEST_IMAGE, variant_command
from cetbench.workloads.build import elf_symbols
from cetbench.workloads.table import by_name

pytestmark = pytest.mark.slow

N1, N2 = 100, 200  # two iteration counts: per-op counts are the difference over N2 - N1
CONTENDED_OPS = 100_000  # several scheduler ticks of guest time
CPUID_EXIT_REASON = 10  # SDM vol. 3C appendix C, basic exit reason 10: CPUID
PROGRAMS = ImagePrograms()
GUEST = PROGRAMS.get(GUEST_IMAGE).path


def variant(name: str, iterations: int) -> tuple[str, ...]:
    return (*variant_command(by_name(name), PROGRAMS, cpu=0), "--iterations", str(iterations))


def drop_shstk(process: str, argv: tuple[str, ...]) -> tuple[str, ...]:
    return ("/bin/env", f"CETBENCH_TEST_DROP_SHSTK={process}", *argv)


def contended(argv: tuple[str, ...]) -> tuple[str, ...]:
    """argv with a busy loop on the same (only) CPU: the scheduler switches away and back during the timed
    loop, and each return to user space restores the task's FPU state (XRSTORS) from memory."""
    return ("/bin/sh", "-c", f"/bin/yes >/dev/null 2>&1 & exec {shlex.join(argv)}")


def guest_test(workload: str, cet: str) -> tuple[str, ...]:
    return ("/bin/cetbench-vmm", "--guest", str(GUEST), "--workload", workload, "--cet", cet, "--iterations", "1")


CPUID_EVENTS = ("kvm:kvm_exit", f"kvm:kvm_exit if exit_reason == {CPUID_EXIT_REASON}", "kvm:kvm_fpu")
#: a task's FPU registers loaded from memory with its CET_U state live (user shadow stack on)
CET_U_LOAD = f"x86_fpu:x86_fpu_regs_activated if xfeatures & {arch.XSS_CET_U:#x}"
PIO_EVENTS = ("kvm:kvm_fpu", "kvm:kvm_userspace_exit", "kvm:kvm_exit", CET_U_LOAD)
JOBS = [
    LabJob("syscall", variant("host.syscall[shstk=on]", 1000), events=("syscalls:sys_enter_getppid",)),
    LabJob("syscall-drop", drop_shstk("process", variant("host.syscall[shstk=on]", 100))),
    LabJob("syscall-contended", contended(variant("host.syscall[shstk=on]", CONTENDED_OPS)), events=(CET_U_LOAD,)),
    LabJob("ctxswitch", variant("host.ctxswitch[shstk=on]", 200)),
    LabJob("ctxswitch-drop-peer", drop_shstk("peer", variant("host.ctxswitch[shstk=on]", 100))),
    LabJob("violation", ("/bin/test_shstk_violation",)),
    *(LabJob(f"cpuid-{n}", variant("guest.vmexit.cpuid[cet=ibt+shstk]", n), events=CPUID_EVENTS) for n in (N1, N2)),
    *(LabJob(f"pio-{n}", variant("guest.vmexit.pio[cet=ibt+shstk]", n), events=PIO_EVENTS) for n in (N1, N2)),
    *(LabJob(f"pio-none-{n}", variant("guest.vmexit.pio[cet=none]", n), events=PIO_EVENTS) for n in (N1, N2)),
    LabJob("cp-ret", guest_test("test-cp-ret", "shstk")),
    LabJob("cp-endbr", guest_test("test-cp-endbr", "ibt")),
    LabJob("kvm-cet0", variant("guest.vmexit.cpuid[cet=ibt+shstk]", 10), kvm_intel={"cet": "0"}),
    LabJob("kvm-cet1", variant("guest.vmexit.cpuid[cet=ibt+shstk]", 10), kvm_intel={"cet": "1"}),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabRun:
    setup = installed()
    if isinstance(setup, str):
        if os.environ.get("CI"):  # CI must show this run, never skip it
            pytest.fail(f"{setup}; CI must run tools/install-lab before the tests")
        pytest.skip(setup)
    kernel, emulator = setup
    t0 = time.monotonic()
    run = run_lab(kernel, JOBS, tmp_path_factory.mktemp("lab"), timeout_s=900, emulator=emulator)
    print(f"\nlab boot test: {time.monotonic() - t0:.1f} s wall ({run.timings}); kernel {kernel.release}; "
          f"{run.emulator}")
    return run


def result(lab: LabRun, job_id: str):
    r = lab.result(job_id)
    assert r.error is None, f"{job_id}: {r.error}; tail: {r.output_tail}; serial log {lab.serial_log}"
    return r


def measured(lab: LabRun, job_id: str, variant_name: str) -> dict:
    r = result(lab, job_id)
    assert r.exit_code == arch.EXIT_MEASURED and r.record is not None, (r.record, r.output_tail)
    assert by_name(variant_name).id.wrong_state(r.record) is None, r.record
    return r.record


def per_op(lab: LabRun, job: str, event: str) -> float:
    a, b = result(lab, f"{job}-{N1}").counts[event], result(lab, f"{job}-{N2}").counts[event]
    return (b - a) / (N2 - N1)


def test_the_lab_booted_ran_every_job_and_powered_off(lab):
    assert lab.completed, lab.failure
    assert lab.kernel.release and "XRSTORS fix" in lab.emulator and "tigerlake" in lab.emulator
    assert [r.id for r in lab.jobs] == [j.id for j in JOBS]


def test_host_shstk_on_runs_under_a_real_shadow_stack(lab):
    record = measured(lab, "syscall", "host.syscall[shstk=on]")
    assert record["shstk"] == "on" and "shstk" in record["x86_thread_features"]
    assert int(record["ssp"], 16) != 0  # read back after the loop
    assert lab.result("syscall").counts == {"syscalls:sys_enter_getppid": 1000}
    contended_record = measured(lab, "syscall-contended", "host.syscall[shstk=on]")
    assert int(contended_record["ssp"], 16) != 0  # switched away and back, shadow stack intact
    # its CET_U state was restored from memory (XRSTORS) while the shadow stack was on
    assert lab.result("syscall-contended").counts[CET_U_LOAD] >= 2, lab.result("syscall-contended").counts
    ctx = measured(lab, "ctxswitch", "host.ctxswitch[shstk=on]")
    assert ctx["peer_shstk"] == "on"  # the child died of a bogus #CP with the unfixed emulator


@pytest.mark.parametrize(("job", "process"), [("syscall-drop", "host_syscall process"),
                                              ("ctxswitch-drop-peer", "host_ctxswitch peer process")])
def test_a_shadow_stack_lost_in_the_loop_fails_the_variant(lab, job, process):
    r = result(lab, job)
    assert r.exit_code == arch.EXIT_FAILED
    assert r.record is not None and r.record["error"].startswith(f"shadow stack lost in the {process}: RDSSP read 0x")
    assert r.record["error"].endswith(" before the timed loop and 0x0 after it")


def test_a_shadow_stack_violation_is_sigsegv_with_segv_cperr(lab):
    r = result(lab, "violation")
    assert r.exit_code == 0, r.record
    assert r.record is not None
    assert r.record["handler"]["si_code"] == arch.SEGV_CPERR
    assert r.record["no_handler"] == {"child": "killed", "status": 11, "not_caught": False}


@pytest.mark.parametrize("job", ["cpuid", "pio"])
def test_guest_cet_runs_through_real_kvm_with_cet_read_back_on(lab, job):
    for n in (N1, N2):
        record = measured(lab, f"{job}-{n}", f"guest.vmexit.{job}[cet=ibt+shstk]")
        assert record["kvm_module"] == "kvm_intel"
        assert record["readback_after"]["cet_active"] == "ibt+shstk"
        assert int(record["readback_after"]["u_cet"], 16) & arch.CET_SHSTK_EN
        assert int(record["readback_after"]["s_cet"], 16) & arch.CET_ENDBR_EN


def test_cpuid_exit_is_one_kvm_exit_and_no_fpu_swap_per_op(lab):
    assert per_op(lab, "cpuid", f"kvm:kvm_exit if exit_reason == {CPUID_EXIT_REASON}") == 1
    assert per_op(lab, "cpuid", "kvm:kvm_fpu") == 0


@pytest.mark.parametrize("job", ["pio", "pio-none"])
def test_pio_exit_is_two_kvm_fpu_and_one_userspace_exit_per_op(lab, job):
    assert per_op(lab, job, "kvm:kvm_fpu") == 2  # put on the way out to the VMM, load on the way back in
    assert per_op(lab, job, "kvm:kvm_userspace_exit") == 1


def test_live_guest_cet_u_state_is_in_each_fpu_load(lab):
    assert per_op(lab, "pio", CET_U_LOAD) == 1  # guest shadow stack on: CET_U live in the guest FPU state
    assert per_op(lab, "pio-none", CET_U_LOAD) == 0  # no guest CET: the component stays in its init state


@pytest.mark.parametrize(("job", "error_code", "site"), [("cp-ret", arch.CP_ERR_NEAR_RET, "cp_ret_insn"),
                                                         ("cp-endbr", arch.CP_ERR_ENDBRANCH, "cp_endbr_target")])
def test_guest_cet_violations_give_cp_with_the_sdm_error_code(lab, job, error_code, site):
    r = result(lab, job)
    assert r.exit_code == arch.EXIT_FAILED and r.record is not None
    assert (r.record["error"], r.record["vector"], r.record["error_code"]) == ("guest exception", arch.VECTOR_CP,
                                                                             error_code)
    assert int(r.record["rip"], 16) == elf_symbols(PROGRAMS.host_build(GUEST_IMAGE).elf)[site]


def test_kvm_intel_cet_parameter_decides_what_kvm_offers(lab):
    off = result(lab, "kvm-cet0")
    assert off.kvm_intel is not None and off.kvm_intel["cet"] == "N"
    assert off.exit_code == arch.EXIT_UNSUPPORTED and off.record is not None
    assert off.record["refused_by"] == "kvm" and "KVM does not offer SHSTK" in off.record["unsupported"]
    on = result(lab, "kvm-cet1")
    assert on.kvm_intel is not None and on.kvm_intel["cet"] == "Y"
    measured(lab, "kvm-cet1", "guest.vmexit.cpuid[cet=ibt+shstk]")


def test_the_host_probe_reads_the_lab_as_a_cet_host(lab, tmp_path):
    facts = lab_host_facts(lab, tmp_path / "tree")
    assert facts.cpu.vendor == "GenuineIntel" and facts.cpu.shstk and facts.cpu.ibt
    assert facts.cpu.xss_cet_u and facts.cpu.xss_cet_s
    assert facts.kernel.release == lab.kernel.release and facts.kernel.build_id
    assert facts.kernel.config[arch.CONFIG_USER_SHSTK] == "y" and facts.kernel.config[arch.CONFIG_KERNEL_IBT] == "y"
    assert facts.kernel.cpuinfo_flags["user_shstk"] and facts.kernel.cpuinfo_flags["ibt"]
    assert facts.kvm.implementation == "kvm_intel"
    assert facts.kvm.offers_shstk and facts.kvm.offers_ibt, facts.kvm.verdict


# ---- the unfixed emulator: the checks catch a lost shadow stack ----------------------------------------

UNFIXED_JOBS = [
    LabJob("syscall", contended(variant("host.syscall[shstk=on]", CONTENDED_OPS))),
    LabJob("pio", variant("guest.vmexit.pio[cet=shstk]", N1)),
]


@pytest.fixture(scope="module")
def unfixed_lab(tmp_path_factory) -> LabRun:
    """Only when tools/install-lab --with-unpatched built bochs without our XRSTORS fix (about 2-4 min)."""
    setup = installed()
    emulator = cached_emulator(patched=False)
    if isinstance(setup, str) or emulator is None:
        pytest.skip("no bochs without the XRSTORS fix in the lab cache: tools/install-lab --with-unpatched")
    return run_lab(setup[0], UNFIXED_JOBS, tmp_path_factory.mktemp("unfixed"), timeout_s=900, emulator=emulator)


def test_the_unfixed_emulator_loses_shadow_stacks_and_every_check_says_so(unfixed_lab):
    """Debian's bochs 3.0 drops CET_U on partial XRSTORS: the host workload's after-loop SSP check (new)
    and the guest's CET read-back both fail the variant instead of filing a shadow-stack-off figure."""
    assert "without the XRSTORS fix" in unfixed_lab.emulator
    host = result(unfixed_lab, "syscall")
    assert host.exit_code == arch.EXIT_FAILED and host.record is not None
    assert host.record["error"].startswith("shadow stack lost in the host_syscall process")
    guest = result(unfixed_lab, "pio")
    assert guest.exit_code == arch.EXIT_FAILED and guest.record is not None
    assert guest.record["error"] == "guest CET state changed during the timed loop"
