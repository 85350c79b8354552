"""Benchmark (not a test): compare + trend over a synthetic 2M-sample frame.

Run: .venv/bin/python benchmarks/bench_analysis.py [--samples N] [--builds B]
Builds a frame shaped like results.load output (10 kernel builds, 22 variants), then times
analysis.compare (first half of the builds against the second half) and analysis.trend (all
builds in kernel-version order).  Goal on a 2-core machine: compare + trend <= 10 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cetbench.analysis.compare import compare
from cetbench.analysis.trend import trend
from tests.support.synthetic import make_samples

HOST = [("host.syscall", 100e-9), ("host.pipe", 2.5e-6), ("host.signal", 1.2e-6)]
GUEST = [("guest.vmexit.cpuid", 1.1e-6), ("guest.vmexit.pio", 2.0e-6),
         ("guest.vmexit.mmio", 2.4e-6), ("guest.vmexit.hypercall", 1.0e-6)]
RELEASES = ["6.17", "6.17.1", "6.18-rc1", "6.18-rc4", "6.18", "6.18.3", "6.19-rc1", "6.19-rc3",
            "6.19", "6.19.1", "6.20-rc1", "6.20"]


def variants() -> list[tuple[str, str, float, bool]]:
    out = []
    for workload, base in HOST:
        out += [(workload, "shstk=off", base, False), (workload, "shstk=on", base * 1.03, False)]
    for workload, base in GUEST:
        for i, cet in enumerate(("cet=none", "cet=ibt", "cet=shstk", "cet=ibt+shstk")):
            out.append((workload, cet, base * (1 + 0.02 * i), True))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--builds", type=int, default=10, choices=range(3, len(RELEASES) + 1))
    args = parser.parse_args()
    builds = RELEASES[: args.builds]
    table = variants()
    per_group = args.samples // (len(builds) * len(table))
    # a real 4 % step at the 7th build for one variant, so trend has something to find
    factors = {(b, "guest.vmexit.pio[cet=ibt+shstk]"): 1.04 for b in builds[6:]}

    t0 = time.perf_counter()
    frame = make_samples(builds, n=per_group, seed=1, variants=table, factors=factors, runs_per_build=3)
    # as the runner stores them: 3 values per pyperf worker, so the analyses reduce ~670k workers
    frame["process"] = (frame["sample"] // 3).astype("Int64")
    t1 = time.perf_counter()
    half = set(builds[: len(builds) // 2])
    in_half = frame["kernel_release"].isin(half)
    baseline, candidate = frame[in_half], frame[~in_half]
    t2 = time.perf_counter()
    result = compare(baseline, candidate)
    t3 = time.perf_counter()
    series = trend(frame, "version")
    t4 = time.perf_counter()

    changes = sum(len(v.change_points) for v in series.variants)
    verdicts = {v.value: n for v in type(result.variants[0].verdict) if (n := result.count(v))}
    print(f"frame: {len(frame):,} samples, {len(builds)} builds x {len(table)} variants "
          f"x {per_group:,} samples (built in {t1 - t0:.1f} s)")
    print(f"compare: {len(baseline):,} vs {len(candidate):,} samples, {len(result.variants)} variants "
          f"in {t3 - t2:.2f} s -> {verdicts}")
    print(f"trend:   {len(frame):,} samples over {len(series.builds)} builds in {t4 - t3:.2f} s "
          f"-> {changes} change point(s)")
    print(f"compare + trend: {t4 - t2:.2f} s (goal <= 10 s)")


if __name__ == "__main__":
    main()
