"""Self-validation on real runs of this machine (not a test): does the suite's own path
(run -> bundle -> store -> compare) raise false alarms, and which slowdowns does it catch?

    .venv/bin/python benchmarks/validate.py [--variant 'host.syscall[shstk=off]'] [--trials 5]
        [--runs 8] [--processes 6] [--sizes 0.5,1,2,5] [--cpu 0] [--pyperf-arg=--processes ...] [--floor 0.02]
        [--keep DIR] [--neighbour] [--seed N]
    .venv/bin/python benchmarks/validate.py --replay DIR [DIR...]

For each variant:
1. one run without injection measures the op's cost in TSC cycles (from the raw records that
   back the pyperf samples);
2. a trial is R rounds (--runs); each round makes a baseline run and, in a shuffled order (so
   drift favours no size), an A/A run (same build, nothing injected) and one run per slowdown
   size with `--inject-cycles K`, K = size x the op's cost, rounded up. Every run is a real
   bundle ingested into a throwaway store;
3. each size's R runs are compared with the trial's R baseline runs by analysis.compare with
   the suite's defaults (t on log run medians, alpha 0.05, Holm, floor 2 %): the protocol the
   README recommends, several runs per build interleaved in time. The first round alone (one
   run against one run: Mann-Whitney U on process medians) is judged too, to show what a
   single run is worth here;
   Each is judged with the suite's gate (a disturbed run never yields a regression; one run a side
   must also beat the drift of the baseline build's runs: here the trial's R baseline runs) and
   without it, to show what the gate buys;
4. prints the A/A false alarms (regression or improvement), the detection rate per size, the
   cycles per op requested, calibrated by the workload and achieved (candidate minus baseline in
   the raw records), the machine time used, and how disturbed the runs were by the suite's own
   interference figures (with the load average at the start and the end).

--replay judges kept validations (--keep) again with fewer runs a side, other disturbed limits and
floors, and shows how far runs of the unchanged build drift by how much else ran; it makes no run.

--neighbour keeps every other CPU busy with a CPU-burning process for the whole validation (a busy
neighbour on a shared lab host), so the tables can be compared quiet against busy.

A slowdown smaller than the effect-size floor (--floor) is not a regression by design: with the
default 2 % floor the +0.5 % and +1 % rows measure how often noise lifts a small shift over the
floor. The floor table judges the same comparisons with other floors. An injected delay cannot
be smaller than one round of the workload's chain (about 9 cycles here): "K calib" and "added"
show what was injected and measured.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cetbench import interference, results
from cetbench.analysis.compare import CompareSettings, VariantComparison, Verdict, compare, run_spread
from cetbench.results.bundle_reader import cycles_per_op
from cetbench.runner import RunOptions, execute
from cetbench.workloads.table import by_name


def default_pyperf(processes: int) -> tuple[str, ...]:
    return ("--processes", str(processes), "--values", "3", "--warmups", "1")
#: Without --pyperf-arg, each value times this many seconds of ops (loops from the measured op cost).
VALUE_SECONDS = 0.005
#: Floors the comparisons are also judged with, after the fact, beside --floor.
ALT_FLOORS = (0.01, 0.02, 0.03, 0.05)


@dataclass
class Run:
    run_id: str
    inject: int
    cycles: float  # median cycles per op of the samples, from the raw records
    calibrated: float | None  # ticks per op the workload calibrated its injection to
    seconds: float  # machine time for run + ingest
    other_cpus: float | None  # other processes' CPU use while it was timed (bench/interference.py)
    disturbed: bool  # the kept timing was disturbed
    retried: bool  # the first timing was disturbed and the variant was timed again


@dataclass
class Outcomes:
    """The verdicts of one row under one protocol, a trial each."""

    verdicts: list[Verdict] = field(default_factory=list)
    changes: list[float] = field(default_factory=list)
    tests: list[tuple[float, float]] = field(default_factory=list)  # (log ratio of medians, adjusted p)

    def add(self, outcome: VariantComparison) -> None:
        self.verdicts.append(outcome.verdict)
        self.changes.append(outcome.change or 0.0)
        if outcome.baseline and outcome.candidate and outcome.p_adjusted is not None:
            self.tests.append((math.log(outcome.candidate.median / outcome.baseline.median), outcome.p_adjusted))


@dataclass
class Row:
    label: str
    pct: float
    inject: int
    runs: Outcomes = field(default_factory=Outcomes)  # R runs against R baseline runs
    single: Outcomes = field(default_factory=Outcomes)  # first round: one run against one
    runs_ungated: Outcomes = field(default_factory=Outcomes)  # the same, judged without the gate
    single_ungated: Outcomes = field(default_factory=Outcomes)
    added: list[float] = field(default_factory=list)  # candidate - baseline cycles per op
    calibrated: list[float] = field(default_factory=list)


class Harness:
    def __init__(self, home: Path, cpu: int, pyperf: Sequence[str] | None, floor: float, processes: int) -> None:
        self.home, self.cpu, self.fixed = home, cpu, pyperf is not None
        self.pyperf = tuple(pyperf or default_pyperf(processes))
        self.store = results.open_store(f"sqlite:///{home / 'store.sqlite'}")
        self.settings = CompareSettings(floor=floor)
        self.count = 0
        self.seconds = 0.0
        self.runs: list[Run] = []

    def run(self, variant: str, inject: int, pyperf: Sequence[str] | None = None) -> Run:
        start = time.monotonic()
        self.count += 1
        bundle = execute(RunOptions(only=[variant], out=self.home / f"run{self.count:04d}", cpu=self.cpu,
                                    inject_cycles=inject, pyperf_args=tuple(pyperf or self.pyperf), perf="off"))
        entry = bundle.manifest["variants"][variant]
        if entry["status"] != "measured":
            raise SystemExit(f"{variant}: {entry['status']}: {entry['reason']}")
        report = results.ingest_paths(self.store, [bundle.root])
        if not report.ok:
            raise SystemExit(report.errors[0].message)
        run_id = bundle.manifest["run_id"]
        values = self.samples(run_id)["value"].tolist()
        records = [json.loads(line) for line in (bundle.root / entry["raw"]).read_text().splitlines()]
        _, median = cycles_per_op(values, records, by_name(variant).workload.kind)
        if median is None:
            raise SystemExit(f"{variant}: no cycle counts in the raw records of {bundle.root}")
        calibrated = [r["inject_calibrated_ticks"] for r in records if "inject_calibrated_ticks" in r]
        seen = entry.get("interference") or {}
        seconds = time.monotonic() - start
        self.seconds += seconds
        run = Run(run_id, inject, median, statistics.median(calibrated) if calibrated else None, seconds,
                  seen.get("other_cpus"), bool(seen.get("disturbed")), bool(seen.get("retried_after")))
        self.runs.append(run)
        return run

    def samples(self, run_id: str) -> Any:
        return results.load(self.store, run_ids=[run_id])

    def record(self, variant: str, trial: int, base: Sequence[Run], cands: dict[str, list[Run]]) -> None:
        """Append which run played which part to roles.jsonl, so a kept store can be replayed."""
        with open(self.home / "roles.jsonl", "a") as out:
            roles = {"baseline": [r.run_id for r in base], **{k: [r.run_id for r in v] for k, v in cands.items()}}
            out.write(json.dumps({"variant": variant, "trial": trial, "runs": roles}) + "\n")

    def samples_of(self, runs: Sequence[Run]) -> Any:
        return results.load(self.store, run_ids=[r.run_id for r in runs])

    def verdict(self, base: Sequence[Run], cand: Sequence[Run], history: Sequence[Run] = (),
                gate: bool = True) -> VariantComparison:
        """The comparison the suite makes; `history`: the stored good runs of the baseline's build
        (their drift gates a one-run-a-side verdict); gate=False judges as before the gate."""
        start = time.monotonic()
        spread = run_spread(self.samples_of(history)) if history and gate else None
        settings = self.settings if gate else replace(self.settings, gate=False)
        result = compare(self.samples_of(base), self.samples_of(cand), settings, spread)
        (row,) = result.variants
        self.seconds += time.monotonic() - start
        return row


def validate(h: Harness, variant: str, sizes: Sequence[float], trials: int, rounds: int,
             rng: random.Random) -> None:
    spent_before, runs_before = h.seconds, h.count
    probe_run = h.run(variant, 0, None if h.fixed else (*h.pyperf, "--loops", "1000"))
    op_cycles = probe_run.cycles
    op_ns = float(h.samples(probe_run.run_id)["value"].median()) * 1e9
    pyperf = h.pyperf if h.fixed else (*h.pyperf, "--loops", str(max(1, round(VALUE_SECONDS / op_ns * 1e9))))
    rows = [Row("A/A", 0.0, 0)] + [Row(f"+{s:g} %", s, max(1, math.ceil(s / 100 * op_cycles))) for s in sizes]
    print(f"\n{variant}: op cost {op_cycles:.1f} cycles/op ({op_ns:.1f} ns/op), from the raw records of a "
          f"run without injection; pyperf {' '.join(pyperf)}; {rounds} run(s) per side")
    for trial in range(trials):
        base: list[Run] = []
        cands: dict[str, list[Run]] = {row.label: [] for row in rows}
        for _ in range(rounds):
            # The baseline's place in the round is shuffled too: a fixed first place measured
            # up to 3 % faster here than the runs after it.
            order: list[Row | None] = [None, *rows]
            rng.shuffle(order)
            for row in order:
                if row is None:
                    base.append(h.run(variant, 0, pyperf))
                else:
                    cands[row.label].append(h.run(variant, row.inject, pyperf))
        h.record(variant, trial, base, cands)
        for row in rows:
            runs = cands[row.label]
            row.runs.add(h.verdict(base, runs))
            row.runs_ungated.add(h.verdict(base, runs, gate=False))
            # one run a side, as `cetbench ci --runs 1` against a good-run history of the baseline build
            row.single.add(h.verdict(base[:1], runs[:1], history=base))
            row.single_ungated.add(h.verdict(base[:1], runs[:1], gate=False))
            row.added.append(statistics.median(r.cycles for r in runs) - statistics.median(r.cycles for r in base))
            row.calibrated += [r.calibrated for r in runs if r.calibrated is not None]
        print(f"  trial {trial + 1}/{trials} done ({h.seconds - spent_before:.0f} s)", file=sys.stderr)

    for title, pick in ((f"{rounds} runs against {rounds} runs, with the gate", lambda r: r.runs),
                        (f"{rounds} runs against {rounds} runs, without the gate", lambda r: r.runs_ungated),
                        (f"single run against single run (first round), with the gate (history: the {rounds} "
                         "baseline runs)", lambda r: r.single),
                        ("single run against single run, without the gate", lambda r: r.single_ungated)):
        print(f"  {title}:")
        print(f"  {'slowdown':>8} {'K req':>6} {'K calib':>8} {'added cyc/op':>13} {'added %':>8} "
              f"{'median chg':>10}  result")
        for row in rows:
            print_row(row, pick(row), op_cycles, trials)
        floors(rows, pick, h.settings, trials)
    runs_done = h.count - runs_before
    spent = h.seconds - spent_before
    print(f"  machine time: {spent:.1f} s for {runs_done} runs ({spent / runs_done:.2f} s per run, "
          f"{trials} trials x {rounds} rounds x {len(rows) + 1} runs + 1 to measure the op)")
    print_interference(h.runs[runs_before:])


def print_interference(runs: Sequence[Run]) -> None:
    """How disturbed the runs were, by the suite's own figures (what a quiet or busy machine means here)."""
    other = sorted(r.other_cpus for r in runs if r.other_cpus is not None)
    if not other:
        print("  interference: not recorded")
        return
    print(f"  interference: {sum(r.disturbed for r in runs)}/{len(runs)} runs disturbed (kept timing), "
          f"{sum(r.retried for r in runs)} timed again after a disturbed first timing; other processes' CPU use "
          f"median {statistics.median(other):.2f}, 10th-90th percentile {other[len(other) // 10]:.2f}-"
          f"{other[len(other) * 9 // 10]:.2f}, max {other[-1]:.2f} CPUs")


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def print_row(row: Row, outcomes: Outcomes, op_cycles: float, trials: int) -> None:
    added = statistics.median(row.added)
    calib = f"{statistics.median(row.calibrated):.1f}" if row.calibrated and row.inject else "-"
    counts = {v: outcomes.verdicts.count(v) for v in Verdict}
    if row.label == "A/A":
        result = f"false alarms {counts[Verdict.REGRESSION] + counts[Verdict.IMPROVEMENT]}/{trials}"
    else:
        result = f"detected {counts[Verdict.REGRESSION]}/{trials}"
    others = ", ".join(f"{n} {v.value}" for v, n in counts.items() if n and not (
        v is Verdict.REGRESSION and row.label != "A/A"))
    print(f"  {row.label:>8} {row.inject:>6} {calib:>8} {added:>+13.2f} {added / op_cycles * 100:>+7.2f}% "
          f"{statistics.median(outcomes.changes) * 100:>+9.2f}%  {result}" + (f" ({others})" if others else ""))


