"""run_qemu: one boot of the lab image (the lab's kernel, initramfs, agent and job file) under QEMU.

The same image and agent as the bochs lab (bench/lab/run.py), so the result stream, the per-job
tracepoint counts and every failure rule are the lab's; only the machine differs: QEMU with the vCPU
a Linux-guest configuration asks for (bench/lab/qemu.py), on KVM or TCG. QEMU refusing that vCPU
(`enforce`: an accelerator that cannot give a CET feature, a QEMU that does not know it) is raised as
QemuRefused with QEMU's words, before any guest code ran.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cetbench.lab.boot import BootOutcome, follow
from cetbench.lab.errors import LabError
from cetbench.lab.image import KERNEL_CMDLINE, build_image, image_path
from cetbench.lab.jobs import PROBE_JOB_ID, JobResult, LabJob, encode_jobs
from cetbench.lab.kernel import Kernel
from cetbench.lab.paths import lab_cache_root
from cetbench.lab.qemu import Qemu, command, refusal
from cetbench.lab.qemu_counts import HostCounter
from cetbench.lab.run import PROBE_TIMEOUT_S, LabRun, lab_run_from, live_result
from cetbench.lab.serial import LabLine

QEMU_OUTPUT = "qemu.out"  # QEMU's stdout and stderr, in the boot's work directory


class QemuRefused(LabError):
    """QEMU refused the vCPU it was asked for; the message is QEMU's own words."""


def _qemu_path(path: Path) -> str:
    """A path inside a QEMU option value: commas are doubled (QEMU's option syntax)."""
    return str(path).replace(",", ",,")


def run_qemu(qemu: Qemu, accel: str, features: frozenset[str], kernel: Kernel, jobs: list[LabJob], workdir: Path,
             timeout_s: float, cmdline_extra: str = "", cache: Path | None = None,
             on_result: Callable[[JobResult], None] | None = None, counter: HostCounter | None = None) -> LabRun:
    """Boot `kernel` under QEMU (`accel`: kvm | tcg) with a vCPU offering exactly the CET `features`,
    run `jobs` (after the boot's cetbench-probe run) and power off. Setup problems raise LabError, QEMU
    refusing the vCPU QemuRefused; everything after the boot starts is reported in the LabRun. A `counter`
    counts host events around QEMU for the jobs it names (job i of `jobs` is its index i + 1)."""
    t0 = time.monotonic()
    if any(j.id == PROBE_JOB_ID for j in jobs):
        raise LabError(f"job id {PROBE_JOB_ID!r} is the lab's own")
    probe = LabJob(PROBE_JOB_ID, (image_path("cetbench-probe"),), timeout_s=PROBE_TIMEOUT_S)
    all_jobs = [probe, *jobs]
    cmdline = f"{KERNEL_CMDLINE} {cmdline_extra}".strip()
    image = build_image(kernel, encode_jobs(all_jobs), cache or lab_cache_root(), cmdline=cmdline)
    t_image = time.monotonic() - t0
    workdir.mkdir(parents=True, exist_ok=True)
    serial_log = workdir / "serial.log"
    serial_log.unlink(missing_ok=True)
    # The serial file is named relative to the work directory (QEMU's cwd): no comma can reach the option.
    argv = command(qemu, accel, features, Path(_qemu_path(image.iso.resolve())), Path("serial.log"))
    (workdir / "qemu.cmdline").write_text(" ".join(argv) + "\n")

    def live(line: LabLine) -> None:
        if counter is not None:
            counter.on_line(line)
        result = live_result(all_jobs, line)
        if on_result is not None and result is not None:
            on_result(result)

    try:
        seen = follow(argv, workdir, serial_log, timeout_s, {**os.environ, **qemu.env}, live, stall_s=None,
                      output=QEMU_OUTPUT, on_start=counter.attach if counter is not None else None)
    finally:
        if counter is not None:
            counter.close()
    said = (workdir / QEMU_OUTPUT).read_text(errors="replace")
    refused = refusal(said)
    if refused and seen.returncode not in (0, None) and not seen.serial.lines:
        raise QemuRefused(refused)
    outcome = BootOutcome(serial_log=serial_log, bochs_log=workdir / QEMU_OUTPUT, returncode=seen.returncode,
                          powered_off=seen.returncode == 0 and "done" in seen.marks, timed_out=seen.timed_out,
                          wall_s=seen.wall_s, stalled_s=None, serial=seen.serial, marks=seen.marks, emulator="QEMU")
    label = f"QEMU {qemu.version.split()[0]} {accel.upper()}"  # the emulation label of its figures
    return lab_run_from(outcome, all_jobs, kernel, label, timeout_s, t0, t_image, image)
