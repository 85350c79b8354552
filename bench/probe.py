"""Probe a host: what CET support it has at every layer (facts only; plan.py decides what runs).

The probe never guesses and never raises for a host's shortcomings: a fact it cannot establish is
None with the reason in its section's `unknown` map. `document` is the stable JSON of
`cetbench probe --json` and of run manifests (README "Probe fields").
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from cetbench.facts import HostFacts
from cetbench.hostview import HostView
from cetbench.perfstat import CommandRunner, run_command
from cetbench.plan import Plan
from cetbench.probe_cpu import probe_cpu
from cetbench.probe_kernel import probe_kernel
from cetbench.probe_kvm import probe_kvm
from cetbench.probe_noise import probe_noise
from cetbench.probe_perf import probe_perf
from cetbench.probe_qemu import probe_qemu
from cetbench.workloads.build import BuildError, build


def run_native_probe() -> tuple[dict[str, Any] | None, str | None]:
    """Raw CPUID and KVM facts from the native helper, or (None, why not)."""
    try:
        program = build("cetbench-probe")
    except BuildError as exc:
        return None, str(exc)
    try:
        proc = subprocess.run([str(program.path)], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cetbench-probe did not run: {exc}"
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError:
        return None, f"cetbench-probe printed no JSON (exit {proc.returncode}): {proc.stderr.strip()[:200]}"


CPUID_FIELDS = ("leaf", "subleaf", "eax", "ebx", "ecx", "edx")


def _cpuid_problem(entries: object, where: str) -> str | None:
    if not isinstance(entries, list):
        return f"{where} is {repr(entries)[:60]}, not a list"
    for e in entries:
        if not isinstance(e, dict) or not all(type(e.get(k)) is int and 0 <= e[k] < 2**32 for k in CPUID_FIELDS):
            return f"{where} holds {repr(e)[:80]}, not a CPUID entry (leaf, subleaf, eax, ebx, ecx, edx)"
    return None


def native_problem(native: object) -> str | None:
    """Why a document is not what cetbench-probe prints (None: it is): its CPUID entries, and a `kvm`
    object (or null) with an error message or the CPUID entries KVM supports."""
    if not isinstance(native, dict):
        return f"{repr(native)[:60]} is not a JSON object"
    problem = _cpuid_problem(native.get("cpuid", []), "cpuid")
    kvm = native.get("kvm")
    if problem or kvm is None:
        return problem
    if not isinstance(kvm, dict):
        return f"kvm is {repr(kvm)[:60]}, not an object"
    if kvm.get("error") is not None and not isinstance(kvm["error"], str):
        return f"kvm.error is {repr(kvm['error'])[:60]}, not a message"
    if kvm.get("api_version") is not None and type(kvm["api_version"]) is not int:
        return f"kvm.api_version is {repr(kvm['api_version'])[:60]}, not a number"
    return _cpuid_problem(kvm.get("supported_cpuid", []), "kvm.supported_cpuid")


def document(facts: HostFacts, plan: Plan) -> dict[str, Any]:
    """The probe document: the facts and, as `variants[]`, what the plan decided for each."""
    return {**facts.to_json(), "variants": plan.to_json()}


def collect(
    view: HostView | None = None,
    native: dict[str, Any] | None = None,
    native_error: str | None = None,
    run: CommandRunner = run_command,
    perf: str | None = None,
    ncpus: int | None = None,
    euid: int | None = None,
) -> HostFacts:
    """Probe a host. With no arguments, this host; tests pass a fixture tree and recorded output."""
    this_host = view is None
    if view is None:
        view = HostView("/")
        native, native_error = run_native_probe()
    problem = native_problem(native) if native is not None else None
    if problem:  # the lab's cetbench-probe output came over a serial line
        native, native_error = None, f"cetbench-probe's output is not what it prints: {problem}"
    kvm = probe_kvm(native, native_error, view, os.geteuid() if euid is None else euid)
    return HostFacts(
        cpu=probe_cpu(native, native_error, view),
        kernel=probe_kernel(view),
        kvm=kvm,
        perf=probe_perf(view, run, perf),
        noise=probe_noise(view, ncpus),
        qemu=probe_qemu(kvm) if this_host else None,
    )
