"""The analysis functions on frames from the real store (bundle -> SQLite -> results.load)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from cetbench.analysis.compare import CompareSettings, Verdict, compare
from cetbench.analysis.overhead import cet_overhead
from cetbench.analysis.trend import trend
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import load, load_counters
from cetbench.results.store import Store, open_store
from tests.support.store import START, make_bundle, measured


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")


def bundle(root: Path, run_id: str, label: str, slowdown: float, seed: int, minutes: int) -> Path:
    rng = random.Random(seed)
    variants = [
        measured("host.syscall[shstk=off]", rng, 24),
        measured("host.syscall[shstk=on]", rng, 24, base=1e-7 * slowdown),
        measured("guest.vmexit.cpuid[cet=none]", rng, 24, base=1.5e-6),
        measured("guest.vmexit.cpuid[cet=ibt+shstk]", rng, 24, base=1.7e-6),
    ]
    return make_bundle(root / run_id, run_id, variants, kernel_label=label,
                       started=START + dt.timedelta(minutes=minutes))


def test_compare_overhead_and_trend_on_stored_runs(sqlite_store: Store, tmp_path: Path) -> None:
    labels = ["v6.18", "v6.19-rc1", "v6.19"]
    paths = [bundle(tmp_path, f"run-{i}", label, 1.0 if i == 0 else 1.3, i, i) for i, label in enumerate(labels)]
    ingest_paths(sqlite_store, paths)

    base = load(sqlite_store, kernel_labels=["v6.18"])
    cand = load(sqlite_store, kernel_labels=["v6.19"])
    result = compare(base, cand, CompareSettings(n_resamples=200))
    by = {v.variant: v.verdict for v in result.variants}
    assert by["host.syscall[shstk=on]"] is Verdict.REGRESSION  # 30 % slower by construction
    assert "v6.18" in result.baseline_label

    overhead = cet_overhead(base, load_counters(sqlite_store, kernel_labels=["v6.18"]), n_resamples=200)
    rows = {r.variant: r for r in overhead.rows}
    assert set(rows) == {"host.syscall[shstk=on]", "guest.vmexit.cpuid[cet=ibt+shstk]"}
    assert rows["host.syscall[shstk=on]"].kernel == "v6.18"
    # every run counts the same events per op on both sides: the cost is per event that got dearer
    for r in overhead.rows:
        for e in r.events:
            assert e.basis == "dearer" and e.on_per_op == pytest.approx(e.off_per_op)
            if e.on_per_op >= 1e-3:  # an event that occurs (below: none to attribute to)
                assert e.time_per_event == pytest.approx(r.time.difference / e.on_per_op)
            else:
                assert e.time_per_event is None

    series = trend(load(sqlite_store), "time")
    assert series.builds == tuple(labels)
    syscall = next(v for v in series.variants if v.variant == "host.syscall[shstk=on]")
    assert [c.build for c in syscall.change_points] == ["v6.19-rc1"]
