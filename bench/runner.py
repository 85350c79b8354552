"""`cetbench run`: probe → plan → run each runnable variant under pyperf → write the run bundle.

Variants the plan marks unsupported are recorded with the refusing party's reason and never run.
Each runnable variant first runs once briefly (a preflight) so that a refusal the probe could not
foresee, or a workload that cannot run at all, is recorded cleanly before pyperf starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cetbench import leftovers
from cetbench import manifest as mf
from cetbench.facts import HostFacts
from cetbench.native import Programs, run_variant_once, variant_command
from cetbench.perf_pass import count_variant, events_for, ops_for_pass
from cetbench.plan import Decision, plan
from cetbench.probe import collect, document
from cetbench.results.bundle import Bundle, BundleError
from cetbench.results.paths import default_runs_dir
from cetbench.workloads.build import BuildError
from cetbench.workloads.table import Variant, all_variants, by_name, select

QUICK_PYPERF = ("--processes", "6", "--values", "2", "--warmups", "1", "--min-time", "0.02")
DEFAULT_PYPERF = ("--processes", "20", "--values", "3", "--warmups", "1", "--min-time", "0.1")
PREFLIGHT_OPS = 10


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


class RunInterrupted(BaseException):  # as KeyboardInterrupt: no `except Exception` may swallow it
    """SIGTERM or SIGINT arrived (see `interruptible`). `bundle` is the run's bundle once it exists,
    `complete` whether every variant had finished (only storing it was interrupted)."""

    def __init__(self, signum: int, bundle: Path | None = None, complete: bool = False) -> None:
        super().__init__(signum)
        self.signum, self.bundle, self.complete = signum, bundle, complete

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        if self.bundle is None:
            return f"interrupted by {name} before the run's bundle was written"
        if self.complete:
            return (f"interrupted by {name}: the run is complete in {self.bundle}; "
                    f"`cetbench ingest {self.bundle}` stores it")
        return f"interrupted by {name}: `cetbench run --resume {self.bundle}` completes the run"


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM (a CI timeout, a service stop) and SIGINT raise RunInterrupted in the block, so that a run
    stops its children and leaves a resumable bundle instead of dying where it stands."""
    def stop(signum: int, _frame: object) -> None:
        raise RunInterrupted(signum)

    before = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


ProgressHook = Callable[[str, int, int], None]  # (variant, index, total)


def _variant_entry(decision: Decision) -> dict[str, object]:
    v = decision.variant
    return {
        "workload": v.workload.name, "kind": v.workload.kind, "cet": v.config,
        "cet_on": v.cet_on, "op": v.workload.op, "unit": "second", "emulated": decision.emulated,
        "status": "pending" if decision.runnable else "unsupported",
        "reason": decision.reason, "refused_by": decision.refused_by,
        "refusals": [{"by": by, "reason": why} for by, why in decision.refusals],
        "pyperf": None, "raw": None, "perf": None,
    }


def _new_bundle(opts: RunOptions, facts: HostFacts, variants: list[Variant]) -> Bundle:
    run_id = mf.new_run_id()
    root = opts.out or default_runs_dir() / run_id
    full = plan(facts, all_variants())
    manifest = {
        "run_id": run_id, "started_utc": mf.utc_now(), "finished_utc": None,
        "host": mf.host_section(facts), "kernel": mf.kernel_section(facts, opts.kernel_label),
        "suite": mf.suite_section(), "kvm": mf.kvm_section(facts),
        "options": {"quick": opts.quick, "cpu": opts.cpu, "inject_cycles": opts.inject_cycles,
                    "only": opts.only or None, "pyperf": list(opts.pyperf_args or ()), "perf": opts.perf},
        "binaries": {}, "probe": document(facts, full),
        "variants": {v.name: _variant_entry(full.of(v)) for v in variants},
    }
    return Bundle.create(root, manifest)


def _open_resume(opts: RunOptions, facts: HostFacts) -> Bundle:
    assert opts.resume is not None
    bundle = Bundle.open_for_resume(opts.resume)
    here = mf.host_section(facts)
    there = bundle.manifest["host"]
    if (there.get("hostname"), there.get("fingerprint")) != (here["hostname"], here["fingerprint"]):
        raise RunError(f"{opts.resume} was recorded on {there.get('hostname')} ({there.get('cpu_model_name')}), "
                       f"not on this host ({here['hostname']}, {here['cpu_model_name']}): cannot resume it here")
    if bundle.manifest["kernel"]["release"] != facts.kernel.release:
        raise RunError(f"{opts.resume} was recorded under kernel {bundle.manifest['kernel']['release']}, "
                       f"this host now runs {facts.kernel.release}: cannot resume it here")
    saved = bundle.manifest["options"]
    opts.quick, opts.cpu, opts.inject_cycles = saved["quick"], saved["cpu"], saved["inject_cycles"]
    opts.pyperf_args = tuple(saved.get("pyperf") or ()) or None
    opts.perf = saved.get("perf", "auto")
    return bundle


