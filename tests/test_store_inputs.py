"""Inputs: bad bundles are refused whole with a message naming the file, while good inputs go on;
pyperf and pytest-benchmark JSON files (made by the real tools) ingest."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyperf
import pytest

from cetbench.results.bundle_reader import cycles_per_op
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import load
from cetbench.results.runs import list_runs
from cetbench.results.store import Store
from tests.support.store import (
    make_bundle,
    pg_url,  # noqa: F401  (fixture)
    standard_variants,
    store,  # noqa: F401  (fixture)
    store_url,  # noqa: F401  (fixture)
    table_counts,
    write_pytest_benchmark_json,
)


def _pyperf_file(bundle: Path, variant: str = "host.syscall[shstk=on]") -> Path:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return bundle / manifest["variants"][variant]["pyperf"]


def _set_value(bundle: Path, literal: str) -> None:
    path = _pyperf_file(bundle)
    doc = json.loads(path.read_text())
    doc["benchmarks"][0]["runs"][1]["values"][2] = "@@"
    path.write_text(json.dumps(doc).replace('"@@"', literal))


def _edit_manifest(bundle: Path, edit: Callable[[dict], None]) -> None:
    doc = json.loads((bundle / "manifest.json").read_text())
    edit(doc)
    (bundle / "manifest.json").write_text(json.dumps(doc))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _variant_file(bundle: Path, suffix: str) -> Path:
    return bundle / "variants" / f"host.syscall_shstk_on.{suffix}"


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))  # NaN and Infinity as Python's json writes (and reads) them


def _set_event(bundle: Path, field: str, value: object) -> None:
    _edit_json(_variant_file(bundle, "perf.json"),
               lambda d: d["events"]["syscalls:sys_enter_getppid"].update({field: value}))


def _set_raw_line(bundle: Path, number: int, text: str) -> None:
    path = _variant_file(bundle, "raw.jsonl")
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _append_key(path: Path, key: str, value: str) -> None:
    """The same key a second time at the top level (json.dumps never writes that)."""
    text = path.read_text().rstrip()
    path.write_text(f"{text[:-1]}, {json.dumps(key)}: {value}}}")


def _deep(path: Path) -> None:
    path.write_text(path.read_text().replace('"probe": {}', '"probe": ' + "[" * 100_000 + "]" * 100_000))


def _set_variant(bundle: Path, variant: str, **fields: object) -> None:
    _edit_manifest(bundle, lambda d: d["variants"][variant].update(fields))


def _rename_variant(bundle: Path, old: str, new: str) -> None:
    _edit_manifest(bundle, lambda d: d["variants"].update({new: d["variants"].pop(old)}))


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "truncated manifest": (lambda b: _truncate(b / "manifest.json"), ["manifest.json", "truncated"]),
    "missing manifest": (lambda b: (b / "manifest.json").unlink(), ["manifest.json is missing"]),
    "newer schema": (lambda b: _edit_manifest(b, lambda d: d.update(schema=2)),
                     ["bundle schema 2 is newer", "upgrade cetbench"]),
    "NaN sample": (lambda b: _set_value(b, "NaN"), ["host.syscall[shstk=on]", "nan"]),
    "infinite sample": (lambda b: _set_value(b, "Infinity"), ["host.syscall[shstk=on]", "inf"]),
    "negative sample": (lambda b: _set_value(b, "-1e-07"), ["host.syscall[shstk=on]", "-1e-07"]),
    "truncated pyperf file": (lambda b: _truncate(_pyperf_file(b)),
                              ["host.syscall[shstk=on]", ".pyperf.json", "truncated"]),
    "missing pyperf file": (lambda b: _pyperf_file(b).unlink(), ["host.syscall_shstk_on.pyperf.json is missing"]),
    "path outside bundle": (
        lambda b: _edit_manifest(b, lambda d: d["variants"]["host.syscall[shstk=on]"].update(pyperf="../x.json")),
        ["outside the bundle"]),
    "bad raw record": (lambda b: _variant_file(b, "raw.jsonl").write_text('{"iterations": 1,, }'),
                       ["raw.jsonl line 1", "invalid JSON"]),
    "truncated raw record": (lambda b: _variant_file(b, "raw.jsonl").write_text('{"iter'),
                             ["raw.jsonl line 1", "truncated"]),
    "bad status": (lambda b: _edit_manifest(b, lambda d: d["variants"]["host.syscall[shstk=on]"].update(status="ok")),
                   ["status 'ok'"]),
    "missing run id": (lambda b: _edit_manifest(b, lambda d: d.pop("run_id")), ["run_id"]),
    # Found by benchmarks/fuzz_inputs.py: each of these raised out of ingest (or, on PostgreSQL, stopped it
    # as a store failure, or stored a NaN) before the readers checked it.
    "manifest nested 100,000 deep": (lambda b: _deep(b / "manifest.json"), ["manifest.json", "nested too deeply"]),
    "integer of 5000 digits": (lambda b: _set_value(b, "1" * 5000), ["pyperf.json: invalid JSON", "4300 digits"]),
    "sample of 401 digits": (lambda b: _set_value(b, "1" + "0" * 400),
                             ["run 1: sample 2 is a number of 401 digits", "finite"]),
    "pyperf run metadata not an object": (
        lambda b: _edit_json(_pyperf_file(b), lambda d: d["benchmarks"][0]["runs"][1].update(metadata=[1])),
        ["pyperf.json", "run 1: metadata must be an object"]),
    "NaN perf count": (lambda b: _set_event(b, "count", float("nan")),
                       ["perf.json.events.syscalls:sys_enter_getppid", "'count' is nan", "finite"]),
    "infinite perf count": (lambda b: _set_event(b, "per_op", float("inf")), ["'per_op' is inf"]),
    "negative perf count": (lambda b: _set_event(b, "per_op", -1.0), ["'per_op' is -1.0", ">= 0"]),
    "perf count of 400 digits": (lambda b: _set_event(b, "count", 10**400), ["'count' is too large"]),
    "raw record with infinite iterations": (
        lambda b: _set_raw_line(b, 3, '{"iterations": Infinity, "elapsed_ns": 1, "tsc_ticks": 1}'),
        ["raw.jsonl line 3", "'iterations' is inf"]),
    "raw record with NaN iterations": (
        lambda b: _set_raw_line(b, 3, '{"iterations": NaN, "elapsed_ns": 1, "tsc_ticks": 1}'),
        ["raw.jsonl line 3", "'iterations' is nan"]),
    "raw record of 400-digit ticks": (
        lambda b: _set_raw_line(b, 2, '{"iterations": 1, "elapsed_ns": 1, "tsc_ticks": 1' + "0" * 400 + "}"),
        ["raw.jsonl line 2", "'tsc_ticks' is too large"]),
    "raw record not an object": (lambda b: _set_raw_line(b, 4, "[1, 2]"),
                                 ["raw.jsonl line 4", "expected a JSON object, got list"]),
    "NUL in a reason": (lambda b: _set_variant(b, "guest.vmexit.cpuid[cet=ibt]", reason="no\x00IBT"),
                        ["manifest.json.variants.guest.vmexit.cpuid[cet=ibt]", "'reason' contains a NUL"]),
    "lone surrogate in a variant name": (
        lambda b: _rename_variant(b, "host.ctxsw[shstk=on]", "host.ctxsw\ud800"),
        ["manifest.json.variants", "lone surrogate"]),
    "NUL in a file path": (lambda b: _set_variant(b, "host.syscall[shstk=on]", pyperf="variants/\x00.json"),
                           ["'pyperf' contains a NUL"]),
    "lone surrogate in a file path": (lambda b: _set_variant(b, "host.syscall[shstk=on]", raw="variants/\ud800"),
                                      ["'raw' is not valid UTF-8"]),
    "a key given twice": (lambda b: _append_key(b / "manifest.json", "run_id", '"other"'),
                          ["manifest.json", "key 'run_id' appears twice"]),
    "a start before year 1 in UTC": (
        lambda b: _edit_manifest(b, lambda d: d.update(started_utc="0001-01-01T00:00:00+05:00")),
        ["started_utc", "out of range in UTC"]),
    "a run id too long to store": (lambda b: _edit_manifest(b, lambda d: d.update(run_id="r" * 201)),
                                   ["manifest.json", "201 characters", "at most 200"]),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_bundle_is_refused_and_others_go_on(store: Store, tmp_path: Path, corruption: str) -> None:  # noqa: F811
    corrupt, expected = CORRUPTIONS[corruption]
    good_a = make_bundle(tmp_path / "good-a", "run-a", standard_variants(seed=1))
    bad = make_bundle(tmp_path / "bad", "run-bad", standard_variants(seed=2))
    good_b = make_bundle(tmp_path / "good-b", "run-b", standard_variants(seed=3))
    corrupt(bad)

    report = ingest_paths(store, [good_a, bad, good_b])

    assert [r.status for r in report.results] == ["ingested", "error", "ingested"]
    error = report.errors[0]
    assert error.path == str(bad)
    for words in expected:
        assert words in str(error.message), error.message
    assert sorted(r.run_id for r in list_runs(store)) == ["run-a", "run-b"]
    assert table_counts(store)["samples"] == 2 * 36  # nothing of the bad bundle


def test_zero_sample_is_refused(store: Store, tmp_path: Path) -> None:  # noqa: F811
    bad = make_bundle(tmp_path / "bad", "run-z", standard_variants(seed=1))
    _set_value(bad, "0")
    [result] = ingest_paths(store, [bad]).results
    assert result.status == "error" and "must be finite and > 0" in str(result.message)


def test_unrecognised_and_missing_files(store: Store, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "junk.json").write_text("not json at all")
    report = ingest_paths(store, [tmp_path / "other.json", tmp_path / "junk.json", tmp_path / "absent"])
    messages = [str(r.message) for r in report.results]
    assert [r.status for r in report.results] == ["error"] * 3
    assert "not a run bundle, pyperf JSON or pytest-benchmark JSON" in messages[0]
    assert "invalid JSON" in messages[1]
    assert "no such file" in messages[2]
    assert table_counts(store)["runs"] == 0


def test_manifest_path_names_its_bundle(store: Store, tmp_path: Path) -> None:  # noqa: F811
    bundle = make_bundle(tmp_path / "b", "run-m", standard_variants(seed=1))
    report = ingest_paths(store, [bundle / "manifest.json", bundle])
    assert [r.status for r in report.results] == ["ingested", "duplicate"]


def test_pyperf_file_from_the_real_tool_ingests(store: Store, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "timeit.json"
    subprocess.run(
        [sys.executable, "-m", "pyperf", "timeit", "--quiet", "--processes", "2", "--values", "3",
         "--warmups", "1", "--loops", "100", "--name", "host.noop[shstk=off]", "-o", str(out), "pass"],
        check=True, capture_output=True,
    )
    suite = pyperf.BenchmarkSuite.load(str(out))
    expected = list(suite.get_benchmarks()[0].get_values())

    report = ingest_paths(store, [out])

    assert [r.status for r in report.results] == ["ingested"], report.results
    df = load(store)
    assert df["value"].tolist() == expected
    row = df.iloc[0]
    assert row["run_id"].startswith("pyperf-")
    meta = suite.get_benchmarks()[0].get_metadata()
    assert row["host"] == meta["hostname"]
    assert row["kernel_release"] and row["kernel_release"] in meta["platform"]
    assert (row["workload"], row["cet"], row["cet_on"]) == ("host.noop", "shstk=off", False)
    assert ingest_paths(store, [out]).results[0].status == "duplicate"


def test_pyperf_file_with_several_benchmarks(store: Store, tmp_path: Path) -> None:  # noqa: F811
    benches = [
        pyperf.Benchmark([pyperf.Run([1e-6, 2e-6], metadata={"name": name, "hostname": "h1",
                                                              "platform": "Linux-6.1.0-18-amd64-x86_64-with-glibc2.36",
                                                              "date": "2026-11-20 10:00:00"},
                                     collect_metadata=False)])
        for name in ("a[cet=ibt+shstk]", "b")
    ]
    path = tmp_path / "suite.json"
    pyperf.BenchmarkSuite(benches).dump(str(path))

    assert ingest_paths(store, [path]).ok
    df = load(store)
    assert sorted(df["variant"].unique()) == ["a[cet=ibt+shstk]", "b"]
    assert df["kernel_release"].unique().tolist() == ["6.1.0-18-amd64"]
    assert df.loc[df["variant"] == "a[cet=ibt+shstk]", "cet_on"].tolist() == [True, True]
    assert df.loc[df["variant"] == "b", "cet_on"].isna().all()  # unknown, not False


def test_pytest_benchmark_file_from_the_real_tool_ingests(store: Store, tmp_path: Path) -> None:  # noqa: F811
    out = write_pytest_benchmark_json(tmp_path)
    doc = json.loads(out.read_text())
    by_name = {b["name"]: b for b in doc["benchmarks"]}

    report = ingest_paths(store, [out])

    assert report.ok, report.errors
    df = load(store)
    on = df[df["variant"] == "host.syscall[shstk=on]"].sort_values("sample")
    assert on["value"].tolist() == pytest.approx([d / 1000 for d in by_name["test_syscall_on"]["stats"]["data"]])
    assert on["kernel_label"].unique().tolist() == ["v6.18"]
    assert (on["workload"].iloc[0], on["cet_on"].iloc[0]) == ("host.syscall", True)
    plain = df[df["variant"] == "test_plain"]
    assert plain["value"].tolist() == pytest.approx(by_name["test_plain"]["stats"]["data"])
    row = df.iloc[0]
    assert row["host"] == doc["machine_info"]["node"]
    assert row["kernel_release"] == doc["machine_info"]["release"]
    assert row["run_id"].startswith("pytest-benchmark-")


def test_pytest_benchmark_file_without_data_is_refused(store: Store, tmp_path: Path) -> None:  # noqa: F811
    doc = {"machine_info": {"node": "h"}, "commit_info": {}, "datetime": "2026-11-25T04:34:00+00:00",
           "version": "5.1.0", "benchmarks": [{"name": "t", "fullname": "t.py::t", "extra_info": {},
                                               "stats": {"mean": 1.0, "rounds": 3}}]}
    path = tmp_path / "nodata.json"
    path.write_text(json.dumps(doc))
    [result] = ingest_paths(store, [path]).results
    assert result.status == "error" and "no per-round data" in str(result.message)


def _pyperf_doc(name: str = "host.noop[shstk=off]", **metadata: object) -> dict:
    return {"version": "1.0", "metadata": {"hostname": "h1", **metadata},
            "benchmarks": [{"metadata": {"name": name, "unit": "second"},
                            "runs": [{"metadata": {"date": "2026-11-20 10:00:00"}, "values": [1e-7, 1.1e-7]}]}]}


def _pytest_doc(**extra_info: object) -> dict:
    return {"machine_info": {"node": "h"}, "commit_info": {}, "datetime": "2026-11-25T04:34:00+00:00",
            "version": "5.1.0", "benchmarks": [{"name": "t", "fullname": "t.py::t", "extra_info": extra_info,
                                                "stats": {"data": [1e-7, 1.2e-7, 1.1e-7]}}]}


# Found by benchmarks/fuzz_inputs.py: a VariantNameError escaped the pyperf reader; an ops count that makes
# a sample infinite or NaN was stored; text PostgreSQL refuses stopped the ingest as a store failure.
FILE_CORRUPTIONS: dict[str, tuple[dict, list[str]]] = {
    "pyperf name giving an axis twice": (_pyperf_doc("x[shstk=on,shstk=off]"),
                                         ["pyperf JSON: benchmark 'x[shstk=on,shstk=off]'", "given twice"]),
    "pyperf host name with a NUL": (_pyperf_doc(hostname="h\x00"),
                                    ["pyperf JSON: metadata", "'hostname' contains a NUL"]),
    "pytest-benchmark samples made infinite by tiny ops": (_pytest_doc(ops_per_iteration=1e-320),
                                                           ["stats.data divided by", "sample 0 is inf"]),
    "pytest-benchmark NaN ops": (_pytest_doc(ops_per_iteration=float("nan")), ["'ops_per_iteration' is nan"]),
    "pytest-benchmark negative cycles": (_pytest_doc(cycles_per_op=-5), ["'cycles_per_op' is -5", ">= 0"]),
    "pytest-benchmark NUL in a label": (_pytest_doc(kernel_label="v6\x00"), ["'kernel_label' contains a NUL"]),
}


@pytest.mark.parametrize("corruption", list(FILE_CORRUPTIONS))
def test_corrupt_file_is_refused_naming_the_place(store: Store, tmp_path: Path, corruption: str) -> None:  # noqa: F811
    doc, expected = FILE_CORRUPTIONS[corruption]
    path = tmp_path / "file.json"
    path.write_text(json.dumps(doc))
    [result] = ingest_paths(store, [path]).results
    assert result.status == "error", result
    for words in expected:
        assert words in str(result.message), result.message
    assert table_counts(store)["runs"] == 0


def test_pyperf_file_from_a_long_host_name_fits_the_store(store: Store, tmp_path: Path) -> None:  # noqa: F811
    """PostgreSQL refused the run id made from a 300-character host name (runs.run_id holds 200)."""
    path = tmp_path / "long.json"
    path.write_text(json.dumps(_pyperf_doc(hostname="h" * 300)))
    [result] = ingest_paths(store, [path]).results
    assert result.status == "ingested", result
    assert load(store)["host"].unique().tolist() == ["h" * 300]


def test_cycles_tie_samples_to_their_records_and_skip_calibration() -> None:
    records = [
        {"iterations": 1, "elapsed_ns": 700, "tsc_ticks": 1400},  # calibration: large per-op cost
        {"iterations": 1000, "elapsed_ns": 100_000, "tsc_ticks": 300_000},
        {"iterations": 1000, "elapsed_ns": 120_000, "tsc_ticks": 330_000},
        {"iterations": "x", "elapsed_ns": 1, "tsc_ticks": 1},  # ignored, not an error
    ]
    tied = [100_000 / 1e9 / 1000, 120_000 / 1e9 / 1000]

    assert cycles_per_op(tied, records, "host") == ([300.0, 330.0], 315.0)
    # Values no record reproduces: per-sample unknown; the median uses the calibrated loops only.
    assert cycles_per_op([5e-6], records, "host") == ([None], 315.0)
    assert cycles_per_op([5e-6], [], "host") == ([None], None)
    guest = [{"iterations": 10, "elapsed_ns": 50, "tsc_ticks": 1, "guest_cycles": 2000}]
    assert cycles_per_op([50 / 1e9 / 10], guest, "guest") == ([200.0], 200.0)


def test_text_columns_keep_one_dtype_with_missing_values(store: Store, tmp_path: Path) -> None:  # noqa: F811
    ingest_paths(store, [make_bundle(tmp_path / "a", "run-a", standard_variants(seed=1), kernel_label=None),
                         make_bundle(tmp_path / "b", "run-b", standard_variants(seed=2), kernel_build_id=None)])
    df = load(store)
    assert df["kernel_label"].dtype == df["host"].dtype == df["kernel_build_id"].dtype
    assert df.groupby("run_id")["kernel_label"].apply(lambda s: s.isna().all()).to_dict() == {
        "run-a": True, "run-b": False}