def floors(rows: Sequence[Row], pick: Callable[[Row], Outcomes], settings: CompareSettings, trials: int) -> None:
    """The same comparisons judged with other effect-size floors (only the floor changes a
    regression or improvement verdict; the rank test and its p-value do not depend on it)."""
    print(f"  same data, other floors (alpha {settings.alpha}): A/A false alarms | detected per size")
    for floor in sorted({settings.floor, *ALT_FLOORS}):
        bar = math.log1p(floor)
        cells = []
        for row in rows:
            hits = [lr for lr, p in pick(row).tests if p < settings.alpha and abs(lr) >= bar]
            n = len(hits) if row.inject == 0 else sum(lr > 0 for lr in hits)
            cells.append(f"{row.label} {n}/{trials}")
        print(f"    floor {floor * 100:>4g} %: " + " | ".join(cells))


@contextlib.contextmanager
def neighbours(cpu: int, max_s: float) -> Iterator[None]:
    """A CPU-burning process pinned to every CPU but `cpu`, killed on the way out (and by itself
    after `max_s`, should this script die without cleaning up)."""
    burn = f"import time\nend = time.monotonic() + {max_s}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen(["taskset", "-c", str(other), sys.executable, "-c", burn])
             for other in range(os.cpu_count() or 1) if other != cpu]
    print(f"neighbour: {len(procs)} CPU-burning process(es) on every CPU but {cpu}")
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


