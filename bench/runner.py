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

import pyperf

from cetbench import interference, leftovers
from cetbench import manifest as mf
from cetbench.facts import HostFacts
from cetbench.interference import DISTURBED_ABOVE_CPUS, DISTURBED_ABOVE_STEAL, Interference
from cetbench.kvm_knob import Restorer
from cetbench.linux_guest import run_linux_variants
from cetbench.native import Programs, run_variant_once, variant_command
from cetbench.perf_pass import count_variant, events_for, ops_for_pass
from cetbench.plan import KVM_CET_PARAMETER, Decision, plan
from cetbench.probe import collect, document
from cetbench.results.bundle import Bundle, BundleError
from cetbench.results.paths import default_runs_dir
from cetbench.workloads.build import BuildError
from cetbench.workloads.table import Variant, all_variants, by_name, select
from cetbench.workloads.variants import LINUX

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
    #: alternate the worker processes of a workload's variants in time (drift cancels between them)
    interleave: bool = False
    #: other processes' CPU use (in CPUs) above which a variant's timing counts as disturbed
    disturbed_above: float = DISTURBED_ABOVE_CPUS
    #: steal time (share of the run's time) above which a variant's timing counts as disturbed
    steal_above: float = DISTURBED_ABOVE_STEAL
    #: time a disturbed variant once more (the second timing is kept, disturbed or not)
    retry_disturbed: bool = True

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
    full = plan(facts, [*all_variants(), *(v for v in variants if v not in all_variants())])
    manifest = {
        "run_id": run_id, "started_utc": mf.utc_now(), "finished_utc": None,
        "host": mf.host_section(facts), "kernel": mf.kernel_section(facts, opts.kernel_label),
        "suite": mf.suite_section(), "kvm": mf.kvm_section(facts),
        "options": {"quick": opts.quick, "cpu": opts.cpu, "inject_cycles": opts.inject_cycles,
                    "only": opts.only or None, "pyperf": list(opts.pyperf_args or ()), "perf": opts.perf,
                    "interleave": opts.interleave, "disturbed_above": opts.disturbed_above,
                    "steal_above": opts.steal_above,
                    "retry_disturbed": opts.retry_disturbed},
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
    opts.interleave = bool(saved.get("interleave", False))
    opts.disturbed_above = float(saved.get("disturbed_above", DISTURBED_ABOVE_CPUS))
    opts.steal_above = float(saved.get("steal_above", DISTURBED_ABOVE_STEAL))
    opts.retry_disturbed = bool(saved.get("retry_disturbed", True))
    return bundle


def _pyperf_config(opts: RunOptions) -> tuple[int, list[str]]:
    """The worker processes asked for and the rest of the pyperf arguments."""
    args = list(opts.pyperf_args or (QUICK_PYPERF if opts.quick else DEFAULT_PYPERF))
    if "--processes" in args:
        i = args.index("--processes")
        return int(args[i + 1]), args[:i] + args[i + 2:]
    return 20, args  # pyperf's own default


def _pyperf_argv(variant: Variant, cmd: list[str], raw: Path, opts: RunOptions, extra: list[str]) -> list[str]:
    per_call = max(30.0, opts.variant_timeout() / 4)
    # pyperf gives its workers a minimal environment: they must keep the bundle's mark (leftovers.py).
    return [sys.executable, "-m", "cetbench.pyperf_worker", *extra, "--quiet", "--inherit-environ", leftovers.ENV,
            "--cb-variant", variant.name, "--cb-raw", str(raw), "--cb-timeout", str(per_call),
            "--cb-cmd", json.dumps(cmd)]


def _pyperf(argv: list[str], variant: Variant, timeout: float) -> str | None:
    """Run a pyperf command; None, or why it failed."""
    code, stderr = _run_group(argv, timeout, {**os.environ, "PYTHONHASHSEED": "0"})
    if code is None:
        return f"pyperf did not finish within {timeout:g} s"
    if code != 0:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if variant.name in ln or "Error" in ln), lines[-1] if lines else "")
        return f"pyperf exited {code}: {why.strip()[:400]}"
    return None


