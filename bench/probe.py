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
    kvm = probe_kvm(native, native_error, view, os.geteuid() if euid is None else euid)
    return HostFacts(
        cpu=probe_cpu(native, native_error, view),
        kernel=probe_kernel(view),
        kvm=kvm,
        perf=probe_perf(view, run, perf),
        noise=probe_noise(view, ncpus),
        qemu=probe_qemu(kvm) if this_host else None,
    )
