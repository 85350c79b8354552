"""bench/interference.py and the runner's use of it: what else used the machine during a variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cetbench import interference, runner
from cetbench.hostview import HostView
from cetbench.interference import Counters
from cetbench.runner import RunOptions, execute


def test_other_processes_time_is_the_machines_busy_time_less_the_runs_own(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/loadavg").write_text("1.50 1.00 0.50 2/100 7\n")
    view = HostView(tmp_path)
    start = Counters(wall=10.0, busy=100.0, steal=1.0, own=5.0, throttle=3)
    quiet = interference.between(start, Counters(12.0, 102.1, 1.0, 7.0, 3), view)  # 0.05 CPU of others
    assert quiet.other_cpus == pytest.approx(0.05) and quiet.disturbed is None and quiet.load_avg == 1.5
    busy = interference.between(start, Counters(12.0, 104.0, 1.2, 6.0, 5), view)
    assert busy.other_cpus == pytest.approx(1.5) and busy.steal_share == pytest.approx(0.1)
    assert busy.disturbed == ("other processes used 1.50 CPUs (limit 0.25); steal time 10.0 % (limit 5 %); "
                              "2 thermal throttling events")


def test_proc_stat_is_read_in_seconds(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("cpu  100 0 50 900 0 10 5 20 0 0\ncpu0 100 0 50 900 0 10 5 20 0 0\n")
    snap = interference.snapshot(HostView(tmp_path))
    assert snap.busy == pytest.approx(165 / 100) and snap.steal == pytest.approx(0.2)


def test_a_disturbed_variant_is_timed_once_more_and_the_record_says_so(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CETBENCH_HOME", str(tmp_path / "home"))
    verdicts = iter(["other processes used 0.90 CPUs (limit 0.25)", None])
    real = interference.between

    def scripted(start: Counters, end: Counters, **kw: float) -> interference.Interference:
        seen = real(start, end, **kw)
        return interference.Interference(seen.seconds, seen.other_cpus, seen.steal_share, seen.load_avg,
                                         seen.throttle_events, next(verdicts))

    monkeypatch.setattr(runner.interference, "between", scripted)
    bundle = execute(RunOptions(only=["host.syscall[shstk=off]"], out=tmp_path / "b", perf="off",
                                pyperf_args=("--processes", "1", "--values", "2", "--warmups", "0", "--loops", "1000")))
    entry = bundle.manifest["variants"]["host.syscall[shstk=off]"]
    assert entry["status"] == "measured"
    assert entry["interference"]["retried_after"] == "other processes used 0.90 CPUs (limit 0.25)"
    assert entry["interference"]["disturbed"] is None
    assert json.loads((bundle.root / "manifest.json").read_text())["options"]["disturbed_above"] == 0.25


def test_a_bundles_disturbance_reaches_the_frame_and_blocks_a_regression(tmp_path: Path) -> None:
    import random

    from cetbench import results
    from cetbench.analysis.compare import Verdict, compare
    from tests.support.store import make_bundle, measured

    name = "host.syscall[shstk=off]"
    base = make_bundle(tmp_path / "a", "run-a", [measured(name, random.Random(1), n=24)])
    cand = make_bundle(tmp_path / "b", "run-b", [measured(name, random.Random(2), n=24, base=1.5e-7)],
                       kernel_label="v6.19")
    manifest = json.loads((cand / "manifest.json").read_text())
    manifest["variants"][name]["interference"] = {"other_cpus": 0.97, "disturbed": "other processes used 0.97 CPUs"}
    (cand / "manifest.json").write_text(json.dumps(manifest))
    with results.open_store(str(tmp_path / "s.sqlite")) as store:
        assert results.ingest_paths(store, [base, cand]).ok
        a, b = results.load(store, run_ids=["run-a"]), results.load(store, run_ids=["run-b"])
    assert set(b["disturbance"]) == {"other processes used 0.97 CPUs"} and a["disturbance"].isna().all()
    (row,) = compare(a, b).variants
    assert row.verdict is Verdict.INCONCLUSIVE and "disturbed run (candidate run run-b" in str(row.reason)
