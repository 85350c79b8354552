"""The perf counting pass of one variant: `perf stat` over one run of the native workload.

Why a separate pass: tracepoints slow down the op they count (a getppid loop here goes from ~170 to
~480 ns/op with the syscalls tracepoints on), so counts never come from the timed samples. The pass
runs once, after pyperf, over `ops` iterations, and its counts are divided by the ops the workload
itself reports having done (its JSON line), not by the ops asked for.

What a count per op means: perf stat counts the whole process tree it starts (children inherit the
counters unless --no-inherit, which we do not pass), from exec to exit. host.ctxswitch's forked peer
is therefore included: its context switches per op are those of both ends (2 per round trip when
both are pinned to one CPU). Start-up (loader, pinning, calibration) adds a constant that is spread
over `ops`; use enough ops that it vanishes (host.syscall: ~40 raw syscalls, no getppid).

perf must never make a run fail: every way it can go wrong ends as `available: false` with the
reason, and an event perf rejects is dropped (recorded with perf's words) and the others retried.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cetbench import perf_kvm
from cetbench.native import last_json_line as workload_record
from cetbench.perfstat import SEP, first_error_line, parse_stat_csv
from cetbench.results.bundle import atomic_write_json
from cetbench.workloads.mechanisms import event_specs as mechanism_events
from cetbench.workloads.mechanisms import split_spec
from cetbench.workloads.table import Workload
from cetbench.workloads.variants import GUEST

SCHEMA = 1
ALWAYS = ("task-clock", "context-switches", "cpu-migrations")
# Requested even where the probe found no PMU: the bundle then records "not supported" in perf's words.
PMU = ("cycles", "instructions")
KVM_EVENTS = ("kvm:kvm_exit", "kvm:kvm_entry", "kvm:kvm_userspace_exit", "kvm:kvm_fpu", "kvm:kvm_pio",
              "kvm:kvm_cpuid")
TIMEOUT_CODE = 124  # as coreutils timeout and bench.perfstat.run_command
_TIMEOUT_MARK = "timed out after"
SCOPE = ("whole process tree from exec to exit (perf stat inherits to children): start-up included, "
         "forked peers included")


def events_for(workload: Workload, kvm_present: bool = True) -> list[str]:
    """The events to count for `workload`, in a stable order, without duplicates.

    The probe's per-event verdicts remove nothing: an event it found not counting is still asked
    for so each run records that event's state for this run in perf's words. Only the kvm:* events
    are dropped when the host has no KVM (no kvm module: perf would reject each in turn)."""
    wanted = [*ALWAYS, *PMU, *workload.key_events, *workload.events, *mechanism_events(workload.kind)]
    if workload.kind == GUEST:
        wanted += KVM_EVENTS
    if not kvm_present:
        wanted = [e for e in wanted if not e.startswith("kvm:")]
    globs = [e[:-1] for e in wanted if e.endswith("*")]
    out: list[str] = []
    for event in wanted:
        plain = split_spec(event)[1] is None  # a filtered spec is its own count, never inside a glob
        covered = plain and not event.endswith("*") and any(event.startswith(g) for g in globs)
        if event not in out and not covered:  # a glob already counts it: asking twice double-lists it
            out.append(event)
    return out


def run_group(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """Run perf in its own process group so a timeout kills perf, the workload and any peer it forked
    (killing perf alone would leave the workload running)."""
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    except OSError as exc:
        return 127, "", f"{argv[0]}: {exc.strerror}"
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return TIMEOUT_CODE, stdout, f"{stderr}\n{argv[0]} {_TIMEOUT_MARK} {timeout:g} s (killed with its workload)"
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, stdout, stderr


def stat_argv(perf: str, events: Sequence[str], cmd: Sequence[str], ops: int) -> list[str]:
    # One -e per event: when perf rejects one, its message quotes that event alone, not the whole list.
    # -v makes perf say why an event is not supported ("cycles event is not supported by the kernel.").
    # A spec `event if FILTER` becomes `-e event --filter FILTER` (the filter binds to that -e).
    selectors = []
    for spec in events:
        event, condition = split_spec(spec)
        selectors += ["-e", event] + (["--filter", condition] if condition else [])
    return [perf, "stat", "-v", "-x", SEP, *selectors, "--", *cmd, "--iterations", str(ops)]


# What -v adds that is not about any one event: the CPUID it uses, and one "name: count ena run" line
# per counter (the same numbers as the CSV lines).
_CHATTER = re.compile(r"^(Using CPUID|Control descriptor is not initialized|\S+: \d+ \d+ \d+$)")


def perf_messages(stderr: str) -> list[str]:
    """perf's own message lines: without CSV count lines and without -v's chatter."""
    return [ln.strip() for ln in stderr.splitlines()
            if ln.strip() and SEP not in ln and not _CHATTER.match(ln.strip()) and ln.strip() != "Warning:"]


def _failure(stderr: str) -> str:
    return first_error_line("\n".join(perf_messages(stderr)))


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited {code}"


def _words_about(stderr: str, event: str) -> list[str]:
    """perf's -v lines that name `event` (as a whole name: `cycles` must not match `cpu-cycles`)."""
    name = re.compile(rf"(?<![\w:-]){re.escape(event)}(?![\w:-])")
    return [ln for ln in perf_messages(stderr) if name.search(ln)]


