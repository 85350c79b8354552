"""The store under load and faults, on SQLite and PostgreSQL (a script, not a test).

    python benchmarks/store_faults.py [--bundles 400] [--writers 8] [--readers 2] [--samples 8]
                                      [--stores sqlite,postgresql] [--seed 1] [--keep DIR]

Every scenario (tests/support/store_faults.py) runs `--writers` ingesting processes over lists that
overlap (each bundle is offered twice) and `--readers` processes running `cetbench compare` and
`cetbench trend`, injects its fault, then ingests every input once more and counts the rows:

  load       no fault: writers and readers at once
  kill       a writer SIGKILLed inside an ingest transaction, another at a random moment
  read-only  SQLite: the database file made read-only (immutable as root) while writers run; two
             writers started then find it so
  disk full  the store's file system (a small tmpfs; root only) fills up during the ingest
  restart    PostgreSQL restarted (`fast`: sessions ended; `immediate`: no shutdown checkpoint, as a
             crash) during the ingest

Printed per store and scenario: inputs, ingests taken on by the writers, writers, faults injected,
inputs reported failed (and re-ingested by the check), rows lost, duplicates, reader runs (and their
store errors while the store was down), time. A PostgreSQL server is started for the run (one per
scenario that restarts or fills it) unless $CETBENCH_PG_URL names one (then: load and kill only).
Exit status 1 when a row was lost or duplicated, or anything broke the contract.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from tests.support import store_faults as sf
from tests.support.pgserver import ENV_URL, PgServer, PgServerError
from tests.support.store import make_bundles, new_pg_schema


@contextmanager
def pg_server(root: Path | None = None) -> Iterator[PgServer]:
    server = PgServer.start(root)
    try:
        yield server
    finally:
        server.stop()


def sqlite_scenarios(work: Path, bundles: list[Path], args: argparse.Namespace) -> Iterator[sf.Figures]:
    common = {"writers": args.writers, "readers": args.readers, "seed": args.seed}
    url = f"sqlite:///{work / 'load.sqlite'}"
    yield sf.scenario("load", "sqlite", url, bundles, work / "load", **common)
    url = f"sqlite:///{work / 'kill.sqlite'}"
    yield sf.scenario("kill", "sqlite", url, bundles, work / "kill", **common,
                      fault=sf.kill_mid_transaction(url, work / "kill", bundles[: len(bundles) // 4],
                                                    random_kills=2, seed=args.seed))
    db = work / "read-only.sqlite"
    late = len(bundles) // 4
    yield sf.scenario("read-only", "sqlite", f"sqlite:///{db}", bundles, work / "read-only", **common,
                      held_back=late, fault=sf.read_only(f"sqlite:///{db}", work / "read-only", db, bundles[-late:],
                                                         after_runs=len(bundles) // 4))
    try:
        with sf.small_tmpfs(work / "full-mnt", "1m") as resize:
            url = f"sqlite:///{work / 'full-mnt' / 'store.sqlite'}"
            yield sf.scenario("disk full", "sqlite", url, bundles, work / "full", **common, fault=sf.disk_full(url),
                              after=lambda: resize("256m"))
    except sf.MountError as exc:
        print(f"(sqlite disk full: skipped: {exc})")


def postgres_scenarios(work: Path, bundles: list[Path], args: argparse.Namespace) -> Iterator[sf.Figures]:
    common = {"writers": args.writers, "readers": args.readers, "seed": args.seed}
    given = os.environ.get(ENV_URL)
    with nullcontext() if given else pg_server() as server:
        base = given or server.url  # type: ignore[union-attr]
        url = new_pg_schema(base)
        yield sf.scenario("load", "postgresql", url, bundles, work / "pg-load", **common)
        url = new_pg_schema(base)
        yield sf.scenario("kill", "postgresql", url, bundles, work / "pg-kill", **common,
                          fault=sf.kill_mid_transaction(url, work / "pg-kill", bundles[: len(bundles) // 4],
                                                        random_kills=2, seed=args.seed))
        if given:
            print("(postgresql restart and disk full: skipped: $CETBENCH_PG_URL names a server not ours)")
            return
        for mode in ("fast", "immediate"):
            url = new_pg_schema(base)
            yield sf.scenario(f"restart {mode}", "postgresql", url, bundles, work / f"pg-{mode}", **common,
                              fault=sf.restart_postgres(url, server.restart, len(bundles) // 4, (mode,)))
    try:
        with sf.small_tmpfs(work / "pg-mnt", "256m") as resize, pg_server(work / "pg-mnt" / "pg") as full:
            url = new_pg_schema(full.url)
            used = shutil.disk_usage(work / "pg-mnt").used
            resize(f"{used // 1024 + 1024}k")  # 1 MB left: the ingest fills it
            yield sf.scenario("disk full", "postgresql", url, bundles, work / "pg-full", **common,
                              fault=sf.disk_full(url), after=lambda: (resize("1g"), full.ensure_running()))
    except sf.MountError as exc:
        print(f"(postgresql disk full: skipped: {exc})")


ROW = "{:10s} {:17s} {:>6} {:>7} {:>7} {:>6} {:>8} {:>9} {:>5} {:>10} {:>7}"


def show(f: sf.Figures) -> None:
    print(ROW.format(f.store, f.scenario, f.inputs, f.ingests, f"{f.writers}+{f.readers}", f.faults,
                     f"{f.reported_failed}/{f.reingested}", f.rows_lost, f.duplicates,
                     f"{f.reader_runs} ({f.reader_store_errors})", f"{f.seconds:.1f}"))
    for problem in f.problems[:5]:
        print(f"    problem: {problem[:300]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", type=int, default=400)
    parser.add_argument("--samples", type=int, default=8, help="samples per measured variant (2 per bundle)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work directory to use and keep (default: temporary)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cetbench-store-faults-") as tmp:
        work = (args.keep or Path(tmp)).absolute()
        work.mkdir(parents=True, exist_ok=True)
        work.chmod(0o755)  # as root, the PostgreSQL server runs as `postgres` and must reach its directory
        bundles = make_bundles(work / "bundles", args.bundles, samples=args.samples, labels=sf.LABELS)
        print(f"{args.bundles} bundles of 3 variants and {2 * args.samples} samples; each offered to 2 of "
              f"{args.writers} writers; {args.readers} readers running compare and trend")
        print(ROW.format("store", "scenario", "inputs", "ingests", "writers", "faults", "failed/re", "rows lost",
                         "dups", "reads(err)", "time s"))
        runs: dict[str, Callable[[Path, list[Path], argparse.Namespace], Iterator[sf.Figures]]] = {
            "sqlite": sqlite_scenarios, "postgresql": postgres_scenarios}
        totals: list[sf.Figures] = []
        for store in args.stores.split(","):
            try:
                for figures in runs[store](work, bundles, args):
                    show(figures)
                    totals.append(figures)
            except PgServerError as exc:
                print(f"({store}: skipped: {exc})")
        print("per store:")
        for store in dict.fromkeys(f.store for f in totals):
            mine = [f for f in totals if f.store == store]
            print(f"  {store}: {sum(f.ingests for f in mine):,} ingests, {args.writers} concurrent writers and "
                  f"{args.readers} readers, {sum(f.faults for f in mine)} faults injected, "
                  f"{sum(f.rows_lost for f in mine)} rows lost, {sum(f.duplicates for f in mine)} duplicates, "
                  f"{sum(f.seconds for f in mine):.0f} s")
        bad = [f for f in totals if f.rows_lost or f.duplicates or f.problems]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
