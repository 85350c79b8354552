"""The perf counting pass (bench/perf_pass.py, bench/perf_kvm.py) against the real perf on this host.

Counts per op are exact facts about the workloads (one getppid per op, two context switches per
pinned round trip, one port-I/O exit per guest OUT), so they are asserted; timings never are. Every
way perf can fail must leave a perf.json that says why, and never raise.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cetbench import perf_kvm
from cetbench.native import Programs, variant_command
from cetbench.perf_pass import (
    count_variant,
    events_for,
    filtered_groups,
    ops_for_pass,
    rejected_event,
    run_group,
    stat_argv,
)
from cetbench.perfstat import perf_binary
from cetbench.workloads import table
from cetbench.workloads.build import build
from cetbench.workloads.mechanisms import event_specs as mechanism_events
from cetbench.workloads.mechanisms import split_spec

PERF = perf_binary()
needs_perf = pytest.mark.skipif(PERF is None, reason="perf is not installed here (Debian: linux-perf)")
PROGRAMS = Programs()


def host_cmd(program: str) -> list[str]:
    """The command of the program's shstk=off variant, as the runner builds it."""
    variant = next(v for v in table.all_variants() if v.workload.program == program and not v.cet_on)
    return variant_command(variant, PROGRAMS)


def workload(name: str) -> table.Workload:
    return next(w for w in table.WORKLOADS if w.name == name)


def count(tmp_path: Path, cmd: list[str], ops: int, events: list[str], **kw: Any) -> dict[str, Any]:
    out = tmp_path / f"{uuid.uuid4().hex}.perf.json"
    doc = count_variant(cmd, ops, events, out, kw.pop("perf", PERF), kw.pop("timeout", 60.0), **kw)
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))  # what was returned is what was written
    return doc


# ---- events_for ------------------------------------------------------------------------------------

def test_events_for_each_host_workload() -> None:
    syscall = events_for(workload("host.syscall"))
    assert syscall[:5] == ["task-clock", "context-switches", "cpu-migrations", "cycles", "instructions"]
    assert {"syscalls:sys_enter_getppid", "raw_syscalls:sys_enter"} <= set(syscall)
    plain = [e for e in syscall if split_spec(e)[1] is None]
    assert not any(e.startswith(("x86_fpu:", "kvm:")) for e in plain)
    # every host workload counts what the host mechanisms are priced from (filtered specs, own pass)
    assert set(mechanism_events("host")) <= set(syscall)
    for name in ("host.ctxswitch", "host.signal"):
        events = events_for(workload(name))
        assert "x86_fpu:*" in events
        # the table's key event x86_fpu:x86_fpu_regs_deactivated is inside the glob: not asked twice
        assert not [e for e in events if e.startswith("x86_fpu:") and e != "x86_fpu:*" and split_spec(e)[1] is None]
        assert len(events) == len(set(events))


def test_events_for_guest_workloads() -> None:
    pio, cpuid = workload("guest.vmexit.pio"), workload("guest.vmexit.cpuid")
    kvm = ["kvm:kvm_exit", "kvm:kvm_entry", "kvm:kvm_userspace_exit", "kvm:kvm_fpu", "kvm:kvm_pio", "kvm:kvm_cpuid"]
    assert sorted(e for e in events_for(pio) if e.startswith("kvm:")) == sorted(kvm)
    assert events_for(pio)[5] == "kvm:kvm_userspace_exit"  # the key event leads the kvm:* ones
    assert "x86_fpu:*" in events_for(pio)  # a userspace exit swaps the guest FPU state
    assert "x86_fpu:*" not in events_for(cpuid)
    # Without KVM the kvm:* tracepoints do not exist: not asked for.
    assert not [e for e in events_for(cpuid, kvm_present=False) if e.startswith("kvm:")]


# ---- real perf on the host workloads ----------------------------------------------------------------