#: What --replay judges again: runs a side, and other processes' CPU use above which a run counts as
#: disturbed (steal time and throttling as the suite judges them; None: no run is disturbed).
REPLAY_RUNS = (1, 2, 4, 8)
REPLAY_DISTURBED_ABOVE: tuple[float | None, ...] = (0.25, 0.5, 1.0, 1.5, None)


def replay(homes: Sequence[Path], floors: Sequence[float], thresholds: Sequence[float | None]) -> None:
    """Judge kept validations again (--keep DIR; several DIRs: their trials together) with fewer runs
    a side (the first rounds of each trial), other disturbance limits (from each run's stored
    interference figures) and other floors, with the gate and without; no run is made. One run a
    side is gated by the drift of the trial's baseline runs, as in the validation itself."""
    trials: list[dict[str, Any]] = []
    frames: list[Any] = []
    other: dict[str, float] = {}
    seen: dict[str, dict[str, Any]] = {}  # each run's interference figures
    seconds: list[float] = []
    for home in homes:
        kept = [json.loads(line) for line in (home / "roles.jsonl").read_text().splitlines()]
        store = results.open_store(f"sqlite:///{home / 'store.sqlite'}")
        frames += [results.load(store, run_ids=[r for runs in t["runs"].values() for r in runs]) for t in kept]
        trials += kept
        for path in sorted(home.glob("run*/manifest.json")):
            manifest = json.loads(path.read_text())
            for entry in manifest["variants"].values():
                if entry.get("interference"):
                    seen[manifest["run_id"]] = entry["interference"]
                    other[manifest["run_id"]] = entry["interference"]["other_cpus"]
            if manifest.get("finished_utc"):
                spans = [dt.datetime.fromisoformat(manifest[k].replace("Z", "+00:00"))
                         for k in ("started_utc", "finished_utc")]
                seconds.append((spans[1] - spans[0]).total_seconds())
    labels = [k for k in trials[0]["runs"] if k != "baseline"]
    rounds = len(trials[0]["runs"]["baseline"])
    per_run = statistics.mean(seconds) if seconds else float("nan")
    print(f"replay of {', '.join(h.name for h in homes)}: {len(trials)} trials, {rounds} rounds, {len(other)} runs "
          f"with interference figures; a run took {per_run:.1f} s on average (bundle start to finish)")
    drift_by_interference(trials, frames, other)
    print(f"  {'runs':>4} {'gate':>4} {'disturbed above':>15} {'floor':>5}  " + "  ".join(f"{k:>9}" for k in labels)
          + "  disturbed runs  machine time per variant")
    for n in [n for n in REPLAY_RUNS if n <= rounds]:
        for limit in [*thresholds, "ungated"]:
            marked = [disturbed_above(frame, seen, limit if limit != "ungated" else None) for frame in frames]
            shown_runs = [r for t in trials for runs in t["runs"].values() for r in runs[:n]]
            hit = sum(judged(seen.get(r), limit) is not None for r in shown_runs) if isinstance(limit, float) else 0
            for floor in floors:
                # the bootstrap interval never decides a verdict: fewer resamples, same verdicts, faster
                settings = CompareSettings(floor=floor, gate=limit != "ungated", n_resamples=200)
                counts = []
                for label in labels:
                    verdicts = [judge(frame, trial["runs"]["baseline"], trial["runs"][label], n, settings)
                                for trial, frame in zip(trials, marked, strict=True)]
                    alarms = (verdicts.count(Verdict.REGRESSION) + verdicts.count(Verdict.IMPROVEMENT)
                              if label == "A/A" else verdicts.count(Verdict.REGRESSION))
                    counts.append(f"{alarms}/{len(trials)}")
                gate = "no" if limit == "ungated" else "yes"
                shown = "-" if limit == "ungated" else "never" if limit is None else f"{limit:g} CPUs"
                print(f"  {n:>4} {gate:>4} {shown:>15} {floor * 100:>4g}%  " + "  ".join(f"{c:>9}" for c in counts)
                      + f"  {f'{hit}/{len(shown_runs)}':<14}  {n * per_run:.0f} s")


