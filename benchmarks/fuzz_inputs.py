"""Fuzz every input the suite reads and count how each case ended (a script, not a test).

    python benchmarks/fuzz_inputs.py [--count 10000] [--seed 1] [--jobs 2] [--stores sqlite,postgresql]
                                     [--only TARGET,...] [--template BUNDLE] [--first N] [--keep DIR] [--show N]

Inputs: a run bundle's manifest.json, its pyperf JSON, raw records (raw.jsonl) and perf counts
(perf.json); a plain pyperf suite file; a pytest-benchmark JSON file; store URLs; the selections given
to the CLI; the lab's result stream (the serial console of a lab boot, read into job results and a
bundle: tests/support/fuzz_lab.py). The templates are a real bundle (`cetbench run --quick
--no-store`; the test bundle writer when that cannot run here, or --template), a pyperf suite made of
its pyperf files, and a file the real pytest-benchmark wrote; the lab's is written from the agent's
line format. Each case mutates one input (tests/support/fuzz.py, fuzz_json.py) and feeds it through
the public API or the CLI; every file case is ingested into each store (SQLite, and a throwaway
PostgreSQL unless $CETBENCH_PG_URL names one; without either, SQLite only). --only draws the cases
among the targets named (as the report lists them), e.g. `--only "lab result stream"`; the bundle
template is then the test bundle writer's unless a bundle target is among them.

A case ends well as a reported input error naming the file and the place, or an ingest whose rows
are exactly what was reported (tests/support/fuzz_oracle.py); a lab stream case, as job results read
or failed saying why, with the jobs it left alone read as the template's, and a bundle that ingests
(fuzz_lab.py). Anything else is listed with the command that replays it (--first N --count 1). Exit
status 1 when any case ended badly.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from tests.support.fuzz import TARGETS, Fuzzer, Tally, Templates, pyperf_suite_of
from tests.support.pgserver import ENV_URL, PgServer, PgServerError
from tests.support.store import new_pg_schema, write_pytest_benchmark_json

REPO = Path(__file__).resolve().parent.parent
#: The targets that mutate the template bundle (or files made from it): a real quick run is made for them.
BUNDLE_TARGETS = ("bundle manifest", "bundle pyperf JSON", "raw records", "perf counts", "pyperf file")


def templates(work: Path, bundle: Path | None, real: bool = True) -> tuple[Templates, str]:
    work.mkdir(parents=True, exist_ok=True)
    if bundle is None and real:
        out = work / "real"
        done = subprocess.run([sys.executable, "-m", "cetbench", "run", "--quick", "--no-store", "--out", str(out)],
                              capture_output=True, text=True, cwd=REPO, check=False)
        if done.returncode == 0:
            bundle = out
        else:
            print(f"(no real bundle: cetbench run --quick said: {done.stderr.strip()[-300:]})")
    if bundle is None:
        return Templates.synthetic(work / "synthetic"), "synthetic bundle (tests/support/store.py)"
    return (Templates(bundle, pyperf_suite_of(bundle, work / "suite.json"), write_pytest_benchmark_json(work)),
            f"real bundle {bundle.name}")


def _job(args: tuple[Path, Templates, list[str], str | None, bool, int, int, int, tuple[str, ...]]
         ) -> tuple[Tally, float]:
    work, tpl, stores, pg, own_server, count, seed, first, only = args
    factories = {"sqlite": _sqlite_factory(work)}
    if "postgresql" in stores and pg:
        factories["postgresql"] = lambda: new_pg_schema(pg)
    started = time.perf_counter()
    # Store URLs reach only a server of our own: a fuzzed URL that connects may create tables.
    def progress(done: int) -> None:
        if done % 1000 == 0:
            print(f"  {work.name}: {done:,}/{count:,} cases", file=sys.stderr, flush=True)

    tally = Fuzzer(work, tpl, factories, pg_base=pg if own_server else None, only=only).run(
        count, seed, first=first, progress=progress)
    return tally, time.perf_counter() - started


def _sqlite_factory(work: Path):  # type: ignore[no-untyped-def]
    made = [0]

    def new() -> str:
        made[0] += 1
        return f"sqlite:///{work / f'store-{made[0]}.sqlite'}"

    return new


def merge(tallies: list[Tally]) -> Tally:
    out = Tally()
    for t in tallies:
        out.inputs += t.inputs
        out.by_target.update(t.by_target)
        out.outcomes.update(t.outcomes)
        out.failures += t.failures
    return out


def report(tally: Tally, seconds: float, stores: list[str], show: int, seed: int, only: tuple[str, ...]) -> None:
    print(f"inputs fuzzed:        {tally.inputs:,} in {seconds:.0f} s (stores: {', '.join(stores)})")
    print(f"uncaught exceptions:  {tally.uncaught}")
    print(f"contract broken:      {len(tally.failures) - tally.uncaught} (other than uncaught)")
    print("inputs by target:")
    for target, n in tally.by_target.most_common():
        print(f"  {target:24s} {n:7,}")
    print("outcomes by kind (file inputs: one per store):")
    for kind, n in tally.outcomes.most_common():
        print(f"  {kind:24s} {n:7,}")
    if tally.failures:
        print("cases that ended badly (first of each kind):")
        seen: Counter[tuple[str, str]] = Counter()
        for f in tally.failures:
            seen[(f.target, f.failure)] += 1
            if seen[(f.target, f.failure)] == 1 and len(seen) <= show:
                print(f"  [{f.store}] {f.target}: {f.failure} ({f.mutation}): {f.detail[:200]}")
                chosen = f" --only {','.join(only)!r}" if only else ""
                print(f"      replay: benchmarks/fuzz_inputs.py --seed {seed} --first {f.case} --count 1 --jobs 1"
                      f"{chosen}")
        for (target, failure), n in seen.most_common():
            print(f"  {n:5d} x {target}: {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="number of the first case (replay one)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--only", default="", help="fuzz only these targets (comma-separated names, as reported)")
    parser.add_argument("--template", type=Path, help="a run bundle to mutate (default: a quick real run)")
    parser.add_argument("--keep", type=Path, help="work directory to use and keep (default: temporary)")
    parser.add_argument("--show", type=int, default=20, help="kinds of bad endings to show in full")
    args = parser.parse_args()
    stores = args.stores.split(",")
    only = tuple(t.strip() for t in args.only.split(",") if t.strip())
    unknown = set(only) - {name for name, _, _ in TARGETS}
    if unknown:
        parser.error(f"no target {', '.join(sorted(unknown))}; the targets: {', '.join(n for n, _, _ in TARGETS)}")
    needs_bundle = not only or any(name in BUNDLE_TARGETS for name in only)

    with tempfile.TemporaryDirectory(prefix="cetbench-fuzz-") as tmp:
        work = (args.keep or Path(tmp)).absolute()
        work.mkdir(parents=True, exist_ok=True)
        os.environ["CETBENCH_HOME"] = str(work / "home")  # "" as a store URL opens the default store
        tpl, what = templates(work / "templates", args.template, real=needs_bundle)
        print(f"templates: {what}, a pyperf suite of its pyperf files, a pytest-benchmark file"
              + (f"; targets: {', '.join(only)}" if only else ""))
        server, pg = None, os.environ.get(ENV_URL)
        if "postgresql" in stores and not pg:
            try:
                server = PgServer.start()
                pg = server.url
            except PgServerError as exc:
                print(f"(PostgreSQL not available: {exc}; SQLite only)")
        used = [s for s in stores if s != "postgresql" or pg]
        jobs = max(1, min(args.jobs, args.count))
        share = [args.count // jobs + (i < args.count % jobs) for i in range(jobs)]
        starts = [args.first + sum(share[:i]) for i in range(jobs)]
        work_of = [work / f"job-{i}" for i in range(jobs)]
        started = time.perf_counter()
        try:
            job_args = [(w, tpl, used, pg, server is not None, n, args.seed, s, only)
                        for w, n, s in zip(work_of, share, starts, strict=True)]
            if jobs == 1:
                results = [_job(job_args[0])]
            else:
                with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                    results = pool.map(_job, job_args)
        finally:
            if server:
                server.stop()
        tally = merge([t for t, _ in results])
        report(tally, time.perf_counter() - started, used, args.show, args.seed, only)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
