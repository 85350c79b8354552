"""The probe's parsing and verdicts on fixture hosts written from the documented formats."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cetbench.hostview import HostView
from cetbench.perfstat import SEP
from cetbench.plan import plan
from cetbench.probe import collect, document
from cetbench.workloads.table import all_variants
from cetbench.workloads.variants import AXIS_BY_NAME
from tests.support.hostfixtures import HOSTS

GUEST_CET_CONFIGS = [f"cet={v}" for v in AXIS_BY_NAME["cet"].values]


def fake_perf(cmd: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """Replays what perf 6.1 printed on a host without PMU access but with tracepoints."""
    if cmd[1] == "--version":
        return 0, "perf version 6.1.0\n", ""
    event = cmd[cmd.index("-e") + 1]
    if event in ("cycles", "instructions"):
        return 0, "", f"<not supported>{SEP}{SEP}{event}{SEP}0{SEP}100.00{SEP}{SEP}\n"
    if event == "kvm:kvm_bogus":
        return 129, "", "event syntax error: 'kvm:kvm_bogus'\n"
    return 0, "", f"3{SEP}{SEP}{event}{SEP}1000{SEP}100.00{SEP}{SEP}\n"


def probe_document(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The probe document (`cetbench probe --json`) of a fixture host: its facts and the plan."""
    facts = collect(*args, **kwargs)
    return document(facts, plan(facts, all_variants()))


def probe_fixture(name: str, tmp_path: Path, euid: int = 0) -> dict[str, Any]:
    host = HOSTS[name]
    view = HostView(host.write_tree(tmp_path / name))
    return probe_document(view, host.native(), None, run=fake_perf, perf="perf", ncpus=4, euid=euid)


def verdicts(doc: dict[str, Any]) -> dict[str, tuple[bool, str | None, str | None]]:
    """Each variant's (runnable, reason, refused by); `guest[cet=X]` is the CPUID-exit guest's."""
    out = {v["name"]: (v["runnable"], v["reason"], v["refused_by"]) for v in doc["variants"]}
    for cet in GUEST_CET_CONFIGS:
        out[f"guest[{cet}]"] = out[f"guest.vmexit.cpuid[{cet}]"]
    return out


