"""The runner end to end with real native programs: failures, hangs, refusals, resume after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyperf
import pytest

from cetbench import plan, runner
from cetbench.leftovers import working_for
from cetbench.runner import RunError, RunOptions, execute
from cetbench.workloads import table
from cetbench.workloads.table import Workload
from tests.support import runner_faults as rf

FAST_PYPERF = ("--processes", "1", "--values", "2", "--warmups", "0", "--loops", "1000")
SLOW_PYPERF = ("--processes", "6", "--values", "3", "--warmups", "1", "--loops", "30000")


def misbehaving(mode: str) -> Workload:
    return Workload(f"host.test.{mode}", "host", "test_misbehave", "nothing", (), "test-only",
                    program_args=("--mode", mode))


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CETBENCH_HOME", str(tmp_path / "home"))
    return tmp_path


def test_failures_and_hangs_are_recorded_while_the_rest_runs(isolated_data: Path, monkeypatch) -> None:
    modes = ("crash", "hang", "fail", "garbage", "big-crash")
    monkeypatch.setattr(table, "WORKLOADS", (*[misbehaving(m) for m in modes], table.WORKLOADS[0]))
    opts = RunOptions(only=["*[shstk=off]"], out=isolated_data / "b", timeout=4, pyperf_args=FAST_PYPERF)
    bundle = execute(opts)
    v = bundle.manifest["variants"]
    assert v["host.test.crash[shstk=off]"]["status"] == "failed"
    assert "SIGABRT" in v["host.test.crash[shstk=off]"]["reason"]
    assert v["host.test.hang[shstk=off]"]["status"] == "failed"
    assert "timed out" in v["host.test.hang[shstk=off]"]["reason"]
    assert v["host.test.fail[shstk=off]"]["reason"].startswith("test failure requested")
    assert v["host.test.garbage[shstk=off]"]["status"] == "failed"
    assert v["host.test.big-crash[shstk=off]"]["status"] == "failed"  # preflight passed, pyperf died
    assert v["host.test.big-crash[shstk=off]"]["reason"].startswith("pyperf exited")
    for name, entry in v.items():
        if entry["status"] == "failed":
            assert entry["pyperf"] is None, name
    ok = v["host.syscall[shstk=off]"]
    assert ok["status"] == "measured"
    suite = pyperf.BenchmarkSuite.load(str(bundle.root / ok["pyperf"]))
    assert suite.get_benchmarks()[0].get_nvalue() == 2
    assert bundle.manifest["finished_utc"] is not None


def test_kernel_refusal_of_shadow_stack_is_recorded_as_unsupported(isolated_data: Path, monkeypatch) -> None:
    """Pretend the probe allowed shstk=on, so the workload itself asks the kernel and is refused."""
    if runner.collect().kernel.cpuinfo_flags.get("user_shstk"):
        pytest.skip("this kernel grants user shadow stacks: there is no refusal to observe")
    monkeypatch.setattr(plan, "refusals_of", lambda variant, facts: [])
    bundle = execute(RunOptions(only=["host.syscall[shstk=on]"], out=isolated_data / "b",
                                pyperf_args=FAST_PYPERF))
    entry = bundle.manifest["variants"]["host.syscall[shstk=on]"]
    assert entry["status"] == "unsupported"
    assert entry["refused_by"] == "kernel"
    assert "ARCH_SHSTK_ENABLE" in entry["reason"]
    assert entry["pyperf"] is None and not list((bundle.root / "variants").glob("*.pyperf.json"))


def test_unsupported_variants_carry_reasons_and_no_numbers(isolated_data: Path) -> None:
    bundle = execute(RunOptions(only=["host.signal*"], out=isolated_data / "b", pyperf_args=FAST_PYPERF))
    probe_rows = {r["name"]: r for r in bundle.manifest["probe"]["variants"]}
    for name, entry in bundle.manifest["variants"].items():
        if not probe_rows[name]["runnable"]:
            assert entry["status"] == "unsupported" and entry["reason"] == probe_rows[name]["reason"]
            assert entry["pyperf"] is None and entry["raw"] is None


def test_inject_cycles_grows_cycles_per_op(isolated_data: Path) -> None:
    def cycles(out: str, inject: int) -> float:
        bundle = execute(RunOptions(only=["host.syscall[shstk=off]"], out=isolated_data / out,
                                    inject_cycles=inject, pyperf_args=FAST_PYPERF))
        assert bundle.manifest["options"]["inject_cycles"] == inject
        raw = bundle.root / bundle.manifest["variants"]["host.syscall[shstk=off]"]["raw"]
        recs = [json.loads(line) for line in raw.read_text().splitlines()]
        return min(r["tsc_ticks"] / r["iterations"] for r in recs)

    k = 3000
    assert cycles("with", k) - cycles("without", 0) >= k / 2


def test_bad_input_is_refused_in_one_line(isolated_data: Path) -> None:
    with pytest.raises(RunError, match=r"matches no variant; known variants: host\.syscall"):
        execute(RunOptions(only=["host.nosuch*"], out=isolated_data / "x"))
    junk = isolated_data / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not an empty directory or a cetbench bundle"):
        execute(RunOptions(out=junk))
    assert (junk / "notes.txt").read_text() == "mine"
    with pytest.raises(RunError, match="cannot create"):
        execute(RunOptions(out=Path("/proc/cetbench-cannot-write-here")))
    with pytest.raises(RunError, match="not a cetbench bundle"):
        execute(RunOptions(resume=junk))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cetbench", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_sigkill_of_the_runner_alone_then_resume_keeps_one_copy_of_every_sample(isolated_data: Path) -> None:
    """As the OOM killer does, only the runner is killed: pyperf's workers, in a session of their own, ran
    on, timing loops on the CPU the resumed run measured on and appending records to its raw file
    (24 records too many in one try). The resume kills them first, and each attempt writes its own
    files, renamed into place when pyperf finishes."""
    home, out = isolated_data / "home", isolated_data / "killed"
    slow = (*rf.PYPERF[:-1], "30000")  # the guest's workers outlive the resume's start
    proc = rf.start(rf.run_argv(out, slow), home)
    assert rf.wait_until(proc, "guest", out) and rf.wait_until(proc, "pyperf", out), proc.communicate()[1]
    measured_first = json.loads((out / "manifest.json").read_text())["variants"][rf.VARIANTS[0]]
    kept = hashlib.sha256((out / measured_first["pyperf"]).read_bytes()).hexdigest()

    proc.kill()
    proc.wait()

    orphans = set(working_for(out))
    assert orphans, "nothing outlived the runner: the fault this test is about did not happen"
    resumed = rf.start(rf.cetbench_argv("run", "--resume", str(out), "--no-store"), home)
    # When the resume's own workers start timing, the killed run's must be gone.
    assert rf.wait_until(resumed, "pyperf", out, under=resumed.pid), resumed.communicate()[1]
    assert not orphans & set(working_for(out))
    assert resumed.wait(timeout=rf.GUARD_S) == 0, resumed.communicate()[1]
    assert rf.problems(out) == []
    assert hashlib.sha256((out / measured_first["pyperf"]).read_bytes()).hexdigest() == kept


def test_sigterm_during_the_perf_pass_ends_in_one_line_and_a_resumable_bundle(isolated_data: Path) -> None:
    home, out = isolated_data / "home", isolated_data / "termed"
    proc = rf.start(rf.run_argv(out), home)
    if not rf.wait_until(proc, "perf", out):
        pytest.skip(f"no perf counting pass here: {proc.communicate()[1].strip()[-200:]}")

    proc.terminate()

    _, stderr = proc.communicate(timeout=rf.GUARD_S)
    assert proc.returncode == 128 + signal.SIGTERM and rf.one_line(stderr), stderr
    assert f"cetbench run --resume {out}" in stderr
    assert working_for(out) == []  # nothing of the run goes on
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["finished_utc"] is None and "pending" in {v["status"] for v in doc["variants"].values()}
    assert not [p for d in (out, out / "variants") for p in d.glob(".*")]
    resumed = rf.resume(out, home)
    assert resumed.returncode == 0, resumed.stderr
    assert rf.problems(out) == []


def test_resume_of_a_finished_run_changes_nothing_and_refuses_another_host(isolated_data: Path) -> None:
    env = {**os.environ, "CETBENCH_HOME": str(isolated_data / "home")}
    out = isolated_data / "b"
    first = _cli("run", "--only", "host.syscall[shstk=off]", "--out", str(out), "--json",
                 *[f"--pyperf-arg={a}" for a in FAST_PYPERF], env=env)
    assert first.returncode == 0, first.stderr
    finished = (out / "manifest.json").read_bytes()
    # A kill after the last variant, then a resume: it gave the run a new finish time, so its ingest was
    # refused as another run under a stored run id (exit 3).
    done = _cli("run", "--resume", str(out), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.json").read_bytes() == finished
    doc = json.loads((out / "manifest.json").read_text())
    doc["host"]["hostname"] = "elsewhere"
    (out / "manifest.json").write_text(json.dumps(doc))
    again = _cli("run", "--resume", str(out), env=env)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "recorded on elsewhere" in again.stderr


def test_interleaved_variants_alternate_their_worker_processes(isolated_data: Path) -> None:
    """Two variants of one workload (a known delay makes the second): round r runs process r of
    each, alternating which goes first; each pyperf file keeps every process, with one loop count."""
    a, b = "host.syscall[shstk=off]", "host.syscall[shstk=off,inject=2000]"
    pyperf_args = ("--processes", "3", "--values", "2", "--warmups", "0", "--min-time", "0.01")
    bundle = execute(RunOptions(only=[a, b], out=isolated_data / "b", interleave=True, perf="off",
                                pyperf_args=pyperf_args))
    v = bundle.manifest["variants"]
    assert v[a]["status"] == v[b]["status"] == "measured", v
    runs = {n: pyperf.BenchmarkSuite.load(str(bundle.root / v[n]["pyperf"])).get_benchmarks()[0].get_runs()
            for n in (a, b)}
    timed = {n: [r for r in rs if r.values] for n, rs in runs.items()}
    assert [len(t) for t in timed.values()] == [3, 3]
    assert len({r.get_loops() for t in timed.values() for r in t if r.get_loops()}) <= 2  # one per variant
    dates = sorted((r._metadata["date"], n) for n, t in timed.items() for r in t)
    order = [n for _, n in dates]
    assert order == [a, b, b, a, a, b]  # rounds alternate the first variant
    raw = [json.loads(line) for line in (bundle.root / v[b]["raw"]).read_text().splitlines()]
    assert {r["inject_cycles"] for r in raw} == {2000}  # the axis reached the workload
