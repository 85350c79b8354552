"""The pytest-benchmark front door end to end: `pytest benchmarks/ --benchmark-json=X` runs real
variants here, and `cetbench ingest X` files them as the suite's own variants, seconds per op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cetbench import results
from cetbench.plan import decide
from cetbench.probe import collect
from cetbench.workloads.table import by_name

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
OPS, ROUNDS = 20000, 6
HOST = "host.syscall[shstk=off]"
GUEST = "guest.vmexit.cpuid[cet=none]"


def test_pytest_benchmark_json_ingests_as_variants_in_seconds_per_op(tmp_path: Path) -> None:
    facts = collect()
    guest_runs = decide(by_name(GUEST), facts).runnable
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "CETBENCH_STORE"}
    env.update(CETBENCH_HOME=str(tmp_path / "home"), CETBENCH_FRONTDOOR_OPS=str(OPS),
               CETBENCH_FRONTDOOR_ROUNDS=str(ROUNDS))
    bench = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_variants.py", "-p", "no:cacheprovider", "-q",
         "-k", "host.syscall or guest.vmexit.cpuid", f"--benchmark-json={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    doc = json.loads(out.read_text())
    extra = {b["extra_info"]["variant"]: b for b in doc["benchmarks"]}
    assert set(extra) == ({HOST, GUEST} if guest_runs else {HOST})

    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    ingest = subprocess.run([sys.executable, "-m", "cetbench", "ingest", str(out), "--store", store_url],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.startswith("ingested: ")

    frame = results.load(results.open_store(store_url))
    assert set(frame["variant"]) == set(extra)
    host = frame[frame["variant"] == HOST]
    assert len(host) == ROUNDS
    assert host["unit"].eq("second").all()
    # one round is one native batch of OPS getppid calls: samples are seconds per op, not per batch
    assert host["value"].between(10e-9, 10e-6).all(), host["value"].tolist()
    assert sorted(host["value"]) == pytest.approx(sorted(s / OPS for s in extra[HOST]["stats"]["data"]))
    assert (host["workload"].iloc[0], host["cet"].iloc[0], bool(host["cet_on"].iloc[0])) == (
        "host.syscall", "shstk=off", False)
    assert not host["emulated"].any()
    assert host["cycles"].iloc[0] == pytest.approx(extra[HOST]["extra_info"]["cycles_per_op"])
    assert host["kernel_build_id"].iloc[0] == facts.kernel.build_id
    if guest_runs:
        guest = frame[frame["variant"] == GUEST]
        assert len(guest) == ROUNDS and guest["value"].gt(0).all()
        assert guest["workload"].iloc[0] == "guest.vmexit.cpuid" and guest["cet"].iloc[0] == "cet=none"
        # emulated exactly when the probe says KVM here is not hardware (kvm_pvm on this kind of host)
        assert guest["emulated"].all() == facts.kvm.emulated