_SYNTAX = re.compile(r"event syntax error: '(?P<event>[^']*)'")
_MARKER = re.compile(r"\\_+\s*(?P<why>.+)")
_OPEN_FAILED = re.compile(r"for event \((?P<event>[^)]+)\)")


def rejected_event(stderr: str, events: Sequence[str]) -> tuple[str, str] | None:
    """The event perf refused the command line for, with perf's words, or None if it names none we
    asked for. perf rejects the whole command for one bad event (exit 129) before starting the
    workload, so dropping it and retrying costs no workload run."""
    for pattern in (_SYNTAX, _OPEN_FAILED):
        m = pattern.search(stderr)
        if m and m["event"] in events:
            marker = _MARKER.search(stderr)
            detail = [ln.strip() for ln in stderr.splitlines() if ln.startswith(("Error:", "Hint:"))]
            words = "; ".join(([marker["why"].strip()] if marker else []) + detail) or _failure(stderr)
            return m["event"], words.replace("\t", " ")
    return None


def _about_an_event(stderr: str) -> bool:
    return bool(_SYNTAX.search(stderr) or _OPEN_FAILED.search(stderr))


def _isolate(perf: str, events: Sequence[str], timeout: float, run: perf_kvm.GroupRunner) -> dict[str, str]:
    """Events perf refuses, found by trying each alone over `true`: the fallback when perf's message
    does not say which event it refused (long lists are shown truncated)."""
    refused = {}
    for event in events:
        code, _out, err = run([perf, "stat", "-x", SEP, "-e", event, "--", "true"], timeout)
        if code != 0 and not parse_stat_csv(err):
            refused[event] = _failure(err)
    return refused


def _requested_as(name: str, events: Sequence[str]) -> str:
    """The requested event a perf output line belongs to: perf appends modifiers (`cycles:u` when
    perf_event_paranoid limits it to user space) and expands globs into one line per event."""
    if name in events:
        return name
    for event in events:
        if not event.endswith("*") and name.startswith(event + ":"):
            return event
    return name  # a glob's member keeps its own name


def _line_details(raw: str) -> dict[str, dict[str, Any]]:
    """Unit and the share of time the counter ran (below 100 when perf multiplexed and scaled it)."""
    out: dict[str, dict[str, Any]] = {}
    for line in raw.splitlines():
        f = line.split(SEP)
        if len(f) >= 5 and f[2].strip():
            try:
                running = float(f[4])
            except ValueError:
                running = None
            out[f[2].strip()] = {"unit": f[1].strip() or None, "running_pct": running}
    return out


