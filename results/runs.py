"""Runs in the store: list them (`cetbench list`), mark one good, find the newest good one(s)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from . import schema
from .errors import RunNotFound
from .records import text_problem
from .store import Store, utcnow

_R, _V = schema.runs, schema.variants


@dataclass
class RunSummary:
    run_id: str
    started_utc: dt.datetime
    finished_utc: dt.datetime | None
    host: str | None
    cpu_model_name: str | None
    kernel_release: str | None
    kernel_label: str | None
    kernel_build_id: str | None
    source_kind: str
    marked_good: bool
    measured: int
    unsupported: int
    failed: int
    pending: int

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("started_utc", "finished_utc"):
            if out[key] is not None:
                out[key] = out[key].isoformat().replace("+00:00", "Z")
        return out


def _count(status: str) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((_V.c.status == status, 1), else_=0)), 0)


def list_runs(store: Store, host: str | None = None) -> list[RunSummary]:
    """Every run (of `host`, if given), oldest first, with its variant counts by status."""
    stmt = (
        sa.select(
            _R.c.run_id, _R.c.started_utc, _R.c.finished_utc, _R.c.host, _R.c.cpu_model_name,
            _R.c.kernel_release, _R.c.kernel_label, _R.c.kernel_build_id, _R.c.source_kind,
            _R.c.marked_good, _count("measured"), _count("unsupported"), _count("failed"),
            _count("pending"),
        )
        .select_from(_R.outerjoin(_V, _V.c.run_pk == _R.c.id))
        .group_by(_R.c.id)
        .order_by(_R.c.started_utc, _R.c.run_id)
    )
    if host is not None:
        if text_problem(host):  # no stored host is such text (and the database would refuse it)
            return []
        stmt = stmt.where(_R.c.host == host)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [RunSummary(*row[:9], bool(row[9]), *(int(n) for n in row[10:])) for row in rows]


def mark_good(store: Store, run_id: str, good: bool = True) -> None:
    """Mark (or unmark) a run as a known-good baseline. Raises RunNotFound."""
    if text_problem(run_id):
        raise RunNotFound(f"no run {run_id!r} in store {store.display_url}")
    with store.write() as conn:
        updated = conn.execute(
            sa.update(_R)
            .where(_R.c.run_id == run_id)
            .values(marked_good=good, marked_good_utc=utcnow() if good else None)
        ).rowcount
    if not updated:
        raise RunNotFound(f"no run {run_id!r} in store {store.display_url}")


def _good_runs(
    host: str | None,
    host_fingerprint: str | None,
    cpu_model_name: str | None = None,
    before: dt.datetime | None = None,
    exclude_run_ids: tuple[str, ...] = (),
) -> sa.Select[Any]:
    """Good runs that match, with their kernel identity, newest first."""
    stmt = sa.select(_R.c.run_id, _R.c.kernel_label, _R.c.kernel_release, _R.c.kernel_build_id).where(
        _R.c.marked_good.is_(True)
    )
    for column, wanted in (
        (_R.c.host, host),
        (_R.c.host_fingerprint, host_fingerprint),
        (_R.c.cpu_model_name, cpu_model_name),
    ):
        if wanted is not None:
            stmt = stmt.where(column == wanted)
    if before is not None:
        stmt = stmt.where(_R.c.started_utc < before)
    if exclude_run_ids:
        stmt = stmt.where(_R.c.run_id.not_in(exclude_run_ids))
    return stmt.order_by(_R.c.started_utc.desc(), _R.c.run_id.desc())


def newest_good_run(
    store: Store,
    host: str | None = None,
    host_fingerprint: str | None = None,
    cpu_model_name: str | None = None,
    before: dt.datetime | None = None,
    exclude_run_id: str | None = None,
) -> str | None:
    """The run id of the newest run marked good that matches, or None.

    A CI job passes its own host (and fingerprint) so it is never compared with another
    machine, and its own run id as `exclude_run_id`.
    """
    excluded = () if exclude_run_id is None else (exclude_run_id,)
    stmt = _good_runs(host, host_fingerprint, cpu_model_name, before, excluded).limit(1)
    with store.read() as conn:
        return conn.execute(stmt).scalar()


def good_baseline_runs(
    store: Store,
    host: str | None = None,
    host_fingerprint: str | None = None,
    exclude_run_ids: tuple[str, ...] = (),
) -> list[str]:
    """The runs a CI baseline is made of: the newest good run and every other good run of the same
    host and kernel build (label, release and build-id alike), oldest first; [] when none.

    Several runs of one build let a comparison test the drift between runs (analysis.compare
    then takes the run as its unit); `cetbench ci --runs N --mark-good` leaves such a set.
    """
    stmt = _good_runs(host, host_fingerprint, exclude_run_ids=exclude_run_ids)
    with store.read() as conn:
        newest = conn.execute(stmt.limit(1)).first()
        if newest is None:
            return []
        _, label, release, build_id = newest
        same_build = stmt.where(
            _R.c.kernel_label.is_not_distinct_from(label),
            _R.c.kernel_release.is_not_distinct_from(release),
            _R.c.kernel_build_id.is_not_distinct_from(build_id),
        )
        return [row[0] for row in conn.execute(same_build)][::-1]
