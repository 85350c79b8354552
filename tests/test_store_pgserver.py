"""The throwaway PostgreSQL server tool (tests.support.pgserver) starts, serves, stops and cleans up."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support import pgserver
from tests.support.store import REPO

needs_binaries = pytest.mark.skipif(
    pgserver.find_bindir() is None, reason="PostgreSQL binaries not installed (tools/install-postgresql)"
)

CHILD = """
import os, sys, psycopg
with psycopg.connect(os.environ["CETBENCH_PG_URL"]) as conn:
    print(conn.execute("SHOW data_directory").fetchone()[0])
sys.exit(7)
"""


@needs_binaries
def test_run_gives_the_command_a_server_then_removes_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.pgserver", "run", "--", sys.executable, "-c", CHILD],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 7, done.stderr  # the command's own status
    data_dir = Path(done.stdout.strip())
    assert data_dir.name == "data" and not data_dir.parent.exists()
    assert "postgresql://cetbench@127.0.0.1:" in done.stderr


@needs_binaries
def test_start_and_stop_by_directory() -> None:
    # Not under tmp_path: as root the server runs as `postgres`, which cannot enter pytest's 0700 dirs.
    root = Path(tempfile.gettempdir()) / f"cetbench-pg-test-{uuid.uuid4().hex[:8]}"
    started = subprocess.run([sys.executable, "-m", "tests.support.pgserver", "start", "--dir", str(root)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("cetbench",)
    finally:
        stopped = subprocess.run([sys.executable, "-m", "tests.support.pgserver", "stop", "--dir", str(root)],
                                 cwd=REPO, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)


@needs_binaries
@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_directory_the_server_user_cannot_reach_is_a_clean_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(pgserver.PgServerError, match="cannot enter"):
        pgserver.PgServer.start(tmp_path / "pg")


def test_install_without_root_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgserver, "find_bindir", lambda: None)
    monkeypatch.setattr(pgserver.os, "geteuid", lambda: 1000)
    with pytest.raises(pgserver.PgServerError, match="needs root and apt-get"):
        pgserver.install()


def test_stop_of_unknown_directory_is_a_clean_error(tmp_path: Path) -> None:
    assert pgserver.main(["stop", "--dir", str(tmp_path)]) == 3
