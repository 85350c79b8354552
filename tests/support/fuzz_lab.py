"""The lab's result stream as a target of the input fuzz harness (tests/support/fuzz.py).

The template is the serial console of one clean lab boot, written line by line as the in-guest agent
writes it (workloads/lab/agent_main.c, agent_job.c, agent_out.c: `\\nCETBENCH-LAB <kind> <crc32> <json>\\n`
through a tty, so `\\r\\n`) among the kernel's own messages: marks, the probe files (text, hex, an MSR
at its offset, `exists`), then per job a `start` and a `job` line, for cetbench-probe and both sizes of
a few variants. No lab boot: the jobs are those `variant_jobs` writes, the guest a fixture host.

One case mutates that log (truncation mid-line, garbled or non-UTF-8 bytes, a kernel message mixed
into a line, a panic in the middle, a line dropped, repeated or moved, and, re-framed with a CRC that
checks out as a buggy or other-version agent would send it: a wrong type at any depth, missing and
extra keys, huge/negative/NaN counts, duplicate and out-of-range job indexes, odd probe file paths)
and reads it as a boot does: bytes as latin-1 in chunks of any size into a SerialFollower, each
arriving `job` line through run_lab's live callback, then lab_run_from, write_bundle into a fresh
directory, and ingest of that bundle into every store of the fuzzer.

It ends well when nothing raised; every job's result is well-typed (`job_problem`); each job whose
lines the mutation left alone has exactly the template's result, and each other one either a
correct result of what its line says or an error; a `Kernel panic` string inside a job's output is
not taken for a panic; the variants of untouched jobs keep the template's status when the probe's
lines are untouched too; and the bundle ingests whole or is an input error naming the file.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cetbench.lab.boot import POWER_OFF, BootOutcome
from cetbench.lab.bundle import write_bundle
from cetbench.lab.image import ImagePrograms
from cetbench.lab.jobs import PROBE_JOB_ID, JobResult, LabJob
from cetbench.lab.kernel import Kernel
from cetbench.lab.run import LabRun, lab_run_from, live_result
from cetbench.lab.serial import TAG, SerialFollower
from cetbench.lab.suite import ITERATIONS, variant_jobs
from cetbench.workloads.build import BuiltProgram
from cetbench.workloads.table import Variant, by_name
from cetbench.workloads.variants import GUEST
from tests.support import fuzz_json
from tests.support.fuzz_oracle import Outcome, uncaught
from tests.support.hostfixtures import HOSTS

if TYPE_CHECKING:
    from tests.support.fuzz import Fuzzer

SELECTION = ("host.syscall[shstk=off]", "host.syscall[shstk=on]", "guest.vmexit.cpuid[cet=none]",
             "guest.vmexit.cpuid[cet=shstk]")
RELEASE = "7.2.13+deb14-amd64"
HOST = HOSTS["intel-spr-cet"]
PANIC_LINE = b"[   12.345678] Kernel panic - not syncing: Fatal exception in interrupt"
KERNEL_NOISE = (b"[    7.012345] kvm: vcpu0, guest rIP: 0xffffffff81000000 unhandled rdmsr: 0x140",
                b"[    3.1] x86/fpu: Supported XSAVE feature 0x800: 'Control-flow User registers'",
                b"[ 9.9] WARNING: CPU: 0 PID: 77 at arch/x86/kvm/x86.c:1234 kvm_arch_vcpu_ioctl_run",
                b"\x1b[0m\x00\xff\xfe", b"random noise \xe9\xc3\x28")
ODD_PATHS = ("", "/etc/hostname", "../outside", "proc/../../x", "proc/./cpuinfo", "proc//cpuinfo", ".", "..",
             "proc/cpuinfo/x", "proc", "a\x00b", "x" * 300, "/".join(["d"] * 2000), "\udcff", "é/ü", "proc\\..\\x",
             "dev/cpu/0/msr", "sys/kernel/notes", "boot/config-" + RELEASE)

ODD_DATA = ("zz", "abc", 5, None, ["00"], "\x00", "x" * 600_000, "é", "7.2\x00x\n", "../../../../../../etc/hostname\n",
            "", "\n" * 1000, "\u00b2\n", "-\n", "nan inf -1 1/2 3\n", "processor\t:\nflags\t:\n\nprocessor : x\n",
            "=\n", "cet=\n")


class _ImageStub(ImagePrograms):
    """The image's paths without building the programs (only the job ids and events matter here)."""

    def host_build(self, name: str) -> BuiltProgram:
        return BuiltProgram(name, Path("/build", name), Path("/build", name), "0" * 64)


