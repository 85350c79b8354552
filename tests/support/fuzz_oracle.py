"""What the input fuzz harness (tests/support/fuzz.py) accepts as the end of one case.

An ingest ends well when it is a reported input error that names the file and the place, with not
one row written, or an ingest whose rows are exactly what was reported, each value stored as the
input gave it. A store URL ends well as an open store or a StoreError whose message hides the
password. A CLI command ends well with exit code 0-3 and, on an error, one line on stderr.
Anything else is a failure, named by `Outcome.failure`.
"""

from __future__ import annotations

import contextlib
import io
import math
import traceback
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cetbench.results import schema
from cetbench.results.errors import StoreError
from cetbench.results.ingest import IngestResult, ingest_paths, read_input
from cetbench.results.query import load
from cetbench.results.store import Store, open_store
from tests.support.store import REPO

Counts = tuple[int, int, int, int]  # runs, variants, samples, counters
_TABLES = (schema.runs, schema.variants, schema.samples, schema.counters)


@dataclass
class Outcome:
    kind: str  # what the case ended as: ingested, input error, store unavailable, exit 2, ...
    failure: str | None = None  # the contract it broke (None: it ended well)
    detail: str = ""  # the message, or where the uncaught exception was raised


def uncaught(exc: BaseException) -> Outcome:
    """An exception that escaped: named by its type and the innermost cetbench frame."""
    # The editable install runs the sources through links under build/…/cetbench/.
    ours = tuple(str(REPO / d) for d in ("bench", "results", "analysis", "workloads"))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(ours) or "/cetbench/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "outside cetbench"
    return Outcome("uncaught", f"uncaught {type(exc).__name__}", f"{where}: {str(exc)[:200]}")


def totals(store: Store) -> Counts:
    with store.read() as conn:
        n = [int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()) for t in _TABLES]
    return n[0], n[1], n[2], n[3]


def rows_of(store: Store, run_id: str) -> Counts:
    """The rows one run occupies."""
    r, v, s, c = _TABLES
    with store.read() as conn:
        pk = conn.execute(sa.select(r.c.id).where(r.c.run_id == run_id)).scalar()
        if pk is None:
            return 0, 0, 0, 0
        variant_pks = sa.select(v.c.id).where(v.c.run_pk == pk).scalar_subquery()
        n_v, n_s, n_c = (
            int(conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one())
            for table, where in ((v, v.c.run_pk == pk), (s, s.c.variant_pk.in_(variant_pks)),
                                 (c, c.c.variant_pk.in_(variant_pks)))
        )
    return 1, n_v, n_s, n_c


class IngestOracle:
    """Ingests one input at a time into one store and checks the store after each."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.counts = totals(store)
        self.stored: dict[str, Counts] = {}  # run id -> its rows, for every run ingested so far

    def check(self, path: Path, names: tuple[str, ...], summarise: bool = False) -> Outcome:
        """Ingest `path`; an error must name one of `names` (its file) and then a place. With
        `summarise`, an accepted input must also give the summary `cetbench run` prints."""
        try:
            [result] = ingest_paths(self.store, [path]).results
        except StoreError as exc:  # a bad input must never look like a broken store
            self.counts = totals(self.store)
            return Outcome("store error", "input reported as a store failure", str(exc)[:300])
        except Exception as exc:
            self.counts = totals(self.store)
            return uncaught(exc)
        before, self.counts = self.counts, totals(self.store)
        if result.status == "error":
            if self.counts != before:
                return Outcome("input error", "rows written for a refused input", f"{before} -> {self.counts}")
            return _check_message(result, path, names)
        outcome = self._check_stored(result, path, before)
        if summarise and not outcome.failure and result.status != "duplicate":
            try:
                _summary(self.store, str(result.run_id))
            except Exception as exc:
                failed = uncaught(exc)
                return Outcome(outcome.kind, f"summary of an accepted input: {failed.failure}", failed.detail)
        return outcome

    def _check_stored(self, result: IngestResult, path: Path, before: Counts) -> Outcome:
        run_id = str(result.run_id)
        now = rows_of(self.store, run_id)
        was = self.stored.get(run_id, (0, 0, 0, 0)) if result.status == "replaced" else (0, 0, 0, 0)
        if result.status == "duplicate":
            now_expected = before
        else:
            self.stored[run_id] = now
            now_expected = tuple(b + n - w for b, n, w in zip(before, now, was, strict=True))  # type: ignore[assignment]
        if self.counts != now_expected:
            return Outcome(result.status, "store totals differ from the rows reported", f"{before} -> {self.counts}")
        if result.status == "duplicate":
            return Outcome("duplicate")
        record = read_input(path)
        want = (1, len(record.variants), sum(len(v.values) for v in record.variants),
                sum(len(v.counters) for v in record.variants))
        if now != want or (result.variants, result.samples) != want[1:3]:
            return Outcome(result.status, "partial run", f"stored {now}, input has {want}, reported "
                                                         f"{result.variants} variants {result.samples} samples")
        frame = load(self.store, run_ids=[run_id])
        values = {(v.name, i): x for v in record.variants for i, x in enumerate(v.values)}
        stored = {(n, int(i)): x for n, i, x in zip(frame["variant"], frame["sample"], frame["value"], strict=True)}
        if stored != values:
            return Outcome(result.status, "stored samples differ from the input's", run_id)
        if not all(math.isfinite(x) and x > 0 for x in stored.values()):
            return Outcome(result.status, "a stored sample is not finite and > 0", run_id)
        cycles = frame["cycles"].dropna()
        if not all(math.isfinite(x) and x >= 0 for x in cycles):
            return Outcome(result.status, "stored cycles per op not finite and >= 0", run_id)
        numbers = [x for v in record.variants for c in v.counters for x in (c.count, c.per_op, c.running_pct)
                   if x is not None]
        if not all(math.isfinite(x) for x in numbers):
            return Outcome(result.status, "a stored perf count is not finite", run_id)
        return Outcome(result.status)


def _summary(store: Store, run_id: str) -> None:
    """The summary `cetbench run` prints for a run, in every text format."""
    from cetbench.analysis.render_json import render_json
    from cetbench.analysis.render_markdown import render_markdown
    from cetbench.analysis.render_terminal import render_terminal_text
    from cetbench.analysis.render_text import render_text
    from cetbench.selection import run_report

    report = run_report(store, [run_id], f"run {run_id}", with_variants=True)
    for render in (render_text, render_json, render_markdown, render_terminal_text):
        render(report)


def _check_message(result: IngestResult, path: Path, names: tuple[str, ...]) -> Outcome:
    """The message names the input's file (or the bundle path it is about) and then where and what."""
    message = str(result.message or "")
    if result.path != str(path):
        return Outcome("input error", "error names another input", f"{result.path}: {message}")
    if not any(n in message for n in names):
        return Outcome("input error", "error does not name the file", message[:300])
    if len(message.split(": ")) < 2 and not any(w in message for w in ("is missing", "outside the bundle")):
        return Outcome("input error", "error does not say where or what", message[:300])
    return Outcome("input error", detail=message[:300])


