"""Faults: concurrent ingests, a SIGKILL inside an ingest transaction, stores that cannot be reached,
and passwords that must never show."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from cetbench.results.errors import StoreError, StoreUnavailable
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import load
from cetbench.results.runs import list_runs
from cetbench.results.store import open_store
from tests.support.store import (
    REPO,
    make_bundles,
    pg_base_url,
    pg_url,  # noqa: F401  (fixture)
    store_url,  # noqa: F401  (fixture)
    table_counts,
)

SAMPLES = 8  # per measured variant; each bundle has 2 measured variants and 1 unsupported


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_bundles(tmp_path_factory.mktemp("bundles"), 300, samples=SAMPLES)


def _worker(url: str, paths: list[Path], tmp: Path, name: str, *extra: str) -> subprocess.Popen[str]:
    listing = tmp / f"{name}.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_worker", url, str(listing), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=300)  # a guard against a hang, not a measured time
    assert proc.returncode == 0, err
    return json.loads(out)


def _assert_complete(url: str, expected_runs: set[str]) -> None:
    """Exactly these runs, each with all its variants and samples, nothing else."""
    with open_store(url) as store:
        runs = list_runs(store)
        assert sorted(r.run_id for r in runs) == sorted(expected_runs)
        assert all((r.measured, r.unsupported) == (2, 1) for r in runs)
        per_run = load(store).groupby("run_id").size()
        assert set(per_run.index) == expected_runs
        assert (per_run == 2 * SAMPLES).all()
        assert table_counts(store) == {
            "runs": len(expected_runs), "variants": 3 * len(expected_runs),
            "samples": 2 * SAMPLES * len(expected_runs), "counters": 2 * 4 * len(expected_runs),
        }


def test_two_concurrent_ingests_lose_and_duplicate_nothing(
    store_url: str, bundles: list[Path], tmp_path: Path  # noqa: F811
) -> None:
    first, second = bundles[:200], list(reversed(bundles[100:]))  # 100 bundles in both, met head-on

    procs = [_worker(store_url, first, tmp_path, "a"), _worker(store_url, second, tmp_path, "b")]
    outs = [_finish(p) for p in procs]

    assert [o["errors"] for o in outs] == [[], []]
    assert sum(o["statuses"].get("ingested", 0) for o in outs) == 300
    assert sum(o["statuses"].get("duplicate", 0) for o in outs) == 100
    _assert_complete(store_url, {p.name for p in bundles})


def test_sigkill_inside_an_ingest_leaves_a_consistent_store(
    store_url: str, bundles: list[Path], tmp_path: Path  # noqa: F811
) -> None:
    marker = tmp_path / "inside-transaction"
    proc = _worker(store_url, bundles[:40], tmp_path, "k", "--hang-at", "15", "--marker", str(marker))
    deadline = time.monotonic() + 120  # guard only
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "worker never reached the 15th ingest"
        time.sleep(0.05)

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    hung_run = marker.read_text()
    assert hung_run == bundles[14].name
    _assert_complete(store_url, {p.name for p in bundles[:14]})  # the 15th is not half in
    with open_store(store_url) as store:
        report = ingest_paths(store, bundles[:40])
    assert report.count("ingested") == 26 and report.count("duplicate") == 14
    _assert_complete(store_url, {p.name for p in bundles[:40]})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


SECRET = "S3cr3t-Pa55word"


@pytest.mark.parametrize("url, expected", [
    (f"postgresql://lab:{SECRET}@127.0.0.1:{_closed_port()}/results", "cannot reach store"),
    (f"postgresql://lab:{SECRET}@127.0.0.1:notaport/results", "invalid store URL"),
    (f"mysql://lab:{SECRET}@127.0.0.1/results", "unsupported kind 'mysql'"),
    (f"postgresql+psycopg2://lab:{SECRET}@127.0.0.1/results", "driver 'psycopg2' not supported"),
])
def test_unusable_url_gives_one_clean_error_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url)

    message = str(caught.value)
    assert expected in message
    assert SECRET not in message and "lab:***@" in message
    error = caught.value  # no chained traceback (which could carry the raw URL)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


# Found by benchmarks/fuzz_inputs.py: each URL raised something other than a StoreError, or showed the
# password.
@pytest.mark.parametrize("url, expected", [
    ("sqlite3:///results.sqlite", "unsupported kind 'sqlite3'"),  # was NoSuchModuleError
    (f"sqlite://lab:{SECRET}@localhost/results.sqlite", "name a SQLite file"),  # was ArgumentError
    ("sqlite:///results.sqlite?timeout=abc", "with no host, user or query"),  # was ValueError
    (f"postgresql://lab\udcff:{SECRET}@127.0.0.1:1/results", "not valid UTF-8"),  # was UnicodeEncodeError
    (f"postgresql://lab@127.0.0.1:{_closed_port()}/results?password={SECRET}", "password=***"),  # shown
    (f"postgresql:/lab:{SECRET}@127.0.0.1/results", "write scheme://"),  # taken as a file path, shown
    (f"postgresql://la b:{SECRET}@127.0.0.1:notaport/results", "invalid store URL 'postgresql://la b:***@"),
    (f"postgresql://lab@127.0.0.1:{_closed_port()}/results?Password={SECRET}", "Password=***"),  # shown
])
def test_odd_url_gives_a_store_error_without_the_password(url: str, expected: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative SQLite paths name files here
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url)
    assert expected in str(caught.value) and SECRET not in str(caught.value)


def test_a_plain_path_names_the_file_as_written(tmp_path: Path) -> None:
    """'?' and '#' are part of a file name, not a URL's query (the store went to 'a' instead)."""
    with open_store(str(tmp_path / "a?b#c.sqlite")) as store:
        assert SECRET not in store.display_url
    assert [p.name for p in tmp_path.iterdir()] == ["a?b#c.sqlite"]


def test_sqlite_store_in_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        open_store(str(tmp_path / "nope" / "store.sqlite"))


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match="not a database"):
        open_store(str(path))


def test_wrong_password_on_a_real_server_is_masked(pg_url: str) -> None:  # noqa: F811
    base = pg_base_url()
    role = f"pw_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
    try:
        good = make_url(pg_url).set(username=role, password=SECRET)
        wrong = good.set(password="Wr0ng-" + SECRET)
        with pytest.raises(StoreUnavailable) as caught:
            open_store(wrong.render_as_string(hide_password=False))
        message = str(caught.value)
        assert "password authentication failed" in message
        assert SECRET not in message and role in message
        # The right password but no right to create tables: a StoreError, password still hidden.
        with pytest.raises(StoreError) as refused:
            open_store(good.render_as_string(hide_password=False))
        assert SECRET not in str(refused.value) and f"{role}:***@" in str(refused.value)
        schema_name = make_url(pg_url).query["options"].split("=", 1)[1]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'GRANT ALL ON SCHEMA "{schema_name}" TO {role}')
        with open_store(good.render_as_string(hide_password=False)) as store:
            assert SECRET not in repr(store) and SECRET not in store.display_url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
