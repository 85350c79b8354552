"""Open the results store: a SQLite file by default, PostgreSQL for a lab.

`open_store(None)` uses `$CETBENCH_STORE`, else the SQLite file `store.sqlite` in
`default_data_dir()` (results.paths; the runner's bundles go to its `runs/`). A URL may be
`postgresql://user:pass@host/db` (driven by psycopg 3), `sqlite:///path`, or a plain file path.
Opening applies pending schema migrations.

Passwords never leave this module: every message shows the URL through `mask_url`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from . import schema
from .errors import StoreError, StoreSchemaTooNew, StoreUnavailable
from .paths import default_data_dir
from .records import text_problem

ENV_STORE = "CETBENCH_STORE"
BUSY_TIMEOUT_S = 60  # SQLite: how long a writer waits for another writer before giving up
CONNECT_TIMEOUT_S = 10  # PostgreSQL: fail fast on a host that does not answer
_MIGRATION_LOCK_KEY = 0x63657462  # PostgreSQL advisory lock serialising migrations ("cetb")


def default_store_path() -> Path:
    return default_data_dir() / "store.sqlite"


def mask_url(url: URL | str) -> str:
    """The URL as text with its password replaced by ***, wherever it is given (libpq also takes
    `?password=`)."""
    if not isinstance(url, URL):
        return _mask_text(url)
    secrets = _secrets(url)
    hidden = {k: "***" for k in url.query if "password" in k.lower()}
    if hidden:
        url = url.update_query_dict(hidden)
    if url.database and text_problem(url.database):  # a file name in bytes that are not UTF-8
        url = url.set(database=_printable(url.database))
    shown = url.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")
    return _scrub(shown, secrets)


def _secrets(url: URL) -> list[str]:
    """The URL's password, and the value of every query parameter named like one."""
    given = [v for k, value in url.query.items() if "password" in k.lower()
             for v in ((value,) if isinstance(value, str) else value)]
    return [str(p) for p in (url.password, *given) if p]


def _scrub(text: str, secrets: list[str]) -> str:
    # The password may come back quoted (a URL) or inside another value an error message echoes.
    for secret in secrets:
        for form in {str(secret), quote(str(secret), safe=""), quote_plus(str(secret)), quote(str(secret))}:
            text = text.replace(form, "***")
    return text


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _mask_text(text: str) -> str:
    # For text SQLAlchemy could not parse: hide a password=... parameter, and whatever sits between
    # the first ":" after the user and the last "@" (hiding too much rather than too little).
    text = re.sub(r"(password=)[^&\s]*", r"\1***", text)
    scheme = _SCHEME.match(text)
    rest = text[scheme.end():] if scheme else text
    if "@" not in rest:
        return text
    userinfo, _, hostpart = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme[0] if scheme else ''}{user}{colon}{'***' if colon else ''}@{hostpart}"


#: A URL's scheme (and its slashes, however many were typed).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/*")


def resolve_url(url: str | None) -> tuple[URL, bool]:
    """The SQLAlchemy URL for `url`/$CETBENCH_STORE/default, and whether it is the default."""
    text = url or os.environ.get(ENV_STORE) or ""
    if not text:
        return _sqlite_file(str(default_store_path())), True
    if "://" not in text:  # a plain path names a SQLite file ("?" and "#" included: no URL parsing)
        if _SCHEME.match(text) and "@" in text:  # postgresql:/user:pw@host: a URL with a slash missing
            raise StoreUnavailable(f"invalid store URL {_mask_text(text)!r}: write scheme://, e.g. "
                                   "postgresql://user@host/db, or name a SQLite file")
        return _sqlite_file(str(Path(text).expanduser().absolute())), False
    why = text_problem(text)
    if why:  # libpq and SQLite take UTF-8 text without NUL (argv holds other bytes as surrogates)
        raise StoreUnavailable(f"invalid store URL {_mask_text(_printable(text))!r}: it {why}")
    try:
        parsed = make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise StoreUnavailable(f"invalid store URL {_mask_text(text)!r}") from None
    backend, _, driver = parsed.drivername.partition("+")  # no dialect loaded: an unknown kind is no error
    if backend in ("postgresql", "postgres"):
        if driver and driver != "psycopg":
            raise StoreUnavailable(
                f"store URL {mask_url(parsed)}: driver {driver!r} not supported; "
                "use postgresql:// (psycopg 3)"
            )
        return parsed.set(drivername="postgresql+psycopg"), False
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.host or parsed.username \
                or parsed.password or parsed.port or parsed.query:
            raise StoreUnavailable(f"store URL {mask_url(parsed)}: name a SQLite file (sqlite:///path/to/file), "
                                   "with no host, user or query")
        return _sqlite_file(parsed.database, parsed), False
    raise StoreUnavailable(
        f"store URL {mask_url(parsed)}: unsupported kind {backend!r} (use postgresql:// or a file)"
    )


def _sqlite_file(path: str, url: URL | None = None) -> URL:
    """The URL of a SQLite file, refused when the file cannot be named to SQLite (it takes UTF-8 only)."""
    why = text_problem(path)
    if why:
        raise StoreUnavailable(f"cannot open store sqlite:///{_printable(path)}: the file name {why}")
    return url or URL.create("sqlite", database=path)


