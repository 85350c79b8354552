"""What else used the machine while a variant was timed: other processes' CPU time (from /proc/stat,
less the run's own), steal time, load, and thermal throttling, with the verdict "disturbed" when it
exceeds what a quiet host shows.

A perf CI job that fails on a busy neighbour is switched off within a week; this is the record that
lets a comparison refuse to call a regression from a disturbed run (analysis/compare.py) and lets a
report say why. The figures are taken around the timed pyperf phase of each variant.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

from cetbench.hostview import HostView

#: Default limit of other processes' CPU use during a variant, in CPUs (0.25: a quarter of one CPU
#: on average). On this project's 2-CPU machine a quiet run measured 0.0x and a neighbour burning
#: the other CPU about 1.0; runs beside 0.25-1.1 CPUs of other work were 2.5-5.7 % slower than the
#: quiet runs of the same build, as much as a slowdown the CI must catch (README "A CI gate that
#: does not cry wolf").
DISTURBED_ABOVE_CPUS = 0.25
#: Steal time above this share of the wall time (a hypervisor took the CPU) also disturbs.
DISTURBED_ABOVE_STEAL = 0.05


@dataclass(frozen=True)
class Counters:
    wall: float
    busy: float  # seconds of non-idle, non-steal CPU time over every CPU
    steal: float
    own: float  # seconds of CPU this process and its waited-for children used
    throttle: int | None  # thermal throttle events over every CPU, where the host counts them


@dataclass(frozen=True)
class Interference:
    seconds: float
    other_cpus: float  # CPUs' worth of time other processes used (busy - own) / wall
    steal_share: float
    load_avg: float | None
    throttle_events: int | None
    disturbed: str | None  # why the run counts as disturbed, with the figures; None when quiet

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _stat_seconds(view: HostView) -> tuple[float, float]:
    text, _ = view.read_text("proc/stat")
    if text is None:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(x) for x in line.split()[1:]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
            return (user + nice + system + irq + softirq) / tick, steal / tick
    return 0.0, 0.0


def _throttle(view: HostView) -> int | None:
    total, seen = 0, False
    for cpu in view.listdir("sys/devices/system/cpu"):
        for name in ("core_throttle_count", "package_throttle_count"):
            text, _ = view.read_text(f"sys/devices/system/cpu/{cpu}/thermal_throttle/{name}")
            if text is not None and text.strip().isdigit():
                total, seen = total + int(text), True
    return total if seen else None


def _own_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def snapshot(view: HostView | None = None) -> Counters:
    view = view or HostView("/")
    busy, steal = _stat_seconds(view)
    return Counters(time.monotonic(), busy, steal, _own_seconds(), _throttle(view))


def between(start: Counters, end: Counters, view: HostView | None = None,
            above_cpus: float = DISTURBED_ABOVE_CPUS, above_steal: float = DISTURBED_ABOVE_STEAL) -> Interference:
    """What other processes did between two snapshots, and whether that disturbs the figures."""
    view = view or HostView("/")
    wall = max(end.wall - start.wall, 1e-9)
    other = max(0.0, (end.busy - start.busy) - (end.own - start.own)) / wall
    steal = max(0.0, end.steal - start.steal) / wall
    text, _ = view.read_text("proc/loadavg")
    load = float(text.split()[0]) if text else None
    throttle = None if start.throttle is None or end.throttle is None else end.throttle - start.throttle
    return Interference(round(wall, 3), round(other, 3), round(steal, 4), load, throttle,
                        disturbance(other, steal, throttle, above_cpus, above_steal))


def disturbance(other_cpus: float, steal_share: float, throttle_events: int | None,
                above_cpus: float = DISTURBED_ABOVE_CPUS, above_steal: float = DISTURBED_ABOVE_STEAL) -> str | None:
    """Why figures taken beside this much other work count as disturbed, or None when they do not."""
    reasons = []
    if other_cpus > above_cpus:
        reasons.append(f"other processes used {other_cpus:.2f} CPUs (limit {above_cpus:g})")
    if steal_share > above_steal:
        reasons.append(f"steal time {steal_share * 100:.1f} % (limit {above_steal * 100:g} %)")
    if throttle_events:
        reasons.append(f"{throttle_events} thermal throttling events")
    return "; ".join(reasons) or None
