"""The store under load and faults: writers and readers in their own processes, a fault injected while
they run, then every input checked (test support for tests/test_store_faults.py and
benchmarks/store_faults.py).

A scenario starts `writers` ingesting processes (tests.support.store_worker) over lists that overlap
(every bundle is given to two writers, so each is also offered as a duplicate) and `readers` running
`cetbench compare` and `cetbench trend` (tests.support.store_reader), injects its fault, waits, and
then ingests every input once more in one process. It holds when:

- every input a writer reported ingested comes back `duplicate` (it was wholly in), and every other
  one comes back `ingested` (it was reported failed, or never reached, and is re-ingestable);
- the store then holds exactly the inputs' rows: for each run its variants, samples and counters as
  its input has them (rows lost 0), and nothing else (duplicates 0);
- readers never failed other than with a one-line store error while the store was down.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from cetbench.results import schema
from cetbench.results.ingest import ingest_paths, read_input
from cetbench.results.store import open_store
from tests.support.store import REPO

Counts = tuple[int, int, int, int]  # variants, samples, counters, runs
GUARD_S = 300  # a guard against a hang, never a measured time
LABELS = ("v6.18", "v6.19", "v7.0")  # kernel labels of the inputs (make_bundles): compare the first two


@dataclass
class Figures:
    store: str
    scenario: str
    inputs: int
    writers: int
    readers: int
    faults: int = 0
    ingests: int = 0  # inputs the writers took on (each input is offered twice)
    stopped: int = 0  # writers a store error stopped
    reported_failed: int = 0  # inputs a writer reported failed (a store error), or never told about
    reingested: int = 0  # inputs the check's own ingest added
    rows_lost: int = 0
    duplicates: int = 0
    reader_runs: int = 0
    reader_store_errors: int = 0
    problems: list[str] = field(default_factory=list)  # anything that broke the contract
    seconds: float = 0.0


class Writer:
    def __init__(self, url: str, paths: list[Path], work: Path, name: str, *extra: str) -> None:
        listing = work / f"{name}.txt"
        listing.write_text("\n".join(str(p) for p in paths))
        self.name, self.paths = name, paths
        self._done: tuple[list[dict], str] | None = None
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.store_worker", url, str(listing), *extra],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self) -> tuple[list[dict], str]:
        """The lines the writer wrote (all of them, if it was killed: they are flushed) and its stderr."""
        if self._done is None:
            out, err = self.proc.communicate(timeout=GUARD_S)
            lines = [json.loads(line) for line in out.splitlines() if line.strip()]
            if self.proc.returncode not in (0, 3, -signal.SIGKILL):
                lines.append({"path": "", "status": "crashed", "message": err[-500:]})
            self._done = (lines, err)
        return self._done

    def lines(self) -> list[dict]:
        return self.finish()[0]

    def kill(self) -> None:
        self.proc.kill()


class Reader:
    def __init__(self, url: str, work: Path, name: str, baseline: str, candidate: str) -> None:
        self.stop = work / f"{name}.stop"
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.store_reader", url, str(self.stop),
                                      baseline, candidate], cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "120"})

    def finish(self) -> dict:
        self.stop.touch()
        out, err = self.proc.communicate(timeout=GUARD_S)
        if self.proc.returncode != 0:
            return {"counts": {"failed": 1}, "failures": [err[-500:]]}
        return dict(json.loads(out))


def expected_rows(paths: list[Path]) -> dict[str, Counts]:
    """What each input puts in the store, by run id, from the input itself."""
    out = {}
    for path in paths:
        record = read_input(path)
        out[record.run_id] = (len(record.variants), sum(len(v.values) for v in record.variants),
                              sum(len(v.counters) for v in record.variants), 1)
    return out


def stored_rows(url: str) -> dict[str, Counts]:
    r, v, s, c = schema.runs, schema.variants, schema.samples, schema.counters
    with open_store(url) as store, store.read() as conn:
        runs = Counter(conn.execute(sa.select(r.c.run_id)).scalars())
        per = {}
        for table, column in ((v, None), (s, s.c.variant_pk), (c, c.c.variant_pk)):
            joined = v.join(r, v.c.run_pk == r.c.id) if column is None else \
                table.join(v, column == v.c.id).join(r, v.c.run_pk == r.c.id)
            per[table.name] = dict(conn.execute(sa.select(r.c.run_id, sa.func.count()).select_from(joined)
                                                .group_by(r.c.run_id)).all())
    return {run: (per["variants"].get(run, 0), per["samples"].get(run, 0), per["counters"].get(run, 0), n)
            for run, n in runs.items()}


def split(paths: list[Path], writers: int, rng: random.Random) -> list[list[Path]]:
    """Each path goes to two different writers, each writer's list in its own order."""
    lists: list[list[Path]] = [[] for _ in range(writers)]
    for i, path in enumerate(paths):
        lists[i % writers].append(path)
        lists[(i + 1 + rng.randrange(writers - 1)) % writers if writers > 1 else 0].append(path)
    for items in lists:
        rng.shuffle(items)
    return lists


