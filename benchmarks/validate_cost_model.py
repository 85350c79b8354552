"""Does the cost model (analysis/costmodel.py) recover per-mechanism costs it is given? (A check of
the method on synthetic data, not a measurement of any CET cost.)

    .venv/bin/python benchmarks/validate_cost_model.py [--trials 200] [--processes 6] [--seed 0]

Synthetic runs of a CET host's variants (tests/support/synthetic.py: each variant's counts per op
follow docs/mechanisms.md; invented per-mechanism costs; lognormal noise between worker processes
and between values of one process at this host's measured levels, README "Statistics") are
fitted; the script prints, for one run, each mechanism's estimate, interval and width beside its
true cost, then the interval coverage over --trials runs, without and with the XSS confound
switched on (a CET-less guest whose IA32_XSS differs from the host's). The last line counts the
costs of the first run recovered within their 95 % intervals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cetbench.analysis.costmodel import MechanismCost, cost_model
from cetbench.workloads.mechanisms import MECHANISMS
from tests.support.synthetic import MECHANISM_TRUTH, mechanism_suite


def fit(seed: int, processes: int, confound: bool, resamples: int) -> dict[str, MechanismCost]:
    samples, counts = mechanism_suite(seed=seed, processes=processes, confound=confound)
    return {c.mechanism: c for c in cost_model(samples, counts, MECHANISMS, seed=seed, n_resamples=resamples).costs}


def ns(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e9:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--processes", type=int, default=6, help="worker processes per variant (6: --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()

    for confound in (False, True):
        print(f"\n== XSS confound {'on' if confound else 'off'}: one run (seed {args.seed}), "
              f"{args.processes} processes a variant")
        print(f"{'mechanism':20} {'true ns':>8} {'fit ns':>8} {'95% CI ns':>19} {'width':>7}  in CI")
        first = fit(args.seed, args.processes, confound, args.resamples)
        for name, c in first.items():
            truth = MECHANISM_TRUTH.get(name)
            if c.seconds is None or c.low is None or c.high is None:
                print(f"{name:20} {ns(truth):>8} {'-':>8}  not identified: {c.reason}")
                continue
            inside = truth is not None and c.low <= truth <= c.high
            print(f"{name:20} {ns(truth):>8} {ns(c.seconds):>8} [{ns(c.low)}, {ns(c.high)}] "
                  f"{ns(c.high - c.low):>7}  {'yes' if inside else 'NO'}")
        hits = dict.fromkeys(MECHANISM_TRUTH, 0)
        widths: dict[str, list[float]] = {m: [] for m in MECHANISM_TRUTH}
        for trial in range(args.trials):
            costs = fit(args.seed + 1 + trial, args.processes, confound, min(args.resamples, 500))
            for name, truth in MECHANISM_TRUTH.items():
                c = costs[name]
                if c.low is not None and c.high is not None:
                    hits[name] += c.low <= truth <= c.high
                    widths[name].append(c.high - c.low)
        print(f"coverage over {args.trials} runs: " + ", ".join(
            f"{m} {h}/{args.trials} (median width {ns(sorted(widths[m])[len(widths[m]) // 2]).strip()} ns)"
            for m, h in hits.items() if widths[m]))
    truths = [(m, t) for m, t in MECHANISM_TRUTH.items() if first[m].low is not None]
    recovered = sum(1 for m, t in truths if first[m].low <= t <= first[m].high)  # type: ignore[operator]
    print(f"{recovered}/{len(truths)} costs recovered within their 95 % intervals "
          f"(confound on, seed {args.seed}; widths above)")


if __name__ == "__main__":
    main()