def frame(kind: str, body: bytes) -> bytes:
    """One agent line as the console carries it: a newline first, then tag, kind, CRC and JSON."""
    return b"\r\n" + f"{TAG} {kind} {zlib.crc32(body):08x} ".encode() + body + b"\r\n"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()  # ASCII only, as the agent escapes


@dataclass
class Segment:
    data: bytes
    kind: str  # kernel | mark | file | start | job
    index: int | None = None  # the job index of a start or job line


def _record(v: Variant, iterations: int) -> str:
    """The last JSON line the workload prints (workloads/host/common.c, workloads/vmm/vmm_report.c)."""
    if v.workload.kind == GUEST:
        rec: dict[str, Any] = {"iterations": iterations, "elapsed_ns": 912_345 * iterations,
                               "tsc_ticks": 2_000_000 * iterations, "guest_cycles": 1_500 * iterations, "cpu": 0,
                               "inject_cycles": 0, "inject_units": 0, "cet_active": v.id.value("cet") or "none",
                               "cetu": "off", "save_method": "xsaves", "kvm_api": 12}
    else:
        rec = {"iterations": iterations, "elapsed_ns": 4_321 * iterations, "tsc_ticks": 9_000 * iterations,
               "cpu": 0, "inject_cycles": 0, "inject_loops_per_op": 0, "inject_calibrated_ticks": 0.0,
               "shstk": v.id.value("shstk") or "off", "ssp": "0x7ffff7ff8ff8", "x86_thread_features": "shstk"}
    return json.dumps(rec)


def _job_line(job: LabJob, index: int, record: str | None, counts: dict[str, int]) -> dict[str, Any]:
    """What agent_job.c writes for a job that ran to its end."""
    return {"id": job.id, "index": index, "kvm_intel": {"cet": "Y", "ept": "Y"}, "guest_s": 0.25 + index / 100,
            "timed_out": False, "exit_code": 0, "signal": None, "record": record,
            "output_tail": ["starting", f"{job.id} done"], "counts": counts, "event_errors": {}, "error": None}


def serial_segments(all_jobs: list[LabJob], variants: list[Variant]) -> list[Segment]:
    """The serial console of a clean boot running `all_jobs` (all_jobs[0]: the probe)."""
    segs = [Segment(f"[    0.000000] Linux version {RELEASE} (debian-kernel@lists.debian.org)\r\n".encode(), "kernel"),
            Segment(b"[    0.000000] Command line: console=ttyS0,115200 mitigations=off\r\n", "kernel")]

    def mark(name: str, at: float) -> None:
        segs.append(Segment(frame("mark", _json({"name": name, "uptime": at})), "mark"))

    def file(obj: dict[str, Any]) -> None:
        segs.append(Segment(frame("file", _json(obj)), "file"))

    mark("init-start", 1.912)
    mark("modules-loaded", 2.5)
    for rel, text in _probe_texts().items():
        file({"path": rel, "encoding": "text", "data": text})
    notes = bytes.fromhex("04000000" "14000000" "03000000") + b"GNU\0" + bytes(range(20))
    file({"path": "sys/kernel/notes", "encoding": "hex", "data": notes.hex()})
    file({"path": "dev/cpu/0/msr", "encoding": "hex", "offset": 0xDA0,
          "data": (HOST.msr_xss or 0).to_bytes(8, "little").hex()})
    for rel in ("dev/kvm", "sys/kernel/tracing/events/kvm", "sys/kernel/tracing/events/x86_fpu"):
        file({"path": rel, "exists": True})
    file({"path": "tmp/cet-boot-lines", "encoding": "text",
          "data": "[    0.1] x86/cet: user shadow stack enabled\n"})
    mark("jobs-start", 3.0)
    by_id = {f"{v.name}x{k}": (v, k) for v in variants for k in (1, 2)}
    for i, job in enumerate(all_jobs):
        segs.append(Segment(frame("start", _json({"id": job.id, "index": i, "uptime": 3.0 + i})), "start", i))
        if i % 3 == 1:
            segs.append(Segment(KERNEL_NOISE[i % 2] + b"\r\n", "kernel"))
        if job.id == PROBE_JOB_ID:
            record, counts = json.dumps(HOST.native()), {}
        else:
            v, k = by_id[job.id]
            n = k * ITERATIONS["guest" if v.workload.kind == GUEST else "host"]
            record = _record(v, n)
            counts = {e: 40 + n * (j + 1) for j, e in enumerate(job.events)}
        segs.append(Segment(frame("job", _json(_job_line(job, i, record, counts))), "job", i))
    mark("done", 3.5 + len(all_jobs))
    segs.append(Segment(b"[   40.1] reboot: Power down\r\n", "kernel"))
    return segs