Fault = Callable[[list[Writer], "Figures"], None]  # injects its fault while the writers run


def scenario(name: str, store: str, url: str, paths: list[Path], work: Path, fault: Fault | None = None,
             writers: int = 8, readers: int = 1, seed: int = 0, labels: tuple[str, ...] = LABELS,
             after: Callable[[], None] | None = None, held_back: int = 0) -> Figures:
    """Run writers and readers with `fault`, then `after` (e.g. give the disk back), then check. The
    last `held_back` paths are given to no writer: the fault may use them (`late_paths`)."""
    work.mkdir(parents=True, exist_ok=True)
    figures = Figures(store, name, len(paths), writers, readers)
    expected = expected_rows(paths)
    started = time.perf_counter()
    with open_store(url):  # the schema exists before the writers race to make it
        pass
    rng = random.Random(seed)
    watching = [Reader(url, work, f"{name}-r{i}", labels[0], labels[1]) for i in range(readers)]
    for r in watching:  # readers first, so that they read while the writers write
        wait_for(lambda r=r: Path(f"{r.stop}.ready").exists() or r.proc.poll() is not None, "a reader")
    first = paths[:len(paths) - held_back]
    running = [Writer(url, lists, work, f"{name}-w{i}") for i, lists in enumerate(split(first, writers, rng))]
    if fault:
        fault(running, figures)
    reports = [w.finish() for w in running]
    for r in watching:
        summary = r.finish()
        counts = Counter(summary["counts"])
        figures.reader_runs += sum(counts.values())
        figures.reader_store_errors += counts["store error"]
        figures.problems += [f"reader: {f}" for f in summary["failures"]]
    if after:
        after()
    ingested: set[str] = set()
    for lines, _err in reports:
        figures.ingests += len(lines)
        figures.stopped += bool(lines) and lines[-1]["status"] == "store error"
        ingested |= {line["path"] for line in lines if line["status"] in ("ingested", "replaced")}
        figures.problems += [f"writer: {line['path']}: {line['message']}" for line in lines
                             if line["status"] in ("error", "crashed")]
    figures.reported_failed = len(paths) - len({str(p) for p in paths} & ingested)
    _check_again(url, paths, ingested, figures)
    _count_rows(url, expected, figures)
    figures.seconds = time.perf_counter() - started
    return figures


def _check_again(url: str, paths: list[Path], ingested: set[str], figures: Figures) -> None:
    """Every input once more: in already if a writer said so, re-ingestable otherwise."""
    with open_store(url) as store:
        report = ingest_paths(store, paths)
    for result in report.results:
        want = "duplicate" if result.path in ingested else "ingested"
        if result.status != want:
            figures.problems.append(f"{result.path}: {result.status} on the check's ingest, expected {want}"
                                    f"{': ' + str(result.message) if result.message else ''}")
    figures.reingested = report.count("ingested")