def _run_pyperf(bundle: Bundle, variant: Variant, cmd: list[str], opts: RunOptions) -> tuple[bool, str | None]:
    final = bundle.variant_path(variant.name, "pyperf.json")
    raw = bundle.variant_path(variant.name, "raw.jsonl")
    # This attempt's own files, renamed into place only once pyperf has finished: a worker of a killed
    # run appends to its own attempt's files, never to these.
    partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
    raw_partial = raw.with_name(f".{raw.name}.{os.getpid()}.partial")
    for stale in (partial, raw_partial):
        stale.unlink(missing_ok=True)
    pyperf_args = opts.pyperf_args or (QUICK_PYPERF if opts.quick else DEFAULT_PYPERF)
    per_call = max(30.0, opts.variant_timeout() / 4)
    # pyperf gives its workers a minimal environment: they must keep the bundle's mark (leftovers.py).
    argv = [sys.executable, "-m", "cetbench.pyperf_worker", *pyperf_args, "--quiet", "--output", str(partial),
            "--inherit-environ", leftovers.ENV, "--cb-variant", variant.name, "--cb-raw", str(raw_partial),
            "--cb-timeout", str(per_call), "--cb-cmd", json.dumps(cmd)]
    code, stderr = _run_group(argv, opts.variant_timeout(), {**os.environ, "PYTHONHASHSEED": "0"})
    if code is None:
        return False, f"pyperf did not finish within {opts.variant_timeout():g} s"
    if code != 0 or not partial.is_file():
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if variant.name in ln or "Error" in ln), lines[-1] if lines else "")
        return False, f"pyperf exited {code}: {why.strip()[:400]}"
    # Each file appears whole or not at all; the manifest, saved after both, says the variant is done.
    if raw_partial.exists():
        os.replace(raw_partial, raw)
    os.replace(partial, final)
    return True, None


def _run_group(argv: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str]:
    """Exit code (None at the timeout) and stderr of `argv`, run in a process group of its own that is
    killed whole at the timeout or when this run is interrupted (a worker must not outlive it)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr


def _perf_pass(bundle: Bundle, variant: Variant, cmd: list[str], opts: RunOptions, facts: HostFacts) -> str | None:
    """The perf counting pass, after and apart from the timed samples (tracepoints inflate timings).
    Never fails the variant: whatever perf does is recorded in the perf.json."""
    if opts.perf == "off" or (opts.perf == "auto" and not facts.perf.usable):
        return None
    out = bundle.variant_path(variant.name, "perf.json")
    count_variant(cmd, ops_for_pass(bundle.variant_path(variant.name, "raw.jsonl")),
                  events_for(variant.workload, facts.kvm.present), out, facts.perf.binary,
                  min(120.0, opts.variant_timeout()), kvm_impl=facts.kvm.implementation,
                  key_events=variant.workload.key_events)
    return bundle.rel(out) if out.is_file() else None


def execute(opts: RunOptions, progress: ProgressHook | None = None) -> Bundle:
    try:
        bundle, todo, facts = _start(opts)
    except (RunInterrupted, KeyboardInterrupt) as exc:  # a resume's bundle stands as it was
        raise RunInterrupted(getattr(exc, "signum", signal.SIGINT), opts.resume) from None
    programs = Programs()
    with leftovers.marked(bundle.root):
        try:
            for index, variant in enumerate(todo):
                if progress:
                    progress(variant.name, index, len(todo))
                run_variant(bundle, variant, opts, programs, facts)
        except (RunInterrupted, KeyboardInterrupt) as exc:
            # The variant in flight stays pending: stop whatever still runs for it, drop its partial files.
            leftovers.kill_leftovers(bundle.root)
            bundle.remove_leftovers()
            raise RunInterrupted(getattr(exc, "signum", signal.SIGINT), bundle.root) from None
    if todo or bundle.manifest["finished_utc"] is None:  # a resume of a finished run changes nothing
        bundle.manifest["finished_utc"] = mf.utc_now()
        bundle.save()
    return bundle


def _start(opts: RunOptions) -> tuple[Bundle, list[Variant], HostFacts]:
    """The bundle to fill (new, or the one to resume) and its variants still to run."""
    if opts.resume:  # first, processes a killed run left, still timing loops on the CPUs we probe and use
        leftovers.kill_leftovers(opts.resume)
    facts = collect()
    if opts.resume:
        try:
            bundle = _open_resume(opts, facts)
        except BundleError as exc:
            raise RunError(str(exc)) from None
        bundle.remove_leftovers()  # and the files they half wrote
        return bundle, [by_name(n) for n in bundle.pending()], facts
    try:
        variants = select(opts.only)
    except LookupError as exc:
        raise RunError(str(exc)) from None
    try:
        bundle = _new_bundle(opts, facts, variants)
    except BundleError as exc:
        raise RunError(str(exc)) from None
    return bundle, [v for v in variants if bundle.manifest["variants"][v.name]["status"] == "pending"], facts


def run_variant(bundle: Bundle, variant: Variant, opts: RunOptions, programs: Programs, facts: HostFacts) -> None:
    try:
        cmd = variant_command(variant, programs, opts.cpu, opts.inject_cycles)
    except BuildError as exc:
        bundle.set_variant(variant.name, status="failed", reason=str(exc))
        return
    for name, sha in programs.hashes().items():
        if bundle.manifest["binaries"].setdefault(name, sha) != sha:
            raise RunError(f"workload {name} changed since this run started (binary hash differs): "
                           "start a new run instead of resuming")
    pre = run_variant_once(variant, cmd, PREFLIGHT_OPS, min(60.0, opts.variant_timeout()))
    if not pre.measured:
        refused = pre.status == "unsupported"
        bundle.set_variant(variant.name, status=pre.status, reason=pre.reason,
                           refused_by=pre.refused_by if refused else None,
                           refusals=[{"by": pre.refused_by or "workload", "reason": pre.reason}] if refused else [])
        return
    ok, why = _run_pyperf(bundle, variant, cmd, opts)
    if not ok:
        bundle.set_variant(variant.name, status="failed", reason=why)
        return
    perf = _perf_pass(bundle, variant, cmd, opts, facts)
    bundle.set_variant(variant.name, status="measured", reason=None,
                       pyperf=bundle.rel(bundle.variant_path(variant.name, "pyperf.json")),
                       raw=bundle.rel(bundle.variant_path(variant.name, "raw.jsonl")), perf=perf)