def _probe_texts() -> dict[str, str]:
    """The text probe files of the fixture host, as `dump text` sends them (paths without the `/`)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = HOST.write_tree(Path(tmp))
        out = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = str(path.relative_to(root))
            if rel.startswith(("proc/", "sys/module/")) and not rel.endswith(".gz"):
                out[rel] = path.read_text()
        out["proc/sys/kernel/osrelease"] = RELEASE + "\n"
        out["proc/modules"] = "kvm_intel 425984 0 - Live 0x0\nkvm 1392640 1 kvm_intel, Live 0x0\n"
        return out


@dataclass
class LabTemplate:
    segments: list[Segment]
    jobs: list[LabJob]  # all_jobs: the probe first
    variants: list[Variant]
    kernel: Kernel
    results: list[dict[str, Any]]  # the clean log's result of each job but the probe (to_json without wall_s)
    statuses: dict[str, tuple[str, str | None]]  # variant -> (status, reason) in the clean bundle

    @classmethod
    def build(cls, directory: Path) -> LabTemplate:
        directory.mkdir(parents=True, exist_ok=True)
        variants = [by_name(n) for n in SELECTION]
        probe = LabJob(PROBE_JOB_ID, ("/bin/cetbench-probe",), timeout_s=60.0)
        all_jobs = [probe, *variant_jobs(variants, _ImageStub())]
        config = directory / f"config-{RELEASE}"
        config.write_text("".join(f"CONFIG_{k}={v}\n" for k, v in (HOST.config or {}).items())
                          + "CONFIG_KVM=m\nCONFIG_KVM_INTEL=m\nCONFIG_X86_MSR=m\n")
        kernel = Kernel(release=RELEASE, vmlinuz=directory / "vmlinuz", modules_dir=directory, config=config,
                        origin="path", spec="fuzz", vmlinuz_sha256="0" * 64, root=directory)
        tpl = cls(serial_segments(all_jobs, variants), all_jobs, variants, kernel, [], {})
        run, bundle, _ = read_lab(b"".join(s.data for s in tpl.segments), tpl, directory / "clean",
                                  random.Random(0))
        tpl.results = [_comparable(r) for r in run.jobs]
        tpl.statuses = {n: (v["status"], v["reason"]) for n, v in bundle.items()}
        clean = run.native_probe == HOST.native() and {s for s, _ in tpl.statuses.values()} == {"measured"}
        if run.failure or any(r.error for r in run.jobs) or not clean:
            raise AssertionError(f"the lab fuzz template is not a clean run: {run.failure} "
                                 f"{[r.error for r in run.jobs]} {tpl.statuses}")
        return tpl


def _comparable(r: JobResult) -> dict[str, Any]:
    out = r.to_json()
    del out["wall_s"]
    return out


def read_lab(log: bytes, tpl: LabTemplate, workdir: Path, rng: random.Random,
             live: list[JobResult] | None = None) -> tuple[LabRun, dict[str, Any], Path]:
    """Read a serial log as run_lab reads a boot's (bench/lab/boot.py), then write its bundle: returns the
    LabRun, the bundle's variants and its root."""
    workdir.mkdir(parents=True)
    (workdir / "serial.log").write_bytes(log)
    follower = SerialFollower()
    marks: dict[str, float] = {}
    at, now = 0, 0.0
    while True:
        size = rng.choice((1, 7, 64, 4096, 1 << 20))
        chunk = log[at:at + size]
        at += len(chunk)
        now += 0.01
        new = follower.feed(chunk.decode("latin-1"), now)
        if at >= len(log):
            new += follower.finish(now)
        for line in new:
            if line.kind == "mark":
                marks.setdefault(str(line.data.get("name")), now)
            result = live_result(tpl.jobs, line)
            if result is not None and live is not None:
                live.append(result)
        if at >= len(log):
            break
    done = "done" in marks
    bochs_log = workdir / "bochs.log"
    bochs_log.write_text(f"04886239859p[ACPI  ] >>PANIC<< {POWER_OFF}\n" if done else
                         "01234567890p[CPU0  ] >>PANIC<< exception(): 3rd (13) exception with no resolution\n")
    outcome = BootOutcome(serial_log=workdir / "serial.log", bochs_log=bochs_log, returncode=1, powered_off=done,
                          timed_out=False, wall_s=now, stalled_s=None, serial=follower, marks=marks)
    run = lab_run_from(outcome, tpl.jobs, tpl.kernel, "bochs (fuzz) cpu model tigerlake", 1800.0,
                       time.monotonic(), 0.0)
    root = workdir.parent / (workdir.name + "-bundle")
    bundle = write_bundle(root, run, workdir, tpl.variants, "fuzz")
    return run, bundle.manifest["variants"], root