def _count_rows(url: str, expected: dict[str, Counts], figures: Figures) -> None:
    stored = stored_rows(url)
    for run, want in expected.items():
        got = stored.get(run, (0, 0, 0, 0))
        figures.rows_lost += sum(max(0, w - g) for w, g in zip(want, got, strict=True))
        figures.duplicates += sum(max(0, g - w) for w, g in zip(want, got, strict=True))
    figures.duplicates += sum(sum(rows) for run, rows in stored.items() if run not in expected)


# --- faults ------------------------------------------------------------------------------------

def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {GUARD_S} s")
        time.sleep(0.02)


def stored_runs(url: str) -> int:
    with open_store(url) as store, store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one())


def kill_mid_transaction(url: str, work: Path, paths: list[Path], at: int = 5,
                         random_kills: int = 1, seed: int = 0) -> Fault:
    """One more writer, over `paths`, that stops inside the transaction of its `at`-th new run and is
    SIGKILLed there; and `random_kills` of the others SIGKILLed at a random moment."""
    def fault(running: list[Writer], figures: Figures) -> None:
        marker = work / "inside-transaction"
        hung = Writer(url, paths, work, "hung", "--hang-at", str(at), "--marker", str(marker))
        wait_for(lambda: marker.exists() or hung.proc.poll() is not None, "the hang inside a transaction")
        rng = random.Random(seed)
        for victim in rng.sample(running, random_kills):
            time.sleep(rng.random() * 0.5)
            victim.kill()
        hung.kill()
        figures.faults += random_kills + 1
        running.append(hung)
        figures.writers += 1

    return fault


def restart_postgres(url: str, restart: Callable[[str], None], after_runs: int, modes: tuple[str, ...]) -> Fault:
    """Restart the server (each of `modes`: fast, immediate) once the store holds `after_runs` runs."""
    def fault(running: list[Writer], figures: Figures) -> None:
        for i, mode in enumerate(modes):
            wanted = after_runs * (i + 1)
            wait_for(lambda n=wanted: stored_runs(url) >= n or all(w.proc.poll() is not None for w in running),
                     "ingests")
            restart(mode)
            figures.faults += 1

    return fault


def read_only(url: str, work: Path, db_file: Path, late: list[Path], after_runs: int) -> Fault:
    """Once the store holds `after_runs` runs, make its file read-only (immutable as root, whom file
    modes do not stop) and start two more writers over `late`; give write access back once they end.

    Writers that opened the file before keep writing into the WAL through their open descriptor (the
    kernel checks access at open); the new ones find it read-only."""
    def fault(running: list[Writer], figures: Figures) -> None:
        wait_for(lambda: stored_runs(url) >= after_runs, "ingests")
        set_read_only(db_file, True)
        try:
            late_writers = [Writer(url, late[i::2], work, f"late-{i}") for i in range(2)]
            for w in late_writers:
                w.proc.wait(timeout=GUARD_S)
        finally:
            set_read_only(db_file, False)
        running += late_writers
        figures.writers += len(late_writers)
        figures.faults += 1

    return fault


def set_read_only(path: Path, on: bool) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True, capture_output=True)
    else:
        path.chmod(0o444 if on else 0o644)


class MountError(Exception):
    """A tmpfs cannot be mounted here; the message says why."""


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Callable[[str], None]]:
    """A tmpfs of `size` mounted at `path` for the block (root only); yields a function that resizes it."""
    if os.geteuid() != 0:
        raise MountError("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "cetbench-test", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MountError(f"mount -t tmpfs failed: {done.stderr.strip()}")

    def resize(new: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={new}", str(path)], check=True, capture_output=True)

    try:
        yield resize
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)  # busy: detach


def disk_full(url: str) -> Fault:
    """The store's file system fills up while the writers run (a tmpfs too small for every input)."""
    def fault(running: list[Writer], figures: Figures) -> None:
        for w in running:
            w.proc.wait(timeout=GUARD_S)
        figures.faults += any("full" in str(line.get("message")) or "No space left" in str(line.get("message"))
                              for w in running for line in w.lines())

    return fault
