"""The runner end to end with real native programs: failures, hangs, refusals, resume after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyperf
import pytest

from cetbench import plan, runner
from cetbench.runner import RunError, RunOptions, execute
from cetbench.workloads import table
from cetbench.workloads.table import Workload

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


def test_sigkill_midway_then_resume_completes_without_touching_measured(isolated_data: Path) -> None:
    env = {**os.environ, "CETBENCH_HOME": str(isolated_data / "home"), "COLUMNS": "120"}
    out = isolated_data / "killed"
    pyperf_opts = [f"--pyperf-arg={a}" for a in SLOW_PYPERF]
    proc = subprocess.Popen([sys.executable, "-m", "cetbench", "run", "--only", "host.*[shstk=off]", "--out", str(out),
                             *pyperf_opts], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 240
    measured: list[str] = []
    while time.monotonic() < deadline and not measured:
        time.sleep(0.2)
        if manifest.exists():
            doc = json.loads(manifest.read_text())
            measured = [n for n, v in doc["variants"].items() if v["status"] == "measured"]
    assert measured, "the first variant never finished"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    doc = json.loads(manifest.read_text())
    statuses = {n: v["status"] for n, v in doc["variants"].items() if n.endswith("[shstk=off]")}
    assert "pending" in statuses.values(), f"the run finished before the kill: {statuses}"
    assert doc["finished_utc"] is None
    kept = {n: hashlib.sha256((out / doc["variants"][n]["pyperf"]).read_bytes()).hexdigest()
            for n, s in statuses.items() if s == "measured"}

    resumed = _cli("run", "--resume", str(out), "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(manifest.read_text())
    assert all(doc["variants"][n]["status"] == "measured" for n in statuses)
    assert doc["finished_utc"] is not None
    for name, digest in kept.items():
        assert hashlib.sha256((out / doc["variants"][name]["pyperf"]).read_bytes()).hexdigest() == digest


def test_resume_refuses_a_bundle_from_another_host(isolated_data: Path) -> None:
    env = {**os.environ, "CETBENCH_HOME": str(isolated_data / "home")}
    out = isolated_data / "b"
    first = _cli("run", "--only", "host.syscall[shstk=off]", "--out", str(out), "--json",
                 *[f"--pyperf-arg={a}" for a in FAST_PYPERF], env=env)
    assert first.returncode == 0, first.stderr
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