def _event_entries(raw: str, events: Sequence[str], ops: int | None) -> dict[str, dict[str, Any]]:
    details = _line_details(raw)
    entries: dict[str, dict[str, Any]] = {}
    for name, c in parse_stat_csv(raw).items():
        key = _requested_as(name, events)
        note = c.note
        if c.state != "counted":
            note = "; ".join(filter(None, [c.note, *_words_about(raw, name)]))
        if key != name and key in events:
            note = "; ".join(filter(None, [note, f"perf counted it as {name}"]))
        glob = next((e for e in events if e.endswith("*") and name.startswith(e[:-1])), None)
        entries[key] = {
            "count": c.count,
            "per_op": c.count / ops if c.count is not None and ops else None,
            "state": c.state, "note": note, "unit": details.get(name, {}).get("unit"),
            # perf prints 100.00 for a counter that never ran: only a counted event has a running share.
            "running_pct": details.get(name, {}).get("running_pct") if c.state == "counted" else None,
            **({"from": glob} if glob else {}),
        }
    for event in events:
        seen = any(e.get("from") == event for e in entries.values()) if event.endswith("*") else event in entries
        if not seen:
            entries[event] = {"count": None, "per_op": None, "state": "not counted",
                              "note": "perf printed no line for this event", "unit": None, "running_pct": None}
    return entries


def _new_doc(ops: int, events: Sequence[str], key_events: Sequence[str]) -> dict[str, Any]:
    return {"schema": SCHEMA, "available": False, "reason": None, "command": None, "returncode": None,
            "ops_requested": ops, "ops": None, "inherit": True, "scope": SCOPE, "requested": list(events),
            "key_events": list(key_events), "events": {}, "workload": None, "raw": None}


def _count(doc: dict[str, Any], cmd: Sequence[str], ops: int, events: Sequence[str], perf: str | None,
           timeout: float, run: perf_kvm.GroupRunner) -> None:
    if perf is None:
        doc["reason"] = "perf not found on PATH (Debian: linux-perf; Fedora: perf)"
        return
    remaining = list(events)
    refused: dict[str, str] = {}
    while True:
        argv = stat_argv(perf, remaining, cmd, ops)
        code, stdout, stderr = run(argv, timeout)
        doc.update(command=argv, returncode=code, raw=stderr, events=_refused_entries(refused))
        if code == TIMEOUT_CODE and _TIMEOUT_MARK in stderr.rsplit("\n", 1)[-1]:
            doc["reason"] = stderr.rsplit("\n", 1)[-1]
            return
        if code == 0 or parse_stat_csv(stderr):
            break
        hit = rejected_event(stderr, remaining)
        now = {hit[0]: hit[1]} if hit else {}
        if not hit and _about_an_event(stderr):
            now = _isolate(perf, remaining, timeout, run)
            if len(now) == len(remaining):  # every event alone fails too: it is perf, not the events
                now = {}
        if not now:  # perf failed for a reason that is not one event: nothing to retry without
            doc["reason"] = f"perf stat {_ended(code)}: {_failure(stderr)}"
            return
        refused.update(now)
        remaining = [e for e in remaining if e not in now]
        if not remaining:
            doc.update(reason="perf refused every event asked for (see events)", events=_refused_entries(refused))
            return
    record = workload_record(stdout) or {}
    done = record.get("iterations") if code == 0 else None
    doc["workload"] = record or None
    doc["ops"] = done
    doc["events"] = {**_event_entries(stderr, remaining, done), **_refused_entries(refused)}
    if not done:
        said = record.get("error") or (stdout.strip().splitlines() or ["no output"])[-1][:300]
        doc["reason"] = f"the workload did not report its ops under perf (perf stat {_ended(code)}): {said}"
        return
    doc["available"] = True


