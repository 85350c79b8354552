"""Side by side with the peers: host.syscall vs `perf bench syscall basic` and host.ctxswitch vs
`perf bench sched pipe`, each difference between the loops isolated by one row; prints ns per op.

    .venv/bin/python benchmarks/peer_compare.py [--rounds 5] [--cpu 0] [--syscall-ops 5000000] [--pipe-ops 200000]

Not a test: it prints figures (README "Side by side with `perf bench`"). Every row runs pinned to one
CPU (`taskset -c CPU`; both ends of a pipe share it), once a round, the rows alternating in order from
round to round. Rows besides ours and perf come from `peer_loops` (workloads/native/peer_loops.c): the
same loop with one of perf's choices at a time (glibc's wrapper around each syscall, an int per message
and fork() inside the timed span, a call next to the syscall as a control). Columns:

- wall ns/op: the program's own figure (our elapsed_ns / ops; perf's usecs/op), what each reports;
- cpu ns/op: user + system time of the program and its children (getrusage of the reaped children),
  less the same for a 1-op run (start-up), per op. Time the CPU gave to other tasks is not in it, so it
  holds on a shared CPU where the wall figure does not;
- x ours: median over the rounds of the row's cpu ns/op over ours in the same round;
- switches/op: the process tree's context switches (voluntary + involuntary) per op, start-up's
  subtracted: 2 for a strict ping-pong, fewer when messages queue.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from cetbench.workloads.build import build

Command = Callable[[int], list[str]]


@dataclass(frozen=True)
class Row:
    label: str
    command: Command  # ops -> argv (without the taskset prefix)
    reads: str  # "json" (elapsed_ns) or "perf" (usecs/op)


@dataclass
class Sample:
    wall_ns: float  # the whole timed span the program reports
    cpu_ns: float
    switches: float


def run_once(row: Row, ops: int, cpu: int) -> Sample:
    cmd = ["taskset", "-c", str(cpu), *row.command(ops)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}{done.stderr}")
    if row.reads == "perf":
        match = re.search(r"([0-9.]+)\s+usecs/op", done.stdout)
        if not match:
            raise SystemExit(f"could not read usecs/op from: {' '.join(cmd)}\n{done.stdout}")
        wall = float(match.group(1)) * 1000.0 * ops
    else:
        wall = float(json.loads(done.stdout.strip().splitlines()[-1])["elapsed_ns"])
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    switches = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
    return Sample(wall, cpu_s * 1e9, float(switches))


def rows(perf: str, cpu: int) -> dict[str, list[Row]]:
    ours_sys, ours_pipe, loops = (str(build(p).path) for p in ("host_syscall", "host_ctxswitch", "peer_loops"))

    def peer(mode: str) -> Command:
        return lambda n: [loops, mode, "--iterations", str(n)]

    def ours(path: str) -> Command:
        return lambda n: [path, "--iterations", str(n), "--cpu", str(cpu), "--shstk", "off"]

    return {
        "getppid": [
            Row("host.syscall[shstk=off] (ours)", ours(ours_sys), "json"),
            Row("same loop, peer_loops", peer("getppid-inline"), "json"),
            Row("+ call next to the syscall", peer("getppid-call"), "json"),
            Row("glibc getppid() (perf's op)", peer("getppid-libc"), "json"),
            Row("perf bench syscall basic", lambda n: [perf, "bench", "syscall", "basic", "--loop", str(n)], "perf"),
        ],
        "pipe round trip": [
            Row("host.ctxswitch[shstk=off] (ours)", ours(ours_pipe), "json"),
            Row("same loop, peer_loops", peer("pipe-inline"), "json"),
            Row("+ call after each syscall", peer("pipe-call"), "json"),
            Row("+ int message, fork in span", peer("pipe-inline-perf"), "json"),
            Row("glibc read()/write()", peer("pipe-libc"), "json"),
            Row("perf 6.1's loop, peer_loops", peer("pipe-perf"), "json"),
            Row("later perf's loop (both write)", peer("pipe-perf-bothwrite"), "json"),
            Row("perf bench sched pipe", lambda n: [perf, "bench", "sched", "pipe", "--loop", str(n)], "perf"),
            Row("perf bench sched pipe -T", lambda n: [perf, "bench", "sched", "pipe", "-T", "--loop", str(n)], "perf"),
        ],
    }


def measure(op_rows: list[Row], ops: int, rounds: int, cpu: int) -> list[list[Sample]]:
    startup = []
    for row in op_rows:
        one = [run_once(row, 1, cpu) for _ in range(3)]
        startup.append(Sample(0.0, statistics.median(s.cpu_ns for s in one),
                              statistics.median(s.switches for s in one)))
    samples: list[list[Sample]] = [[] for _ in op_rows]
    for r in range(rounds):
        order = range(len(op_rows)) if r % 2 == 0 else reversed(range(len(op_rows)))
        for i in order:
            s = run_once(op_rows[i], ops, cpu)
            samples[i].append(Sample(s.wall_ns / ops, (s.cpu_ns - startup[i].cpu_ns) / ops,
                                     (s.switches - startup[i].switches) / ops))
    return samples


def perf_version(perf: str) -> str:
    out = subprocess.run([perf, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip() or "perf (version unknown)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--syscall-ops", type=int, default=5_000_000)
    parser.add_argument("--pipe-ops", type=int, default=200_000)
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None:
        sys.exit("perf not found (Debian: apt-get install linux-perf)")
    if shutil.which("taskset") is None:
        sys.exit("taskset not found (util-linux)")
    started = time.monotonic()
    print(f"{perf_version(perf)}, kernel {platform.release()}; CPU {args.cpu}; median of {args.rounds} "
          "alternating rounds")
    ops = {"getppid": args.syscall_ops, "pipe round trip": args.pipe_ops}
    for op, op_rows in rows(perf, args.cpu).items():
        samples = measure(op_rows, ops[op], args.rounds, args.cpu)
        print(f"\n{op} ({ops[op]} ops a run)")
        print(f"{'':34} {'wall ns/op':>10} {'cpu ns/op':>10} {'x ours':>7} {'switches/op':>11}")
        ours_cpu = [s.cpu_ns for s in samples[0]]
        for row, got in zip(op_rows, samples, strict=True):
            ratio = statistics.median(s.cpu_ns / o for s, o in zip(got, ours_cpu, strict=True))
            print(f"{row.label:34} {statistics.median(s.wall_ns for s in got):10.1f} "
                  f"{statistics.median(s.cpu_ns for s in got):10.1f} {ratio:7.3f} "
                  f"{statistics.median(s.switches for s in got):11.2f}")
    print(f"\n{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
