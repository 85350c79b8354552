"""Sources of measurement noise, in the spirit of `pyperf system show`: each one that will hurt
precision gets a warning line."""

from __future__ import annotations

import math
import os

from cetbench.facts import NoiseFacts
from cetbench.hostview import HostView


def _read(view: HostView, rel: str) -> str | None:
    text, _ = view.read_text(rel)
    return text.strip() if text is not None else None


def _boost(view: HostView) -> bool | None:
    value = _read(view, "sys/devices/system/cpu/cpufreq/boost")
    if value is not None:
        return value == "1"
    no_turbo = _read(view, "sys/devices/system/cpu/intel_pstate/no_turbo")
    return None if no_turbo is None else no_turbo == "0"


def _load(text: str | None) -> list[float] | None:
    """The 1, 5 and 15 minute load averages of /proc/loadavg, or None when it does not give them."""
    try:
        load = [float(x) for x in (text or "").split()[:3]]
    except ValueError:  # not numbers (a lab guest's file is what its serial line said)
        return None
    return load if len(load) == 3 and all(math.isfinite(x) and x >= 0 for x in load) else None


def probe_noise(view: HostView, ncpus: int | None = None) -> NoiseFacts:
    ncpus = ncpus or os.cpu_count() or 1
    governor = _read(view, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    boost = _boost(view)
    smt_text = _read(view, "sys/devices/system/cpu/smt/active")
    smt = None if smt_text is None else smt_text == "1"
    isolated = _read(view, "sys/devices/system/cpu/isolated") or ""
    load = _load(_read(view, "proc/loadavg"))
    warnings = []
    if governor is not None and governor != "performance":
        warnings.append(f"CPU frequency governor is {governor!r}, not 'performance'")
    if governor is None:
        warnings.append("CPU frequency governor unknown (no cpufreq: a VM or a fixed clock)")
    if boost:
        warnings.append("turbo/boost is enabled: clock speed varies with load and temperature")
    if smt:
        warnings.append("SMT is active: a sibling thread can steal the core")
    if not isolated:
        warnings.append("no isolated CPUs (isolcpus=): other tasks share the benchmark CPUs")
    if load is not None and load[0] > 0.5 * ncpus:
        warnings.append(f"load average {load[0]:.2f} is high for {ncpus} CPUs")
    return NoiseFacts(cpus=ncpus, governor=governor, boost=boost, smt=smt, isolated_cpus=isolated or None,
                      load_avg=load, warnings=warnings)
