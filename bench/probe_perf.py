"""Is `perf` here, may we use it, and which of the events the suite relies on really count."""

from __future__ import annotations

from typing import Any

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


def try_event(perf: str, event: str, run: CommandRunner) -> dict[str, Any]:
    """Count `event` over a trivial command; each event alone, so one unknown event cannot hide
    the others (perf refuses the whole command line on a syntax error)."""
    code, _out, err = run([perf, "stat", "-x", SEP, "-e", event, "--", "true"], 20.0)
    counts = parse_stat_csv(err)
    if code != 0 or not counts:
        return {"counts": False, "state": "unavailable", "note": first_error_line(err), "expands_to": []}
    states = {c.state for c in counts.values()}
    counted = [c.event for c in counts.values() if c.state == "counted"]
    notes = sorted({c.note for c in counts.values() if c.note})
    return {
        "counts": bool(counted),
        "state": "counted" if counted else sorted(states)[0],
        "note": "; ".join(notes) or None,
        "expands_to": sorted(counts) if event.endswith("*") else [],
    }


def probe_perf(view: HostView, run: CommandRunner = run_command, perf: str | None = None) -> dict[str, Any]:
    perf = perf or perf_binary()
    paranoid_text, paranoid_err = view.read_text("proc/sys/kernel/perf_event_paranoid")
    out: dict[str, Any] = {
        "binary": perf,
        "version": None,
        "paranoid": int(paranoid_text) if paranoid_text and paranoid_text.strip().lstrip("-").isdigit() else None,
        "usable": False,
        "events": {},
        "unknown": {},
    }
    if out["paranoid"] is None:
        out["unknown"]["paranoid"] = paranoid_err or "unparsable"
    if perf is None:
        out["unknown"]["binary"] = "perf not found on PATH (Debian: linux-perf; Fedora: perf)"
        return out
    code, stdout, stderr = run([perf, "--version"], 10.0)
    if code != 0:
        out["unknown"]["version"] = first_error_line(stderr or stdout)
        return out
    out["version"] = stdout.strip().removeprefix("perf version ").strip()
    out["events"] = {ev: try_event(perf, ev, run) for ev in PROBE_EVENTS}
    out["usable"] = any(e["counts"] for e in out["events"].values())
    return out
