"""The linux.* variants of a run: a real Linux guest under QEMU, booted once per guest configuration.

A configuration is what needs a boot of its own: the CET QEMU's vCPU offers (vcet) and the guest
kernel's command line (kibt=off adds `ibt=off`); the shstk axis is the workload task's own and shares
the boot. Per configuration:

1. the lab's kernel and image (bench/lab: the same initramfs, agent and job file as the bochs lab),
   QEMU from bench/lab/qemu.py, KVM where this host has hardware virtualization, else TCG (every
   figure then labelled emulated);
2. the jobs: WORKERS timed worker processes per variant, no tracepoints (they would inflate the
   time), alternated between the variants round by round so drift cancels between them; then two
   counting runs per variant (N and 2N ops) with the workload's guest-side tracepoints, whose
   difference over N is the count per op (start-up and teardown cancel);
3. QEMU refusing the vCPU (`enforce`) makes the configuration's variants unsupported in QEMU's words;
   the guest's own /proc/cpuinfo and command line must then show the CET the configuration names,
   or its variants are not measured (a CET-on figure is never taken with CET off);
4. each timed worker process becomes one pyperf run of the variant (one value: its seconds per op),
   so statistics stay per process as for every other variant.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyperf

from cetbench.facts import HostFacts
from cetbench.lab.errors import LabError
from cetbench.lab.image import ImagePrograms
from cetbench.lab.install import installed_kernel
from cetbench.lab.jobs import JobResult, LabJob
from cetbench.lab.qemu import CET_FLAGS, Qemu, cpu_refusal, find_qemu, machine
from cetbench.lab.qemu_counts import SETTLE_S, HostCounter
from cetbench.lab.qemu_run import QemuRefused, run_qemu
from cetbench.lab.run import LabRun
from cetbench.lab.suite import tracepoints, variant_outcome
from cetbench.native import NativeOutcome, variant_command
from cetbench.probe_qemu import qemu_accel
from cetbench.results.bundle import Bundle, atomic_write_json, slug
from cetbench.workloads.table import Variant
from cetbench.workloads.variants import AXIS_BY_NAME

WORKERS = {True: 6, False: 20}  # timed worker processes per variant: quick, full (pyperf's counts)
JOB_TIMEOUT_S = 120.0  # guest seconds per job
BOOT_S = 240.0  # host seconds for boot and power-off, beyond the jobs' own time
DIR = "linux"  # each boot's files inside the bundle: linux/<configuration>/

BootConfig = tuple[tuple[str, str], ...]  # (axis, value) of the axes that need a boot: vcet, kibt
_BOOT_AXES = ("vcet", "kibt")
Progress = Callable[[str], None]


def boot_config(variant: Variant) -> BootConfig:
    return tuple((a, v) for a in _BOOT_AXES if (v := variant.id.value(a)) is not None)


def offered(config: BootConfig) -> frozenset[str]:
    """The CET features the vCPU offers in this configuration."""
    return AXIS_BY_NAME["vcet"].features(dict(config).get("vcet", "none"))


def kernel_args(config: BootConfig) -> str:
    return "ibt=off" if dict(config).get("kibt") == "off" else ""


def cpuinfo_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return set(value.split())
    return set()


def guest_cet_problem(config: BootConfig, files: dict[str, str]) -> tuple[str, str, str] | None:
    """(status, refused by, why) when the booted guest does not show the CET its configuration names;
    None when it does. The guest kernel sets `user_shstk` in /proc/cpuinfo when it allows user shadow
    stacks and `ibt` when kernel IBT is on (`ibt=off` clears it: arch/x86/kernel/cet.c ibt_setup)."""
    if "proc/cpuinfo" not in files:
        return "failed", "", "the guest did not report its /proc/cpuinfo"
    flags = cpuinfo_flags(files["proc/cpuinfo"])
    features = offered(config)
    ibt_wanted = "ibt" in features and dict(config).get("kibt") != "off"
    if "shstk" in features and "user_shstk" not in flags:
        return ("unsupported", "kernel", "the guest kernel does not allow user shadow stacks (no user_shstk in its "
                "/proc/cpuinfo) although the vCPU offers cet-ss")
    if ibt_wanted and "ibt" not in flags:
        return "unsupported", "kernel", "the guest kernel did not turn IBT on (no ibt in its /proc/cpuinfo) " \
                                        "although the vCPU offers cet-ibt"
    if "shstk" not in features and "user_shstk" in flags:
        return "failed", "", "the guest shows user_shstk although the vCPU should not offer cet-ss"
    if not ibt_wanted and "ibt" in flags:
        return "failed", "", "the guest kernel has IBT on although this configuration turns it off"
    return None


def count_ops(variant: Variant) -> int:
    """N of a variant's counting runs (N and 2N ops): a tenth of a worker's, at least 50."""
    return max(50, variant.workload.guest_ops // 10)


def host_events(variant: Variant) -> tuple[str, ...]:
    """The variant's events only the host can count (its KVM's): counted around QEMU under KVM."""
    return tuple(e for e in variant.workload.key_events if e.startswith("kvm:"))


def _jobs(variants: Sequence[Variant], workers: int, programs: ImagePrograms, settle_s: float = 0.0) -> list[LabJob]:
    cmds = {v.name: tuple(variant_command(v, programs, cpu=0)) for v in variants}
    timed = [LabJob(f"{v.name}#{r}", (*cmds[v.name], "--iterations", str(v.workload.guest_ops)),
                    timeout_s=JOB_TIMEOUT_S)
             for r in range(workers) for v in (variants if r % 2 == 0 else variants[::-1])]
    # In-guest tracepoints only: a kvm:* event counts the host's KVM, which only the host can see.
    counting = [LabJob(f"{v.name}x{k}", (*cmds[v.name], "--iterations", str(k * count_ops(v))), timeout_s=JOB_TIMEOUT_S,
                       events=tuple(e for e in tracepoints(v) if not e.startswith("kvm:")),
                       settle_s=settle_s if host_events(v) else 0.0)
                for v in variants for k in (1, 2)]
    return [*timed, *counting]


def _difference(one: Mapping[str, float | None], two: Mapping[str, float | None], n: int, note: str | None
                ) -> dict[str, dict[str, Any]]:
    out = {}
    for e, c1 in one.items():
        c2 = two.get(e)
        if c1 is not None and c2 is not None:
            out[e] = {"count": c2 - c1, "per_op": (c2 - c1) / n, "state": "counted", "note": note, "unit": None,
                      "running_pct": None}
    return out


def _perf_doc(variant: Variant, one: JobResult, two: JobResult, host: tuple[dict[str, float | None], ...] | str
              ) -> dict[str, Any]:
    """`host`: the kvm:* counts of the N and 2N runs from around QEMU, or why there are none."""
    n = count_ops(variant)
    events = _difference({e: float(c) for e, c in one.counts.items()}, {e: float(c) for e, c in two.counts.items()},
                         n, None)
    if isinstance(host, str):
        for e in host_events(variant):
            events[e] = {"count": None, "per_op": None, "state": "not counted", "unit": None, "running_pct": None,
                         "note": f"a host KVM event: {host}"}
    else:
        events.update(_difference(host[0], host[1], n, "host: perf stat -p QEMU from the job's start line to its "
                                                       "result line"))
    return {"schema": 1, "available": True, "reason": None, "command": None, "returncode": 0,
            "ops_requested": n, "ops": n, "inherit": True, "requested": list(events),
            "key_events": list(variant.workload.key_events), "events": events, "workload": one.record,
            "scope": f"Linux guest tracepoints: counts of a {2 * n}-op run less those of a {n}-op run, "
                     f"over {n} ops (start-up and teardown cancel)"}


def _host_counts(variant: Variant, run: LabRun, counter: HostCounter | None, accel: str
                 ) -> tuple[dict[str, float | None], ...] | str:
    if accel != "kvm":
        return "no VM exits under TCG"
    if counter is None:
        return "perf is not usable on this host"
    index = {r.id: i + 1 for i, r in enumerate(run.jobs)}  # console index: the boot's probe job is 0
    got = []
    for k in (1, 2):
        i = index[f"{variant.name}x{k}"]
        if i in counter.errors:
            return counter.errors[i]
        got.append({e: c.count for e, c in counter.counts.get(i, {}).items()})
    return tuple(got)


def _record(bundle: Bundle, variant: Variant, run: LabRun, workers: int, accel: str, guest: str,
            counter: HostCounter | None = None) -> None:
    """The variant's entry from its boot: unsupported or failed at its first worker that was not
    measured, else its pyperf runs, raw records and guest-side counts."""
    results = {r.id: r for r in run.jobs}
    timed = [results[f"{variant.name}#{r}"] for r in range(workers)]
    for result in timed:
        outcome: NativeOutcome = variant_outcome(variant, result)
        if not outcome.measured:
            _set(bundle, variant, outcome.status, outcome.reason, outcome.refused_by, guest)
            return
    runs = []
    for result in timed:
        record = result.record or {}
        ops, elapsed = record.get("iterations"), record.get("elapsed_ns")
        if not (isinstance(ops, int) and ops > 0 and isinstance(elapsed, int) and elapsed > 0):
            _set(bundle, variant, "failed", f"worker {result.id} reported iterations={ops!r} elapsed_ns={elapsed!r}",
                 None, guest)
            return
        md = {"name": variant.name, "unit": "second", "loops": ops, "linux_job": result.id}
        runs.append(pyperf.Run([elapsed / 1e9 / ops], metadata=md, collect_metadata=False))
    pyperf_path = bundle.variant_path(variant.name, "pyperf.json")
    raw_path = bundle.variant_path(variant.name, "raw.jsonl")
    tmp = pyperf_path.with_name(f".{pyperf_path.name}.partial")
    pyperf.BenchmarkSuite([pyperf.Benchmark(runs)]).dump(str(tmp), replace=True)
    raw_tmp = raw_path.with_name(f".{raw_path.name}.partial")
    raw_tmp.write_text("".join(json.dumps(r.record, separators=(",", ":")) + "\n" for r in timed))
    raw_tmp.replace(raw_path)
    tmp.replace(pyperf_path)
    one, two = results[f"{variant.name}x1"], results[f"{variant.name}x2"]
    perf = None
    if variant_outcome(variant, one).measured and variant_outcome(variant, two).measured:
        perf_path = bundle.variant_path(variant.name, "perf.json")
        atomic_write_json(perf_path, _perf_doc(variant, one, two, _host_counts(variant, run, counter, accel)))
        perf = bundle.rel(perf_path)
    bundle.set_variant(variant.name, status="measured", reason=None, pyperf=bundle.rel(pyperf_path),
                       raw=bundle.rel(raw_path), perf=perf, linux_guest=guest)


def _set(bundle: Bundle, variant: Variant, status: str, reason: str | None, by: str | None,
         guest: str | None = None) -> None:
    """`guest`: the key of the variant's boot in the manifest's `linux_guests`."""
    refusals = [{"by": by or "workload", "reason": reason}] if status == "unsupported" else []
    bundle.set_variant(variant.name, status=status, reason=reason, refused_by=by if status == "unsupported" else None,
                       refusals=refusals, linux_guest=guest)


def run_config(bundle: Bundle, config: BootConfig, variants: Sequence[Variant], facts: HostFacts, quick: bool,
               qemu: Qemu) -> None:
    """Boot one configuration and record its variants."""
    features = offered(config)
    unknown = [CET_FLAGS[f] for f in sorted(features) if not qemu.knows(f)]
    if unknown:
        why = f"{qemu.description} does not know {' or '.join(unknown)} (its -cpu help; QEMU >= 10.2 has them)"
        for v in variants:
            _set(bundle, v, "unsupported", why, "qemu")
        return
    kernel = installed_kernel()
    if isinstance(kernel, str):
        for v in variants:
            _set(bundle, v, "unsupported", f"no guest kernel: {kernel}", "host")
        return
    accel, accel_why = qemu_accel(facts.kvm)
    workers = WORKERS[quick]
    key = ",".join(f"{a}={v}" for a, v in config)
    workdir = bundle.root / DIR / slug(key)
    shutil.rmtree(workdir, ignore_errors=True)  # a resumed run boots the configuration again
    guests = bundle.manifest.setdefault("linux_guests", {})  # each boot once; its variants name it
    guest: dict[str, Any] = {"qemu": qemu.to_json(), "accel": accel, "accel_reason": accel_why,
                             "qemu_args": machine(qemu, accel, features)[len(qemu.argv):],
                             "kernel": kernel.to_json(), "kernel_args": kernel_args(config),
                             "files": bundle.rel(workdir)}
    guests[key] = guest
    counted = accel == "kvm" and facts.perf.usable and facts.perf.binary is not None
    jobs = _jobs(variants, workers, ImagePrograms(), SETTLE_S if counted else 0.0)
    counter = None
    if counted:  # the kvm:* key events of the counting runs, around QEMU (console index: job i is i + 1)
        owner = {f"{v.name}x{k}": v for v in variants for k in (1, 2)}
        counter = HostCounter(str(facts.perf.binary),
                              {i + 1: host_events(owner[j.id]) for i, j in enumerate(jobs) if j.settle_s})
    try:
        refused = cpu_refusal(qemu, accel, features)
        if refused is not None:
            raise QemuRefused(refused)
        run = run_qemu(qemu, accel, features, kernel, jobs, workdir, BOOT_S + JOB_TIMEOUT_S * len(variants) * 2,
                       kernel_args(config), counter=counter)
    except QemuRefused as exc:
        for v in variants:
            _set(bundle, v, "unsupported", f"QEMU ({accel.upper()}): {exc}", "qemu", key)
        return
    except LabError as exc:
        for v in variants:
            _set(bundle, v, "failed", str(exc), None, key)
        return
    guest.update(boot_s=run.boot_s, total_s=run.total_s, emulator=run.emulator, failure=run.failure)
    if accel != "kvm":
        _label_emulated(bundle, f"linux.* in {run.emulator}")
    problem = guest_cet_problem(config, run.probe_files)
    for v in variants:
        if problem is not None:
            status, by, why = problem
            _set(bundle, v, status, why, by or None, key)
        else:
            _record(bundle, v, run, workers, accel, key, counter)


def _label_emulated(bundle: Bundle, what: str) -> None:
    """Name the emulator in the run's backend (every report labels emulated figures with it); a guest.*
    variant on a software KVM in the same run keeps its own words beside it."""
    backend = bundle.manifest.setdefault("backend", {"name": "host"})
    said = [e for e in str(backend.get("emulator") or "").split("; ") if e]
    if not said and any(v.get("kind") == "guest" and v.get("emulated") for v in bundle.manifest["variants"].values()):
        said.append("guest.* on a KVM without VMX/SVM")
    if what not in said:
        backend["emulator"] = "; ".join([*said, what])
    bundle.save()


def run_linux_variants(bundle: Bundle, variants: Sequence[Variant], facts: HostFacts, quick: bool,
                       progress: Progress | None = None) -> None:
    """Every linux.* variant of `variants`, one boot per configuration, in table order."""
    groups: dict[BootConfig, list[Variant]] = {}
    for v in variants:
        groups.setdefault(boot_config(v), []).append(v)
    qemu = find_qemu()
    for config, members in groups.items():
        if progress:
            progress(f"Linux guest [{','.join(f'{a}={v}' for a, v in config)}]: {len(members)} variant(s)")
        if isinstance(qemu, str):
            for v in members:
                _set(bundle, v, "unsupported", qemu, "qemu")
            continue
        run_config(bundle, config, members, facts, quick, qemu)