def test_intel_with_cet_runs_everything(tmp_path: Path) -> None:
    doc = probe_fixture("intel-spr-cet", tmp_path)
    assert doc["cpu"]["vendor"] == "GenuineIntel"
    assert (doc["cpu"]["family"], doc["cpu"]["model"], doc["cpu"]["stepping"]) == (6, 0x8F, 8)
    assert doc["cpu"]["model_name"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert doc["cpu"]["shstk"] and doc["cpu"]["ibt"] and doc["cpu"]["xss_cet_u"] and doc["cpu"]["xss_cet_s"]
    assert doc["kernel"]["build_id"] == bytes(range(20)).hex()
    assert doc["kernel"]["config"]["X86_USER_SHADOW_STACK"] == "y"
    assert doc["kvm"]["offers_shstk"] and doc["kvm"]["offers_ibt"]
    assert doc["kvm"]["verdict"] == "KVM offers SHSTK and IBT"
    assert doc["kvm"]["hardware"] is True
    assert all(runnable for runnable, _, _ in verdicts(doc).values())


def test_ibt_off_hides_ibt_only(tmp_path: Path) -> None:
    doc = probe_fixture("intel-spr-ibt-off", tmp_path)
    assert doc["kernel"]["cmdline"]["ibt"] == "off"
    assert doc["kernel"]["cpuinfo_flags"]["ibt"] is False
    v = verdicts(doc)
    assert v["host.syscall[shstk=on]"][0] is True
    assert v["guest[cet=shstk]"][0] is True
    for cet in ("cet=ibt", "cet=ibt+shstk"):
        runnable, reason, by = v[f"guest[{cet}]"]
        assert not runnable and by == "kvm"
        assert reason is not None and reason.startswith("KVM does not offer IBT")
        assert "CPUID.7.0:EDX[20]=0" in reason
    assert doc["kvm"]["verdict"].startswith("KVM offers SHSTK but not IBT")


def test_amd_zen4_has_shstk_but_no_ibt(tmp_path: Path) -> None:
    doc = probe_fixture("amd-zen4", tmp_path)
    assert (doc["cpu"]["family"], doc["cpu"]["model"]) == (0x19, 0x11)
    v = verdicts(doc)
    assert v["host.ctxswitch[shstk=on]"][0] is True
    assert v["guest[cet=shstk]"][0] is True
    runnable, reason, by = v["guest[cet=ibt]"]
    assert not runnable and by == "cpu" and reason == "AMD CPUs implement shadow stack only, no IBT"
    assert v["guest[cet=ibt+shstk]"][2] == "cpu"


def test_host_like_ci_refuses_every_cet_variant(tmp_path: Path) -> None:
    doc = probe_fixture("no-cet-like-ci", tmp_path)
    v = verdicts(doc)
    for name in ("host.syscall", "host.ctxswitch", "host.signal"):
        assert v[f"{name}[shstk=off]"] == (True, None, None)
        runnable, reason, by = v[f"{name}[shstk=on]"]
        assert not runnable and by == "kernel"
        assert reason == "kernel built without CONFIG_X86_USER_SHADOW_STACK"
    assert v["guest[cet=none]"][0] is True
    runnable, reason, by = v["guest[cet=shstk]"]
    assert not runnable and by == "kvm" and reason is not None
    assert "supported XSS lacks CET_U and CET_S" in reason
    assert doc["kvm"]["implementation"] == "kvm_pvm" and doc["kvm"]["hardware"] is False
    assert doc["kvm"]["verdict"].startswith("KVM offers neither SHSTK nor IBT")


def test_old_cpu_without_kvm_or_config(tmp_path: Path) -> None:
    doc = probe_fixture("intel-skylake-no-kvm", tmp_path)
    assert doc["kernel"]["config"]["X86_USER_SHADOW_STACK"] == "unknown"
    assert "/proc/config.gz" in doc["kernel"]["unknown"]["config"]
    assert "/boot/config-6.18.0" in doc["kernel"]["unknown"]["config"]
    v = verdicts(doc)
    assert v["host.signal[shstk=on]"] == (False, "CPU lacks SHSTK (CPUID.7.0:ECX[7]=0)", "cpu")
    for cet in GUEST_CET_CONFIGS:
        runnable, reason, by = v[f"guest[{cet}]"]
        assert not runnable and by == "kernel" and reason is not None and "/dev/kvm" in reason


def test_perf_events_are_tried_one_by_one(tmp_path: Path) -> None:
    doc = probe_fixture("intel-spr-cet", tmp_path)
    events = doc["perf"]["events"]
    assert events["cycles"]["counts"] is False and events["cycles"]["state"] == "not supported"
    assert events["kvm:kvm_fpu"]["counts"] is True
    assert doc["perf"]["version"] == "6.1.0" and doc["perf"]["paranoid"] == 2


def test_unreadable_sources_become_unknown_with_reasons(tmp_path: Path) -> None:
    host = HOSTS["intel-spr-cet"]
    root = host.write_tree(tmp_path / "broken")
    for rel in ("proc/cpuinfo", "proc/sys/kernel/osrelease", "sys/kernel/notes"):
        (root / rel).unlink()
        (root / rel).mkdir()  # a directory where a file should be: unreadable even for root
    (root / "proc/config.gz").write_bytes(b"not gzip at all")

    def no_perf(cmd: Sequence[str], timeout: float) -> tuple[int, str, str]:
        return 127, "", "perf: No such file or directory"

    doc = probe_document(HostView(root), None, "cc not found", run=no_perf, perf="perf", ncpus=2)
    assert doc["cpu"]["shstk"] is None and doc["cpu"]["unknown"]["shstk"] == "cc not found"
    assert doc["kernel"]["release"] is None and "Is a directory" in doc["kernel"]["unknown"]["release"]
    assert doc["kernel"]["build_id"] is None and "build_id" in doc["kernel"]["unknown"]
    assert doc["kernel"]["config"]["X86_KERNEL_IBT"] == "unknown"
    assert "not a readable gzip file" in doc["kernel"]["unknown"]["config"]
    assert doc["kernel"]["cpuinfo_flags"]["user_shstk"] is None
    assert doc["kvm"]["openable"] is False and doc["kvm"]["error"] == "cc not found"
    assert doc["perf"]["version"] is None and "No such file" in doc["perf"]["unknown"]["version"]
    # Unknown is not refusal: the host variant with shstk=on is not refused on guesses.
    v = {x["name"]: x for x in doc["variants"]}
    assert v["host.syscall[shstk=on]"]["runnable"] is True


def test_perf_refusing_is_recorded_not_fatal(tmp_path: Path) -> None:
    root = HOSTS["no-cet-like-ci"].write_tree(tmp_path / "h")

    def paranoid(cmd: Sequence[str], timeout: float) -> tuple[int, str, str]:
        if cmd[1] == "--version":
            return 0, "perf version 6.1.0\n", ""
        return 255, "", "Error:\nAccess to performance monitoring and observability operations is limited.\n"

    doc = probe_document(HostView(root), HOSTS["no-cet-like-ci"].native(), None, run=paranoid, perf="perf", ncpus=2)
    assert doc["perf"]["usable"] is False
    assert all(e["state"] == "unavailable" for e in doc["perf"]["events"].values())
    assert doc["perf"]["events"]["cycles"]["note"].startswith("Error: Access to performance monitoring")


KNOB = "guest.vmexit.cpuid[cet=none,kvmcet=0]"


def test_the_kvm_cet_knob_needs_kvm_intel_with_the_parameter_and_root(tmp_path: Path) -> None:
    doc = probe_fixture("intel-spr-cet", tmp_path / "root")
    assert doc["kvm"]["parameters"] == {"cet": "Y", "ept": "Y"}
    assert verdicts(doc)[KNOB] == (True, None, None)
    runnable, reason, by = verdicts(probe_fixture("intel-spr-cet", tmp_path / "user", euid=1000))[KNOB]
    assert not runnable and by == "host" and reason is not None and "needs root" in reason
    runnable, reason, by = verdicts(probe_fixture("intel-spr-ibt-off", tmp_path / "old"))[KNOB]
    assert not runnable and by == "kernel" and reason is not None and "from Linux 7.1" in reason
    runnable, reason, by = verdicts(probe_fixture("amd-zen4", tmp_path / "amd"))[KNOB]
    assert not runnable and by == "kvm" and reason is not None and reason.startswith("kvm_amd: the CET knob")



def test_a_guest_can_take_the_hosts_xss_only_where_kvm_lets_it_set_every_bit(tmp_path: Path) -> None:
    name = "guest.vmexit.cpuid[cet=shstk,xss=host]"
    amd = probe_fixture("amd-zen4", tmp_path / "amd")
    assert amd["cpu"]["xss"] == "0x1800" and verdicts(amd)[name] == (True, None, None)
    runnable, reason, by = verdicts(probe_fixture("intel-spr-ibt-off", tmp_path / "lbr"))[name]
    assert not runnable and by == "kvm" and reason is not None and "bits (0x8000) KVM never lets a guest set" in reason
    runnable, reason, _ = verdicts(probe_fixture("no-cet-like-ci", tmp_path / "nomsr"))[name]
    assert not runnable and reason is not None and "/dev/cpu/0/msr" in reason


def test_a_release_that_is_not_a_file_name_never_reads_outside_boot(tmp_path: Path) -> None:
    # Found by the lab fuzz target: the lab guest's osrelease is what its serial line says; a NUL in it
    # raised out of the probe, and `/..` in it made a path out of the tree of /boot/config-RELEASE.
    from cetbench.probe_kernel import probe_kernel

    for name, release in (("nul", "7.2\0x"), ("dots", "x/../../../outside")):
        root = tmp_path / name / "tree"
        (root / "proc/sys/kernel").mkdir(parents=True)
        (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
        (root / "boot/config-x").mkdir(parents=True)
        (tmp_path / name / "outside").write_text("CONFIG_X86_KERNEL_IBT=y\n")
        kernel = probe_kernel(HostView(root))
        assert kernel.release == release and kernel.config["source"] is None
        assert f"/boot/config-{release!r}: the release is not a file name" in kernel.unknown["config"]


def test_a_name_with_a_nul_is_a_reason_never_a_crash(tmp_path: Path) -> None:
    view = HostView(tmp_path)
    data, why = view.read_bytes("proc/a\0b")
    assert data is None and why == "/'proc/a\\x00b': not a file name (NUL)"
    assert view.read_text("a\0b")[0] is None and view.listdir("a\0b") == [] and not view.exists("a\0b")


def test_a_native_probe_document_that_is_not_its_own_is_a_reason(tmp_path: Path) -> None:
    # Found by the lab fuzz target: the lab's cetbench-probe output comes over a serial line; a CPUID
    # entry without its subleaf raised KeyError out of the probe, and the lab's bundle was never written.
    host = HOSTS["intel-spr-cet"]
    view = HostView(host.write_tree(tmp_path / "tree"))
    good = host.native()
    bad_entry = {**good, "cpuid": [*good["cpuid"][:-1], {"leaf": 1, "sub\u00fcleaf": 0, "eax": 1}]}
    for native, why in (
        (bad_entry, "cpuid holds {'leaf': 1, 'sub\u00fcleaf': 0, 'eax': 1}, not a CPUID entry"),
        ({**good, "cpuid": {"leaf": 1}}, "cpuid is {'leaf': 1}, not a list"),
        ({**good, "cpuid": [{**good["cpuid"][0], "eax": "0x1f"}]}, "not a CPUID entry"),
        ({**good, "kvm": [1]}, "kvm is [1], not an object"),
        ({**good, "kvm": {**good["kvm"], "supported_cpuid": [{"leaf": 2**40}]}}, "kvm.supported_cpuid holds"),
        ({**good, "kvm": {"error": 5}}, "kvm.error is 5, not a message"),
        ([1, 2], "[1, 2] is not a JSON object"),
    ):
        doc = probe_document(view, native, None, run=fake_perf, perf="perf", ncpus=4)  # type: ignore[arg-type]
        reason = doc["cpu"]["unknown"]["shstk"]
        assert reason.startswith("cetbench-probe's output is not what it prints: ") and why in reason, reason
        assert doc["cpu"]["shstk"] is None and doc["kvm"]["openable"] is False
    assert probe_document(view, good, None, run=fake_perf, perf="perf", ncpus=4)["cpu"]["unknown"] == {}


def test_a_load_average_that_is_not_three_numbers_is_unknown(tmp_path: Path) -> None:
    # Found by the lab fuzz target: the lab guest's /proc/loadavg of "zz" raised ValueError out of the probe.
    root = HOSTS["intel-spr-cet"].write_tree(tmp_path / "tree")
    cases = (("zz", None), ("nan nan nan 1/2 3", None), ("0.5", None), ("0.10 0.20 0.30 1/200 1234", [0.1, 0.2, 0.3]))
    for text, load in cases:
        (root / "proc/loadavg").write_text(text + "\n")
        doc = probe_document(HostView(root), None, "x", run=fake_perf, perf="perf", ncpus=4)
        assert doc["noise"]["load_avg"] == load