# --- mutations ---------------------------------------------------------------------------------------

@dataclass
class Mutated:
    log: bytes
    name: str
    touched: set[int]  # job indexes whose lines the mutation may have changed (or duplicated)
    probe_touched: bool  # a file line, a mark, or the probe job's lines
    panic: bool  # a real panic line was put on the console


def _reframe(seg: Segment, body: bytes) -> bytes:
    return frame(seg.kind, body)


def _body(seg: Segment) -> bytes:
    return seg.data.strip(b"\r\n").split(b" ", 3)[3]


def _indexes_in(body: bytes) -> set[int]:
    """Job indexes a (mutated) line may claim."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return set()
    index = data.get("index") if isinstance(data, dict) else None
    if isinstance(index, (int, float)) and not (isinstance(index, float) and not math.isfinite(index)):
        return {int(index)} if abs(index) < 1e6 else set()
    return set()


BAD_INDEXES: tuple[Any, ...] = (-1, 10**30, True, False, 1.0, 2.5, "1", None, [1], {"i": 1}, float("nan"))
BAD_COUNTS: tuple[Any, ...] = (-1, 2**64, 2**70, float("nan"), float("inf"), 1.5, "12", True, None, [], {},
                               fuzz_json.Raw("1" + "0" * 5000), fuzz_json.Raw("1e400"))
BAD_FIELDS: dict[str, tuple[Any, ...]] = {
    "exit_code": ("0", 1.5, True, -1, 256, 2**63, float("nan"), [], {}),
    "signal": ("9", -3, 0, 2**40, 1.0, True, [], {}),
    "timed_out": ("yes", 1, None, []),
    "guest_s": (float("nan"), float("inf"), -1.0, "0.5", True, [], 1e308),
    "record": (5, {"iterations": 1}, "not json", "[1]", '{"iterations": NaN, "elapsed_ns": 1}', "[" * 100_000,
               '{"iterations": -5, "elapsed_ns": 0}', '{"iterations": 1e400, "elapsed_ns": 1}',
               '{"iterations": ' + "9" * 5000 + '}', '{"iterations": 1000, "elapsed_ns": 1, "shstk": 5}',
               '{"iterations": true, "elapsed_ns": true}', '{"iterations": 10, "iterations": 20}', ""),
    "output_tail": ("text", [1, None], {}, [["x"]], ["Kernel panic - not syncing: in the workload's output"]),
    "kvm_intel": ("Y", {"cet": 1}, [], {"cet": None}, {"": ""}),
    "error": (1, [], {}, "", True, "x" * 100_000),
    "event_errors": ([], {"x": 1}, "e", {"kvm:kvm_exit": None}),
    "id": ("cetbench-probe", 5, "", None, "other", "\udcff"),
    "counts": ([], "12", None, {"": 1}, {"nonsuch:event": 5}),
}


def _targeted(rng: random.Random, seg: Segment, n_jobs: int) -> tuple[bytes, str, set[int]]:
    """One field of a start or job line set to what the agent never writes; re-framed."""
    data = json.loads(_body(seg))
    touched: set[int] = set()
    roll = rng.random()
    if roll < 0.25 or seg.kind == "start":
        value = rng.choice((*BAD_INDEXES, n_jobs, n_jobs + 1, rng.randrange(n_jobs)))
        data["index"] = value
        what = f"index {value!r}"[:60]
        if isinstance(value, int) and not isinstance(value, bool):
            touched.add(value)
    elif roll < 0.45 and data.get("counts"):
        key = rng.choice(list(data["counts"]))
        data["counts"][key] = value = rng.choice(BAD_COUNTS)
        what = f"count {value!r}"[:60]
    elif roll < 0.6:
        key = rng.choice(list(data))
        del data[key]
        what = f"missing {key}"
    elif roll < 0.7:
        data[rng.choice(("extra", "index2", "", "counts ", "ID"))] = fuzz_json.random_value(rng)
        what = "extra key"
    else:
        key = rng.choice(list(BAD_FIELDS))
        data[key] = value = rng.choice(BAD_FIELDS[key])
        what = f"{key} {value!r}"[:60]
    body = fuzz_json.dump(_as_tree(data))
    return _reframe(seg, body), f"job line: {what}", touched


def _as_tree(value: Any) -> Any:
    """A plain JSON value as fuzz_json's tree (so Raw numbers and NaN are written as given)."""
    if isinstance(value, dict):
        return fuzz_json.Obj((k, _as_tree(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_as_tree(v) for v in value]
    return value


def _workload(rng: random.Random, segs: list[Segment]) -> tuple[str, set[int]]:
    """A variant's job line (re-framed) with its workload's record mutated, its counts odd, or its 2N
    run counting fewer events than its N run; a record one time in three at both sizes alike."""
    lines = {json.loads(_body(s))["id"]: i for i, s in enumerate(segs) if s.kind == "job" and s.index}
    first = rng.choice(sorted(lines))
    base = first[:-2]
    op = rng.choice(("record", "record", "record field", "counts fall", "count max"))
    if op == "counts fall":
        i = lines[base + "x2"]
        data = json.loads(_body(segs[i]))
        data["counts"] = {k: 3 for k in data["counts"]}
        segs[i].data = _reframe(segs[i], fuzz_json.dump(_as_tree(data)))
        return "workload output: the 2N run counted fewer than the N run", {i}
    pair = [lines[first]] if rng.random() < 0.67 else [lines[base + "x1"], lines[base + "x2"]]
    seed, what = rng.random(), ""
    for i in pair:
        data = json.loads(_body(segs[i]))
        r = random.Random(seed)  # both sizes alike
        if op == "record":
            body, what = fuzz_json.mutate(r, data["record"].encode())
            data["record"] = body.decode("latin-1")  # the agent sends each byte as its code point
        elif op == "record field":
            record = json.loads(data["record"])
            key = r.choice(("iterations", "elapsed_ns", "iterations", "shstk", "cet_active"))
            record[key] = r.choice((5, 0, -1, True, None, "1000", 1.5, 10**30, float("nan"), "on", "none"))
            what = f"{key} {record[key]!r}"
            data["record"] = json.dumps(record)
        else:
            data["counts"] = {k: 2**64 - 1 for k in data["counts"]}
            what = "counts 2^64-1"
        segs[i].data = _reframe(segs[i], fuzz_json.dump(_as_tree(data)))
    return f"workload output ({len(pair)} size(s)): {what}", set(pair)


def _file_line(rng: random.Random, seg: Segment) -> tuple[bytes, str]:
    data = json.loads(_body(seg))
    roll = rng.random()
    if roll < 0.5:
        data["path"] = value = rng.choice((*ODD_PATHS, 5, None, [], {"p": 1}))
        what = f"path {value!r}"[:60]
    elif roll < 0.75:
        data["offset"] = value = rng.choice((-8, 2**64, 2**40, 10**12, "0xda0", 1.5, None, True, float("nan")))
        data.setdefault("data", "00" * 8)
        what = f"offset {value!r}"
    else:
        data["data"] = value = rng.choice(ODD_DATA)
        what = f"data {value!r}"[:60]
    return _reframe(seg, fuzz_json.dump(_as_tree(data))), f"file line: {what}"


def _insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = rng.choice((b"\x00", b"\xff\xfe", b"\r", b"\n", b"\r\n", b"\x1b[0m", b"\xc3", b"}", b'"', b" ",
                       bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))))
    return data[:at] + junk + data[at:]


