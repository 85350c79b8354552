"""run_lab: one boot of the emulated CET lab running a list of jobs, and what came back.

Flow: the jobs (plus the boot's cetbench-probe run, first) are written into the job file, the job file
into the image (bench/lab/image.py), the image is booted (bench/lab/boot.py); the agent runs each job
and prints its result on the serial console, where the host reads it as it arrives. Jobs whose result
line arrived keep it whatever happens later; a hang, a panic or a garbled line costs only the jobs it
touches, each with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cetbench.lab.bochs import Emulator, get_emulator
from cetbench.lab.boot import DEFAULT_MEMORY_MB, BootOutcome, boot
from cetbench.lab.errors import LabError
from cetbench.lab.image import LabImage, build_image, image_path
from cetbench.lab.jobs import PROBE_JOB_ID, JobResult, LabJob, encode_jobs, missing_result, result_from_line
from cetbench.lab.kernel import Kernel
from cetbench.lab.paths import lab_cache_root
from cetbench.lab.serial import Garbled, LabLine

PROBE_TIMEOUT_S = 60.0  # guest seconds for cetbench-probe


@dataclass(frozen=True)
class LabRun:
    jobs: list[JobResult]  # one per LabJob, in order
    #: guest files as the host-side probe reads them (bench/lab/probe_tree.py); sys/kernel/notes as hex
    probe_files: dict[str, str]
    native_probe: dict[str, Any] | None  # cetbench-probe's JSON, run inside the guest
    kernel: Kernel
    emulator: str  # "bochs 3.0+dfsg-1 with cetbench's XRSTORS fix, cpu model tigerlake"
    serial_log: Path
    boot_s: float  # host seconds from bochs's start to the init's first line
    total_s: float  # host seconds of the whole run_lab (image, boot, jobs, power-off)
    completed: bool  # the guest ran every job and powered off
    failure: str | None  # why not, naming the serial log
    timings: dict[str, float] = field(default_factory=dict)  # image_s, boot_s, jobs_s, bochs_s
    image: LabImage | None = None

    def result(self, job_id: str) -> JobResult:
        for r in self.jobs:
            if r.id == job_id:
                return r
        raise KeyError(job_id)

    def to_json(self) -> dict[str, Any]:
        return {"jobs": [r.to_json() for r in self.jobs], "native_probe": self.native_probe,
                "kernel": self.kernel.to_json(), "emulator": self.emulator, "serial_log": str(self.serial_log),
                "boot_s": self.boot_s, "total_s": self.total_s, "completed": self.completed,
                "failure": self.failure, "timings": self.timings, "probe_files": sorted(self.probe_files)}


def probe_files_from(lines: list[LabLine], kernel: Kernel) -> dict[str, str]:
    """The agent's `file` lines as path -> contents; a file that exists without contents (a device,
    a directory) maps to "". The kernel config is the host's copy of the file the image holds."""
    files: dict[str, str] = {}
    for line in lines:
        if line.kind != "file":
            continue
        path = str(line.data.get("path", ""))
        if "offset" in line.data and "data" in line.data:  # an MSR: its bytes (hex) at their offset in the device
            at, data = 2 * int(str(line.data["offset"])), str(line.data["data"])
            old = files.get(path, "").ljust(at, "0")
            files[path] = old[:at] + data + old[at + len(data):]
        elif "data" in line.data:
            files[path] = str(line.data["data"])
        elif line.data.get("exists"):
            files[path] = ""
    files[f"boot/config-{kernel.release}"] = kernel.config.read_text(errors="replace")
    return files


def _failure(outcome: BootOutcome, timeout_s: float) -> str | None:
    where = f"serial log {outcome.serial_log}"
    if outcome.panic:
        return f"the guest kernel panicked: {outcome.panic} ({where})"
    name = outcome.emulator
    if outcome.stalled_s is not None:
        return (f"{name} stopped running (no CPU time for {outcome.stalled_s:.0f} s: stuck, not the guest) "
                f"and was killed ({where}, {name} log {outcome.bochs_log})")
    if outcome.timed_out:
        return f"the lab did not finish within {timeout_s:g} s and was killed ({where})"
    if "done" not in outcome.marks:
        why = outcome.bochs_error() or "no error logged"
        return (f"{name} exited (status {outcome.returncode}) before the guest finished: {why} "
                f"({where}, {name} log {outcome.bochs_log})")
    if not outcome.powered_off:
        return f"the guest did not power off ({name} status {outcome.returncode}; {where})"
    return None


