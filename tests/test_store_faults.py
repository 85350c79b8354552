"""Faults: concurrent ingests, a SIGKILL inside an ingest transaction, stores that cannot be reached,
and passwords that must never show."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from cetbench.results.errors import StoreError, StoreUnavailable
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import load
from cetbench.results.runs import list_runs
from cetbench.results.store import open_store
from cetbench.run_and_store import ingest_bundle
from tests.support import store_faults as sf
from tests.support.store import (
    make_bundles,
    pg_base_url,
    pg_own_server,
    pg_url,  # noqa: F401  (fixture)
    store_url,  # noqa: F401  (fixture)
    table_counts,
)

SAMPLES = 8  # per measured variant; each bundle has 2 measured variants and 1 unsupported


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_bundles(tmp_path_factory.mktemp("bundles"), 120, samples=SAMPLES, labels=sf.LABELS)


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


def _assert_whole(figures: sf.Figures) -> None:
    """What every scenario must end with: each input in once, whole; nothing else; readers unharmed."""
    assert figures.problems == []
    assert (figures.rows_lost, figures.duplicates) == (0, 0)
    assert figures.reader_runs > 0 or not figures.readers


def test_eight_writers_and_a_reader_with_one_killed_mid_transaction_lose_and_duplicate_nothing(
    store_url: str, bundles: list[Path], tmp_path: Path  # noqa: F811
) -> None:
    paths = bundles[:80]
    fault = sf.kill_mid_transaction(store_url, tmp_path, paths[:20], at=5, random_kills=1)

    figures = sf.scenario("kill", "", store_url, paths, tmp_path, fault=fault, writers=8, readers=1)

    _assert_whole(figures)
    assert figures.faults == 2 and figures.writers == 9
    assert figures.ingests >= 2 * len(paths) - 20 - 20  # the two killed writers took on at most 20 each
    _assert_complete(store_url, {p.name for p in paths})


def test_sigkill_inside_an_ingest_leaves_a_consistent_store(
    store_url: str, bundles: list[Path], tmp_path: Path  # noqa: F811
) -> None:
    marker = tmp_path / "inside-transaction"
    writer = sf.Writer(store_url, bundles[:40], tmp_path, "k", "--hang-at", "15", "--marker", str(marker))
    sf.wait_for(lambda: marker.exists() or writer.proc.poll() is not None, "the 15th ingest")
    assert writer.proc.poll() is None, writer.finish()

    writer.kill()

    assert [line["status"] for line in writer.lines()] == ["ingested"] * 14  # it told all it finished
    hung_run = marker.read_text()
    assert hung_run == bundles[14].name
    _assert_complete(store_url, {p.name for p in bundles[:14]})  # the 15th is not half in
    with open_store(store_url) as store:
        report = ingest_paths(store, bundles[:40])
    assert report.count("ingested") == 26 and report.count("duplicate") == 14
    _assert_complete(store_url, {p.name for p in bundles[:40]})


def test_a_file_made_read_only_stops_its_new_writers_and_loses_nothing(bundles: list[Path], tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite"
    late = bundles[60:80]
    fault = sf.read_only(f"sqlite:///{db}", tmp_path, db, late, after_runs=10)
    try:
        figures = sf.scenario("read-only", "sqlite", f"sqlite:///{db}", bundles[:80], tmp_path, fault=fault,
                              writers=4, readers=0, held_back=len(late))
    except subprocess.CalledProcessError as exc:  # chattr on a file system without attributes
        pytest.skip(f"cannot make a file immutable here: {exc.stderr.strip()}")

    _assert_whole(figures)
    # At least the two writers started on a read-only file stop (as does a first one opening it late).
    assert figures.faults == 1 and figures.stopped >= 2
    assert figures.reingested == figures.reported_failed >= len(late)
    _assert_complete(f"sqlite:///{db}", {p.name for p in bundles[:80]})


def test_a_full_disk_stops_the_writers_and_loses_nothing(bundles: list[Path], tmp_path: Path) -> None:
    try:
        with sf.small_tmpfs(tmp_path / "mnt", "1m") as resize:
            url = f"sqlite:///{tmp_path / 'mnt' / 'store.sqlite'}"
            figures = sf.scenario("disk full", "sqlite", url, bundles[:80], tmp_path, fault=sf.disk_full(url),
                                  writers=4, readers=0, after=lambda: resize("64m"))
            _assert_complete(url, {p.name for p in bundles[:80]})
    except sf.MountError as exc:
        if os.geteuid() == 0 and os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"root, but no tmpfs for the disk-full test: {exc}")
        pytest.skip(f"no small file system to fill: {exc}")

    _assert_whole(figures)
    assert figures.faults == 1 and figures.stopped == 4 and figures.reingested == figures.reported_failed > 0


def test_postgresql_crash_restart_during_ingest_loses_no_reported_ingest(
    pg_url: str, bundles: list[Path], tmp_path: Path  # noqa: F811
) -> None:
    """`immediate`: the server stops without a shutdown checkpoint, as in a crash."""
    server = pg_own_server()
    fault = sf.restart_postgres(pg_url, server.restart, after_runs=10, modes=("immediate",))

    figures = sf.scenario("restart", "postgresql", pg_url, bundles[:80], tmp_path, fault=fault, writers=4, readers=0)

    _assert_whole(figures)
    assert figures.faults == 1 and figures.stopped > 0
    _assert_complete(pg_url, {p.name for p in bundles[:80]})


def test_an_ingest_reported_done_survives_a_postgresql_crash(pg_url: str, bundles: list[Path]) -> None:  # noqa: F811
    """The throwaway server runs with synchronous_commit off, as a lab's may: a commit is acknowledged
    before its WAL is written, and a crash lost every ingest reported done just before it (6 of 6 here)
    until the store asked for synchronous commits."""
    with open_store(pg_url) as store:
        assert ingest_paths(store, [bundles[0]]).results[0].status == "ingested"
    pg_own_server().restart("immediate")
    _assert_complete(pg_url, {bundles[0].name})


def test_a_run_ingests_after_a_postgresql_restart_since_it_opened_the_store(
    pg_url: str, bundles: list[Path]  # noqa: F811
) -> None:
    """A run opens its store, runs for minutes, then ingests: a restart in between failed the ingest (the
    pooled connection was dead), and with it the CI job."""
    with open_store(pg_url) as store:
        ingest_bundle(store, bundles[0])
        pg_own_server().restart("fast")
        ingest_bundle(store, bundles[1])
    _assert_complete(pg_url, {bundles[0].name, bundles[1].name})


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
