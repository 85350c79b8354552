"""`cetbench run`: probe → choose variants → run each under pyperf → write the run bundle.

Variants the probe marks unsupported are recorded with the refusing party's reason and never run.
Each runnable variant first runs once briefly (a preflight) so that a refusal the probe could not
foresee, or a workload that cannot run at all, is recorded cleanly before pyperf starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cetbench import manifest as mf
from cetbench.native import NativeOutcome, check_cet_state, run_native
from cetbench.perf_pass import count_variant, events_for, ops_for_pass
from cetbench.probe import collect
from cetbench.results.bundle import Bundle, BundleError
from cetbench.results.paths import default_runs_dir
from cetbench.verdicts import judge
from cetbench.workloads.build import BuildError, BuiltProgram, build
from cetbench.workloads.table import Variant, by_name, select

QUICK_PYPERF = ("--processes", "6", "--values", "2", "--warmups", "1", "--min-time", "0.02")
DEFAULT_PYPERF = ("--processes", "20", "--values", "3", "--warmups", "1", "--min-time", "0.1")
GUEST_IMAGE = "cetbench-guest"


@dataclass
class RunOptions:
    quick: bool = False
    only: list[str] = field(default_factory=list)
    out: Path | None = None
    kernel_label: str | None = None
    cpu: int = 0
    resume: Path | None = None
    inject_cycles: int = 0
    timeout: float | None = None  # per variant; default depends on --quick
    pyperf_args: tuple[str, ...] | None = None  # overrides the quick/default pyperf configuration
    perf: str = "auto"  # counting pass after the timed samples: auto (when perf is usable) | on | off

    def variant_timeout(self) -> float:
        return self.timeout or (120.0 if self.quick else 900.0)


class RunError(Exception):
    """The run cannot start as asked (bad input or environment); the message is one line."""


ProgressHook = Callable[[str, int, int], None]  # (variant, index, total)


def _programs(variant: Variant, cache: dict[str, BuiltProgram | str]) -> tuple[list[str] | None, str | None]:
    """The native command for a variant without its iteration count, or (None, why it cannot build)."""
    needed = [variant.workload.program] + ([GUEST_IMAGE] if variant.workload.kind == "guest" else [])
    for name in needed:
        if name not in cache:
            try:
                cache[name] = build(name)
            except BuildError as exc:
                cache[name] = str(exc)
        if isinstance(cache[name], str):
            return None, str(cache[name])
    main = cache[variant.workload.program]
    assert isinstance(main, BuiltProgram)
    cmd = [str(main.path)]
    if variant.workload.kind == "guest":
        image = cache[GUEST_IMAGE]
        assert isinstance(image, BuiltProgram)
        cmd += ["--guest", str(image.path)]
    return cmd + list(variant.native_args()), None


def _variant_entry(variant: Variant, probe: dict[str, Any]) -> dict[str, Any]:
    verdict = judge(variant, probe)
    emulated = variant.workload.kind == "guest" and probe["kvm"].get("hardware") is False
    return {
        "workload": variant.workload.name, "kind": variant.workload.kind, "cet": variant.cet,
        "cet_on": variant.cet_on, "op": variant.workload.op, "unit": "second", "emulated": emulated,
        "status": "pending" if verdict.runnable else "unsupported",
        "reason": verdict.reason, "refused_by": verdict.refused_by,
        "pyperf": None, "raw": None, "perf": None,
    }


def _new_bundle(opts: RunOptions, probe: dict[str, Any], variants: list[Variant]) -> Bundle:
    run_id = mf.new_run_id()
    root = opts.out or default_runs_dir() / run_id
    manifest = {
        "run_id": run_id, "started_utc": mf.utc_now(), "finished_utc": None,
        "host": mf.host_section(probe), "kernel": mf.kernel_section(probe, opts.kernel_label),
        "suite": mf.suite_section(), "kvm": mf.kvm_section(probe),
        "options": {"quick": opts.quick, "cpu": opts.cpu, "inject_cycles": opts.inject_cycles,
                    "only": opts.only or None, "pyperf": list(opts.pyperf_args or ()), "perf": opts.perf},
        "binaries": {}, "probe": probe,
        "variants": {v.name: _variant_entry(v, probe) for v in variants},
    }
    return Bundle.create(root, manifest)


def _open_resume(opts: RunOptions, probe: dict[str, Any]) -> Bundle:
    assert opts.resume is not None
    bundle = Bundle.open_for_resume(opts.resume)
    here = mf.host_section(probe)
    there = bundle.manifest["host"]
    if (there.get("hostname"), there.get("fingerprint")) != (here["hostname"], here["fingerprint"]):
        raise RunError(f"{opts.resume} was recorded on {there.get('hostname')} ({there.get('cpu_model_name')}), "
                       f"not on this host ({here['hostname']}, {here['cpu_model_name']}): cannot resume it here")
    if bundle.manifest["kernel"]["release"] != probe["kernel"]["release"]:
        raise RunError(f"{opts.resume} was recorded under kernel {bundle.manifest['kernel']['release']}, "
                       f"this host now runs {probe['kernel']['release']}: cannot resume it here")
    saved = bundle.manifest["options"]
    opts.quick, opts.cpu, opts.inject_cycles = saved["quick"], saved["cpu"], saved["inject_cycles"]
    opts.pyperf_args = tuple(saved.get("pyperf") or ()) or None
    opts.perf = saved.get("perf", "auto")
    return bundle


def _preflight(cmd: list[str], variant: Variant, opts: RunOptions) -> NativeOutcome:
    outcome = run_native([*cmd, "--iterations", "10"], min(60.0, opts.variant_timeout()))
    if outcome.measured:
        wrong = check_cet_state(outcome.record, variant.workload.kind, variant.cet)
        if wrong:
            return NativeOutcome("failed", outcome.record, wrong)
    return outcome


def _run_pyperf(bundle: Bundle, variant: Variant, cmd: list[str], opts: RunOptions) -> tuple[bool, str | None]:
    final = bundle.variant_path(variant.name, "pyperf.json")
    partial = final.with_name("." + final.name + ".partial")
    raw = bundle.variant_path(variant.name, "raw.jsonl")
    for stale in (partial, raw):
        stale.unlink(missing_ok=True)
    pyperf_args = opts.pyperf_args or (QUICK_PYPERF if opts.quick else DEFAULT_PYPERF)
    per_call = max(30.0, opts.variant_timeout() / 4)
    argv = [sys.executable, "-m", "cetbench.pyperf_worker", *pyperf_args, "--quiet", "--output", str(partial),
            "--cb-variant", variant.name, "--cb-kind", variant.workload.kind, "--cb-cet", variant.cet,
            "--cb-raw", str(raw), "--cb-timeout", str(per_call), "--cb-cmd", json.dumps(cmd)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=opts.variant_timeout(), check=False,
                              start_new_session=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    except subprocess.TimeoutExpired:
        return False, f"pyperf did not finish within {opts.variant_timeout():g} s"
    if proc.returncode != 0 or not partial.is_file():
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if variant.name in ln or "Error" in ln), lines[-1] if lines else "")
        return False, f"pyperf exited {proc.returncode}: {why.strip()[:400]}"
    os.replace(partial, final)  # the pyperf file appears whole or not at all
    return True, None


def _perf_pass(bundle: Bundle, variant: Variant, cmd: list[str], opts: RunOptions) -> str | None:
    """The perf counting pass, after and apart from the timed samples (tracepoints inflate timings).
    Never fails the variant: whatever perf does is recorded in the perf.json."""
    probe = bundle.manifest["probe"]
    if opts.perf == "off" or (opts.perf == "auto" and not probe["perf"].get("usable")):
        return None
    out = bundle.variant_path(variant.name, "perf.json")
    count_variant(cmd, ops_for_pass(bundle.variant_path(variant.name, "raw.jsonl")),
                  events_for(variant.workload, probe), out, probe["perf"].get("binary"),
                  min(120.0, opts.variant_timeout()), kvm_impl=probe["kvm"].get("implementation"),
                  key_events=variant.workload.key_events)
    return bundle.rel(out) if out.is_file() else None


def execute(opts: RunOptions, progress: ProgressHook | None = None) -> Bundle:
    probe = collect()
    if opts.resume:
        bundle = _open_resume(opts, probe)
        todo = [by_name(n) for n in bundle.pending()]
    else:
        try:
            variants = select(opts.only)
        except LookupError as exc:
            raise RunError(str(exc)) from None
        try:
            bundle = _new_bundle(opts, probe, variants)
        except BundleError as exc:
            raise RunError(str(exc)) from None
        todo = [v for v in variants if bundle.manifest["variants"][v.name]["status"] == "pending"]
    cache: dict[str, BuiltProgram | str] = {}
    for index, variant in enumerate(todo):
        if progress:
            progress(variant.name, index, len(todo))
        run_variant(bundle, variant, opts, cache)
    bundle.manifest["finished_utc"] = mf.utc_now()
    bundle.save()
    return bundle


def run_variant(bundle: Bundle, variant: Variant, opts: RunOptions, cache: dict[str, BuiltProgram | str]) -> None:
    cmd, why = _programs(variant, cache)
    if cmd is None:
        bundle.set_variant(variant.name, status="failed", reason=why)
        return
    for name, built in cache.items():
        if isinstance(built, BuiltProgram):
            recorded = bundle.manifest["binaries"].setdefault(name, built.sha256)
            if recorded != built.sha256:
                raise RunError(f"workload {name} changed since this run started (binary hash differs): "
                               "start a new run instead of resuming")
    cmd += ["--cpu", str(opts.cpu), "--inject-cycles", str(opts.inject_cycles)]
    pre = _preflight(cmd, variant, opts)
    if not pre.measured:
        bundle.set_variant(variant.name, status=pre.status, reason=pre.reason,
                           refused_by=pre.refused_by if pre.status == "unsupported" else None)
        return
    ok, why = _run_pyperf(bundle, variant, cmd, opts)
    if not ok:
        bundle.set_variant(variant.name, status="failed", reason=why)
        return
    perf = _perf_pass(bundle, variant, cmd, opts)
    bundle.set_variant(variant.name, status="measured", reason=None,
                       pyperf=bundle.rel(bundle.variant_path(variant.name, "pyperf.json")),
                       raw=bundle.rel(bundle.variant_path(variant.name, "raw.jsonl")), perf=perf)