@needs_perf
def test_host_syscall_counts_one_getppid_per_op(tmp_path: Path) -> None:
    events = events_for(workload("host.syscall"))
    doc = count(tmp_path, host_cmd("host_syscall"), 200_000, events)
    assert doc["available"], doc["reason"]
    assert doc["ops"] == 200_000  # the workload's own report, which per_op divides by
    getppid = doc["events"]["syscalls:sys_enter_getppid"]
    assert getppid["state"] == "counted"
    assert getppid["per_op"] == pytest.approx(1.0, abs=0.01)
    assert doc["events"]["raw_syscalls:sys_enter"]["per_op"] >= getppid["per_op"]
    assert doc["command"][:5] == [PERF, "stat", "-v", "-x", "\x1f"]
    assert doc["command"][-2:] == ["--iterations", "200000"]
    assert "--cpu" in doc["command"]  # pinning comes from the native command itself
    assert isinstance(doc["raw"], str) and "syscalls:sys_enter_getppid" in doc["raw"]


@needs_perf
def test_no_getppid_outside_the_loop(tmp_path: Path) -> None:
    """Start-up (loader, glibc, pinning) could call getppid too; two op counts show it does not:
    the difference is exactly the loop's, and the remainder is the start-up's."""
    event = ["syscalls:sys_enter_getppid"]
    small = count(tmp_path, host_cmd("host_syscall"), 1000, event)["events"][event[0]]["count"]
    large = count(tmp_path, host_cmd("host_syscall"), 3000, event)["events"][event[0]]["count"]
    assert large - small == 2000
    assert small - 1000 == 0, "something besides the loop calls getppid: per-op figures need more ops"


@needs_perf
def test_host_ctxswitch_two_switches_per_round_trip_counting_both_processes(tmp_path: Path) -> None:
    """Both ends pinned to CPU 0: each blocks in read once per round trip, so 2 switches per op, and
    only if perf follows the forked peer (inherit) — counting the parent alone would give ~1.
    Tolerance 1.99..2.10: start-up adds ~10 switches (5e-4 per op over 20000 ops), and the upper
    margin absorbs involuntary preemptions by other tasks on a shared CPU (each adds 1-2)."""
    doc = count(tmp_path, host_cmd("host_ctxswitch"), 20_000, events_for(workload("host.ctxswitch")))
    assert doc["available"], doc["reason"]
    assert doc["inherit"] is True
    per_op = doc["events"]["context-switches"]["per_op"]
    assert 1.99 <= per_op <= 2.10
    # The workload's own count (getrusage of both processes) agrees.
    assert per_op == pytest.approx(doc["workload"]["switches_per_op"], abs=0.05)
    assert doc["events"]["x86_fpu:x86_fpu_regs_deactivated"]["from"] == "x86_fpu:*"
    assert doc["events"]["x86_fpu:x86_fpu_regs_activated"]["state"] == "counted"


@needs_perf
def test_pmu_events_are_recorded_in_perfs_words(tmp_path: Path) -> None:
    doc = count(tmp_path, host_cmd("host_syscall"), 1000, ["task-clock", "cycles", "instructions"])
    assert doc["available"], doc["reason"]
    for name in ("cycles", "instructions"):
        entry = doc["events"][name]
        if entry["state"] == "counted":  # a host with a PMU: then it must really count
            assert entry["count"] > 0
            continue
        # This machine: "<not supported>", and -v's explanation of it.
        assert entry["state"] == "not supported"
        assert entry["count"] is None and entry["per_op"] is None
        assert f"{name} event is not supported by the kernel" in entry["note"]
    assert doc["events"]["task-clock"]["unit"] == "msec"


@needs_perf
def test_unknown_event_is_dropped_with_perfs_words_while_the_others_count(tmp_path: Path) -> None:
    events = ["task-clock", "kvm:kvm_nonexistent", "syscalls:sys_enter_getppid"]
    doc = count(tmp_path, host_cmd("host_syscall"), 20_000, events)
    assert doc["available"], doc["reason"]
    bad = doc["events"]["kvm:kvm_nonexistent"]
    assert bad["state"] == "unavailable" and bad["count"] is None
    assert "unknown tracepoint" in bad["note"] and "kvm_nonexistent not found" in bad["note"]
    assert "kvm:kvm_nonexistent" not in doc["command"]
    assert doc["events"]["syscalls:sys_enter_getppid"]["per_op"] == pytest.approx(1.0, abs=0.01)
    assert doc["requested"] == events


def test_ops_for_pass_follows_pyperfs_longest_run(tmp_path: Path) -> None:
    raw = tmp_path / "v.raw.jsonl"
    raw.write_text('{"iterations": 10}\n{"iterations": 120000, "elapsed_ns": 1}\nnot json\n{"iterations": 30000}\n')
    assert ops_for_pass(raw) == 120000
    assert ops_for_pass(raw, cap=50000) == 50000
    assert ops_for_pass(tmp_path / "missing.raw.jsonl") == 1000  # the floor


