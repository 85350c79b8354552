"""How the lab ends when the guest does not: a hang killed at the timeout, a panic killed at once, bochs
dying early, and a clean power-off, each with the jobs that finished kept. A stand-in for bochs (a small
script that writes what the agent and the kernel would to the serial file the bochsrc names) makes these
fast; tests/test_lab_boot.py boots the real thing."""

from __future__ import annotations

import json
import sys
import time
import zlib
from pathlib import Path

import pytest

from cetbench.lab.bochs import Emulator
from cetbench.lab.boot import POWER_OFF, boot
from cetbench.lab.jobs import PROBE_JOB_ID, LabJob
from cetbench.lab.kernel import Kernel
from cetbench.lab.run import lab_run_from

FAKE_BOCHS = r'''
import json, os, sys, time, zlib
rc = open(sys.argv[sys.argv.index("-f") + 1]).read().splitlines()
serial = next(l for l in rc if l.startswith("com1:")).split('dev="')[1].rstrip('"')
log = next(l for l in rc if l.startswith("log:")).split(": ", 1)[1]
mode = os.environ["FAKE_BOCHS_MODE"]
out = open(serial, "w")

def say(text):
    out.write(text + "\r\n")
    out.flush()

def lab(kind, obj):
    body = json.dumps(obj, separators=(",", ":"))
    say(f"CETBENCH-LAB {kind} {zlib.crc32(body.encode()):08x} {body}")

def job(i, name):
    lab("start", {"id": name, "index": i, "uptime": 1.0})
    lab("job", {"id": name, "index": i, "exit_code": 0, "signal": None, "timed_out": False, "guest_s": 0.1,
                "record": '{"iterations": 1}', "output_tail": [], "counts": {}, "event_errors": {},
                "error": None, "kvm_intel": None})

say("[    0.000000] Linux version 7.2.13+deb14-amd64")
lab("mark", {"name": "init-start", "uptime": 1.0})
lab("file", {"path": "proc/sys/kernel/osrelease", "encoding": "text", "data": "7.2.13+deb14-amd64\n"})
lab("mark", {"name": "jobs-start", "uptime": 1.1})
job(0, "cetbench-probe")
job(1, "a")
if mode == "ok":
    job(2, "b")
    lab("mark", {"name": "done", "uptime": 2.0})
    open(log, "w").write("04886239859p[ACPI  ] >>PANIC<< ACPI control: soft power off\n")
    sys.exit(1)
lab("start", {"id": "b", "index": 2, "uptime": 1.5})
if mode == "panic":
    say("[   12.3] Kernel panic - not syncing: sysrq triggered crash")
elif mode == "crash":
    open(log, "w").write("01234567890p[CPU0  ] >>PANIC<< exception(): 3rd (13) exception with no resolution\n")
    sys.exit(1)
while True:
    time.sleep(1)
'''

JOBS = [LabJob(PROBE_JOB_ID, ("/bin/cetbench-probe",)), LabJob("a", ("/bin/a",)), LabJob("b", ("/bin/b",))]


@pytest.fixture
def fake(tmp_path: Path) -> Emulator:
    script = tmp_path / "fake-bochs"
    script.write_text(f"#!{sys.executable}\n{FAKE_BOCHS}")
    script.chmod(0o755)
    return Emulator(binary=script, share=tmp_path, rom=tmp_path / "rom", vga_rom=tmp_path / "vga", version="fake",
                    patched=True)


@pytest.fixture
def kernel(tmp_path: Path) -> Kernel:
    config = tmp_path / "config"
    config.write_text("CONFIG_X86_KERNEL_IBT=y\n")
    return Kernel(release="7.2.13+deb14-amd64", vmlinuz=tmp_path / "vmlinuz", modules_dir=tmp_path, config=config,
                  origin="path", spec=str(tmp_path), vmlinuz_sha256="0", root=tmp_path)


def lab(mode, fake, kernel, tmp_path, monkeypatch, timeout_s=60.0, stall_s=60.0):
    monkeypatch.setenv("FAKE_BOCHS_MODE", mode)
    t0 = time.monotonic()
    outcome = boot(fake, tmp_path / "lab.iso", tmp_path / "run", timeout_s, poll_s=0.02, stall_s=stall_s)
    return lab_run_from(outcome, JOBS, kernel, "fake bochs", timeout_s, t0, 0.0), outcome