def mutate(rng: random.Random, segs: list[Segment], n_jobs: int) -> Mutated:
    segs = [Segment(s.data, s.kind, s.index) for s in segs]
    framed = [i for i, s in enumerate(segs) if s.kind != "kernel"]
    jobish = [i for i in framed if segs[i].kind in ("start", "job")]
    touched: set[int] = set()
    changed: set[int] = set()  # segment positions
    panic = False
    roll = rng.random()
    if roll < 0.03:
        name = "none"
    elif roll < 0.13:  # truncation mid-line: the log of a machine killed there
        log = b"".join(s.data for s in segs)
        cut = rng.randrange(len(log))
        start = 0
        for i, s in enumerate(segs):
            if start + len(s.data) > cut:
                changed.add(i)
            start += len(s.data)
        return _result(segs, changed, log[:cut], "truncation", set())
    elif roll < 0.23:  # the console garbled bytes of one line
        i = rng.choice(framed)
        op = rng.randrange(3)
        if op == 0:
            segs[i].data, _ = fuzz_json.flip(rng, segs[i].data, None)
        elif op == 1:
            segs[i].data, _ = fuzz_json.non_utf8(rng, segs[i].data, None)
        else:
            segs[i].data = _insert_bytes(rng, segs[i].data)
        changed.add(i)
        name = "garbled bytes"
    elif roll < 0.29:  # a kernel message mixed into a line
        i = rng.choice(framed)
        at = rng.randrange(len(segs[i].data) + 1)
        noise = rng.choice(KERNEL_NOISE)
        if rng.random() < 0.5:
            noise = b"\r\n" + noise + b"\r\n"
        segs[i].data = segs[i].data[:at] + noise + segs[i].data[at:]
        changed.add(i)
        name = "kernel message mixed in"
    elif roll < 0.37:  # a panic in the middle: the rest lost, or a few lines still arriving
        i = rng.randrange(1, len(segs))
        at = rng.randrange(len(segs[i].data) + 1) if rng.random() < 0.3 else 0
        segs[i].data = segs[i].data[:at] + b"\r\n" + PANIC_LINE + b"\r\n" + segs[i].data[at:]
        changed.add(i)
        if rng.random() < 0.6:
            for j in range(i + 1, len(segs)):
                segs[j].data = b""
                changed.add(j)
            segs[i].data += b"[   12.4] ---[ end Kernel panic - not syncing: Fatal exception ]---\r\n"
        panic = True
        name = "panic in the middle"
    elif roll < 0.45:  # a line dropped, repeated or moved
        i = rng.choice(framed)
        op = rng.choice(("drop", "repeat", "repeat later", "move earlier"))
        moved = segs[i].data
        changed.add(i)
        if op == "drop":
            segs[i].data = b""
        elif op == "repeat":
            segs[i].data += moved
        else:
            j = rng.randrange(len(segs))
            changed.add(j)
            if op == "move earlier":
                segs[i].data = b""
            segs[j].data += moved
            if segs[i].index is not None:
                touched.add(segs[i].index)
        name = f"line: {op}"
    elif roll < 0.60:  # a start or job line with one field the agent never writes, CRC recomputed
        i = rng.choice(jobish)
        segs[i].data, name, touched = _targeted(rng, segs[i], n_jobs)
        changed.add(i)
    elif roll < 0.68:  # a file line with an odd path, offset or data
        files = [i for i in framed if segs[i].kind == "file"]
        i = rng.choice(files)
        segs[i].data, name = _file_line(rng, segs[i])
        changed.add(i)
    elif roll < 0.8:  # what a workload printed or the counters gave, for one or both sizes of a variant
        name, pair = _workload(rng, segs)
        changed |= pair
    else:  # any agent line's JSON mutated by the generic mutator, CRC recomputed
        i = rng.choice(framed)
        body, what = fuzz_json.mutate(rng, _body(segs[i]))
        segs[i].data = _reframe(segs[i], body)
        touched |= _indexes_in(body)
        changed.add(i)
        name = f"{segs[i].kind} line reframed: {what}"
    return _result(segs, changed, b"".join(s.data for s in segs), name, touched, panic)


