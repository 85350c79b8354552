"""A throwaway PostgreSQL server for tests: install it, start it on loopback, stop and remove it.

    python -m tests.support.pgserver install           # apt-get install postgresql if missing (root + apt)
    python -m tests.support.pgserver start [--dir D]   # prints the server's URL; state kept in D
    python -m tests.support.pgserver stop --dir D      # stops the server and removes D
    python -m tests.support.pgserver run -- CMD ...    # start, run CMD with CETBENCH_PG_URL set, stop

The cluster lives in a temporary directory, listens on 127.0.0.1 only, on a free port, with
fsync off (nothing in it is worth keeping). Its owner role `cetbench` connects without a
password from 127.0.0.1; every other role needs a password (scram), which lets tests check how
authentication failures are reported. PostgreSQL refuses to run as root, so as root the server
runs as the `postgres` user. Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWNER = "cetbench"
DATABASE = "cetbench"
ENV_URL = "CETBENCH_PG_URL"
ENV_BINDIR = "CETBENCH_PG_BINDIR"
_DEBIAN_BINDIRS = "/usr/lib/postgresql"  # Debian/Ubuntu keep each major version's tools here


class PgServerError(Exception):
    """PostgreSQL cannot be installed, started or stopped; the message says why."""


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: $CETBENCH_PG_BINDIR, PATH, or Debian's layout."""
    candidates: list[Path] = []
    if os.environ.get(ENV_BINDIR):
        candidates.append(Path(os.environ[ENV_BINDIR]))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    debian = Path(_DEBIAN_BINDIRS)
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True
        )
        candidates += [p / "bin" for p in versions]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "createdb")):
            return bindir
    return None


def install() -> Path:
    """Install PostgreSQL from the distribution's packages when missing; return its bindir."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PgServerError(
            "PostgreSQL is not installed and cannot be installed here (needs root and apt-get): "
            "install the postgresql package, or set CETBENCH_PG_URL to a server for the tests"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
        print("+", " ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
            raise PgServerError(f"{' '.join(cmd)} failed")
    bindir = find_bindir()
    if bindir is None:
        raise PgServerError("postgresql was installed but initdb/pg_ctl were not found")
    return bindir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    root: Path
    bindir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{OWNER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = _service_user()
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        done = subprocess.run(
            cmd, cwd=self.root, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}, **kwargs
        )
        if check and done.returncode != 0:
            raise PgServerError(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        return done

    @classmethod
    def start(cls, root: Path | None = None, bindir: Path | None = None) -> PgServer:
        """initdb a new cluster in `root` (a new temporary directory by default) and start it."""
        bindir = bindir or find_bindir()
        if bindir is None:
            raise PgServerError(
                "PostgreSQL binaries (initdb, pg_ctl) not found: run `python -m tests.support.pgserver "
                "install` or set CETBENCH_PG_BINDIR"
            )
        root = Path(tempfile.mkdtemp(prefix="cetbench-pg-")) if root is None else root.absolute()
        if os.geteuid() == 0:
            user = _service_user()
            _check_reachable(user, root.parent)
            root.mkdir(parents=True, exist_ok=True)
            os.chown(root, user.pw_uid, user.pw_gid)
        root.mkdir(parents=True, exist_ok=True)
        server = cls(root, bindir, 0)
        try:
            server._init_cluster()
            server._start_on_free_port()
            server._run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", OWNER, DATABASE])
        except BaseException:
            server.stop()
            raise
        (root / "server.json").write_text(json.dumps({"bindir": str(bindir), "port": server.port}))
        return server

    def _init_cluster(self) -> None:
        self._run([
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", OWNER, "-E", "UTF8",
            "--locale=C", "--no-sync", "--auth-local=trust",
        ])
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {OWNER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )

    def _start_on_free_port(self) -> None:
        conf = self.data / "postgresql.conf"
        base = conf.read_text()
        for _attempt in range(3):  # another process may take the port between probe and bind
            self.port = _free_port()
            conf.write_text(base + (
                "\n# cetbench throwaway test server\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 100\n"
            ))
            log = self.root / "server.log"
            done = self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start"],
                check=False,
            )
            if done.returncode == 0:
                return
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else done.stderr
            if "could not bind" not in tail and "in use" not in tail:
                raise PgServerError(f"pg_ctl start failed: {tail.strip()}")
        raise PgServerError("pg_ctl start failed: no free port found after 3 attempts")

    def restart(self, mode: str = "fast") -> None:
        """Restart the server: `fast` ends every session (as an administrator's restart does),
        `immediate` kills the server without a shutdown checkpoint (recovery runs at start, as after
        a crash)."""
        # -l: without a log file the new server would keep our captured output open, and we would wait.
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                   "-m", mode, "-w", "-t", "60", "restart"])

    def ensure_running(self) -> None:
        """Start the server again if it stopped (e.g. after a PANIC on a full disk)."""
        status = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        if status.returncode != 0:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                       "-w", "-t", "60", "start"])

    def stop(self, remove: bool = True) -> None:
        """Stop the server (if it runs) and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    @classmethod
    def attach(cls, root: Path) -> PgServer:
        """The server started earlier in `root` (for `stop --dir`)."""
        try:
            state = json.loads((root / "server.json").read_text())
        except (OSError, ValueError):
            raise PgServerError(f"{root} holds no server started by this tool") from None
        return cls(root, Path(state["bindir"]), int(state["port"]))


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PgServerError("running as root but there is no 'postgres' user to run the server as") from None


def _check_reachable(user: pwd.struct_passwd, directory: Path) -> None:
    """As root the server runs as `user`: every directory above its cluster must let it pass."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for path in [directory, *directory.parents]:
        if not path.exists():
            continue
        st = path.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise PgServerError(
                f"the server runs as {user.pw_name!r}, which cannot enter {path}: "
                "choose a directory it can reach (e.g. under the system's temporary directory)"
            )


def _with_server(args: argparse.Namespace) -> int:
    if not args.cmd:
        raise PgServerError("run: give the command to run after --")
    server = PgServer.start()
    # SIGTERM (a CI timeout) must still stop the server: turn it into an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        print(f"PostgreSQL test server on {server.url}", file=sys.stderr)
        return subprocess.run(args.cmd, env={**os.environ, ENV_URL: server.url}).returncode
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.pgserver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("install", help="install PostgreSQL from the distribution's packages if missing")
    start = sub.add_parser("start", help="start a throwaway server, print its URL")
    start.add_argument("--dir", type=Path, help="directory for the cluster (default: a new temporary one)")
    stop = sub.add_parser("stop", help="stop the server started in --dir and remove the directory")
    stop.add_argument("--dir", type=Path, required=True)
    run = sub.add_parser("run", help="run a command with CETBENCH_PG_URL set to a throwaway server")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            print(f"PostgreSQL binaries: {install()}", file=sys.stderr)
        elif args.action == "start":
            print(PgServer.start(args.dir).url)
        elif args.action == "stop":
            PgServer.attach(args.dir).stop()
        else:
            args.cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            return _with_server(args)
    except PgServerError as exc:
        print(f"pgserver: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
