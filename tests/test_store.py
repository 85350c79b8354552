"""Bundle -> store -> DataFrame on SQLite and a real PostgreSQL: round trip, idempotence, queries."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from cetbench import results
from cetbench.results import schema
from cetbench.results.errors import RunNotFound, StoreError, StoreSchemaTooNew
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import COLUMNS, load, load_counters, load_statuses
from cetbench.results.runs import good_baseline_runs, list_runs, mark_good, newest_good_run
from cetbench.results.store import Store, default_store_path, open_store
from tests.support.store import (
    START,
    VariantSpec,
    make_bundle,
    pg_url,  # noqa: F401  (fixture)
    standard_variants,
    store,  # noqa: F401  (fixture)
    store_url,  # noqa: F401  (fixture)
    table_counts,
)


def test_round_trip_bundle_to_dataframe(store: Store, tmp_path: Path) -> None:  # noqa: F811
    specs = standard_variants(seed=1)
    bundle = make_bundle(tmp_path / "b1", "20261125T043400Z-testhost-000001", specs)

    report = ingest_paths(store, [bundle])

    assert [r.status for r in report.results] == ["ingested"], report.results
    df = load(store)
    assert list(df.columns) == COLUMNS
    assert str(df["started_utc"].dtype) == "datetime64[ns, UTC]"
    measured = [s for s in specs if s.status == "measured"]
    assert sorted(df["variant"].unique()) == sorted(s.name for s in measured)
    for spec in measured:
        rows = df[df["variant"] == spec.name].sort_values("sample")
        assert rows["value"].tolist() == spec.values  # exact: floats survive JSON and the store
        assert rows["sample"].tolist() == list(range(len(spec.values)))
        # the pyperf worker each value came from (store_support writes 4 values per worker)
        assert rows["process"].tolist() == [i // 4 for i in range(len(spec.values))]
        assert rows["cycles"].tolist() == spec.sample_cycles  # per sample, calibration records left out
        assert set(rows["workload"]) == {spec.workload} and set(rows["cet"]) == {spec.cet}
        assert set(rows["cet_on"]) == {not spec.cet.endswith("=off")}
    row = df.iloc[0]
    assert row["run_id"] == "20261125T043400Z-testhost-000001"
    assert row["started_utc"] == pd.Timestamp("2026-11-25T04:34:00Z")
    assert (row["host"], row["host_fingerprint"], row["cpu_model_name"]) == ("testhost", "fp-testhost",
                                                                            "Test CPU @ 3.00GHz")
    assert (row["kernel_release"], row["kernel_label"], row["kernel_build_id"]) == ("6.18.0-test", "v6.18", "abc123")
    assert row["suite_version"] == "0.1.0" and row["unit"] == "second" and not row["emulated"]

    counters = load_counters(store)
    assert list(counters.columns) == ["run_id", "variant", "event", "per_op", "state", "count", "unit"]
    sys_row = counters[(counters["variant"] == "host.syscall[shstk=on]")
                       & (counters["event"] == "syscalls:sys_enter_getppid")]
    assert sys_row["per_op"].tolist() == [1.000003] and sys_row["state"].tolist() == ["counted"]
    assert counters[counters["event"] == "cycles"]["per_op"].isna().all()
    clock = counters[counters["event"] == "task-clock"]
    assert clock["count"].tolist() == [68.2] * 3 and clock["unit"].tolist() == ["msec"] * 3

    [summary] = list_runs(store)
    assert (summary.measured, summary.unsupported, summary.failed, summary.pending) == (3, 1, 1, 0)
    with store.read() as conn:
        reasons = dict(conn.execute(sa.select(schema.variants.c.name, schema.variants.c.reason)
                                    .where(schema.variants.c.status != "measured")).all())
        manifest = conn.execute(sa.select(schema.runs.c.manifest_json)).scalar_one()
    assert reasons == {"guest.vmexit.cpuid[cet=ibt]": "KVM does not offer IBT to guests",
                       "host.ctxsw[shstk=on]": "workload exited with status 139"}
    assert manifest == (bundle / "manifest.json").read_text()  # verbatim


def test_double_ingest_adds_nothing(store: Store, tmp_path: Path) -> None:  # noqa: F811
    bundle = make_bundle(tmp_path / "b", "run-a", standard_variants(seed=2))
    copy = shutil.copytree(bundle, tmp_path / "elsewhere")
    first = ingest_paths(store, [bundle])
    counts = table_counts(store)

    again = ingest_paths(store, [bundle, copy])

    assert [r.status for r in first.results] == ["ingested"]
    assert [r.status for r in again.results] == ["duplicate", "duplicate"]
    assert table_counts(store) == counts
    assert counts["samples"] == 36 and counts["variants"] == 5


def test_unfinished_run_is_replaced_by_its_finished_bundle(store: Store, tmp_path: Path) -> None:  # noqa: F811
    specs = standard_variants(seed=3)
    partial = [specs[0], VariantSpec(specs[1].name, "pending")]
    ingest_paths(store, [make_bundle(tmp_path / "partial", "run-p", partial, finished=False)])
    assert load(store)["variant"].unique().tolist() == [specs[0].name]

    done = ingest_paths(store, [make_bundle(tmp_path / "done", "run-p", specs)])
    other = ingest_paths(store, [make_bundle(tmp_path / "other", "run-p", standard_variants(seed=4))])

    assert [r.status for r in done.results] == ["replaced"]
    assert sorted(load(store)["variant"].unique()) == sorted(s.name for s in specs if s.status == "measured")
    assert other.results[0].status == "error" and "already stored" in str(other.results[0].message)
    assert len(list_runs(store)) == 1


def _three_runs(db: Store, tmp_path: Path) -> None:
    for i, (host, label) in enumerate([("alpha", "v6.17"), ("alpha", "v6.18"), ("beta", "v6.18")]):
        make_bundle(tmp_path / f"r{i}", f"run-{i}", standard_variants(seed=10 + i), host=host,
                    kernel_label=label, kernel_build_id=f"build{i}", started=START + dt.timedelta(days=i))
    report = ingest_paths(db, [tmp_path / f"r{i}" for i in range(3)])
    assert report.ok, report.errors


def test_load_filters(store: Store, tmp_path: Path) -> None:  # noqa: F811
    _three_runs(store, tmp_path)

    def runs(**filters: object) -> list[str]:
        return sorted(load(store, **filters)["run_id"].unique())  # type: ignore[arg-type]

    assert runs() == ["run-0", "run-1", "run-2"]
    assert runs(host="alpha") == ["run-0", "run-1"]
    assert runs(kernel_labels=["v6.18"]) == ["run-1", "run-2"]
    assert runs(kernel_build_ids=["build0", "build2"]) == ["run-0", "run-2"]
    assert runs(run_ids="run-1") == ["run-1"]
    assert runs(since=START + dt.timedelta(days=1)) == ["run-1", "run-2"]
    assert runs(until="2026-11-26T04:34:00Z") == ["run-0", "run-1"]
    assert runs(host="gamma") == []
    assert sorted(load(store, variants=["host.*"])["variant"].unique()) == [
        "host.syscall[shstk=off]", "host.syscall[shstk=on]"]
    # A literal name with brackets selects itself although a glob would read [..] as a set.
    assert load(store, variants="host.syscall[shstk=on]")["variant"].unique().tolist() == ["host.syscall[shstk=on]"]
    assert load(store, variants="nothing*").empty
    assert list(load(store, variants="nothing*").columns) == COLUMNS
    assert load_counters(store, run_ids=["run-2"], variants="guest.*")["run_id"].unique().tolist() == ["run-2"]
    ordered = load(store)
    assert ordered["started_utc"].is_monotonic_increasing


def test_mark_good_and_newest_good_run(store: Store, tmp_path: Path) -> None:  # noqa: F811
    _three_runs(store, tmp_path)
    assert newest_good_run(store) is None

    mark_good(store, "run-0")
    mark_good(store, "run-1")

    assert newest_good_run(store) == "run-1"
    assert newest_good_run(store, host="alpha", exclude_run_id="run-1") == "run-0"
    assert newest_good_run(store, host="beta") is None
    assert newest_good_run(store, before=START + dt.timedelta(hours=1)) == "run-0"
    assert [r.marked_good for r in list_runs(store)] == [True, True, False]
    mark_good(store, "run-1", good=False)
    assert newest_good_run(store) == "run-0"
    with pytest.raises(RunNotFound, match="run-9"):
        mark_good(store, "run-9")


def test_good_baseline_runs_are_the_good_runs_of_the_newest_good_build(store: Store, tmp_path: Path) -> None:  # noqa: F811
    def bundle(name: str, minutes: int, label: str | None, build_id: str | None) -> Path:
        return make_bundle(tmp_path / name, name, standard_variants(seed=minutes), kernel_label=label,
                           kernel_build_id=build_id, started=START + dt.timedelta(minutes=minutes))

    ingest_paths(store, [
        bundle("a1", 0, "v1", "id1"), bundle("a2", 1, "v1", "id1"),
        bundle("b1", 2, None, None), bundle("b2", 3, None, None), bundle("b3", 4, None, None),
        bundle("c1", 5, "v1", "id2"),
    ])
    assert good_baseline_runs(store) == []
    for run_id in ("a1", "a2", "b1", "b3", "c1"):
        mark_good(store, run_id)
    # c1 is newest; a1/a2 share its label but not its build-id
    assert good_baseline_runs(store) == ["c1"]
    # without c1: the unlabelled build, NULLs matching NULLs, and only its good runs
    assert good_baseline_runs(store, exclude_run_ids=("c1",)) == ["b1", "b3"]
    assert good_baseline_runs(store, exclude_run_ids=("c1", "b3", "b1")) == ["a1", "a2"]
    assert good_baseline_runs(store, host="elsewhere") == []


def test_store_written_by_newer_schema_is_refused(store_url: str) -> None:  # noqa: F811
    with open_store(store_url) as opened, opened.write() as conn:
        conn.execute(schema.schema_version.insert().values(version=99, applied_utc=START))

    with pytest.raises(StoreSchemaTooNew, match="schema version 99"):
        open_store(store_url)


def test_reopen_keeps_data_and_schema(store_url: str, tmp_path: Path) -> None:  # noqa: F811
    with open_store(store_url) as first:
        ingest_paths(first, [make_bundle(tmp_path / "b", "run-k", standard_variants(seed=5))])
    with open_store(store_url) as second, second.read() as conn:
        versions = conn.execute(sa.select(schema.schema_version.c.version)).scalars().all()
        assert versions == list(range(1, schema.SCHEMA_VERSION + 1))  # each migration once, in order
        assert len(load(second)) == 36


def test_store_of_schema_1_is_migrated_and_its_samples_keep_no_process(
    store_url: str, tmp_path: Path  # noqa: F811
) -> None:
    # A store as schema 1 left it, with a run in it: the first migration only, rows by hand.
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        schema.MIGRATIONS[0](conn)
        conn.execute(schema.schema_version.insert().values(version=1, applied_utc=START))
        assert "process" not in {c["name"] for c in sa.inspect(conn).get_columns("samples")}
        run_pk = conn.execute(sa.text(
            "INSERT INTO runs (run_id, content_hash, source_kind, started_utc, manifest_json, ingested_utc, "
            "marked_good) VALUES ('old-run', 'h', 'bundle', :t, '{}', :t, false) RETURNING id"), {"t": START}).scalar()
        variant_pk = conn.execute(sa.text(
            "INSERT INTO variants (run_pk, name, workload, cet, status, unit, emulated, n_samples) VALUES "
            "(:r, 'host.syscall[shstk=off]', 'host.syscall', 'shstk=off', 'measured', 'second', false, 2) "
            "RETURNING id"), {"r": run_pk}).scalar()
        conn.execute(sa.text("INSERT INTO samples (variant_pk, idx, value) VALUES (:v, 0, 1e-7), (:v, 1, 2e-7)"),
                     {"v": variant_pk})
    engine.dispose()

    with open_store(store_url) as opened:
        df = load(opened)
        ingest_paths(opened, [make_bundle(tmp_path / "b", "new-run", standard_variants(seed=5))])
        new = load(opened, run_ids=["new-run"])
    assert df["value"].tolist() == [1e-7, 2e-7]
    assert df["process"].isna().all()  # unknown, not invented
    assert new["process"].notna().all()


def test_foreign_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (x INTEGER)")
    engine.dispose()

    with pytest.raises(StoreError, match="not a cetbench store"):
        open_store(str(path))


def test_default_store_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CETBENCH_STORE", raising=False)
    monkeypatch.delenv("CETBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "cetbench" / "store.sqlite"

    with open_store(None) as opened:
        assert opened.is_sqlite
    assert (tmp_path / "xdg" / "cetbench" / "store.sqlite").is_file()
    with opened.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"

    monkeypatch.setenv("CETBENCH_STORE", str(tmp_path / "env.sqlite"))
    with open_store(None):
        pass
    assert (tmp_path / "env.sqlite").is_file()


def test_package_exports_the_api() -> None:
    for name in ("open_store", "ingest_paths", "load", "load_counters", "list_runs", "mark_good",
                 "newest_good_run", "StoreError", "StoreUnavailable", "InputError"):
        assert callable(getattr(results, name))
    with pytest.raises(AttributeError):
        _ = results.no_such_thing  # type: ignore[attr-defined]


def test_list_runs_json_is_plain(store: Store, tmp_path: Path) -> None:  # noqa: F811
    ingest_paths(store, [make_bundle(tmp_path / "b", "run-j", standard_variants(seed=6))])
    [summary] = list_runs(store)
    doc = json.loads(json.dumps(summary.to_json()))
    assert doc["run_id"] == "run-j" and doc["started_utc"] == "2026-11-25T04:34:00Z"


def test_statuses_keep_the_reason_of_variants_without_numbers(store: Store, tmp_path: Path) -> None:  # noqa: F811
    specs = standard_variants(seed=3)
    run_id = "20261125T043400Z-testhost-000003"
    ingest_paths(store, [make_bundle(tmp_path / "b", run_id, specs)])
    statuses = load_statuses(store, run_ids=[run_id])
    by_name = {row.variant: row for row in statuses.itertuples()}
    assert set(by_name) == {s.name for s in specs}
    for spec in specs:
        row = by_name[spec.name]
        assert row.status == spec.status
        if spec.status != "measured":
            assert row.reason == spec.reason
    assert load_statuses(store, run_ids=["no-such-run"]).empty