def check_url(url: str, secret: str, cwd: Path) -> Outcome:
    """open_store(url): an open store, or a StoreError that never shows the password."""
    try:
        with contextlib.chdir(cwd):  # a relative path names a file there, never in the caller's directory
            store = open_store(url)
    except StoreError as exc:
        text = f"{exc} {exc.__cause__ or ''} {exc.__context__ if not exc.__suppress_context__ else ''}"
        if secret in text and _is_password(url, secret):
            return Outcome(type(exc).__name__, "password shown", str(exc)[:300])
        return Outcome("store unavailable" if type(exc).__name__ == "StoreUnavailable" else "store error",
                       detail=str(exc)[:300])
    except Exception as exc:
        return uncaught(exc)
    try:
        with store:
            if (secret in repr(store) or secret in store.display_url) and _is_password(url, secret):
                return Outcome("opened", "password shown", store.display_url)
    except Exception as exc:
        return uncaught(exc)
    return Outcome("opened")


def _is_password(url: str, secret: str) -> bool:
    """Whether the URL gives `secret` as its password (a mutated URL may carry it as a database name)."""
    try:
        parsed = make_url(url)
    except Exception:
        return "@" in url
    given = parsed.query.get("password", ())
    return any(secret in p for p in (parsed.password or "", *((given,) if isinstance(given, str) else given)))


def check_cli(argv: list[str], cwd: Path, secret: str | None = None) -> Outcome:
    """`cetbench ARGV` in this process, with output streams that encode as a real process's do."""
    from cetbench.cli import main

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    code: object = None
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            finally:
                out.flush()
                err.flush()
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:
        return uncaught(exc)
    stderr = err_bytes.getvalue().decode("utf-8", "replace")
    shown = stderr + out_bytes.getvalue().decode("utf-8", "replace")
    if secret and secret in shown and any(_is_password(a, secret) for a in argv if "://" in a):
        return Outcome(f"exit {code}", "password shown", stderr[:300])
    if code not in (0, 1, 2, 3):
        return Outcome(f"exit {code}", "exit code outside 0-3", stderr[-300:])
    lines = stderr.strip().splitlines()
    click_usage = bool(lines) and (lines[0].startswith("Usage:") or lines[-1].startswith("Error:"))
    verdict = not lines and out_bytes.getvalue().strip()  # exit 3 of an inconclusive comparison: a report
    if code in (2, 3) and len(lines) != 1 and not click_usage and not verdict:
        return Outcome(f"exit {code}", "error is not one line", stderr[-300:])
    if "Traceback" in stderr:
        return Outcome(f"exit {code}", "traceback shown", stderr[-300:])
    return Outcome(f"exit {code}", detail=stderr.strip()[:300])