def _result(segs: list[Segment], changed: set[int], log: bytes, name: str, touched: set[int],
            panic: bool = False) -> Mutated:
    touched = set(touched) | {segs[i].index for i in changed if segs[i].index is not None}
    probe = any(segs[i].kind in ("file", "mark") or segs[i].index == 0 for i in changed) or 0 in touched
    return Mutated(log, name, touched, probe, panic)


# --- the oracle ----------------------------------------------------------------------------------

def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def job_problem(r: JobResult) -> str | None:
    """What is wrong with the types and ranges of a JobResult (None: nothing)."""
    checks = (
        (isinstance(r.id, str), "id"),
        (r.exit_code is None or (_is_int(r.exit_code) and 0 <= r.exit_code <= 255), "exit_code"),
        (r.signal is None or (_is_int(r.signal) and 0 < r.signal < 128), "signal"),
        (r.record is None or isinstance(r.record, dict), "record"),
        (isinstance(r.counts, dict) and all(isinstance(k, str) and _is_int(v) and 0 <= v < 2**64
                                            for k, v in r.counts.items()), "counts"),
        (isinstance(r.output_tail, list) and all(isinstance(x, str) for x in r.output_tail), "output_tail"),
        (r.error is None or (isinstance(r.error, str) and r.error.strip() != ""), "error"),
        (r.kvm_intel is None or (isinstance(r.kvm_intel, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                                       for k, v in r.kvm_intel.items())), "kvm_intel"),
        (r.guest_s is None or (isinstance(r.guest_s, (int, float)) and not isinstance(r.guest_s, bool)
                               and math.isfinite(r.guest_s) and r.guest_s >= 0), "guest_s"),
    )
    bad = [name for ok, name in checks if not ok]
    if bad:
        shown = {k: repr(getattr(r, k))[:60] for k in bad}
        return f"job {r.id}: {', '.join(f'{k}={v}' for k, v in shown.items())}"
    return None


