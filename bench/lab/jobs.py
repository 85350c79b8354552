"""What the lab runs and what comes back: LabJob, JobResult and the job file the agent reads.

The job file is line-oriented text, one directive per line (`key value`; the value is the rest of the
line), a block per job (workloads/lab/agent_job.c reads it):

    job ID
    timeout SECONDS          guest (emulated) seconds the agent gives the job before killing it
    settle SECONDS           present only when the agent is to idle this long after the job's start line
    kvm_intel cet=0          present only when kvm_intel is to be reloaded with these parameters
    event SUBSYS:NAME        a tracepoint to count over the job's process tree
    filter EXPRESSION        the tracepoint filter of the event just before (optional)
    arg ARGUMENT             argv, in order (paths inside the image)
    end
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from cetbench.lab.errors import LabError

#: The id the lab gives the cetbench-probe run of every boot (its record becomes LabRun.native_probe).
PROBE_JOB_ID = "cetbench-probe"
_TRACEPOINT = re.compile(r"[A-Za-z0-9_]+:[A-Za-z0-9_]+")


@dataclass(frozen=True)
class LabJob:
    id: str
    argv: tuple[str, ...]  # paths inside the image (bench/lab/image.py image_path, ImagePrograms)
    #: tracepoints "subsys:name", each optionally with a tracepoint filter: "kvm:kvm_exit if exit_reason == 10"
    events: tuple[str, ...] = ()
    #: guest seconds: the emulated clock (about 0.41 ns per emulated instruction, see docs/lab.md), not wall time
    timeout_s: float = 60.0
    #: module parameters to reload kvm_intel with before this job ({"cet": "0"}); None leaves it as it is
    kvm_intel: dict[str, str] | None = None
    #: guest seconds the agent idles after announcing the job, before starting it: a host-side counter
    #: started on the `start` line is attached by then (bench/qemu_counts.py)
    settle_s: float = 0.0


@dataclass(frozen=True)
class JobResult:
    id: str
    exit_code: int | None  # None: killed by a signal, never started, or the lab ended first
    record: dict[str, Any] | None  # the workload's last JSON line
    counts: dict[str, int]  # per event of the LabJob, keyed by the event exactly as given
    output_tail: list[str]
    error: str | None  # why the lab could not run it as asked; None when it ran (whatever it printed)
    signal: int | None = None  # the signal that killed it
    kvm_intel: dict[str, str] | None = None  # kvm_intel's parameters while it ran (None: module not loaded)
    guest_s: float | None = None  # guest seconds it took (emulated time)
    wall_s: float | None = None  # host seconds between its start and result lines on the serial log

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "exit_code": self.exit_code, "signal": self.signal, "record": self.record,
                "counts": self.counts, "output_tail": self.output_tail, "error": self.error,
                "kvm_intel": self.kvm_intel, "guest_s": self.guest_s, "wall_s": self.wall_s}


def split_event(event: str) -> tuple[str, str]:
    """("kvm:kvm_exit", "exit_reason == 10") from "kvm:kvm_exit if exit_reason == 10"."""
    name, sep, flt = event.partition(" if ")
    name, flt = name.strip(), flt.strip()
    if not _TRACEPOINT.fullmatch(name) or (sep and not flt):
        raise LabError(f"event {event!r}: want a tracepoint 'subsys:name', optionally followed by ' if FILTER'")
    return name, flt


def event_key(event: str) -> str:
    """The key under which the agent reports an event's count."""
    name, flt = split_event(event)
    return f"{name} if {flt}" if flt else name


def _check_value(what: str, value: str) -> str:
    if "\n" in value or "\r" in value or "\0" in value:
        raise LabError(f"{what} {value!r}: newlines and NUL cannot go into the job file")
    return value


