"""The real probe on this machine, checked against facts read independently in the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cetbench.plan import plan
from cetbench.probe import collect, document
from cetbench.workloads.table import all_variants
from tests.support import independent


@pytest.fixture(scope="module")
def doc() -> dict:
    facts = collect()
    return document(facts, plan(facts, all_variants()))


def test_cpu_bits_match_the_cpuid_instruction(doc: dict) -> None:
    _, _, ecx7, edx7 = independent.cpuid(7, 0)
    eax_d1, _, ecx_d1, _ = independent.cpuid(0xD, 1)
    assert doc["cpu"]["shstk"] == bool(ecx7 & (1 << 7))
    assert doc["cpu"]["ibt"] == bool(edx7 & (1 << 20))
    assert doc["cpu"]["xsaves"] == bool(eax_d1 & (1 << 3))
    assert doc["cpu"]["xss_cet_u"] == bool(ecx_d1 & (1 << 11))
    assert doc["cpu"]["xss_cet_s"] == bool(ecx_d1 & (1 << 12))


def test_kernel_identity_and_config(doc: dict) -> None:
    assert doc["kernel"]["release"] == os.uname().release
    config = independent.kernel_config("X86_USER_SHADOW_STACK")
    assert doc["kernel"]["config"]["X86_USER_SHADOW_STACK"] == (config or "unknown")


def test_host_shstk_variants_follow_the_machine(doc: dict) -> None:
    _, _, ecx7, _ = independent.cpuid(7, 0)
    cpu_has = bool(ecx7 & (1 << 7))
    config = independent.kernel_config("X86_USER_SHADOW_STACK")
    flags = open("/proc/cpuinfo").read()
    user_shstk = " user_shstk" in flags
    variants = {v["name"]: v for v in doc["variants"]}
    for name in ("host.syscall", "host.ctxswitch", "host.signal"):
        assert variants[f"{name}[shstk=off]"]["runnable"] is True
        on = variants[f"{name}[shstk=on]"]
        should_run = cpu_has and config in ("y", None) and user_shstk
        assert on["runnable"] is should_run
        if not cpu_has:
            assert "CPU lacks SHSTK" in on["reason"]
        if config == "n":
            assert "CONFIG_X86_USER_SHADOW_STACK" in on["reason"]


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this machine")
def test_kvm_section_matches_the_ioctl(doc: dict) -> None:
    sup = independent.kvm_supported_cpuid()
    _, _, ecx7, edx7 = sup.get((7, 0), (0, 0, 0, 0))
    _, _, ecx_d1, _ = sup.get((0xD, 1), (0, 0, 0, 0))
    assert doc["kvm"]["openable"] is True
    assert doc["kvm"]["offers_shstk"] == bool(ecx7 & (1 << 7))
    assert doc["kvm"]["offers_ibt"] == bool(edx7 & (1 << 20))
    assert doc["kvm"]["supported"]["xss_cet_u"] == bool(ecx_d1 & (1 << 11))
    if not (ecx7 & (1 << 7)) and not (edx7 & (1 << 20)):
        assert doc["kvm"]["verdict"].startswith("KVM offers neither SHSTK nor IBT")
    modules = [m for m in ("kvm_intel", "kvm_amd", "kvm_pvm") if os.path.isdir(f"/sys/module/{m}")]
    assert doc["kvm"]["implementation"] == (modules[0] if modules else None)


def test_probe_json_command_prints_valid_json() -> None:
    proc = subprocess.run([sys.executable, "-m", "cetbench", "probe", "--json"], capture_output=True, text=True,
                          timeout=120, check=True)
    parsed = json.loads(proc.stdout)
    assert {"cpu", "kernel", "kvm", "perf", "noise", "variants"} <= set(parsed)
    assert parsed["schema"] == 1
