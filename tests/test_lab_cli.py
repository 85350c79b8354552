"""`cetbench lab` end to end, as a user types it: one boot of the emulated CET lab on the installed
kernel, written as a run bundle, stored, and summarised like any run. What it must show:

- every variant measured and labelled emulated (bundle, store, summary), its per-op tracepoint counts
  from the two job sizes: a getppid per host op, one CPUID exit per guest op;
- the xss axis as a fact of KVM's code: with the guest's IA32_XSS unlike the host's (read by the lab's
  probe through the msr driver) KVM writes IA32_XSS twice per exit, and not at all when they match, so
  the cost model identifies that confound from this one run;
- a second bundle at the same --out is refused before any boot.
Counts and labels only: bochs timings are instruction counts, never asserted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cetbench.lab.install import installed
from cetbench.results.bundle import MANIFEST
from cetbench.workloads.mechanisms import XSS_WRITE

pytestmark = pytest.mark.slow

SELECTION = ("host.syscall[shstk=*", "guest.vmexit.cpuid[cet=none]", "guest.vmexit.cpuid[cet=shstk*")
VARIANTS = {"host.syscall[shstk=off]", "host.syscall[shstk=on]", "guest.vmexit.cpuid[cet=none]",
            "guest.vmexit.cpuid[cet=shstk]", "guest.vmexit.cpuid[cet=shstk,xss=host]"}


def cetbench(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CETBENCH_STORE"}
    env.update(CETBENCH_HOME=str(home), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "cetbench", *args], capture_output=True, text=True, env=env,
                          timeout=900, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], Path]:
    setup = installed()
    if isinstance(setup, str):
        if os.environ.get("CI"):
            pytest.fail(f"{setup}; CI must run tools/install-lab before the tests")
        pytest.skip(setup)
    kernel, _ = setup
    home = tmp_path_factory.mktemp("home")
    out, store = home / "bundle", home / "store.sqlite"
    only = [a for p in SELECTION for a in ("--only", p)]
    # the installed kernel given as a path: no archive access in the test
    proc = cetbench(home, "lab", "--kernel", str(kernel.root.parent), *only, "--out", str(out),
                    "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)
    return out, result, store


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


def per_op(out: Path, variant: str) -> dict[str, float]:
    perf = json.loads((out / manifest(out)["variants"][variant]["perf"]).read_text())
    return {event: e["per_op"] for event, e in perf["events"].items()}


def test_every_variant_is_measured_and_labelled_emulated(lab):
    out, result, store = lab
    bundle = manifest(out)
    assert result["failure"] is None and Path(result["serial_log"]).is_file()
    assert bundle["backend"]["name"] == "lab" and "tigerlake" in bundle["backend"]["emulator"]
    variants = bundle["variants"]
    assert set(variants) == VARIANTS
    assert {n: (v["status"], v["emulated"]) for n, v in variants.items()} == {n: ("measured", True) for n in VARIANTS}
    summary = result["summary"]
    shown = {v["variant"]: v["emulated"] for v in summary["variants"]}
    assert set(shown) == VARIANTS and all("emulated: bochs" in (label or "") for label in shown.values())
    with sqlite3.connect(store) as db:
        ((emulator,),) = db.execute("SELECT DISTINCT emulator FROM runs").fetchall()
    assert emulator == bundle["backend"]["emulator"]


def test_per_op_counts_come_from_the_two_job_sizes(lab):
    out = lab[0]
    assert per_op(out, "host.syscall[shstk=on]")["syscalls:sys_enter_getppid"] == 1
    cpuid = per_op(out, "guest.vmexit.cpuid[cet=shstk]")
    assert (cpuid["kvm:kvm_exit"], cpuid["kvm:kvm_entry"], cpuid["kvm:kvm_fpu"]) == (1, 1, 0)


def test_kvm_writes_ia32_xss_only_when_the_guests_differs_from_the_hosts(lab):
    out, result, _ = lab
    assert manifest(out)["probe"]["cpu"]["xss"] is not None  # the lab probe read the host's XSS
    assert per_op(out, "guest.vmexit.cpuid[cet=shstk]")[XSS_WRITE] == 2  # before entry and after exit
    assert per_op(out, "guest.vmexit.cpuid[cet=shstk,xss=host]")[XSS_WRITE] == 0
    costs = {c["mechanism"]: c for c in result["summary"]["mechanisms"]["costs"]}
    assert costs["xss_switch"]["seconds"] is not None and costs["xss_switch"]["reason"] is None
    assert "emulated: bochs" in costs["xss_switch"]["emulated"]
    assert costs["cetu_fpu_swap"]["seconds"] is None  # no PIO exit measured: nothing pays it here


def test_a_used_out_directory_is_refused_before_any_boot(lab, tmp_path):
    out = lab[0]
    before = sorted(p.name for p in out.iterdir())
    proc = cetbench(tmp_path, "lab", "--kernel", "sid", "--only", "host.syscall[shstk=off]", "--out", str(out),
                    "--no-store")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip() == f"cetbench: {out} exists and is not an empty directory: give a new --out"
    assert sorted(p.name for p in out.iterdir()) == before
