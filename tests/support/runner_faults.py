"""The runner under faults: start `cetbench run`, signal it at a chosen point, resume, and check the
finished bundle (test support for tests/test_runner.py and benchmarks/runner_faults.py).

Points to signal at, found from the processes that carry the bundle's mark (cetbench.leftovers):
`pyperf` (its workers are timing a variant), `perf` (the perf counting pass), `guest` (the VMM of a
guest variant runs), or `any` (as soon as the bundle exists).

A finished bundle is intact (`problems` returns nothing) when every variant ended measured or
refused (none pending, none failed), each measured variant's pyperf file holds exactly one run with
values per configured process, each with the configured number of values, its raw records are
exactly the pyperf values and warmups (none missing, none from a killed worker), no temporary or
partial file is left, and the bundle ingests with exactly processes x values samples per variant.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cetbench.leftovers import working_for
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import load
from cetbench.results.store import open_store

VARIANTS = ("host.syscall[shstk=off]", "guest.vmexit.cpuid[cet=none]")
PROCESSES, VALUES = 4, 2
# 5000 loops: about 60 ms a value for the guest under kvm_pvm here, 1.5 ms for host.syscall.
PYPERF = ("--processes", str(PROCESSES), "--values", str(VALUES), "--warmups", "1", "--loops", "5000")
GUARD_S = 300  # a guard against a hang, never a measured time


def cetbench_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cetbench", *args]


def run_argv(out: Path, pyperf: tuple[str, ...] = PYPERF, variants: tuple[str, ...] = VARIANTS) -> list[str]:
    only = [a for v in variants for a in ("--only", v)]
    return cetbench_argv("run", *only, "--out", str(out), "--no-store", *[f"--pyperf-arg={a}" for a in pyperf])


def start(argv: list[str], home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CETBENCH_HOME": str(home), "COLUMNS": "120"}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def resume(bundle: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CETBENCH_HOME": str(home), "COLUMNS": "120"}
    return subprocess.run(cetbench_argv("run", "--resume", str(bundle), "--no-store"), env=env,
                          capture_output=True, text=True, timeout=GUARD_S, check=False)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def session(pid: int) -> int | None:
    """The session of a process (pyperf's master and its workers share one), None once it is gone."""
    return _stat(pid, 3)


def _stat(pid: int, field: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[field])
    except (OSError, IndexError, ValueError):
        return None


def at(phase: str, bundle: Path, under: int | None = None) -> bool:
    """Whether the run of `bundle` is at `phase` now; with `under`, in a process group started by that
    process (a killed run's workers go on, and each forks before it execs a workload)."""
    if phase == "any":
        return (bundle / "manifest.json").exists()
    for pid in working_for(bundle):
        leader = session(pid)
        if under is not None and (leader is None or _stat(leader, 1) != under):
            continue
        argv = _cmdline(pid)
        name = Path(argv[0]).name if argv and argv[0] else ""
        if (phase == "perf" and name == "perf") or (phase == "guest" and name == "cetbench-vmm") or (
                phase == "pyperf" and "cetbench.pyperf_worker" in argv and "--worker" in argv):
            return True
    return False


def catches_sigterm(pid: int) -> bool:
    """Whether the process has its SIGTERM handler: cetbench has started, past Python's start-up (a
    SIGTERM before that ends it as it ends any process, before it has touched the bundle)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:")), 0)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def wait_until(proc: subprocess.Popen[str], phase: str, bundle: Path, under: int | None = None) -> bool:
    """Wait until the run is at `phase` (and has started: see catches_sigterm); False when it ended first."""
    deadline = time.monotonic() + GUARD_S
    while not (at(phase, bundle, under) and catches_sigterm(proc.pid)):
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"the run never reached {phase}")
        time.sleep(0.005)
    return True


def problems(bundle: Path, processes: int = PROCESSES, values: int = VALUES) -> list[str]:
    """What is wrong with a finished bundle (see the module's docstring); empty when it is intact."""
    out: list[str] = []
    manifest = json.loads((bundle / "manifest.json").read_text())
    if manifest.get("finished_utc") is None:
        out.append("finished_utc is null")
    measured = 0
    for name, entry in manifest["variants"].items():
        if entry["status"] in ("pending", "failed"):
            out.append(f"{name}: {entry['status']} ({entry.get('reason')})")
        if entry["status"] != "measured":
            continue
        measured += 1
        runs = json.loads((bundle / entry["pyperf"]).read_text())["benchmarks"][0]["runs"]
        timed = [r["values"] for r in runs if r.get("values")]
        if len(timed) != processes or any(len(v) != values for v in timed):
            out.append(f"{name}: {len(timed)} runs with values {[len(v) for v in timed]}, expected "
                       f"{processes} of {values}")
        expected = Counter([x for v in timed for x in v] + [w[1] for r in runs for w in r.get("warmups", [])])
        records = [json.loads(line) for line in (bundle / entry["raw"]).read_text().splitlines() if line.strip()]
        got = Counter(r["elapsed_ns"] / 1e9 / r["iterations"] for r in records)
        if got != expected:
            out.append(f"{name}: {sum((got - expected).values())} raw records no pyperf value has, "
                       f"{sum((expected - got).values())} pyperf values without their record")
        if entry.get("perf") and "available" not in json.loads((bundle / entry["perf"]).read_text()):
            out.append(f"{name}: {entry['perf']} is not a perf document")
    stray = [p.name for d in (bundle, bundle / "variants") for p in d.glob(".*")]
    if stray:
        out.append(f"files left over: {', '.join(stray)}")
    with tempfile.TemporaryDirectory() as tmp, open_store(str(Path(tmp) / "check.sqlite")) as store:
        report = ingest_paths(store, [bundle])
        samples = len(load(store))
    if not report.ok:
        out.append(f"ingest: {report.errors[0].message}")
    elif samples != measured * processes * values:
        out.append(f"ingested {samples} samples, expected {measured} x {processes} x {values}")
    return out


def one_line(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("cetbench: interrupted by ")