def lab_case(fz: Fuzzer, rng: random.Random, n: int) -> list[tuple[str, Outcome]]:
    tpl = fz.lab_template()
    mutated = mutate(rng, tpl.segments, len(tpl.jobs))
    fz.mutation = f"lab: {mutated.name}"
    work = fz.work / f"lab-{n}"
    for d in (work, work.parent / (work.name + "-bundle")):
        if d.exists():
            shutil.rmtree(d)
    live: list[JobResult] = []
    try:
        try:
            run, variants, root = read_lab(mutated.log, tpl, work, rng, live)
        except Exception as exc:
            return [("lab", uncaught(exc))]
        outcome = _check_run(tpl, mutated, run, variants, live)
        files = {v.get(k) for v in variants.values() for k in ("pyperf", "raw", "perf")}
        names = ("manifest.json", *sorted(f for f in files if isinstance(f, str)))
        return [("lab", outcome), *fz.ingest_everywhere(root, names, rng)]
    finally:
        for d in (work, work.parent / (work.name + "-bundle")):
            shutil.rmtree(d, ignore_errors=True)


def _check_run(tpl: LabTemplate, m: Mutated, run: LabRun, variants: dict[str, Any],
               live: list[JobResult]) -> Outcome:
    results = run.jobs
    if [r.id for r in results] != [j.id for j in tpl.jobs[1:]]:
        return Outcome("lab", "results are not one per job in order", str([r.id for r in results])[:300])
    for r in [*results, *live]:
        problem = job_problem(r)
        if problem:
            return Outcome("lab", "a job result of the wrong type", problem)
    if 0 not in m.touched and run.native_probe != HOST.native():
        return Outcome("lab", "the untouched probe job's record differs from the template", str(run.native_probe)[:300])
    for i, r in enumerate(results, start=1):  # all_jobs[i]: the probe is job 0
        if i not in m.touched and _comparable(r) != tpl.results[i - 1]:
            return Outcome("lab", "an untouched job's result differs from the template",
                           f"job {r.id}: {_comparable(r)}"[:300])
    if not m.panic and "panick" in (run.failure or ""):
        return Outcome("lab", "a panic seen where the console had none", str(run.failure)[:300])
    if not m.probe_touched:
        for v in tpl.variants:
            jobs = {i for i, j in enumerate(tpl.jobs) if j.id in (f"{v.name}x1", f"{v.name}x2")}
            got = variants.get(v.name, {})
            if not jobs & m.touched and (got.get("status"), got.get("reason")) != tpl.statuses[v.name]:
                return Outcome("lab", "an untouched variant's status differs from the template",
                               f"{v.name}: {got.get('status')} {got.get('reason')}"[:300])
    return Outcome("lab: jobs failed, saying why" if any(r.error for r in results) else "lab: every result read")
