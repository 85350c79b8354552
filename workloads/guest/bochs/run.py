"""Run a cetbench guest image under bochs (cpu model `tigerlake`: an emulated CET CPU) and parse it.

One bochs process per run, in its own temporary directory (bochsrc, floppy, log) and its own session
(so a timeout kills bochs and nothing else). bochs prints bytes the guest writes to port 0xE9 on its
standard output; the guest ends with one `CETBENCH-RESULT key=value ...` line and writes "Shutdown" to
port 0x8900, which makes bochs quit. Wall-clock times of bochs are emulation times, never measurements.
The line carries the CET state twice (struct guest_result): read back before the timed loop and after
it; `readback_before()` and `readback_after()` give each as one record.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cetbench.workloads.guest.bochs.cdefs import abi
from cetbench.workloads.guest.bochs.image import floppy_image, params_bytes

BOCHS_SHARE = Path(os.environ.get("BXSHARE", "/usr/share/bochs"))
ROM_IMAGE = BOCHS_SHARE / "BIOS-bochs-latest"
VGA_ROM_IMAGE = BOCHS_SHARE / "VGABIOS-lgpl-latest"
CPU_MODEL = "tigerlake"  # bochs 2.7's CPU model with CET (SHSTK and IBT)
DEFAULT_TIMEOUT_S = 60.0
RESULT_TAG = "CETBENCH-RESULT"  # abi.h GUEST_RESULT_LINE_TAG
SHUTDOWN_PANIC = "Shutdown port: shutdown requested"

# bochsrc: reset_on_triple_fault=0 turns a triple fault into a panic (bochs exits) instead of a reboot
# loop that would only end at the timeout; `term` is the only display library Debian builds that runs
# headless; port_e9_hack sends the guest's port 0xE9 bytes to bochs's standard output. biosdev=0:
# bochs's BIOS message device owns ports 0x400-0x403 and 0x500-0x503 (iodev/biosdev.cc; a write to
# 0x501 panics bochs), which abi.h uses for PORT_OP/PHASE/DONE/LOG; without it the guest's OUTs there
# go to no device, as on a machine with no VMM behind them.
BOCHSRC = """\
plugin_ctrl: biosdev=0
memory: guest=64, host=64
cpu: model={cpu_model}, count=1, reset_on_triple_fault=0
romimage: file="{rom}"
vgaromimage: file="{vgarom}"
floppya: 1_44="{floppy}", status=inserted
boot: floppy
display_library: term
port_e9_hack: enabled=1
log: "{log}"
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
"""

# bochs log lines worth showing when a run fails: errors and panics, and CPU events near CET.
_LOG_LEVEL = re.compile(r"^\d+[ep]\[")
_LOG_KEYWORDS = re.compile(
    r"exception|interrupt\(|fault|shutdown|#CP|#GP|#UD|#PF|CET|SSP|shadow|ENDBR|MSR|XSS|XSAVE|XRSTOR|CR4|"
    r"invalid|unknown|not supported|unimplemented",
    re.I,
)
_AT_POWER_ON = "00000000000"  # log lines of tick 0: configuration (e.g. the CPU feature list)
_RESULT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


@dataclass(frozen=True)
class CetReadback:
    """The CET state the guest read back before or after its timed loop (abi.h struct guest_result)."""

    cet_active: int  # GUEST_CET_* the guest verified on at that point
    cr4: int
    xss: int
    u_cet: int
    s_cet: int
    pl3_ssp: int
    task_ssp: dict[int, int]  # task -> its RDSSP in ring 3 (before: the probe, task 0; after: each task as it left)


def _int(result: dict[str, int | str], key: str) -> int:
    value = result.get(key)
    if not isinstance(value, int):
        raise ValueError(f"CETBENCH-RESULT line has no integer {key}= (got {value!r})")
    return value


_REGS = ("cr4", "xss", "u_cet", "s_cet", "pl3_ssp")


def readback_before(result: dict[str, int | str]) -> CetReadback:
    """The state the guest read back before its timed loop (keys `cr4`, ..., `cet_active_before`;
    the line's own `cet_active` is what held both before and after)."""
    regs = {k: _int(result, k) for k in _REGS}
    return CetReadback(_int(result, "cet_active_before"), **regs, task_ssp={0: _int(result, "ssp")})


def readback_after(result: dict[str, int | str]) -> CetReadback | None:
    """The same state read again after the timed loop (keys `cr4_after`, ...), or None if the guest
    never got there (after_valid=0, e.g. it faulted in the loop). Bit t of `after_tasks` says task t
    reported the SSP it read in ring 3 as it left, in `ssp_after<t>`."""
    if _int(result, "after_valid") != 1:
        return None
    regs = {k: _int(result, f"{k}_after") for k in _REGS}
    tasks = _int(result, "after_tasks")
    ssp = {t: _int(result, f"ssp_after{t}") for t in range(abi()["GUEST_RESULT_TASKS"]) if tasks >> t & 1}
    return CetReadback(_int(result, "cet_active_after"), **regs, task_ssp=ssp)


@dataclass
class BochsRun:
    returncode: int | None
    timed_out: bool
    console: str  # bochs standard output: banner, debugger prompt and the guest's port 0xE9 text
    log: list[str]  # the whole bochs log
    result: dict[str, int | str] | None  # the parsed CETBENCH-RESULT line, if the guest printed one
    shutdown_requested: bool  # the guest wrote "Shutdown" to port 0x8900
    stderr: str = ""  # bochs's own messages (configuration errors land here, not in the log)

    def log_excerpt(self, tail: int = 25) -> list[str]:
        """Error/panic lines and CPU-event lines of the bochs log, then its last `tail` lines."""
        picked = [
            ln
            for ln in self.log
            if _LOG_LEVEL.match(ln) or (_LOG_KEYWORDS.search(ln) and not ln.startswith(_AT_POWER_ON))
        ]
        return [*picked[:80], "--- log tail ---", *self.log[-tail:]]

    @property
    def panic(self) -> str | None:
        """bochs's first PANIC message other than the guest's own shutdown request (e.g. triple fault)."""
        for ln in self.log:
            if ">>PANIC<<" in ln and SHUTDOWN_PANIC not in ln:
                return ln.split(">>PANIC<<", 1)[1].strip()
        return None

    def describe(self) -> str:
        """A multi-line account for a failing test: how bochs ended, the guest's text, the log."""
        how = "timed out (killed)" if self.timed_out else f"exit status {self.returncode}"
        lines = [f"bochs {how}; shutdown requested by guest: {self.shutdown_requested}; panic: {self.panic}"]
        lines += ["--- guest output (port 0xE9) ---", guest_text(self.console)]
        lines += ["--- bochs stderr (tail) ---", *self.stderr.splitlines()[-10:]]
        lines += ["--- bochs log ---", *self.log_excerpt()]
        return "\n".join(lines)


def bochs_missing() -> str | None:
    """Why bochs cannot run here (None when it can): the thing that is missing, named."""
    if shutil.which("bochs") is None:
        return "bochs not installed (tools/install-bochs installs Debian's bochs, bochsbios, bochs-term, vgabios)"
    for rom in (ROM_IMAGE, VGA_ROM_IMAGE):
        if not rom.exists():  # also catches the VGA ROM link left dangling without vgabios
            return f"bochs ROM image {rom} missing (install bochsbios and vgabios)"
    return None


def parse_result(console: str) -> dict[str, int | str] | None:
    """The last CETBENCH-RESULT line as a dict: 0x.. and decimal values as int, "..." as str."""
    lines = [ln[ln.index(RESULT_TAG + " ") :] for ln in console.splitlines() if RESULT_TAG + " " in ln]
    if not lines:
        return None
    out: dict[str, int | str] = {}
    for key, raw in _RESULT_PAIR.findall(lines[-1][len(RESULT_TAG) :]):
        if raw.startswith('"'):
            out[key] = re.sub(r"\\(.)", r"\1", raw[1:-1])
        else:
            try:
                out[key] = int(raw, 0)
            except ValueError:
                out[key] = raw
    return out


def guest_text(console: str) -> str:
    """The guest's port 0xE9 text: what bochs printed after its debugger was told to continue."""
    _, sep, after = console.partition("<bochs:1> c\n")
    return after if sep else console


def run_floppy(floppy: bytes, *, timeout: float = DEFAULT_TIMEOUT_S, cpu_model: str = CPU_MODEL) -> BochsRun:
    """Boot a floppy image in bochs, headless; return how it ended and what the guest said."""
    missing = bochs_missing()
    if missing:
        raise RuntimeError(missing)
    with tempfile.TemporaryDirectory(prefix="cetbench-bochs-") as tmp:
        work = Path(tmp)
        (work / "floppy.img").write_bytes(floppy)
        rc = work / "bochsrc"
        rc.write_text(
            BOCHSRC.format(
                cpu_model=cpu_model,
                rom=ROM_IMAGE,
                vgarom=VGA_ROM_IMAGE,
                floppy=work / "floppy.img",
                log=work / "bochs.log",
            )
        )
        env = {**os.environ, "TERM": "dumb"}
        # Own session: bochs's term display and debugger never touch our terminal, and a timeout
        # kills exactly this process group. `c` tells the built-in debugger to run the machine.
        proc = subprocess.Popen(
            ["bochs", "-q", "-f", str(rc)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=work,
            env=env,
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(b"c\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        log_path = work / "bochs.log"
        log = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    console = out.decode("latin-1")
    return BochsRun(
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        console=console,
        log=log,
        result=parse_result(console),
        shutdown_requested=any(SHUTDOWN_PANIC in ln for ln in log),
        stderr=err.decode("utf-8", "replace"),
    )


def run_guest(
    guest: bytes,
    workload: int,
    cet: int,
    iterations: int,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    cpu_model: str = CPU_MODEL,
    cetu: int = 0,
    xss: int | None = None,
) -> BochsRun:
    """Boot `guest` (a flat image linked at GUEST_IMAGE_GPA) with these guest_params under bochs."""
    floppy = floppy_image(guest, params_bytes(workload, cet, iterations, cetu=cetu, xss=xss))
    return run_floppy(floppy, timeout=timeout, cpu_model=cpu_model)