def describe_db_error(exc: BaseException, url: URL) -> str:
    """One line saying what the database said, with the URL's password scrubbed out."""
    orig = getattr(exc, "orig", None) or exc
    return _scrub(" ".join(str(orig).split()), _secrets(url))


class Store:
    """An open results store. Use `write()` for one ingest transaction, `read()` for queries."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def __repr__(self) -> str:
        return f"Store({self.display_url})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any error.

        SQLite takes the write lock up front (BEGIN IMMEDIATE), so two writers queue on the
        busy timeout instead of failing when a read would have to turn into a write.
        """
        with self._errors(), self.engine.connect() as conn:
            conn.execution_options(cetbench_write=True)
            with conn.begin():
                if not self.is_sqlite:
                    # An ingest reported done must survive a server crash, whatever the server's default
                    # (a lab's, or our throwaway test server's, may be `off`: commits acknowledged early).
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = on")
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent snapshot."""
        with self._errors(), self.engine.connect() as conn:
            if not self.is_sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.IntegrityError:
            raise  # a constraint said no: the caller decides (e.g. a concurrent duplicate)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"store {self.display_url}: {describe_db_error(exc, self.url)}"
            ) from None


def _sqlite_engine(url: URL) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions skip DDL and cannot
        # take the write lock early); see Store.write.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        _set_wal(cur)  # readers never block the writer
        # NORMAL is crash-safe in WAL mode (a killed process loses nothing committed); only a
        # power cut can drop the last commits, never corrupt the file.
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("cetbench_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _set_wal(cur: Any) -> None:
    """PRAGMA journal_mode = WAL, retried while another process holds the file.

    Switching the journal mode needs an exclusive lock. The concurrent-ingest test once failed
    with "database is locked" while two processes opened one new store; this pragma is the step
    of connecting that takes that lock, and a retry bounded by the busy timeout costs nothing
    when the lock is free. (Not reproduced since: 0 of 480 concurrent opens failed.)
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_store(url: str | None = None) -> Store:
    """Open (creating if needed) the store at `url`, `$CETBENCH_STORE` or the default file.

    Raises StoreUnavailable when it cannot be reached, StoreSchemaTooNew when a newer cetbench
    wrote it, StoreError for anything else the database refuses.
    """
    sa_url, is_default = resolve_url(url)
    if sa_url.get_backend_name() == "sqlite":
        path = Path(str(sa_url.database))
        if is_default:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise StoreUnavailable(
                f"cannot open store {mask_url(sa_url)}: directory {path.parent} does not exist"
            )
    try:
        if sa_url.get_backend_name() == "sqlite":
            engine = _sqlite_engine(sa_url)
        else:
            # pre-ping: a pooled connection from before a server restart is replaced, not used (a run
            # opens its store, runs for minutes, then ingests).
            engine = sa.create_engine(sa_url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
                                      pool_pre_ping=True)
    except (sa.exc.ArgumentError, ValueError) as exc:  # a query argument the driver cannot take
        raise StoreUnavailable(f"store URL {mask_url(sa_url)}: {_scrub(str(exc), _secrets(sa_url))}") from None
    store = Store(engine, sa_url)
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise StoreUnavailable(
            f"cannot reach store {mask_url(sa_url)}: {describe_db_error(exc, sa_url)}"
        ) from None
    try:
        migrate(store)
    except BaseException:
        engine.dispose()
        raise
    return store


def _stored_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(value or 0)


def _check_not_newer(store: Store, version: int) -> None:
    if version > schema.SCHEMA_VERSION:
        raise StoreSchemaTooNew(
            f"store {store.display_url} has schema version {version}, newer than the "
            f"{schema.SCHEMA_VERSION} this cetbench knows: upgrade cetbench to use it"
        )


def migrate(store: Store) -> int:
    """Apply the missing migrations in one transaction; return the store's schema version."""
    with store.read() as conn:
        version = _stored_version(conn)
    _check_not_newer(store, version)
    if version == schema.SCHEMA_VERSION:
        return version
    with store.write() as conn:
        if not store.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serialises this
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        version = _stored_version(conn)  # another process may have migrated meanwhile
        _check_not_newer(store, version)
        if version == 0:
            _refuse_foreign_database(store, conn)
            schema.schema_version.create(conn)
        for target in range(version + 1, schema.SCHEMA_VERSION + 1):
            schema.MIGRATIONS[target - 1](conn)
            conn.execute(
                schema.schema_version.insert().values(version=target, applied_utc=utcnow())
            )
    return schema.SCHEMA_VERSION


def _refuse_foreign_database(store: Store, conn: Connection) -> None:
    clash = set(sa.inspect(conn).get_table_names()) & set(schema.metadata.tables)
    if clash:
        raise StoreError(
            f"store {store.display_url} is not a cetbench store: it already has "
            f"table(s) {', '.join(sorted(clash))} but no schema_version"
        )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