#: Bands of other processes' CPU use (CPUs) the drift of a build's runs is shown by.
BANDS = (0.0, 0.25, 0.9, 1.1, 1.3, math.inf)


def drift_by_interference(trials: Sequence[dict[str, Any]], frames: Sequence[Any], other: dict[str, float]) -> None:
    """How far each run of the unchanged build (baseline and A/A) lies from its trial's quiet runs
    (other processes below the first band's limit), by how much else ran: what a disturbed run
    costs, and the drift between quiet runs that sets how many runs a +5 % needs."""
    offsets: list[tuple[float, float]] = []
    for trial, frame in zip(trials, frames, strict=True):
        medians = frame.groupby(["run_id", "process"])["value"].median().groupby("run_id").median()
        same = [r for r in (*trial["runs"]["baseline"], *trial["runs"]["A/A"]) if r in other]
        quiet = [medians[r] for r in same if other[r] <= BANDS[1]]
        if len(quiet) >= 2:
            ref = statistics.median(quiet)
            offsets += [(other[r], math.log(medians[r] / ref)) for r in same]
    if not offsets:
        print(f"  runs of the unchanged build against their trial's quiet runs: no trial had 2 runs with other "
              f"processes at or below {BANDS[1]:g} CPUs")
        return
    print("  runs of the unchanged build against their trial's quiet runs, by other processes' CPU use:")
    for low, high in itertools.pairwise(BANDS):
        band = [x for o, x in offsets if (low < o if low else True) and o <= high]
        if len(band) >= 2:
            shift = math.expm1(statistics.median(band)) * 100
            print(f"    {low:g}-{high:g} CPUs: {len(band):>3} runs, median {shift:+.1f} %, "
                  f"sd {statistics.stdev(band) * 100:.1f} %")
    quiet_sd = [x for o, x in offsets if o <= BANDS[1]]
    if len(quiet_sd) >= 2:
        sigma = statistics.stdev(quiet_sd)
        z = statistics.NormalDist().inv_cdf
        need = 2 * ((z(0.975) + z(0.95)) * sigma / math.log1p(0.05)) ** 2
        print(f"    a +5 % slowdown detected 19 in 20 times (alpha 0.05) with runs as the unit needs about "
              f"{math.ceil(need)} runs a side at this drift between quiet runs")


