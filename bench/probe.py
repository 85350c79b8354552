"""`cetbench probe`: what CET support this host has at every layer, and which variants can run.

The document this module returns is a stable interface (README "Probe fields"): run manifests embed
it and CI reads it. Every field the probe cannot establish is null, with the reason in the section's
`unknown` map; the probe never guesses and never raises for a host's shortcomings.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from cetbench.hostview import HostView
from cetbench.perfstat import CommandRunner, run_command
from cetbench.probe_cpu import probe_cpu
from cetbench.probe_kernel import probe_kernel
from cetbench.probe_kvm import probe_kvm
from cetbench.probe_noise import probe_noise
from cetbench.probe_perf import probe_perf
from cetbench.verdicts import judge
from cetbench.workloads.build import BuildError, build
from cetbench.workloads.table import all_variants

PROBE_SCHEMA = 1


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


def variant_table(probe: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for variant in all_variants():
        verdict = judge(variant, probe)
        rows.append(
            {
                "name": variant.name,
                "workload": variant.workload.name,
                "kind": variant.workload.kind,
                "cet": variant.cet,
                "runnable": verdict.runnable,
                "reason": verdict.reason,
                "refused_by": verdict.refused_by,
            }
        )
    return rows


def collect(
    view: HostView | None = None,
    native: dict[str, Any] | None = None,
    native_error: str | None = None,
    run: CommandRunner = run_command,
    perf: str | None = None,
    ncpus: int | None = None,
) -> dict[str, Any]:
    """Probe a host. With no arguments, this host; tests pass a fixture tree and recorded output."""
    if view is None:
        view = HostView("/")
        native, native_error = run_native_probe()
    doc: dict[str, Any] = {
        "schema": PROBE_SCHEMA,
        "cpu": probe_cpu(native, native_error, view),
        "kernel": probe_kernel(view),
        "kvm": probe_kvm(native, native_error, view),
        "perf": probe_perf(view, run, perf),
        "noise": probe_noise(view, ncpus),
    }
    doc["variants"] = variant_table(doc)
    return doc
