"""linux.* variants with the real QEMU (tools/install-lab unpacks one from Debian trixie-backports when the
system has none that knows CET) and the lab's Debian kernel: QEMU's refusal of the CET vCPU captured as the
reason, and `cetbench run --quick` measuring the CET-off Linux-guest variants in a booted guest. Without
the lab set up these skip, saying why; under CI they fail instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from cetbench.lab.install import installed_kernel
from cetbench.lab.qemu import Qemu, cpu_refusal, find_qemu
from cetbench.probe import collect
from cetbench.probe_qemu import qemu_accel


def _need(what: str | object) -> None:
    if isinstance(what, str):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{what}; CI must run tools/install-lab before the tests")
        pytest.skip(what)


@pytest.fixture(scope="module")
def qemu() -> Qemu:
    found = find_qemu()
    _need(found)
    assert isinstance(found, Qemu)
    if not found.knows("shstk"):
        _need(f"{found.description} does not know cet-ss: tools/install-lab fetches a newer one")
    return found


def test_qemu_refuses_a_cet_vcpu_the_accelerator_cannot_give_in_its_own_words(qemu: Qemu) -> None:
    accel, _ = qemu_accel(collect().kvm)
    assert cpu_refusal(qemu, accel, frozenset()) is None
    if accel == "kvm":
        pytest.skip("hardware KVM here: whether it offers CET is the host's to say")
    said = cpu_refusal(qemu, "tcg", frozenset({"shstk", "ibt"}))
    assert said is not None and "TCG doesn't support requested feature" in said
    assert "cet-ss" in said and "cet-ibt" in said


def test_run_measures_the_cet_off_linux_guest_and_records_cet_on_unsupported(qemu: Qemu, tmp_path) -> None:
    _need(installed_kernel())
    out = tmp_path / "run"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cetbench", "run", "--quick", "--only", "linux.syscall*",
                           "--only", "linux.vmexit.pio[vcet=none*", "--out", str(out), "--no-store", "--json"],
                          capture_output=True, text=True, timeout=900, check=False)
    print(f"\nlinux guest run: {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    variants = manifest["variants"]
    for name in ("linux.syscall[vcet=none,shstk=off]", "linux.vmexit.pio[vcet=none,shstk=off]"):
        entry = variants[name]
        assert entry["status"] == "measured", entry
        assert entry["emulated"] is True  # TCG (or kvm_pvm's host): never a hardware time
        assert entry["linux_guest"] == "vcet=none"
        perf = json.loads((out / entry["perf"]).read_text())
        assert perf["key_events"] and set(perf["key_events"]) <= set(perf["events"])
    syscall = json.loads((out / variants["linux.syscall[vcet=none,shstk=off]"]["perf"]).read_text())
    assert syscall["events"]["syscalls:sys_enter_getppid"]["per_op"] == pytest.approx(1.0, abs=0.01)
    runs = json.loads((out / variants["linux.syscall[vcet=none,shstk=off]"]["pyperf"]).read_text())
    assert len(runs["benchmarks"][0]["runs"]) == 6  # one pyperf run per worker process in the guest
    guest = manifest["linux_guests"]["vcet=none"]
    assert guest["qemu"]["version"] == qemu.version and guest["failure"] is None
    serial = (out / guest["files"] / "serial.log").read_text(errors="replace")
    assert "CETBENCH-LAB mark" in serial
    if guest["accel"] == "tcg":
        assert "QEMU" in manifest["backend"]["emulator"] and "TCG" in manifest["backend"]["emulator"]
        for name, entry in variants.items():
            if entry["cet_on"]:
                assert entry["status"] == "unsupported" and entry["refused_by"] == "qemu", (name, entry)
                assert "TCG doesn't support requested feature" in entry["reason"]


def test_a_guest_that_panics_fails_its_jobs_with_the_panic_and_keeps_the_serial_log(qemu: Qemu, tmp_path) -> None:
    from cetbench.lab.image import image_path
    from cetbench.lab.jobs import LabJob
    from cetbench.lab.qemu_run import run_qemu

    kernel = installed_kernel()
    _need(kernel)
    assert not isinstance(kernel, str)
    job = LabJob("never", (image_path("host_syscall"), "--iterations", "10"))
    # No init the kernel can run: it panics (no root to mount) before any job.
    run = run_qemu(qemu, "tcg", frozenset(), kernel, [job], tmp_path, 300, "rdinit=/nonexistent init=/nonexistent")
    assert not run.completed and run.failure is not None and "panicked" in run.failure
    assert "Kernel panic - not syncing" in run.failure and str(run.serial_log) in run.failure
    assert run.result("never").error is not None and "not run" in run.result("never").error
    assert "Kernel panic" in run.serial_log.read_text(errors="replace")