def _refused_entries(refused: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {e: {"count": None, "per_op": None, "state": "unavailable", "note": f"perf: {words}", "unit": None,
                "running_pct": None} for e, words in refused.items()}


def _kvm_section(doc: dict[str, Any], cmd: Sequence[str], ops: int, perf: str | None, timeout: float,
                 kvm_impl: str | None, run: perf_kvm.GroupRunner) -> dict[str, Any]:
    if perf is None or not doc["available"]:
        return {"available": False, "reason": f"no counting pass to decide from: {doc['reason']}"}
    exit_entry = doc["events"].get("kvm:kvm_exit", {})
    why = perf_kvm.skip_reason(exit_entry.get("count"), exit_entry.get("state"), exit_entry.get("note"),
                               doc["ops"], kvm_impl)
    if why:
        return {"available": False, "reason": why}
    return perf_kvm.breakdown(perf, cmd, ops, timeout, run)


def filtered_groups(events: Sequence[str]) -> list[list[str]]:
    """Filtered specs, in groups whose base events differ: perf names a count by its event alone, so
    a filtered count shares no run with the plain event or another filter of it."""
    groups: list[list[str]] = []
    for spec in (e for e in events if split_spec(e)[1] is not None):
        base = split_spec(spec)[0]
        home = next((g for g in groups if all(split_spec(x)[0] != base for x in g)), None)
        if home is None:
            groups.append([spec])
        else:
            home.append(spec)
    return groups


def _count_filtered(doc: dict[str, Any], cmd: Sequence[str], ops: int, specs: Sequence[str], perf: str,
                    timeout: float, run: perf_kvm.GroupRunner) -> None:
    """One more perf stat run for a group of filtered specs; each count is stored under its spec."""
    code, stdout, stderr = run(stat_argv(perf, specs, cmd, ops), timeout)
    done = (workload_record(stdout) or {}).get("iterations") if code == 0 else None
    counted = parse_stat_csv(stderr)
    by_event = {split_spec(spec)[0]: spec for spec in specs}
    for spec in specs:
        doc["events"][spec] = {"count": None, "per_op": None, "state": "not counted", "unit": None,
                               "running_pct": None, "note": f"filtered pass: {_failure(stderr) or 'no line'}"}
    for name, c in counted.items():
        found = by_event.get(name)
        if found is not None:
            spec = found
            doc["events"][spec] = {"count": c.count, "per_op": c.count / done if c.count is not None and done
                                   else None, "state": c.state, "note": c.note, "unit": None, "running_pct": None,
                                   "filtered_pass": True}


def count_variant(cmd: list[str], ops: int, events: list[str], out_path: Path, perf: str | None, timeout: float,
                  *, kvm_impl: str | None = None, key_events: Sequence[str] = (),
                  run: perf_kvm.GroupRunner = run_group) -> dict[str, Any]:
    """Run one counting pass of `cmd --iterations ops` under perf stat, write `<slug>.perf.json` at
    `out_path` atomically and return the document. Never raises: whatever goes wrong is the
    document's `reason`. Guest workloads (kvm:kvm_exit asked) also get a `kvm_stat` section:
    perf kvm stat's exit reasons where kvm:kvm_exit counted, otherwise why not (`kvm_impl` is the
    probe's KVM implementation, named in that reason). `key_events` (the workload's, from the table)
    are stored so the bundle alone says which count a summary shows per op."""
    doc = _new_doc(ops, events, key_events)
    plain = [e for e in events if split_spec(e)[1] is None]
    try:
        _count(doc, cmd, ops, plain, perf, timeout, run)
        if doc["available"] and perf is not None:
            for group in filtered_groups(events):
                _count_filtered(doc, cmd, ops, group, perf, timeout, run)
        if "kvm:kvm_exit" in events:  # a guest variant: the exit-reason breakdown belongs with its counts
            doc["kvm_stat"] = _kvm_section(doc, cmd, ops, perf, timeout, kvm_impl, run)
    except Exception as exc:  # perf's part must never fail the run: record the surprise instead
        doc.update(available=False, reason=f"internal error in the perf pass: {exc!r}")
    try:
        atomic_write_json(out_path, doc)
    except OSError as exc:
        doc.update(available=False, reason=f"could not write {out_path.name}: {exc.strerror}")
    return doc


def ops_for_pass(raw_jsonl: Path, floor: int = 1000, cap: int = 1_000_000) -> int:
    """Ops for the counting pass: the longest timed run pyperf made (its calibrated loop count, read
    from the variant's raw records), so the pass lasts about one sample (times the tracepoints'
    slowdown); at least `floor`, so start-up counts stay below ~1 % of a per-op figure."""
    longest = 0
    try:
        lines = raw_jsonl.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        record = workload_record(line) or {}
        if isinstance(record.get("iterations"), int):
            longest = max(longest, record["iterations"])
    return min(max(longest, floor), cap)
