"""The suite's variants as lab jobs, and what each one's result means by the native protocol's rules.

Each variant runs at two iteration counts (N and 2N), so a tracepoint's count per op is the difference
over N ops: what the workload's setup and teardown add cancels out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cetbench.lab.image import ImagePrograms
from cetbench.lab.jobs import JobResult, LabJob
from cetbench.native import NativeOutcome, classify, variant_command
from cetbench.perf_pass import events_for
from cetbench.workloads.mechanisms import split_spec
from cetbench.workloads.table import Variant
from cetbench.workloads.variants import GUEST

#: Ops per run in the emulator: enough for exact per-op counts, small enough for seconds of wall time.
ITERATIONS = {"host": 1000, "guest": 100}
JOB_TIMEOUT_S = 30.0  # guest seconds


def tracepoints(variant: Variant) -> tuple[str, ...]:
    """What the perf pass counts for the workload (its key events, the mechanisms' filtered specs, the
    kvm events of a guest) that the agent can count: tracepoints `subsys:name [if FILTER]`, no globs,
    no perf software or hardware events."""
    wanted = (*variant.workload.key_events, *events_for(variant.workload))  # a key event may be under a glob
    return tuple(dict.fromkeys(e for e in wanted if ":" in split_spec(e)[0] and "*" not in e))


def job_id(variant: Variant, scale: int) -> str:
    return f"{variant.name}x{scale}"


def variant_jobs(variants: Sequence[Variant], programs: ImagePrograms | None = None) -> list[LabJob]:
    programs = programs or ImagePrograms()
    out = []
    for v in variants:
        n = ITERATIONS["guest" if v.workload.kind == GUEST else "host"]
        cmd = tuple(variant_command(v, programs, cpu=0))
        knob = v.id.value("kvmcet")  # kvm_intel reloaded with the variant's `cet` (the agent does it)
        out += [LabJob(job_id(v, k), (*cmd, "--iterations", str(k * n)), events=tracepoints(v), timeout_s=JOB_TIMEOUT_S,
                       kvm_intel={"cet": knob} if knob is not None else None)
                for k in (1, 2)]
    return out


def variant_outcome(variant: Variant, result: JobResult) -> NativeOutcome:
    """measured / unsupported / failed, exactly as on a host (bench/native.py): a measured record whose CET
    state is not the variant's is failed."""
    if result.error:
        return NativeOutcome("failed", result.record or {}, result.error)
    code = result.exit_code if result.exit_code is not None else -(result.signal or 0)
    outcome = classify(code, result.record, "\n".join(result.output_tail))
    if outcome.measured:
        wrong = variant.id.wrong_state(outcome.record)
        if wrong:
            return NativeOutcome("failed", outcome.record, wrong)
    return outcome


@dataclass(frozen=True)
class LabVariant:
    variant: Variant
    outcome: NativeOutcome  # of the N-op run (the 2N run must agree)
    per_op: dict[str, float]  # event -> count per op, from the two runs

    def to_json(self) -> dict[str, object]:
        return {"variant": self.variant.name, "status": self.outcome.status, "reason": self.outcome.reason,
                "record": self.outcome.record, "per_op": self.per_op}


def summarize(variants: Sequence[Variant], results: dict[str, JobResult]) -> list[LabVariant]:
    out = []
    for v in variants:
        one, two = results[job_id(v, 1)], results[job_id(v, 2)]
        first, second = variant_outcome(v, one), variant_outcome(v, two)
        outcome = first if first.status == second.status or first.status != "measured" else second
        n = ITERATIONS["guest" if v.workload.kind == GUEST else "host"]
        per_op = ({e: (two.counts[e] - one.counts[e]) / n for e in one.counts if e in two.counts}
                  if first.measured and second.measured else {})
        out.append(LabVariant(v, outcome, per_op))
    return out
