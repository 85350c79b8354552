"""pytest-benchmark as a front door: labs whose CI already consumes pytest-benchmark JSON run the
suite's variants with `pytest benchmarks/ --benchmark-json=out.json` and `cetbench ingest out.json`.

pytest-benchmark times a call with the timer it is given. One call here runs one native batch, so
the honest figure is the batch's own self-timed span, not the wall time around the process: the
`native_clock` below is a virtual clock that each batch advances by exactly that span, and the
benchmarks select it with `@pytest.mark.benchmark(timer=native_clock)`.
"""

from __future__ import annotations

import statistics
from typing import Any

from cetbench.native import check_cet_state, run_native
from cetbench.probe import collect
from cetbench.verdicts import judge
from cetbench.workloads.build import build
from cetbench.workloads.table import Variant

_elapsed_s = 0.0


def native_clock() -> float:
    """Seconds of native self-timed work done so far in this process (advanced by `run_batch`)."""
    return _elapsed_s


class NativeBatch:
    """Runs one variant's native program for `ops` ops per call and keeps the records."""

    def __init__(self, variant: Variant, ops: int, cpu: int = 0, timeout: float = 120.0) -> None:
        self.variant, self.ops, self.timeout = variant, ops, timeout
        cmd = [str(build(variant.workload.program).path)]
        if variant.workload.kind == "guest":
            cmd += ["--guest", str(build("cetbench-guest").path)]
        self.cmd = [*cmd, *variant.native_args(), "--cpu", str(cpu), "--iterations", str(ops)]
        self.records: list[dict[str, Any]] = []

    def __call__(self) -> None:
        global _elapsed_s
        outcome = run_native(self.cmd, self.timeout)
        if not outcome.measured:
            raise RuntimeError(f"{self.variant.name}: {outcome.status}: {outcome.reason}")
        wrong = check_cet_state(outcome.record, self.variant.workload.kind, self.variant.cet)
        if wrong:
            raise RuntimeError(f"{self.variant.name}: {wrong}")
        self.records.append(outcome.record)
        _elapsed_s += outcome.record["elapsed_ns"] / 1e9

    def extra_info(self, probe: dict[str, Any]) -> dict[str, Any]:
        """What `cetbench ingest` needs to file the samples as this variant, seconds per op."""
        cycles = [r.get("guest_cycles", r.get("tsc_ticks", 0)) / r["iterations"] for r in self.records]
        kernel = probe["kernel"]
        return {
            "variant": self.variant.name, "workload": self.variant.workload.name, "cet": self.variant.cet,
            "cet_on": self.variant.cet_on, "op": self.variant.workload.op, "ops_per_iteration": self.ops,
            "emulated": self.variant.workload.kind == "guest" and probe["kvm"].get("hardware") is False,
            "cycles_per_op": statistics.median(cycles) if cycles else None,
            "kernel_version": kernel["version"], "kernel_build_id": kernel["build_id"],
        }


def runnable(variant: Variant, probe: dict[str, Any]) -> tuple[bool, str | None]:
    verdict = judge(variant, probe)
    return verdict.runnable, verdict.reason


def host_probe() -> dict[str, Any]:
    return collect()
