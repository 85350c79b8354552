"""The suite's variants as lab jobs, and what each one's result means by the native protocol's rules.

Each variant runs at two iteration counts (N and 2N), so a tracepoint's count per op is the difference
over N ops: what the workload's setup and teardown add cancels out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _plain_int(value: object, low: int) -> bool:
    return type(value) is int and low <= value < 2**63


def record_problem(record: dict[str, Any], iterations: int) -> str | None:
    """Why a measured record of a job asked for `iterations` ops cannot give the lab's figures (its time
    per op, the raw record the bundle keeps), or None."""
    if not _plain_int(record.get("iterations"), 1) or record["iterations"] != iterations:
        return f"its record says iterations={record.get('iterations')!r:.40}, the job asked for {iterations}"
    if not _plain_int(record.get("elapsed_ns"), 1):
        return f"its record says elapsed_ns={record.get('elapsed_ns')!r:.40}, not a time in ns > 0"
    for key in ("tsc_ticks", "guest_cycles"):
        if key in record and not _plain_int(record[key], 0):
            return f"its record says {key}={record[key]!r:.40}, not a count >= 0"
    return None


def variant_outcome(variant: Variant, result: JobResult, iterations: int | None = None) -> NativeOutcome:
    """measured / unsupported / failed, exactly as on a host (bench/native.py): a measured record whose CET
    state is not the variant's is failed; so is one that does not give a time for the `iterations` ops
    the job asked for (when given)."""
    if result.error:
        return NativeOutcome("failed", result.record or {}, result.error)
    code = result.exit_code if result.exit_code is not None else -(result.signal or 0)
    outcome = classify(code, result.record, "\n".join(result.output_tail))
    if outcome.measured:
        wrong = variant.id.wrong_state(outcome.record) or (
            record_problem(outcome.record, iterations) if iterations is not None else None)
        if wrong:
            return NativeOutcome("failed", outcome.record, wrong)
    return outcome


@dataclass(frozen=True)
class LabVariant:
    variant: Variant
    outcome: NativeOutcome  # of the N-op run (the 2N run must agree)
    per_op: dict[str, float]  # event -> count per op, from the two runs
    #: event -> why it has no count per op (the 2N-op run counted fewer than the N-op run)
    uncounted: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"variant": self.variant.name, "status": self.outcome.status, "reason": self.outcome.reason,
                "record": self.outcome.record, "per_op": self.per_op, "uncounted": self.uncounted}


def summarize(variants: Sequence[Variant], results: dict[str, JobResult]) -> list[LabVariant]:
    out = []
    for v in variants:
        one, two = results[job_id(v, 1)], results[job_id(v, 2)]
        n = ITERATIONS["guest" if v.workload.kind == GUEST else "host"]
        first, second = variant_outcome(v, one, n), variant_outcome(v, two, 2 * n)
        outcome = first if first.status == second.status or first.status != "measured" else second
        both = first.measured and second.measured
        shared = [e for e in one.counts if e in two.counts] if both else []
        per_op = {e: (two.counts[e] - one.counts[e]) / n for e in shared if two.counts[e] >= one.counts[e]}
        uncounted = {e: f"the {2 * n}-op run counted fewer ({two.counts[e]}) than the {n}-op run ({one.counts[e]})"
                     for e in shared if e not in per_op}
        out.append(LabVariant(v, outcome, per_op, uncounted))
    return out