def test_a_clean_power_off_completes_every_job(fake, kernel, tmp_path, monkeypatch):
    run, outcome = lab("ok", fake, kernel, tmp_path, monkeypatch)
    assert outcome.returncode == 1 and outcome.powered_off  # bochs's exit status on an ACPI power-off
    assert run.completed and run.failure is None
    assert [(r.id, r.exit_code, r.error) for r in run.jobs] == [("a", 0, None), ("b", 0, None)]
    assert run.native_probe == {"iterations": 1}
    assert run.probe_files["proc/sys/kernel/osrelease"] == "7.2.13+deb14-amd64\n"
    assert run.probe_files["boot/config-7.2.13+deb14-amd64"] == "CONFIG_X86_KERNEL_IBT=y\n"  # the host's copy
    assert "init-start" in outcome.marks and "done" in outcome.marks


def test_a_hang_is_killed_at_the_timeout_keeping_finished_jobs(fake, kernel, tmp_path, monkeypatch):
    run, outcome = lab("hang", fake, kernel, tmp_path, monkeypatch, timeout_s=3.0)
    assert outcome.timed_out and outcome.returncode is not None  # killed, and reaped
    serial = str(tmp_path / "run" / "serial.log")
    assert run.failure == f"the lab did not finish within 3 s and was killed (serial log {serial})"
    assert not run.completed and Path(serial).exists()
    a, b = run.jobs
    assert (a.exit_code, a.error) == (0, None)
    assert b.exit_code is None and b.error == f"the lab ended during this job: {run.failure}"


def test_a_bochs_that_stops_running_is_killed_long_before_the_timeout(fake, kernel, tmp_path, monkeypatch):
    # The stand-in's hang sleeps: no CPU time, as a deadlocked bochs (a real one spins while the guest idles).
    t0 = time.monotonic()
    run, outcome = lab("hang", fake, kernel, tmp_path, monkeypatch, timeout_s=600.0, stall_s=1.0)
    assert time.monotonic() - t0 < 60 and not outcome.timed_out
    assert outcome.stalled_s is not None and outcome.stalled_s >= 1.0
    assert run.failure is not None and run.failure.startswith("bochs stopped running (no CPU time for")
    assert [(j.id, j.exit_code) for j in run.jobs] == [("a", 0), ("b", None)]


def test_a_kernel_panic_ends_the_lab_without_waiting_for_the_timeout(fake, kernel, tmp_path, monkeypatch):
    run, outcome = lab("panic", fake, kernel, tmp_path, monkeypatch, timeout_s=600.0)
    assert not outcome.timed_out
    assert run.failure is not None
    assert run.failure.startswith("the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash")
    assert str(outcome.serial_log) in run.failure
    assert run.jobs[0].error is None and "panicked" in (run.jobs[1].error or "")


def test_bochs_dying_early_is_named_with_its_own_words(fake, kernel, tmp_path, monkeypatch):
    run, _ = lab("crash", fake, kernel, tmp_path, monkeypatch)
    assert run.failure is not None and run.failure.startswith("bochs exited (status 1) before the guest finished:")
    assert "3rd (13) exception with no resolution" in run.failure
    assert "bochs log" in run.failure and POWER_OFF not in run.failure
    assert run.jobs[0].exit_code == 0


def test_the_bochsrc_written_for_the_boot_names_the_serial_file(fake, kernel, tmp_path, monkeypatch):
    lab("ok", fake, kernel, tmp_path, monkeypatch)
    rc = (tmp_path / "run" / "bochsrc").read_text()
    assert f'com1: enabled=1, mode=file, dev="{tmp_path / "run" / "serial.log"}"' in rc
    lines = (tmp_path / "run" / "serial.log").read_text().splitlines()
    body = lines[1].split(" ", 3)[3]
    assert lines[1].split()[2] == f"{zlib.crc32(body.encode()):08x}" and json.loads(body)["name"] == "init-start"
