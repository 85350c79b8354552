"""Is `perf` here, may we use it, and which of the events the suite relies on really count."""

from __future__ import annotations

from cetbench.facts import PerfEvent, PerfFacts
from cetbench.hostview import HostView
from cetbench.perfstat import SEP, CommandRunner, first_error_line, parse_stat_csv, perf_binary, run_command

PROBE_EVENTS = (
    "cycles",
    "instructions",
    "syscalls:sys_enter_getppid",
    "x86_fpu:*",
    "kvm:kvm_exit",
    "kvm:kvm_fpu",
    "kvm:kvm_userspace_exit",
)


def try_event(perf: str, event: str, run: CommandRunner) -> PerfEvent:
    """Count `event` over a trivial command; each event alone, so one unknown event cannot hide
    the others (perf refuses the whole command line on a syntax error)."""
    code, _out, err = run([perf, "stat", "-x", SEP, "-e", event, "--", "true"], 20.0)
    counts = parse_stat_csv(err)
    if code != 0 or not counts:
        return PerfEvent(counts=False, state="unavailable", note=first_error_line(err))
    states = {c.state for c in counts.values()}
    counted = [c.event for c in counts.values() if c.state == "counted"]
    notes = sorted({c.note for c in counts.values() if c.note})
    return PerfEvent(counts=bool(counted), state="counted" if counted else sorted(states)[0],
                     note="; ".join(notes) or None, expands_to=sorted(counts) if event.endswith("*") else [])


def probe_perf(view: HostView, run: CommandRunner = run_command, perf: str | None = None) -> PerfFacts:
    perf = perf or perf_binary()
    paranoid_text, paranoid_err = view.read_text("proc/sys/kernel/perf_event_paranoid")
    paranoid = int(paranoid_text) if paranoid_text and paranoid_text.strip().lstrip("-").isdigit() else None
    unknown: dict[str, str] = {}
    if paranoid is None:
        unknown["paranoid"] = paranoid_err or "unparsable"
    if perf is None:
        unknown["binary"] = "perf not found on PATH (Debian: linux-perf; Fedora: perf)"
        return PerfFacts(binary=None, version=None, paranoid=paranoid, usable=False, unknown=unknown)
    code, stdout, stderr = run([perf, "--version"], 10.0)
    if code != 0:
        unknown["version"] = first_error_line(stderr or stdout)
        return PerfFacts(binary=perf, version=None, paranoid=paranoid, usable=False, unknown=unknown)
    events = {ev: try_event(perf, ev, run) for ev in PROBE_EVENTS}
    return PerfFacts(binary=perf, version=stdout.strip().removeprefix("perf version ").strip(), paranoid=paranoid,
                     usable=any(e.counts for e in events.values()), events=events, unknown=unknown)
