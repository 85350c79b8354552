"""pytest-benchmark as a front door: labs whose CI already consumes pytest-benchmark JSON run the
suite's variants with `pytest benchmarks/ --benchmark-json=out.json` and `cetbench ingest out.json`.

pytest-benchmark times a call with the timer it is given. One call here runs one native batch, so
the honest figure is the batch's own self-timed span, not the wall time around the process: the
`native_clock` below is a virtual clock that each batch advances by exactly that span, and the
benchmarks select it with `@pytest.mark.benchmark(timer=native_clock)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cetbench.facts import HostFacts
from cetbench.native import Programs, run_variant_once, variant_command
from cetbench.plan import Plan, plan
from cetbench.probe import collect
from cetbench.results.bundle_reader import cycles_per_op
from cetbench.workloads.table import Variant, select
from cetbench.workloads.variants import LINUX

_elapsed_s = 0.0


def native_clock() -> float:
    """Seconds of native self-timed work done so far in this process (advanced by `NativeBatch`)."""
    return _elapsed_s


@dataclass(frozen=True)
class Session:
    """One probe and one plan for a pytest session, and the programs its batches share."""

    facts: HostFacts
    plan: Plan
    programs: Programs


def variants() -> list[Variant]:
    """The variants the front door runs: every one but those that change the host (opt-in axes such
    as reloading kvm_intel need `cetbench run` with a pattern naming them) and the Linux-guest ones
    (a QEMU boot per configuration: `cetbench run --only 'linux.*'`)."""
    return [v for v in select(None) if v.workload.kind != LINUX]


def session() -> Session:
    facts = collect()
    return Session(facts, plan(facts, variants()), Programs())


class NativeBatch:
    """Runs one variant's native program for `ops` ops per call and keeps the records."""

    def __init__(self, variant: Variant, ops: int, programs: Programs, cpu: int = 0, timeout: float = 120.0) -> None:
        self.variant, self.ops, self.timeout = variant, ops, timeout
        self.cmd = variant_command(variant, programs, cpu)
        self.records: list[dict[str, Any]] = []

    def __call__(self) -> None:
        global _elapsed_s
        outcome = run_variant_once(self.variant, self.cmd, self.ops, self.timeout)
        if not outcome.measured:
            raise RuntimeError(f"{self.variant.name}: {outcome.status}: {outcome.reason}")
        self.records.append(outcome.record)
        _elapsed_s += outcome.record["elapsed_ns"] / 1e9

    def extra_info(self, run: Session) -> dict[str, Any]:
        """What `cetbench ingest` needs to file the samples as this variant, seconds per op."""
        v = self.variant
        values = [r["elapsed_ns"] / 1e9 / r["iterations"] for r in self.records]
        _, cycles = cycles_per_op(values, self.records, v.workload.kind)
        return {
            "variant": v.name, "workload": v.workload.name, "cet": v.config,
            "cet_on": v.cet_on, "op": v.workload.op, "ops_per_iteration": self.ops,
            "emulated": run.plan.of(v).emulated, "cycles_per_op": cycles,
            "kernel_version": run.facts.kernel.version, "kernel_build_id": run.facts.kernel.build_id,
        }