def judged(figures: dict[str, Any] | None, limit: float | None) -> str | None:
    """A run's disturbance under the suite's rule with `limit` CPUs of other processes (None: no rule)."""
    if figures is None or limit is None:
        return None
    return interference.disturbance(figures["other_cpus"], figures.get("steal_share", 0.0),
                                    figures.get("throttle_events"), above_cpus=limit)


def disturbed_above(frame: Any, seen: dict[str, dict[str, Any]], limit: float | None) -> Any:
    """The samples, each run's disturbance judged again with `limit` (None: never disturbed)."""
    out = frame.copy()
    out["disturbance"] = [judged(seen.get(r), limit) for r in out["run_id"]]
    return out


def judge(frame: Any, base: Sequence[str], cand: Sequence[str], n: int, settings: CompareSettings) -> Verdict:
    """The first n runs a side compared; one run a side is gated by the drift of every baseline run."""
    history = run_spread(frame[frame["run_id"].isin(base)]) if n == 1 and settings.gate else None
    result = compare(frame[frame["run_id"].isin(base[:n])], frame[frame["run_id"].isin(cand[:n])], settings, history)
    return result.variants[0].verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", help="variant to validate (repeat); "
                        "default host.syscall[shstk=off]")
    parser.add_argument("--trials", type=int, default=5, help="R: trials per slowdown size and for A/A")
    parser.add_argument("--processes", type=int, default=6, help="pyperf worker processes per run")
    parser.add_argument("--runs", type=int, default=8, help="runs per side in each trial, interleaved in time")
    parser.add_argument("--sizes", default="0.5,1,2,5", help="slowdowns, percent of the op's cost")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin the workloads to")
    parser.add_argument("--pyperf-arg", action="append", dest="pyperf", metavar="ARG",
                        help=f"pyperf configuration (repeat; default: {' '.join(default_pyperf(6))} and --loops "
                        f"for {VALUE_SECONDS * 1000:g} ms per value)")
    parser.add_argument("--floor", type=float, default=CompareSettings.floor,
                        help="effect-size floor of the comparison (default: the suite's)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep runs, store and roles.jsonl (which run played which part) in DIR")
    parser.add_argument("--seed", type=int, default=1, help="seed of the run order within a trial")
    parser.add_argument("--neighbour", action="store_true",
                        help="keep every other CPU busy with a CPU-burning process meanwhile (a busy lab neighbour); "
                             "this machine only: it is stopped when the script ends or after --neighbour-max-s")
    parser.add_argument("--neighbour-max-s", type=float, default=6 * 3600)
    parser.add_argument("--replay", metavar="DIR", type=Path, nargs="+",
                        help="make no run: judge the validations kept in DIR... (--keep) again with 1, 2, 4 and 8 runs "
                             "a side, other disturbance limits and floors, with the gate and without")
    args = parser.parse_args()
    if args.replay:
        replay(args.replay, sorted({args.floor, *ALT_FLOORS}), REPLAY_DISTURBED_ABOVE)
        return
    variants = args.variant or ["host.syscall[shstk=off]"]
    sizes = [float(s) for s in args.sizes.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cetbench-validate-") as scratch:
        tmp = args.keep or scratch
        os.makedirs(tmp, exist_ok=True)
        os.environ["CETBENCH_HOME"] = tmp  # nothing of this lands in the user's store
        h = Harness(Path(tmp), args.cpu, args.pyperf, args.floor, args.processes)
        print(f"cetbench self-validation: {args.trials} trials, CPU {args.cpu}; load average {load_average()}")
        print(f"comparison: analysis.compare defaults, {h.settings.correction}, alpha {h.settings.alpha}, "
              f"floor {h.settings.floor * 100:g} %, noise limit {h.settings.max_noise * 100:g} %; "
              f"detected = verdict regression; A/A false alarm = regression or improvement")
        rng = random.Random(args.seed)
        with neighbours(args.cpu, args.neighbour_max_s) if args.neighbour else contextlib.nullcontext():
            for variant in variants:
                validate(h, variant, sizes, args.trials, args.runs, rng)
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s; load average {load_average()}")


if __name__ == "__main__":
    main()