@needs_perf
def test_every_event_refused_is_unavailable_with_each_reason(tmp_path: Path) -> None:
    doc = count(tmp_path, host_cmd("host_syscall"), 10, ["kvm:kvm_nope_a", "nope_b"])
    assert doc["available"] is False and doc["reason"] == "perf refused every event asked for (see events)"
    assert "kvm_nope_a not found" in doc["events"]["kvm:kvm_nope_a"]["note"]
    assert "parser error" in doc["events"]["nope_b"]["note"]


# ---- perf missing, failing, hanging ----------------------------------------------------------------

def test_perf_missing_is_recorded_not_raised(tmp_path: Path) -> None:
    doc = count(tmp_path, ["/bin/true"], 10, ["task-clock"], perf=None)
    assert doc["available"] is False
    assert "perf not found" in doc["reason"]
    assert doc["command"] is None


def test_perf_binary_that_does_not_exist(tmp_path: Path) -> None:
    doc = count(tmp_path, ["/bin/true"], 10, ["task-clock"], perf=str(tmp_path / "no-such-perf"))
    assert doc["available"] is False
    assert "exited 127" in doc["reason"] and "No such file" in doc["reason"]


@pytest.mark.parametrize("ending,reason", [
    ("exit 1", "perf stat exited 1: perf: simulated breakage"),
    ("kill -SEGV $$", "perf stat was killed by SIGSEGV: perf: simulated breakage"),
])
def test_perf_that_fails_or_crashes(tmp_path: Path, ending: str, reason: str) -> None:
    fake = tmp_path / "perf"
    fake.write_text(f"#!/bin/sh\necho 'perf: simulated breakage' >&2\n{ending}\n")
    fake.chmod(0o755)
    doc = count(tmp_path, ["/bin/true"], 10, ["task-clock", "cycles"], perf=str(fake))
    assert doc["available"] is False
    assert doc["reason"] == reason