def _files(bundle: Bundle, variant: Variant) -> tuple[Path, Path, Path]:
    """(final pyperf file, this attempt's partial of it, and of the raw records), the partials emptied."""
    final = bundle.variant_path(variant.name, "pyperf.json")
    raw = bundle.variant_path(variant.name, "raw.jsonl")
    # This attempt's own files, renamed into place only once pyperf has finished: a worker of a killed
    # run appends to its own attempt's files, never to these.
    partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
    raw_partial = raw.with_name(f".{raw.name}.{os.getpid()}.partial")
    for stale in (partial, raw_partial):
        stale.unlink(missing_ok=True)
    return final, partial, raw_partial


def _publish(partial: Path, raw_partial: Path, final: Path, raw: Path) -> None:
    """Each file appears whole or not at all; the manifest, saved after both, says the variant is done."""
    if raw_partial.exists():
        os.replace(raw_partial, raw)
    os.replace(partial, final)


def _run_pyperf(bundle: Bundle, variant: Variant, cmd: list[str], opts: RunOptions) -> str | None:
    """All of a variant's worker processes in one pyperf run; None, or why it failed."""
    final, partial, raw_partial = _files(bundle, variant)
    processes, rest = _pyperf_config(opts)
    why = _pyperf(_pyperf_argv(variant, cmd, raw_partial, opts, ["--processes", str(processes), *rest, "--output",
                                                                 str(partial)]), variant, opts.variant_timeout())
    if why is None and not partial.is_file():
        why = "pyperf wrote no output"
    if why is None:
        _publish(partial, raw_partial, final, bundle.variant_path(variant.name, "raw.jsonl"))
    return why


def _run_pyperf_interleaved(bundle: Bundle, group: list[tuple[Variant, list[str]]], opts: RunOptions,
                            knobs: Restorer) -> dict[str, str | None]:
    """The worker processes of several variants of one workload alternated in time (round r runs
    process r of each, in an order that alternates between rounds), so the host's drift between
    them cancels in their comparison. The first round calibrates each variant's loops (pyperf);
    later rounds reuse them and append to its file."""
    processes, rest = _pyperf_config(opts)
    files = {v.name: _files(bundle, v) for v, _ in group}
    failed: dict[str, str | None] = {v.name: None for v, _ in group}
    loops: dict[str, int] = {}
    timeout = max(30.0, opts.variant_timeout() / max(processes, 1))
    for r in range(processes):
        order = group if r % 2 == 0 else group[::-1]
        for variant, cmd in order:
            if failed[variant.name] or not _host_knobs(bundle, variant, knobs):
                failed[variant.name] = failed[variant.name] or "the host refused its parameters"
                continue
            _, partial, raw_partial = files[variant.name]
            extra = ["--processes", "1", *rest]
            if r:
                extra += ["--loops", str(loops[variant.name]), "--append", str(partial)]
            else:
                extra += ["--output", str(partial)]
            failed[variant.name] = _pyperf(_pyperf_argv(variant, cmd, raw_partial, opts, extra), variant, timeout)
            if r == 0 and not failed[variant.name]:
                loops[variant.name] = pyperf.BenchmarkSuite.load(str(partial)).get_benchmarks()[0].get_loops()
    for variant, _ in group:
        final, partial, raw_partial = files[variant.name]
        if not failed[variant.name]:
            _publish(partial, raw_partial, final, bundle.variant_path(variant.name, "raw.jsonl"))
    return failed


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
    knobs = Restorer()
    # linux.* variants run inside Linux guests, one boot per guest configuration (bench/linux_guest.py)
    here = [v for v in todo if v.workload.kind != LINUX]
    in_guests = [v for v in todo if v.workload.kind == LINUX]
    groups = _interleave_groups(here) if opts.interleave else [[v] for v in here]
    done = 0
    with leftovers.marked(bundle.root):
        try:
            for group in groups:
                if progress:
                    progress(", ".join(v.name for v in group), done, len(todo))
                run_group(bundle, group, opts, programs, facts, knobs)
                done += len(group)
            if in_guests:
                run_linux_variants(bundle, in_guests, facts, opts.quick,
                                   (lambda what: progress(what, done, len(todo))) if progress else None)
        except (RunInterrupted, KeyboardInterrupt) as exc:
            # The variants in flight stay pending: stop whatever still runs for them, drop their partial files.
            leftovers.kill_leftovers(bundle.root)
            bundle.remove_leftovers()
            raise RunInterrupted(getattr(exc, "signum", signal.SIGINT), bundle.root) from None
        finally:
            problems = knobs.restore()
            if problems:
                bundle.manifest["host_left_changed"] = problems
                bundle.save()
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


