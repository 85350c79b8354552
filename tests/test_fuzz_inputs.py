"""A slice of the input fuzz harness (benchmarks/fuzz_inputs.py runs 10,000 cases): every mutated input
ends as an input error naming its file and place, or as a whole ingest; the lab's result stream as
job results that are read or failed saying why, and a bundle that ingests; and the harness itself
notices an uncaught exception, a partial run and a lab job result of the wrong type when there is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cetbench.lab import jobs
from cetbench.results import bundle_reader, ingest
from tests.support.fuzz import TARGETS, Fuzzer, Templates
from tests.support.store import drop_pg_schema, new_pg_schema, pg_base_url


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates.synthetic(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CETBENCH_HOME", str(tmp_path / "home"))  # an empty store URL opens the default store
    return tmp_path


def _sqlite(tmp_path: Path) -> dict:
    made = iter(range(1_000_000))
    return {"sqlite": lambda: f"sqlite:///{tmp_path / f'store-{next(made)}.sqlite'}"}


def test_a_slice_of_fuzzed_inputs_ends_well_on_sqlite(templates: Templates, home: Path) -> None:
    tally = Fuzzer(home / "work", templates, _sqlite(home), epoch=100).run(200, seed=17)

    assert tally.failures == []
    assert tally.inputs == 200 and set(tally.by_target) == {name for name, _, _ in TARGETS}
    assert tally.outcomes["ingested"] > 20 and tally.outcomes["input error"] > 40


def test_a_slice_of_fuzzed_files_ends_well_on_postgresql(templates: Templates, home: Path) -> None:
    base = pg_base_url()
    urls: list[str] = []

    def new_schema() -> str:
        urls.append(new_pg_schema(base))
        return urls[-1]

    try:
        tally = Fuzzer(home / "work", templates, {"postgresql": new_schema}, summaries=0).run(80, seed=18)
    finally:
        for url in urls:
            drop_pg_schema(url)

    assert tally.failures == []
    assert tally.outcomes["ingested"] > 10 and tally.outcomes["input error"] > 15


def test_the_harness_notices_an_uncaught_exception_and_a_partial_run(
    templates: Templates, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_cycles(*args: object) -> object:
        raise KeyError("tsc_ticks")

    fuzzer = Fuzzer(home / "a", templates, _sqlite(home / "a"), summaries=0)
    monkeypatch.setattr(bundle_reader, "cycles_per_op", broken_cycles)
    tally = fuzzer.run(40, seed=19)
    assert tally.uncaught > 0
    assert {f.failure for f in tally.failures} == {"uncaught KeyError"}
    assert all(f.detail.startswith("bundle_reader.py:") for f in tally.failures)

    monkeypatch.undo()
    insert = ingest._insert_run

    def without_the_last_variant(conn: object, record: ingest.RunRecord) -> None:
        record.variants = record.variants[:-1]
        insert(conn, record)  # type: ignore[arg-type]

    fuzzer = Fuzzer(home / "b", templates, _sqlite(home / "b"), summaries=0)
    monkeypatch.setattr(ingest, "_insert_run", without_the_last_variant)
    tally = fuzzer.run(40, seed=19)
    assert tally.uncaught == 0 and "partial run" in {f.failure for f in tally.failures}


LAB = ("lab result stream",)


def test_a_slice_of_the_lab_result_stream_ends_well(templates: Templates, home: Path) -> None:
    tally = Fuzzer(home / "work", templates, _sqlite(home), summaries=0, only=LAB).run(60, seed=20)

    assert tally.failures == []
    assert tally.by_target == {LAB[0]: 60}
    assert tally.outcomes["lab: every result read"] > 20 and tally.outcomes["lab: jobs failed, saying why"] > 10
    assert tally.outcomes["ingested"] == 60  # the bundle of every boot, however its stream was cut or garbled


def test_the_harness_notices_a_lab_reader_that_takes_a_job_line_as_it_comes(
    templates: Templates, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "line_problem", lambda job, data: None)
    tally = Fuzzer(home / "work", templates, _sqlite(home), summaries=0, only=LAB).run(60, seed=20)
    found = {f.failure for f in tally.failures}
    assert "a job result of the wrong type" in found and any(f.startswith("uncaught") for f in found)


def test_a_number_too_large_for_a_float_is_mutated_again_without_a_crash() -> None:
    # A 400-digit integer written by one mutation is a plain int to the next of a stack: no float of it.
    import random

    from tests.support import fuzz_json

    data = b'{"n": 1' + b"0" * 400 + b"}"
    for seed in range(20):
        rng = random.Random(seed)
        fuzz_json.bad_number(rng, data, fuzz_json.parse(data))
