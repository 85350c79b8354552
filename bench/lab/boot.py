"""Boot the lab ISO on bochs, headless, and follow its serial console until it powers off.

One bochs process per boot in its own session (a timeout kills it and nothing else), stdin closed,
cwd = the run's work directory (bochsrc, serial.log, bochs.log there). The guest's ACPI power-off is
the normal end: bochs logs "ACPI control: soft power off" and exits with status 1 (its fatal path).
A hang is killed at the timeout, a kernel panic as soon as it is seen, and a bochs that stops running
(no CPU time for STALL_S: bochs spins even while the guest idles, so that is bochs itself stuck) as soon
as that is clear; the serial log stays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cetbench.lab.bochs import CPU_MODEL, Emulator
from cetbench.lab.serial import LabLine, SerialFollower

POWER_OFF = "ACPI control: soft power off"
DEFAULT_MEMORY_MB = 1024
DEFAULT_IPS = 100_000_000  # paces bochs's devices only; the guest's clock is its instruction count
TIME0 = 1767225600  # guest RTC at power-on (2026-01-01), fixed so that two boots see the same time
PANIC_GRACE_S = 2.0  # after a panic line, the rest of the panic message is given this long to arrive
STALL_S = 60.0  # host seconds without any CPU time used by bochs before it is called stuck

BOCHSRC = """\
# written by cetbench (bench/lab/boot.py)
config_interface: textconfig
display_library: nogui
cpu: model={cpu_model}, count=1, ips={ips}
memory: guest={memory}, host={memory}
romimage: file="{rom}", options=fastboot
vgaromimage: file="{vga_rom}"
pci: enabled=1, chipset=i440fx
vga: extension=vbe, update_freq=5, realtime=0
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path="{iso}", status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev="{serial}"
clock: sync=none, time0={time0}
mouse: enabled=0
log: {log}
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
"""


def bochsrc(emulator: Emulator, iso: Path, serial: Path, log: Path, memory_mb: int = DEFAULT_MEMORY_MB,
            ips: int = DEFAULT_IPS) -> str:
    for path in (emulator.rom, emulator.vga_rom, iso):
        if '"' in str(path):
            raise ValueError(f"{path}: a path with a double quote cannot go into a bochsrc")
    return BOCHSRC.format(cpu_model=CPU_MODEL, ips=ips, memory=memory_mb, rom=emulator.rom, vga_rom=emulator.vga_rom,
                          iso=iso, serial=serial, time0=TIME0, log=log)


@dataclass
class BootOutcome:
    serial_log: Path
    bochs_log: Path
    returncode: int | None
    powered_off: bool
    timed_out: bool
    wall_s: float
    stalled_s: float | None  # set when bochs was killed for using no CPU time this long
    serial: SerialFollower
    marks: dict[str, float] = field(default_factory=dict)  # agent mark -> host seconds when first seen
    emulator: str = "bochs"  # which emulator ran (bochs_log is its log: QEMU's is its stderr)

    @property
    def panic(self) -> str | None:
        return self.serial.panic

    def bochs_error(self) -> str | None:
        """The last error or panic line the emulator logged, for a failure message."""
        try:
            lines = self.bochs_log.read_text(errors="replace").splitlines()
        except OSError:
            return None
        if self.emulator != "bochs":
            said = [ln.strip() for ln in lines if ln.strip()]
            return said[-1][:300] if said else None
        # bochs log lines read "<11-digit tick><level letter>[<module>] ...": e = error, p = panic.
        bad = [ln for ln in lines if ((len(ln) > 12 and ln[11] in "ep" and ln[12] == "[") or "FATAL" in ln)
               and POWER_OFF not in ln]
        return bad[-1].strip()[:300] if bad else None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End our bochs: its own session, so this reaches it and nothing else."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of a live process, in clock ticks (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 (state) is fields[0]
    return int(fields[11]) + int(fields[12])


@dataclass
class Followed:
    """What following one emulator process to its end saw (see `follow`)."""
    returncode: int | None
    timed_out: bool
    wall_s: float
    stalled_s: float | None
    serial: SerialFollower
    marks: dict[str, float]


def follow(argv: list[str], workdir: Path, serial_log: Path, timeout_s: float, env: dict[str, str],
           on_line: Callable[[LabLine], None] | None = None, poll_s: float = 0.05,
           stall_s: float | None = STALL_S, output: str = "emulator.out",
           on_start: Callable[[int], None] | None = None) -> Followed:
    """Start `argv` (an emulator writing the guest's serial console to `serial_log`) in a session of its
    own and follow the console to the emulator's exit, a kernel panic, `timeout_s` (host wall seconds),
    or, with `stall_s`, an emulator that uses no CPU time that long. The emulator's own output goes to
    `output` in `workdir`; `on_start` is given its pid."""
    follower = SerialFollower()
    marks: dict[str, float] = {}
    offset = 0
    timed_out = False
    panic_at: float | None = None
    stalled: float | None = None
    last_ticks: tuple[int | None, float] = (None, 0.0)  # the emulator's CPU ticks, and when they last moved
    t0 = time.monotonic()
    with (workdir / output).open("wb") as out:
        proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
        if on_start is not None:
            on_start(proc.pid)
        try:
            while True:
                done = proc.poll() is not None
                now = time.monotonic() - t0
                if serial_log.exists():
                    with serial_log.open("rb") as stream:
                        stream.seek(offset)
                        chunk = stream.read()
                    offset += len(chunk)
                    new = follower.feed(chunk.decode("latin-1"), now)
                    if done:
                        new += follower.finish(now)
                    for line in new:
                        if line.kind == "mark":
                            marks.setdefault(str(line.data.get("name")), now)
                        if on_line is not None:
                            on_line(line)
                if done:
                    break
                if follower.panic is not None and panic_at is None:
                    panic_at = now
                if panic_at is not None and now - panic_at > PANIC_GRACE_S:
                    _stop(proc)
                    continue
                if now > timeout_s:
                    timed_out = True
                    _stop(proc)
                    continue
                if stall_s is not None:
                    ticks = _cpu_ticks(proc.pid)
                    if ticks != last_ticks[0]:
                        last_ticks = (ticks, now)
                    elif now - last_ticks[1] > stall_s:
                        stalled = now - last_ticks[1]
                        _stop(proc)
                        continue
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:
                _stop(proc)
    return Followed(proc.returncode, timed_out, time.monotonic() - t0, stalled, follower, marks)


def boot(emulator: Emulator, iso: Path, workdir: Path, timeout_s: float,
         on_line: Callable[[LabLine], None] | None = None, memory_mb: int = DEFAULT_MEMORY_MB,
         poll_s: float = 0.05, stall_s: float = STALL_S) -> BootOutcome:
    """Boot `iso` and follow it to its power-off, a panic or `timeout_s` (host wall seconds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    serial_log, bochs_log = workdir / "serial.log", workdir / "bochs.log"
    for f in (serial_log, bochs_log):
        f.unlink(missing_ok=True)
    rc_path = workdir / "bochsrc"
    rc_path.write_text(bochsrc(emulator, iso.resolve(), serial_log.resolve(), bochs_log.resolve(), memory_mb))
    seen = follow([str(emulator.binary), "-q", "-f", str(rc_path.resolve())], workdir, serial_log, timeout_s,
                  {**os.environ, "BXSHARE": str(emulator.share)}, on_line, poll_s, stall_s, output="bochs.out")
    log_text = bochs_log.read_text(errors="replace") if bochs_log.exists() else ""
    return BootOutcome(serial_log=serial_log, bochs_log=bochs_log, returncode=seen.returncode,
                       powered_off=POWER_OFF in log_text, timed_out=seen.timed_out, wall_s=seen.wall_s,
                       stalled_s=seen.stalled_s, serial=seen.serial, marks=seen.marks)
