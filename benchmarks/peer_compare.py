"""Side by side with the peers: host.syscall vs `perf bench syscall basic` and host.ctxswitch vs
`perf bench sched pipe`, both pinned to one CPU, alternated in one run; prints ours/theirs per op.

    .venv/bin/python benchmarks/peer_compare.py [--rounds 5] [--cpu 0]

Not a test: it prints figures. The ops are the same (one getppid; one pipe round trip between two
processes = two context switches when both share a CPU); the ratio says whether our self-timed loop
adds or hides anything.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys

from cetbench.native import run_native
from cetbench.workloads.build import build

PEERS = {
    # workload program, its op count, the perf bench command doing the same op
    "host.syscall[shstk=off]": ("host_syscall", 10_000_000, ["bench", "syscall", "basic", "--loop", "10000000"]),
    "host.ctxswitch[shstk=off]": ("host_ctxswitch", 1_000_000, ["bench", "sched", "pipe", "--loop", "1000000"]),
}


def perf_usecs_per_op(perf: str, args: list[str], cpu: int) -> float:
    cmd = ["taskset", "-c", str(cpu), perf, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    match = re.search(r"([0-9.]+)\s+usecs/op", out)
    if not match:
        raise SystemExit(f"could not read usecs/op from: {' '.join(cmd)}\n{out}")
    return float(match.group(1)) * 1000.0


def ours_ns_per_op(program: str, ops: int, cpu: int) -> float:
    path = str(build(program).path)
    outcome = run_native([path, "--iterations", str(ops), "--cpu", str(cpu), "--shstk", "off"], 600)
    if not outcome.measured:
        raise SystemExit(f"{program}: {outcome.status}: {outcome.reason}")
    return outcome.record["elapsed_ns"] / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None:
        sys.exit("perf not found (Debian: apt-get install linux-perf)")
    print(f"{'variant':28} {'ours ns/op':>12} {'perf ns/op':>12} {'ours/perf':>10}   (median of {args.rounds} "
          f"alternating rounds, CPU {args.cpu})")
    for variant, (program, ops, perf_args) in PEERS.items():
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(ours_ns_per_op(program, ops, args.cpu))
            theirs.append(perf_usecs_per_op(perf, perf_args, args.cpu))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"{variant:28} {o:12.1f} {t:12.1f} {o / t:10.3f}")


if __name__ == "__main__":
    main()
