"""The suite's variants through pytest-benchmark (pedantic mode: one round = one native batch).

    pytest benchmarks/ --benchmark-json=out.json [-k 'host.syscall'] && cetbench ingest out.json

Variants this host cannot run are skipped with the refusing party's reason; nothing is measured for
them. CETBENCH_FRONTDOOR_OPS and CETBENCH_FRONTDOOR_ROUNDS scale the batches (default 100000 x 10 for
host loops; guest loops use a hundredth of the ops because guests may run emulated).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from cetbench.pytest_frontdoor import NativeBatch, Session, native_clock, variants
from cetbench.workloads.table import Variant

OPS = int(os.environ.get("CETBENCH_FRONTDOOR_OPS", "100000"))
ROUNDS = int(os.environ.get("CETBENCH_FRONTDOOR_ROUNDS", "10"))


@pytest.mark.benchmark(timer=native_clock, group="cetbench")
@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.name)
def test_variant(benchmark: Any, run: Session, variant: Variant) -> None:
    decision = run.plan.of(variant)
    if not decision.runnable:
        pytest.skip(f"unsupported: {decision.reason}")
    ops = OPS if variant.workload.kind == "host" else max(1, OPS // 100)
    batch = NativeBatch(variant, ops, run.programs)
    benchmark.pedantic(batch, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update(batch.extra_info(run))
    assert len(batch.records) == ROUNDS + 1  # every round really ran the native batch
