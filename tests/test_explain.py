"""`cetbench explain`: what a variant sets, checked against the architectural encodings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cetbench import arch
from cetbench.workloads.build import build


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cetbench", "explain", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_guest_variant_with_ibt_and_shstk() -> None:
    proc = explain("guest.syscall[cet=ibt+shstk]", "--vendor", "intel", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert int(doc["cr4"], 16) & arch.CR4_CET and int(doc["cr0"], 16) & arch.CR0_WP
    msrs = doc["msrs"]
    assert int(msrs["IA32_U_CET"]["value"], 16) == arch.CET_SHSTK_EN
    assert int(msrs["IA32_S_CET"]["value"], 16) & arch.CET_ENDBR_EN
    assert int(msrs["IA32_U_CET"]["index"], 16) == arch.MSR_IA32_U_CET
    assert doc["on_this_host"]["runnable"] in (True, False)
    if not doc["on_this_host"]["runnable"]:
        assert doc["on_this_host"]["reason"]
    # LSTAR: the guest's syscall entry, read from the image, and under IBT it must be an ENDBR64
    lstar = msrs["IA32_LSTAR"]
    assert lstar["written"] and int(lstar["index"], 16) == 0xC0000082
    address = int(lstar["value"], 16)
    listing = subprocess.run(["objdump", "-d", f"--start-address={address:#x}", f"--stop-address={address + 4:#x}",
                              str(build("cetbench-guest").elf)], capture_output=True, text=True, check=True).stdout
    assert "<syscall_entry>:" in listing and "endbr64" in listing


def test_guest_variant_without_cet_sets_nothing() -> None:
    doc = json.loads(explain("guest.vmexit.pio[cet=none]", "--json").stdout)
    assert not int(doc["cr4"], 16) & arch.CR4_CET


def test_host_variant_and_text_output() -> None:
    proc = explain("host.ctxswitch[shstk=on]")
    assert proc.returncode == 0
    assert f"ARCH_SHSTK_ENABLE=0x{arch.ARCH_SHSTK_ENABLE:x}" in proc.stdout
    assert "in both processes" in proc.stdout


def test_unknown_variant_is_one_line_and_exit_2() -> None:
    proc = explain("guest.nosuch[cet=none]")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unknown variant" in proc.stderr


@pytest.mark.parametrize("name,isolates", [
    ("guest.vmexit.pio[cet=shstk,cetu=init]", {"cetu_fpu_swap": "guest.vmexit.pio[cet=shstk]"}),
    ("guest.vmexit.cpuid[cet=none,kvmcet=0]", {"vmcs_cet": "guest.vmexit.cpuid[cet=none]"}),
    ("host.ctxswitch[shstk=on]", {"cetu_task_switch": "host.ctxswitch[shstk=off]"}),
    ("host.signal[shstk=on]", {"signal_shstk_token": "host.signal[shstk=off]"}),
    ("host.syscall[shstk=on]", {}),
    ("guest.vmexit.pio[cet=none]", {}),
])
def test_explain_names_what_a_variant_isolates_and_against_what(name: str, isolates: dict[str, str]) -> None:
    from cetbench.explain import mechanisms
    from cetbench.workloads.table import by_name

    doc = mechanisms(by_name(name))
    assert {m["mechanism"]: m["against"] for m in doc["isolates"]} == isolates
    assert all(m["counted_by"] for m in doc["can_pay"]) and doc["can_pay"]
    assert {m["mechanism"] for m in doc["can_pay"]} >= set(isolates)
