"""Interleaved against sequential: how much narrower does pairing the worker processes of two
variants in time make the interval of their difference? (Figures, not a test.)

    .venv/bin/python benchmarks/interleave.py [--rounds 5] [--inject 300] [--processes 6] [--cpu 0]

A pair of one run with a known difference: `host.syscall[shstk=off]` and the same op with
`inject=K` (K TSC cycles of dependent work per op, so the true difference is known in cycles). Each
round makes two real runs of the pair, one sequential (each variant's processes in one block) and
one with --interleave (process r of each in round r), in alternating order, stores both, and computes
the difference of the pair as `cetbench overhead` pairs a CET pair (analysis.overhead.pair_shift):
bootstrap of independent process medians for the sequential run, t on the log ratios of the
interleaved rounds. Prints each run's difference with its 95 % interval and width, then the median
width per mode, and the cycles added (from the raw records).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cetbench import results
from cetbench.analysis.frames import process_medians
from cetbench.analysis.overhead import pair_shift
from cetbench.runner import RunOptions, execute


def one_run(store: results.Store, workdir: Path, name: str, pair: list[str], interleave: bool,
            pyperf: tuple[str, ...], cpu: int) -> tuple[float, float, float, str, float]:
    bundle = execute(RunOptions(only=pair, out=workdir / name, cpu=cpu, perf="off", interleave=interleave,
                                pyperf_args=pyperf))
    results.ingest_paths(store, [bundle.root])
    frame = process_medians(results.load(store, run_ids=[bundle.manifest["run_id"]]))
    base, delayed = (frame[frame["variant"] == v] for v in pair)
    shift, pairing = pair_shift(base, delayed, seed=0, n_resamples=2000)
    cycles = statistics.median(delayed["cycles"]) - statistics.median(base["cycles"])
    return shift.difference, shift.difference_low, shift.difference_high, pairing, cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inject", type=int, default=300, help="TSC cycles per op the second variant adds")
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    pair = ["host.syscall[shstk=off]", f"host.syscall[shstk=off,inject={args.inject}]"]
    pyperf = ("--processes", str(args.processes), "--values", "2", "--warmups", "1", "--min-time", "0.02")
    widths: dict[bool, list[float]] = {False: [], True: []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cetbench-interleave-") as tmp, \
            results.open_store(str(Path(tmp) / "store.sqlite")) as store:
        print(f"pair: {pair[0]} vs {pair[1]}; {args.processes} processes a variant")
        print(f"{'round':>5} {'mode':12} {'difference ns [95% CI]':>34} {'width ns':>9} {'cycles added':>13}")
        for r in range(args.rounds):
            for interleave in ((False, True) if r % 2 == 0 else (True, False)):
                d, lo, hi, pairing, cycles = one_run(store, Path(tmp), f"r{r}-{int(interleave)}", pair,
                                                     interleave, pyperf, args.cpu)
                widths[interleave].append(hi - lo)
                print(f"{r:>5} {pairing:12} {d * 1e9:10.2f} [{lo * 1e9:8.2f}, {hi * 1e9:8.2f}] "
                      f"{(hi - lo) * 1e9:9.2f} {cycles:13.1f}")
    seq, inter = statistics.median(widths[False]), statistics.median(widths[True])
    print(f"median 95 % interval width: sequential {seq * 1e9:.2f} ns, interleaved {inter * 1e9:.2f} ns "
          f"({inter / seq:.2f}x); {time.monotonic() - started:.0f} s of machine time")


if __name__ == "__main__":
    main()
