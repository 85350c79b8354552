"""Tables of the results store and their ordered migrations.

The same SQLAlchemy Core definitions serve SQLite and PostgreSQL. A store carries the number of
the last migration applied in `schema_version`; opening a store applies the missing ones, in
order, in one transaction. When a migration is added, freeze the tables it starts from (copy the
current `Table` definitions into the migration) so that replaying old migrations stays exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

SCHEMA_VERSION = 5


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and read back timezone-aware.

    SQLite keeps no zone (it would silently drop a non-UTC offset), so every value is converted
    to UTC before it is bound; naive values read back are UTC by construction.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store times must carry a zone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_utc", UTCDateTime, nullable=False),
)

def _run_columns_of_schema_1() -> list[sa.Column[Any] | sa.Index]:
    """The runs table as migration 1 created it (fresh objects for each table made from it)."""
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(200), nullable=False, unique=True),
        # sha256 of the input (bundle: manifest + every file it names); makes ingest idempotent.
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("source_kind", sa.String(20), nullable=False),  # bundle | pyperf | pytest-benchmark
        sa.Column("host", sa.Text),
        sa.Column("host_fingerprint", sa.Text),
        sa.Column("cpu_model_name", sa.Text),
        sa.Column("kernel_release", sa.Text),
        sa.Column("kernel_version", sa.Text),
        sa.Column("kernel_build_id", sa.Text),
        sa.Column("kernel_label", sa.Text),
        sa.Column("suite_version", sa.Text),
        sa.Column("suite_commit", sa.Text),
        sa.Column("started_utc", UTCDateTime, nullable=False),
        sa.Column("finished_utc", UTCDateTime),
        sa.Column("kvm_implementation", sa.Text),
        sa.Column("options_json", sa.Text),
        # The input's own description, verbatim: a bundle's manifest.json text, or the metadata of
        # a pyperf / pytest-benchmark file (machine_info, commit_info, ...).
        sa.Column("manifest_json", sa.Text, nullable=False),
        sa.Column("ingested_utc", UTCDateTime, nullable=False),
        sa.Column("marked_good", sa.Boolean, nullable=False, default=False),
        sa.Column("marked_good_utc", UTCDateTime),
        sa.Index("ix_runs_started", "started_utc"),
        sa.Index("ix_runs_host", "host"),
    ]


runs = sa.Table(
    "runs",
    metadata,
    *_run_columns_of_schema_1(),
    # What emulated the machine the run measured (a bundle's backend.emulator, e.g. bochs and its CPU
    # model); NULL for a host. Added by migration 5.
    sa.Column("emulator", sa.Text),
)

def _variant_columns_of_schema_1() -> list[sa.Column[Any] | sa.UniqueConstraint]:
    """The variants table as migration 1 created it (fresh objects for each table made from it)."""
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("workload", sa.Text),
        sa.Column("kind", sa.Text),
        sa.Column("cet", sa.Text),  # the variant's configuration, in its name's brackets
        sa.Column("cet_on", sa.Boolean),  # NULL when the input does not say
        sa.Column("status", sa.String(20), nullable=False),  # measured|unsupported|failed|pending
        sa.Column("reason", sa.Text),
        sa.Column("refused_by", sa.Text),
        sa.Column("unit", sa.Text),
        sa.Column("op", sa.Text),
        sa.Column("emulated", sa.Boolean, nullable=False, default=False),
        sa.Column("n_samples", sa.Integer, nullable=False, default=0),
        sa.Column("cycles_per_op_median", sa.Float),
        sa.Column("perf_reason", sa.Text),  # why perf counters are missing, when they are
        sa.UniqueConstraint("run_pk", "name", name="uq_variants_run_name"),
    ]


variants = sa.Table(
    "variants",
    metadata,
    *_variant_columns_of_schema_1(),
    # Each party that refused the variant and its words, as JSON [{"by": ..., "reason": ...}];
    # `reason` joins them. NULL when the input does not list them. Added by migration 3.
    sa.Column("refusals", sa.Text),
    # What else used the machine while the variant was timed (the bundle's `interference`, JSON),
    # and why that disturbed it (NULL when quiet or not recorded). Added by migration 4.
    sa.Column("interference", sa.Text),
    sa.Column("disturbance", sa.Text),
)

samples = sa.Table(
    "samples",
    metadata,
    sa.Column(
        "variant_pk",
        sa.Integer,
        sa.ForeignKey("variants.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("cycles", sa.Float),  # per-sample cycles per op, when an input ties them to values
    # The worker process (pyperf run index) the sample came from; NULL when the input does not
    # say (pytest-benchmark), and then each sample counts as its own process. Added by migration 2.
    sa.Column("process", sa.Integer),
)

counters = sa.Table(
    "counters",
    metadata,
    sa.Column(
        "variant_pk",
        sa.Integer,
        sa.ForeignKey("variants.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("event", sa.Text, primary_key=True),
    # A number, not always an integer: perf reports task-clock in msec, and scales multiplexed counts.
    sa.Column("count", sa.Float),
    sa.Column("per_op", sa.Float),
    sa.Column("unit", sa.Text),  # perf's unit of the count (msec for task-clock), null for plain counts
    sa.Column("state", sa.Text),  # counted | not supported | not counted | unavailable
    sa.Column("running_pct", sa.Float),  # below 100: perf multiplexed the counter and scaled it
    sa.Column("note", sa.Text),
)


def _tables_of_schema_1() -> list[sa.Table]:
    """The tables as migration 1 created them: today's, with `samples` frozen without `process` and
    `variants` without `refusals`."""
    frozen = sa.MetaData()
    counters.to_metadata(frozen)
    sa.Table("runs", frozen, *_run_columns_of_schema_1())
    sa.Table("variants", frozen, *_variant_columns_of_schema_1())
    sa.Table(
        "samples",
        frozen,
        sa.Column(
            "variant_pk",
            sa.Integer,
            sa.ForeignKey("variants.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("cycles", sa.Float),
    )
    return [frozen.tables[name] for name in ("runs", "variants", "samples", "counters")]


def _migration_1(conn: Connection) -> None:
    """The first schema: runs, variants, samples, counters."""
    tables = _tables_of_schema_1()
    tables[0].metadata.create_all(conn, tables=tables)


def _migration_2(conn: Connection) -> None:
    """samples.process: which worker process each sample came from (NULL for older runs)."""
    conn.execute(sa.text("ALTER TABLE samples ADD COLUMN process INTEGER"))


def _migration_3(conn: Connection) -> None:
    """variants.refusals: who refused an unsupported variant and why, one entry each (NULL before)."""
    conn.execute(sa.text("ALTER TABLE variants ADD COLUMN refusals TEXT"))


def _migration_4(conn: Connection) -> None:
    """variants.interference and variants.disturbance: what else ran while a variant was timed."""
    conn.execute(sa.text("ALTER TABLE variants ADD COLUMN interference TEXT"))
    conn.execute(sa.text("ALTER TABLE variants ADD COLUMN disturbance TEXT"))


def _migration_5(conn: Connection) -> None:
    """runs.emulator: what emulated the machine a run measured (NULL: a host)."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN emulator TEXT"))


# Ordered: MIGRATIONS[i] brings a store from version i to version i + 1.
MIGRATIONS: list[Callable[[Connection], None]] = [_migration_1, _migration_2, _migration_3, _migration_4,
                                                  _migration_5]
assert len(MIGRATIONS) == SCHEMA_VERSION