@needs_perf
def test_perf_timing_out_kills_perf_and_the_workload(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    cmd = [str(build("test_misbehave").path), "--mode", "hang", "--marker", marker]
    started = time.monotonic()
    doc = count(tmp_path, cmd, 10, ["task-clock"], timeout=2.0)
    assert time.monotonic() - started < 20
    assert doc["available"] is False
    assert "timed out after 2 s" in doc["reason"]
    assert not _processes_with(marker), "the hung workload outlived the perf pass"


@needs_perf
def test_workload_failing_under_perf_keeps_counts_but_is_unavailable(tmp_path: Path) -> None:
    cmd = [str(build("test_misbehave").path), "--mode", "fail"]
    doc = count(tmp_path, cmd, 10, ["task-clock"])
    assert doc["available"] is False
    assert "did not report its ops" in doc["reason"] and "test failure requested" in doc["reason"]
    assert doc["events"]["task-clock"]["state"] == "counted"
    assert doc["events"]["task-clock"]["per_op"] is None  # no ops to divide by


def test_unwritable_bundle_directory_is_recorded_not_raised(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "x.perf.json"
    doc = count_variant(["/bin/true"], 10, ["task-clock"], out, None, 5.0)
    assert doc["available"] is False and "could not write x.perf.json" in doc["reason"]


# Recorded on this machine: `perf stat -e syscalls:sys_enter_getppid` run as an unprivileged user
# (perf_event_paranoid=2, tracefs not readable): perf refuses the whole command line for that event.
PARANOID_REFUSAL = """event syntax error: 'syscalls:sys_enter_getppid'
                     \\___ can't access trace events

Error:\tNo permissions to read /sys/kernel/tracing/events/syscalls/sys_enter_getppid
Hint:\tTry 'sudo mount -o remount,mode=755 /sys/kernel/tracing/'

Run 'perf list' for a list of valid events

 Usage: perf stat [<options>] [<command>]
"""


def test_permission_refusal_drops_the_event_and_retries(tmp_path: Path) -> None:
    assert rejected_event(PARANOID_REFUSAL, ["task-clock", "syscalls:sys_enter_getppid"]) == (
        "syscalls:sys_enter_getppid",
        "can't access trace events; Error: No permissions to read /sys/kernel/tracing/events/syscalls/"
        "sys_enter_getppid; Hint: Try 'sudo mount -o remount,mode=755 /sys/kernel/tracing/'",
    )
    calls: list[list[str]] = []

    def replay(argv: Any, timeout: float) -> tuple[int, str, str]:
        calls.append(list(argv))
        if "syscalls:sys_enter_getppid" in argv:
            return 129, "", PARANOID_REFUSAL
        return 0, '{"iterations": 10}\n', "0.40\x1fmsec\x1ftask-clock\x1f400\x1f100.00\x1f0.5\x1fCPUs utilized\n"

    doc = count(tmp_path, ["w"], 10, ["task-clock", "syscalls:sys_enter_getppid"], perf="perf", run=replay)
    assert len(calls) == 2
    assert doc["available"] is True
    assert doc["events"]["task-clock"]["count"] == pytest.approx(0.40)
    refused = doc["events"]["syscalls:sys_enter_getppid"]
    assert refused["state"] == "unavailable" and "No permissions to read" in refused["note"]


def _processes_with(marker: str, grace: float = 5.0) -> list[int]:
    deadline = time.monotonic() + grace
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# ---- perf kvm stat ------------------------------------------------------------------------------

# Written from perf kvm stat report's documented layout (tools/perf/builtin-kvm.c, print_result):
# an Intel host running guest.vmexit.pio for 200000 ops, with perf's warning for a reason it
# cannot name, and the totals line.
KVM_STAT_REPORT = """

Analyze events for all VMs, all VCPUs:

             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time

      IO_INSTRUCTION     200000    99.85%    99.12%      1.21us     48.37us      1.43us ( +-   0.07% )
  EXTERNAL_INTERRUPT        241     0.12%     0.67%      0.61us    190.52us      8.01us ( +-  12.30% )
unknown kvm exit code:131072 on VMX
             UNKNOWN         30     0.01%     0.17%      0.34us     63.15us     16.00us ( +-  20.11% )
       EPT_VIOLATION         20     0.01%     0.04%      0.90us      4.52us      2.21us ( +-  10.01% )

Total Samples:200291, Total events handled time:288423.51us.

"""


def test_kvm_stat_report_is_parsed() -> None:
    parsed = perf_kvm.parse_report(KVM_STAT_REPORT)
    assert [r["reason"] for r in parsed["exits"]] == ["IO_INSTRUCTION", "EXTERNAL_INTERRUPT", "UNKNOWN",
                                                      "EPT_VIOLATION"]
    io = parsed["exits"][0]
    assert io == {"reason": "IO_INSTRUCTION", "samples": 200000, "samples_pct": 99.85, "time_pct": 99.12,
                  "min_us": 1.21, "max_us": 48.37, "avg_us": 1.43, "avg_spread_pct": 0.07}
    assert parsed["total_samples"] == 200291 and parsed["total_time_us"] == pytest.approx(288423.51)
    assert perf_kvm.parse_report("") == {"exits": [], "total_samples": None, "total_time_us": None}


def test_kvm_breakdown_records_then_reports_the_same_file() -> None:
    calls: list[list[str]] = []

    def replay(argv: Any, timeout: float) -> tuple[int, str, str]:
        calls.append(list(argv))
        if "record" in argv:
            return 0, '{"iterations": 5000}\n', ""
        return 0, KVM_STAT_REPORT, ""

    out = perf_kvm.breakdown("perf", ["vmm", "--cpu", "0"], 5000, 30.0, replay)
    assert out["available"] is True and out["ops"] == 5000
    record, report = calls
    assert record[:4] == ["perf", "kvm", "stat", "record"] and record[-2:] == ["--iterations", "5000"]
    data = record[record.index("-o") + 1]
    assert report == ["perf", "kvm", "-i", data, "stat", "report", "--event=vmexit"]
    assert out["exits"][0]["reason"] == "IO_INSTRUCTION" and "Total Samples:200291" in out["report"]
    assert not Path(data).exists()  # the perf.data file was a temporary


def test_kvm_breakdown_caps_ops_and_reports_failures() -> None:
    def failing(argv: Any, timeout: float) -> tuple[int, str, str]:
        return 255, "", "Error: simulated"

    out = perf_kvm.breakdown("perf", ["vmm"], 10 * perf_kvm.KVM_STAT_MAX_OPS, 30.0, failing)
    assert out["ops_requested"] == perf_kvm.KVM_STAT_MAX_OPS
    assert out["available"] is False and out["reason"] == "perf kvm stat record exited 255: Error: simulated"


def test_kvm_skip_reason_names_the_kvm_implementation() -> None:
    why = perf_kvm.skip_reason(0.0, "counted", None, 2000, "kvm_pvm")
    assert why is not None and "kvm_pvm" in why and "counted 0 over 2000 ops" in why
    why = perf_kvm.skip_reason(None, "unavailable", "perf: unknown tracepoint", 2000, None)
    assert why is not None and "unknown tracepoint" in why
    assert perf_kvm.skip_reason(2003.0, "counted", None, 2000, "kvm_intel") is None


@needs_perf
def test_real_perf_kvm_stat_accepts_our_command_lines() -> None:
    """No guest here: perf kvm stat over a host workload records no exits, but both command lines
    must be ones this perf accepts (the record exit status is checked before the report runs)."""
    out = perf_kvm.breakdown(str(PERF), host_cmd("host_syscall"), 1000, 60.0, run_group)
    assert out["reason"] == "perf kvm stat report listed no exit reasons", out
    assert out["ops"] == 1000 and "Total Samples:0" in out["report"]


# ---- guest variants (need the micro-VMM and the guest image) -----------------------------------------

def guest_cmd(variant_name: str) -> list[str]:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("/dev/kvm is not usable here")
    return variant_command(table.by_name(variant_name), PROGRAMS)


@pytest.fixture(scope="module")
def kvm_impl() -> str | None:
    from cetbench.probe import collect

    impl: str | None = collect().kvm.implementation
    return impl


@needs_perf
@pytest.mark.parametrize("name,events", [
    ("guest.vmexit.pio[cet=none]", ("kvm:kvm_userspace_exit", "kvm:kvm_pio")),
    ("guest.vmexit.cpuid[cet=none]", ("kvm:kvm_cpuid",)),
])
def test_guest_exit_events_once_per_op(tmp_path: Path, name: str, events: tuple[str, ...],
                                       kvm_impl: str | None) -> None:
    """2000 ops: the VMM's own set-up exits (a few port writes, a few CPUIDs) add < 0.005 per op."""
    cmd = guest_cmd(name)
    variant = table.by_name(name)
    doc = count(tmp_path, cmd, 2000, events_for(variant.workload), kvm_impl=kvm_impl)
    assert doc["available"], doc["reason"]
    for event in events:
        assert doc["events"][event]["per_op"] == pytest.approx(1.0, abs=0.01), event
    exits = doc["events"]["kvm:kvm_exit"]
    kvm_stat = doc["kvm_stat"]
    if exits["count"]:  # hardware KVM: perf kvm stat saw the exits
        assert kvm_stat["available"], kvm_stat["reason"]
        assert kvm_stat["total_samples"] >= 2000
    else:  # this machine: kvm_pvm fires no kvm_exit, and says so
        assert kvm_stat["available"] is False
        assert str(kvm_impl) in kvm_stat["reason"] and "counted 0" in kvm_stat["reason"]



def test_filtered_specs_run_in_groups_that_never_share_an_event() -> None:
    specs = ["a:x", "a:x if f == 1", "a:x if f == 2", "b:y if g == 3"]
    groups = filtered_groups(specs)
    assert groups == [["a:x if f == 1", "b:y if g == 3"], ["a:x if f == 2"]]
    argv = stat_argv("perf", ["a:x", "b:y if g == 3"], ["prog"], 5)
    assert argv[argv.index("-e"):argv.index("--")] == ["-e", "a:x", "-e", "b:y", "--filter", "g == 3"]


@needs_perf
def test_a_filtered_count_is_stored_under_its_spec(tmp_path: Path) -> None:
    """Every getppid enters through raw_syscalls:sys_enter with id 110; none with an id of -1."""
    specs = ["raw_syscalls:sys_enter if id == 110", "raw_syscalls:sys_enter if id == 99999"]
    doc = count(tmp_path, host_cmd("host_syscall"), 20_000, ["task-clock", *specs])
    assert doc["available"], doc["reason"]
    assert doc["events"][specs[0]]["per_op"] == pytest.approx(1.0, abs=0.01)
    assert doc["events"][specs[1]]["count"] == 0