def _host_knobs(bundle: Bundle, variant: Variant, knobs: Restorer) -> bool:
    """Set the host parameters the variant names (kvmcet); False (and the variant unsupported, in
    modprobe's words) when the host refuses."""
    value = variant.id.value("kvmcet")
    if value is None:
        return True
    module, name = KVM_CET_PARAMETER
    err = knobs.set(module, name, value)
    if err:
        bundle.set_variant(variant.name, status="unsupported", reason=err, refused_by="kernel",
                           refusals=[{"by": "kernel", "reason": err}])
        return False
    bundle.set_variant(variant.name, host_parameters={f"{module}.{name}": value})
    return True


def _interleave_groups(variants: list[Variant]) -> list[list[Variant]]:
    """Variants of one workload run together (their processes alternate), in table order."""
    groups: dict[str, list[Variant]] = {}
    for v in variants:
        groups.setdefault(v.workload.name, []).append(v)
    return list(groups.values())


def _prepare(bundle: Bundle, variant: Variant, opts: RunOptions, programs: Programs, knobs: Restorer
             ) -> list[str] | None:
    """The variant's command once its host parameters are set and a short preflight run measured;
    None when it cannot run (recorded unsupported or failed, with the reason)."""
    if not _host_knobs(bundle, variant, knobs):
        return None
    try:
        cmd = variant_command(variant, programs, opts.cpu, opts.inject_cycles)
    except BuildError as exc:
        bundle.set_variant(variant.name, status="failed", reason=str(exc))
        return None
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
        return None
    return cmd


def _time(bundle: Bundle, ready: list[tuple[Variant, list[str]]], opts: RunOptions, knobs: Restorer
          ) -> tuple[dict[str, str | None], Interference]:
    """Time the variants (one alone, or several interleaved) and what else used the machine meanwhile."""
    start = interference.snapshot()
    if len(ready) > 1:
        failed = _run_pyperf_interleaved(bundle, ready, opts, knobs)
    else:
        failed = {v.name: _run_pyperf(bundle, v, cmd, opts) for v, cmd in ready}
    return failed, interference.between(start, interference.snapshot(), above_cpus=opts.disturbed_above,
                                         above_steal=opts.steal_above)


def run_group(bundle: Bundle, group: list[Variant], opts: RunOptions, programs: Programs, facts: HostFacts,
              knobs: Restorer) -> None:
    """Prepare each variant, time them, time them again once if something else disturbed the machine,
    then count each under perf."""
    ready = [(v, cmd) for v in group if (cmd := _prepare(bundle, v, opts, programs, knobs)) is not None]
    failed, seen = _time(bundle, ready, opts, knobs)
    first = seen.disturbed
    if first and opts.retry_disturbed and ready:
        failed, seen = _time(bundle, ready, opts, knobs)
    record = {**seen.to_json(), "retried_after": first if first and opts.retry_disturbed else None}
    for variant, cmd in ready:
        if failed[variant.name]:
            bundle.set_variant(variant.name, status="failed", reason=failed[variant.name], interference=record)
            continue
        _host_knobs(bundle, variant, knobs)  # the perf pass runs under the variant's own parameters
        perf = _perf_pass(bundle, variant, cmd, opts, facts)
        bundle.set_variant(variant.name, status="measured", reason=None,
                           pyperf=bundle.rel(bundle.variant_path(variant.name, "pyperf.json")),
                           raw=bundle.rel(bundle.variant_path(variant.name, "raw.jsonl")), perf=perf,
                           interference=record)
