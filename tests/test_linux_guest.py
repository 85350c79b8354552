"""linux.* variants without booting anything: the grammar of their axes, the QEMU vCPU option and
QEMU's refusals, the check of the booted guest's CET state, the job list, and the paths where QEMU is
missing or too old (a fake qemu-system-x86_64). tests/test_linux_qemu.py boots the real thing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cetbench.lab import qemu as qemu_mod
from cetbench.lab.image import ImagePrograms
from cetbench.lab.qemu import Qemu, cpu_option, find_qemu, refusal
from cetbench.linux_guest import _jobs, boot_config, count_ops, guest_cet_problem, kernel_args, offered
from cetbench.workloads.table import by_name, select
from cetbench.workloads.variants import VariantNameError, configs_of, parse

# QEMU 11.1.3's own words (qemu-system-x86_64 -accel tcg -cpu max,cet-ss=on,enforce), and QEMU 7.2's for a
# property it does not have.
TCG_REFUSAL = ("qemu-system-x86_64: warning: TCG doesn't support requested feature: "
               "CPUID[eax=07h,ecx=00h].ECX.cet-ss [bit 7]\n"
               "qemu-system-x86_64: TCG doesn't support requested features\n")
OLD_QEMU = ("qemu-system-x86_64: can't apply global max-x86_64-cpu.cet-ss=on: "
            "Property 'max-x86_64-cpu.cet-ss' not found\n")


def test_linux_configurations_pair_every_cet_feature_with_its_off_partner() -> None:
    configs = configs_of("linux", {"kibt": ("off",)})
    names = [",".join(f"{a}={v}" for a, v in c) for c in configs]
    assert names == ["vcet=none,shstk=off", "vcet=ibt,shstk=off", "vcet=ibt,kibt=off,shstk=off",
                     "vcet=shstk,shstk=off", "vcet=shstk,shstk=on", "vcet=ibt+shstk,shstk=off",
                     "vcet=ibt+shstk,shstk=on", "vcet=ibt+shstk,kibt=off,shstk=off", "vcet=ibt+shstk,kibt=off,shstk=on"]
    on = parse("linux.syscall[vcet=ibt+shstk,kibt=off,shstk=on]")
    assert on.cet_features == {"ibt", "shstk"}
    assert str(on.off_partner()) == "linux.syscall[vcet=none,shstk=off]"


def test_a_task_shadow_stack_needs_a_vcpu_offering_it_only_in_a_linux_guest() -> None:
    with pytest.raises(VariantNameError, match="shstk can be set only with vcet=shstk"):
        parse("linux.syscall[vcet=ibt,shstk=on]")
    with pytest.raises(VariantNameError, match="kibt can be set only with vcet=ibt"):
        parse("linux.syscall[vcet=shstk,kibt=off,shstk=off]")
    assert parse("host.syscall[shstk=on]").cet_features == {"shstk"}  # no vCPU on a host
    with pytest.raises(LookupError, match="unknown variant"):
        by_name("host.syscall[vcet=none,shstk=off]")  # an axis of another kind
    assert not [v for v in select(["host.*"]) if "vcet" in v.name]


def test_one_boot_per_vcpu_and_kernel_command_line() -> None:
    a, b = by_name("linux.syscall[vcet=ibt+shstk,shstk=on]"), by_name("linux.signal[vcet=ibt+shstk,shstk=off]")
    assert boot_config(a) == boot_config(b) == (("vcet", "ibt+shstk"),)
    off = by_name("linux.syscall[vcet=ibt+shstk,kibt=off,shstk=on]")
    assert boot_config(off) != boot_config(a)
    assert kernel_args(boot_config(off)) == "ibt=off" and kernel_args(boot_config(a)) == ""
    assert offered(boot_config(off)) == {"ibt", "shstk"}
    assert offered(boot_config(by_name("linux.syscall[vcet=none,shstk=off]"))) == frozenset()


def test_the_vcpu_option_sets_every_cet_flag_qemu_knows_and_enforces_it() -> None:
    knows = frozenset({"cet-ss", "cet-ibt"})
    assert cpu_option("max", frozenset({"shstk"}), knows) == "max,cet-ss=on,cet-ibt=off,enforce"
    # CET off is said explicitly: `-cpu host` on a CET machine would pass CET through otherwise
    assert cpu_option("host", frozenset(), knows) == "host,cet-ss=off,cet-ibt=off,enforce"
    # a QEMU without the flags runs CET-off guests without naming them (it could not offer CET anyway)
    assert cpu_option("max", frozenset(), frozenset()) == "max,enforce"
    assert cpu_option("max", frozenset({"ibt"}), frozenset()) == "max,cet-ibt=on,enforce"


def test_qemu_refusals_are_read_in_its_own_words() -> None:
    assert refusal(TCG_REFUSAL) == ("TCG doesn't support requested feature: CPUID[eax=07h,ecx=00h].ECX.cet-ss "
                                    "[bit 7]; TCG doesn't support requested features")
    assert "Property 'max-x86_64-cpu.cet-ss' not found" in (refusal(OLD_QEMU) or "")
    assert refusal("qemu-system-x86_64: -cdrom x.iso: Could not open 'x.iso': No such file\n") is None


CPUINFO = "processor\t: 0\nflags\t\t: fpu vme {flags}\nbugs\t\t:\n"


@pytest.mark.parametrize(("config", "flags", "expect"), [
    ((("vcet", "none"),), "sse", None),
    ((("vcet", "ibt+shstk"),), "sse ibt user_shstk", None),
    ((("vcet", "ibt+shstk"), ("kibt", "off")), "sse user_shstk", None),
    ((("vcet", "shstk"),), "sse", ("unsupported", "kernel", "user_shstk")),
    ((("vcet", "ibt"),), "sse", ("unsupported", "kernel", "did not turn IBT on")),
    ((("vcet", "ibt"), ("kibt", "off")), "ibt", ("failed", "", "turns it off")),
    ((("vcet", "none"),), "user_shstk", ("failed", "", "should not offer cet-ss")),
])
def test_the_guest_must_show_the_cet_its_configuration_names(config, flags, expect) -> None:
    problem = guest_cet_problem(config, {"proc/cpuinfo": CPUINFO.format(flags=flags)})
    if expect is None:
        assert problem is None
    else:
        assert problem is not None and problem[:2] == expect[:2] and expect[2] in problem[2]
    assert guest_cet_problem(config, {})[0] == "failed"  # type: ignore[index]


def test_jobs_alternate_the_variants_and_count_only_guest_tracepoints() -> None:
    variants = [by_name("linux.syscall[vcet=shstk,shstk=off]"), by_name("linux.syscall[vcet=shstk,shstk=on]"),
                by_name("linux.vmexit.pio[vcet=shstk,shstk=on]")]
    jobs = _jobs(variants, 3, ImagePrograms())
    timed = [j.id for j in jobs if "#" in j.id]
    assert timed == [f"{v.name}#0" for v in variants] + [f"{v.name}#1" for v in variants[::-1]] + \
        [f"{v.name}#2" for v in variants]
    assert all(not j.events for j in jobs if "#" in j.id)  # tracepoints would inflate the timed runs
    counting = {j.id: j for j in jobs if "#" not in j.id}
    pio = variants[2]
    assert counting[f"{pio.name}x2"].argv[-1] == str(2 * count_ops(pio))
    assert not any(e.startswith("kvm:") for j in counting.values() for e in j.events)  # the host's KVM, not the guest's
    assert "raw_syscalls:sys_enter" in counting[f"{variants[0].name}x1"].events
    assert counting[f"{variants[1].name}x1"].argv[:1] == ("/bin/host_syscall",)
    argv = counting[f"{variants[1].name}x1"].argv
    assert argv[argv.index("--shstk") + 1] == "on"


def _fake_qemu(tmp_path: Path, version: str, flags: str) -> Path:
    script = tmp_path / "qemu-system-x86_64"
    script.write_text("#!/bin/sh\n"
                      f'[ "$1" = --version ] && echo "QEMU emulator version {version}" && exit 0\n'
                      f'[ "$1" = -cpu ] && printf "x86 max\\n\\nRecognized CPUID flags:\\n  fpu {flags}\\n" && exit 0\n'
                      f"echo \"{OLD_QEMU.strip()}\" >&2; exit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_qemu_too_old_for_cet_is_named_as_the_refuser(tmp_path, monkeypatch) -> None:
    """QEMU 7.2 (Debian 12) knows neither flag: every CET-on configuration is unsupported by qemu, in
    words naming the version, and no boot is tried."""
    from cetbench import linux_guest
    from cetbench.probe import collect
    from cetbench.results.bundle import Bundle

    monkeypatch.setenv(qemu_mod.ENV_QEMU, str(_fake_qemu(tmp_path, "7.2.15 (Debian 1:7.2+dfsg-7)", "sse")))
    found = find_qemu()
    assert isinstance(found, Qemu) and found.origin == "env" and not found.knows("shstk")
    variants = [by_name("linux.syscall[vcet=shstk,shstk=on]"), by_name("linux.syscall[vcet=shstk,shstk=off]")]
    bundle = Bundle.create(tmp_path / "run", {"variants": {v.name: {"status": "pending", "kind": "linux"}
                                                          for v in variants}})
    linux_guest.run_linux_variants(bundle, variants, collect(), quick=True)
    for v in variants:
        entry = bundle.manifest["variants"][v.name]
        assert entry["status"] == "unsupported" and entry["refused_by"] == "qemu"
        assert "QEMU 7.2.15" in entry["reason"] and "does not know cet-ss" in entry["reason"]
    assert not (tmp_path / "run" / "linux").exists()


def test_no_qemu_at_all_is_said_once_per_variant(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(qemu_mod.ENV_QEMU, str(tmp_path / "nothing-here"))
    assert "is not a file" in str(find_qemu())
    monkeypatch.delenv(qemu_mod.ENV_QEMU)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CETBENCH_LAB_CACHE", str(tmp_path / "cache"))
    assert "no QEMU" in str(find_qemu())


def test_an_archive_copy_is_run_through_its_own_loader(tmp_path, monkeypatch) -> None:
    root = tmp_path / "cache" / "qemu" / "root-x"
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    (root / "usr" / "bin").mkdir(parents=True)
    libs.mkdir(parents=True)
    for f in (libs / "ld-linux-x86-64.so.2", root / "usr" / "bin" / "qemu-system-x86_64"):
        f.write_text("")
    (tmp_path / "cache" / "qemu" / qemu_mod.MARKER).write_text(json.dumps({"root": str(root), "packages": ["a=1"]}))
    copy = qemu_mod.archive_copy(tmp_path / "cache")
    assert copy is not None and copy.argv[:2] == [str(libs / "ld-linux-x86-64.so.2"), "--library-path"]
    assert copy.env["QEMU_MODULE_DIR"] == str(libs / "qemu")
    assert "-L" in copy.argv and os.fspath(root / "usr" / "share" / "seabios") in copy.argv


def test_host_counter_counts_the_process_between_a_jobs_start_and_result_lines(tmp_path) -> None:
    """What counts the kvm:* events of a QEMU on KVM, on a plain process here: perf stat -p started by the
    start line, stopped by the result line, counting exactly what the process did in between."""
    import subprocess
    import sys
    import time

    from cetbench.lab.qemu_counts import HostCounter
    from cetbench.lab.serial import LabLine
    from cetbench.perfstat import perf_binary

    perf = perf_binary()
    if perf is None:
        pytest.skip("no perf")
    child = subprocess.Popen([sys.executable, "-c", "import os, sys\nfor line in sys.stdin:\n"
                              "    for _ in range(int(line)): os.getppid()\n    print('done', flush=True)\n"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    counter = HostCounter(perf, {3: ("syscalls:sys_enter_getppid",)})
    counter.attach(child.pid)
    try:
        counter.on_line(LabLine("start", {"index": 2}, 1))  # not a counted job: nothing starts
        assert not counter.running
        counter.on_line(LabLine("start", {"index": 3}, 2))
        time.sleep(1.0)  # the agent's settle
        child.stdin.write("4321\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        counter.on_line(LabLine("job", {"index": 3}, 3))
    finally:
        counter.close()
        child.kill()
        child.wait()
    if 3 in counter.errors and "counted nothing" in counter.errors[3]:
        pytest.skip(f"tracepoints cannot be counted here: {counter.errors[3]}")
    assert counter.errors == {}
    assert counter.counts[3]["syscalls:sys_enter_getppid"].count == 4321


def test_a_counter_whose_result_line_never_came_gives_no_count() -> None:
    from cetbench.lab.qemu_counts import HostCounter
    from cetbench.lab.serial import LabLine

    counter = HostCounter("/bin/sleep", {1: ("kvm:kvm_exit",)})
    counter.on_line(LabLine("start", {"index": 1}, 1))
    assert "not known" in counter.errors[1]  # QEMU's pid never came
    counter = HostCounter(str(Path("/bin/sleep")), {1: ("kvm:kvm_exit",)})
    counter.argv = lambda index: ["/bin/sleep", "30"]  # type: ignore[method-assign]
    counter.attach(1)
    counter.on_line(LabLine("start", {"index": 1}, 1))
    counter.close()
    assert 1 not in counter.counts and "never arrived" in counter.errors[1]


def test_settle_is_written_only_where_asked_and_bounded() -> None:
    from cetbench.lab.errors import LabError
    from cetbench.lab.jobs import LabJob, encode_jobs

    text = encode_jobs([LabJob("a", ("/bin/true",), settle_s=1.0), LabJob("b", ("/bin/true",))])
    assert text.count("settle 1\n") == 1
    with pytest.raises(LabError, match="settle_s"):
        encode_jobs([LabJob("a", ("/bin/true",), settle_s=-1)])
    jobs = _jobs([by_name("linux.vmexit.pio[vcet=none,shstk=off]"), by_name("linux.syscall[vcet=none,shstk=off]")],
                 1, ImagePrograms(), settle_s=1.0)
    settled = {j.id for j in jobs if j.settle_s}
    assert settled == {"linux.vmexit.pio[vcet=none,shstk=off]x1", "linux.vmexit.pio[vcet=none,shstk=off]x2"}


def test_per_op_counts_are_the_difference_of_the_n_and_2n_runs_guest_and_host_side() -> None:
    from cetbench.lab.jobs import JobResult
    from cetbench.linux_guest import _perf_doc

    v = by_name("linux.vmexit.pio[vcet=none,shstk=off]")
    n = count_ops(v)

    def result(k: int) -> JobResult:
        return JobResult(f"x{k}", 0, {"iterations": k * n}, {"sched:sched_switch": 7 + k * n // 10}, [], None)

    host = ({"kvm:kvm_exit": 30.0 + n, "kvm:kvm_pio": 2.0 + n}, {"kvm:kvm_exit": 30.0 + 2 * n, "kvm:kvm_pio": None})
    doc = _perf_doc(v, result(1), result(2), host)
    assert doc["events"]["sched:sched_switch"]["per_op"] == pytest.approx(0.1)
    exits = doc["events"]["kvm:kvm_exit"]
    assert exits["per_op"] == 1.0 and "perf stat -p QEMU" in exits["note"]
    assert "kvm:kvm_pio" not in doc["events"]  # one side not counted: no difference to give
    tcg = _perf_doc(v, result(1), result(2), "no VM exits under TCG")
    assert tcg["events"]["kvm:kvm_exit"]["state"] == "not counted"
    assert "no VM exits under TCG" in tcg["events"]["kvm:kvm_exit"]["note"]


def test_the_plan_refuses_a_cet_vcpu_in_qemus_words_and_leaves_cet_off_to_run() -> None:
    from cetbench.facts import QemuFacts
    from cetbench.plan import linux_refusals

    words = "TCG doesn't support requested feature: CPUID[eax=07h,ecx=00h].ECX.cet-ss [bit 7]"
    facts = QemuFacts("QEMU 11.1.3", "tcg", "no VMX/SVM", {"ibt": None, "shstk": words, "ibt+shstk": words})
    assert linux_refusals(facts, frozenset()) == []
    assert linux_refusals(facts, frozenset({"ibt"})) == []  # accepted: the guest kernel decides the rest
    assert linux_refusals(facts, frozenset({"shstk", "ibt"})) == [("qemu", f"QEMU (TCG): {words}")]
    missing = QemuFacts(None, "tcg", None, error="no QEMU: qemu-system-x86_64 is not on PATH")
    assert linux_refusals(missing, frozenset()) == [("qemu", "no QEMU: qemu-system-x86_64 is not on PATH")]
    assert linux_refusals(None, frozenset({"shstk"})) == []  # not probed (a fixture host): decided at run time