def validate(jobs: list[LabJob]) -> None:
    ids = [j.id for j in jobs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise LabError(f"job ids must be unique: {', '.join(dup)}")
    for job in jobs:
        if not job.id or " " in job.id.strip(" ") or job.id != job.id.strip():
            raise LabError(f"job id {job.id!r}: want a non-empty id without surrounding spaces")
        if not job.argv or not job.argv[0].startswith("/"):
            raise LabError(f"job {job.id}: argv must start with an absolute path inside the image")
        if job.timeout_s <= 0:
            raise LabError(f"job {job.id}: timeout_s must be positive")
        if not 0 <= job.settle_s <= 60:
            raise LabError(f"job {job.id}: settle_s must be within 0..60 s")
        keys = [event_key(e) for e in job.events]
        if len(set(keys)) != len(keys):
            raise LabError(f"job {job.id}: an event is given twice")


def encode_jobs(jobs: list[LabJob]) -> str:
    """The job file for `jobs` (format: module docstring)."""
    validate(jobs)
    lines = []
    for job in jobs:
        lines += [f"job {_check_value('job id', job.id)}", f"timeout {job.timeout_s:g}"]
        if job.settle_s:
            lines.append(f"settle {job.settle_s:g}")
        if job.kvm_intel is not None:
            params = " ".join(f"{_check_value('parameter', k)}={_check_value('value', v)}"
                              for k, v in job.kvm_intel.items())
            if any(" " in k or " " in v or "=" in k for k, v in job.kvm_intel.items()):
                raise LabError(f"job {job.id}: kvm_intel parameters must be single words: {job.kvm_intel}")
            lines.append(f"kvm_intel {params}".rstrip())
        for event in job.events:
            name, flt = split_event(event)
            lines.append(f"event {name}")
            if flt:
                lines.append(f"filter {_check_value('filter', flt)}")
        lines += [f"arg {_check_value('argument', a)}" for a in job.argv]
        lines.append("end")
    return "\n".join(lines) + "\n"


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


#: Each field of a `job` line (workloads/lab/agent_job.c), what the agent writes in it; a field may be
#: missing (the agent's lines for a job it could not start have only id, index and error).
_FIELDS: dict[str, tuple[str, Any]] = {
    "id": ("a job id or null", lambda v: v is None or isinstance(v, str)),
    "exit_code": ("an exit status 0-255 or null", lambda v: v is None or _is_int(v, 0, 255)),
    "signal": ("a signal number or null", lambda v: v is None or _is_int(v, 1, 127)),
    "timed_out": ("true or false", lambda v: isinstance(v, bool)),
    "guest_s": ("seconds or null", lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                           and math.isfinite(v) and v >= 0)),
    "record": ("the workload's JSON line as text, or null", lambda v: v is None or isinstance(v, str)),
    "output_tail": ("a list of lines", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "counts": ("counts (0 to 2^64-1) by event",
               lambda v: isinstance(v, dict) and all(_is_int(c, 0, 2**64 - 1) for c in v.values())),
    "event_errors": ("messages by event", _is_str_map),
    "error": ("a message or null", lambda v: v is None or isinstance(v, str)),
    "kvm_intel": ("kvm_intel's parameters or null", lambda v: v is None or _is_str_map(v)),
}


def line_problem(job: LabJob, data: dict[str, Any]) -> str | None:
    """Why a `job` line is not one the agent writes for `job` (None: it is): a field of another type, a
    count of an event the job did not ask for, or the result of another job."""
    for key, (want, ok) in _FIELDS.items():
        if key in data and not ok(data[key]):
            return f"{key} is {repr(data[key])[:60]}, not {want}"
    if isinstance(data.get("id"), str) and data["id"] != job.id:
        return f"it is the result of job {data['id']!r:.80}"
    keys = {event_key(e) for e in job.events}
    other = sorted(k for k in (*(data.get("counts") or {}), *(data.get("event_errors") or {})) if k not in keys)
    if other:
        return f"it counts {other[0]!r:.80}, an event the job did not ask for"
    return None


def result_from_line(job: LabJob, data: dict[str, Any], wall_s: float | None, line_no: int | None = None) -> JobResult:
    """A JobResult from the agent's `job` line (line_no: its line of the serial log, for the messages).
    A line that is not what the agent writes gives a failed job saying why, nothing of the line kept."""
    problem = line_problem(job, data)
    if problem:
        where = f"serial log line {line_no}" if line_no is not None else "the serial log"
        return missing_result(job, f"its result line ({where}) is not what the lab agent writes: {problem}")
    record = None
    if isinstance(data.get("record"), str):
        try:
            parsed = json.loads(data["record"])
            record = parsed if isinstance(parsed, dict) else None
        except (ValueError, RecursionError):  # the workload's output: not JSON, nested too deep, 5000 digits
            record = None
    by_key = {event_key(e): e for e in job.events}
    counts = {by_key.get(k, k): int(v) for k, v in (data.get("counts") or {}).items()}
    errors = [data["error"]] if data.get("error") else []
    errors += [f"{by_key.get(k, k)}: {why}" for k, why in (data.get("event_errors") or {}).items()]
    if data.get("signal") is not None and not data.get("timed_out"):
        errors.append(f"killed by signal {data['signal']}")
    return JobResult(id=job.id, exit_code=data.get("exit_code"), record=record, counts=counts,
                     output_tail=[str(x) for x in data.get("output_tail") or []],
                     error="; ".join(errors) or None, signal=data.get("signal"), kvm_intel=data.get("kvm_intel"),
                     guest_s=data.get("guest_s"), wall_s=wall_s)


def missing_result(job: LabJob, why: str) -> JobResult:
    return JobResult(id=job.id, exit_code=None, record=None, counts={}, output_tail=[], error=why)