def collect_results(jobs: list[LabJob], lines: list[LabLine], garbled_job_lines: list[Garbled],
                    ended: str | None) -> list[JobResult]:
    """One JobResult per job, by the index the agent reports (jobs[i] is index i). A job that started and
    has no result is blamed on the first garbled job line after its start, if any."""
    done: dict[int, LabLine] = {}
    started: dict[int, LabLine] = {}
    twice: dict[int, LabLine] = {}  # a second result line for a job that says something else
    for line in lines:
        index = line.data.get("index")
        if isinstance(index, int) and line.kind in ("job", "start"):
            if line.kind == "job" and index in done and line.data != done[index].data:
                twice.setdefault(index, line)
            (done if line.kind == "job" else started).setdefault(index, line)
    results = []
    for i, job in enumerate(jobs):
        if i in twice:
            results.append(missing_result(job, f"two result lines that differ (serial log lines {done[i].line_no} "
                                               f"and {twice[i].line_no}): the lab agent writes one"))
        elif i in done:
            start, end = started.get(i), done[i].seen_s
            wall = end - start.seen_s if start is not None and start.seen_s is not None and end is not None else None
            results.append(result_from_line(job, done[i].data, wall, done[i].line_no))
        elif i in started:
            later = [g for g in garbled_job_lines if g.line_no > started[i].line_no]
            if later:
                why = f"its result line (serial log line {later[0].line_no}) was garbled: {later[0].why}"
            elif ended:
                why = f"the lab ended during this job: {ended}"
            else:
                why = f"no result line after its start (serial log line {started[i].line_no})"
            results.append(missing_result(job, why))
        else:
            results.append(missing_result(job, f"not run: the lab ended before this job ({ended or 'unknown'})"))
    return results


def live_result(all_jobs: list[LabJob], line: LabLine) -> JobResult | None:
    """The result a caller's job gets as its `job` line arrives (run_lab's on_result); None for any other
    line, and for the probe's."""
    index = line.data.get("index")
    if line.kind == "job" and isinstance(index, int) and 0 < index < len(all_jobs):
        return result_from_line(all_jobs[index], line.data, None, line.line_no)
    return None


def run_lab(kernel: Kernel, jobs: list[LabJob], workdir: Path, timeout_s: float = 1800.0,
            emulator: Emulator | None = None, cache: Path | None = None, memory_mb: int = DEFAULT_MEMORY_MB,
            on_result: Callable[[JobResult], None] | None = None) -> LabRun:
    """Boot `kernel` on the emulated CET CPU once and run `jobs` in order (timeout_s: host wall seconds
    for the whole boot). Setup problems raise LabError; everything after the boot starts is reported
    in the LabRun."""
    t0 = time.monotonic()
    if any(j.id == PROBE_JOB_ID for j in jobs):
        raise LabError(f"job id {PROBE_JOB_ID!r} is the lab's own")
    cache = cache or lab_cache_root()
    emulator = emulator or get_emulator(cache)
    probe = LabJob(PROBE_JOB_ID, (image_path("cetbench-probe"),), timeout_s=PROBE_TIMEOUT_S)
    all_jobs = [probe, *jobs]
    image = build_image(kernel, encode_jobs(all_jobs), cache)
    t_image = time.monotonic() - t0

    def live(line: LabLine) -> None:
        result = live_result(all_jobs, line)
        if on_result is not None and result is not None:
            on_result(result)

    outcome = boot(emulator, image.iso, workdir, timeout_s, on_line=live, memory_mb=memory_mb)
    return lab_run_from(outcome, all_jobs, kernel, emulator.description, timeout_s, t0, t_image, image)


def lab_run_from(outcome: BootOutcome, all_jobs: list[LabJob], kernel: Kernel, emulator: str, timeout_s: float,
                 started: float, image_s: float, image: LabImage | None = None) -> LabRun:
    """The LabRun of a finished boot: all_jobs[0] is the boot's probe job, the rest the caller's."""
    failure = _failure(outcome, timeout_s)
    garbled = [g for g in outcome.serial.garbled if g.kind in ("job", "?")]
    results = collect_results(all_jobs, outcome.serial.lines, garbled, failure)
    probe_result, results = results[0], results[1:]
    if outcome.serial.garbled and failure is None and any(r.error and "garbled" in r.error for r in results):
        failure = f"{len(outcome.serial.garbled)} garbled line(s) on the serial console ({outcome.serial_log})"
    init_at = outcome.marks.get("init-start")
    jobs_at, done_at = outcome.marks.get("jobs-start"), outcome.marks.get("done")
    # Host seconds: the image, the whole bochs process, and when each of the init's marks arrived.
    timings = {"image_s": round(image_s, 2), "bochs_s": round(outcome.wall_s, 2),
               **{f"at_{name}_s": round(at, 2) for name, at in outcome.marks.items()}}
    if jobs_at is not None and done_at is not None:
        timings["jobs_s"] = round(done_at - jobs_at, 2)
    return LabRun(jobs=results, probe_files=probe_files_from(outcome.serial.lines, kernel),
                  native_probe=probe_result.record, kernel=kernel, emulator=emulator,
                  serial_log=outcome.serial_log, boot_s=round(init_at if init_at is not None else outcome.wall_s, 2),
                  total_s=round(time.monotonic() - started, 2), completed=failure is None, failure=failure,
                  timings=timings, image=image)
