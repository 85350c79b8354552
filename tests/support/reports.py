"""A full Report (comparison with every verdict but improvement, CET overhead, a trend with a
change point, variants not measured) from synthetic data, optionally with hostile text in a
variant name, a reason and the title, for the renderers' tests."""

from __future__ import annotations

import numpy as np

from cetbench.analysis.compare import CompareSettings, compare
from cetbench.analysis.figures import NotMeasured
from cetbench.analysis.overhead import cet_overhead
from cetbench.analysis.report import Report
from cetbench.analysis.trend import trend
from tests.support.synthetic import DEFAULT_VARIANTS, frame_from_values, make_perf, make_samples

REGRESSED = "host.syscall[shstk=on]"
IMPROVED = "host.signal[shstk=on]"
EMULATED = "guest.vmexit.pio[cet=ibt+shstk]"
SHORT = "host.pipe[shstk=on]"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_VARIANT = f"{HOSTILE}[shstk=on]"


def _lognormal(seed: int, n: int, median: float) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0.0, 0.01, n))


def full_report(hostile: bool = False) -> Report:
    base = {REGRESSED: _lognormal(1, 30, 1e-7), EMULATED: _lognormal(2, 30, 2e-6), SHORT: _lognormal(3, 3, 1e-6),
            IMPROVED: _lognormal(10, 30, 2e-6)}
    cand = {REGRESSED: _lognormal(4, 30, 1.1e-7), EMULATED: _lognormal(5, 30, 2e-6), SHORT: _lognormal(6, 30, 1e-6),
            IMPROVED: _lognormal(11, 30, 1.8e-6)}
    variants = DEFAULT_VARIANTS
    if hostile:
        base[HOSTILE_VARIANT] = _lognormal(7, 30, 1e-6)
        cand[HOSTILE_VARIANT] = _lognormal(8, 30, 1.2e-6)
        variants = (*DEFAULT_VARIANTS, (HOSTILE, "shstk=on", 1e-6, False))
    comparison = compare(frame_from_values(base, emulated=[EMULATED]),
                         frame_from_values(cand, build="6.19", emulated=[EMULATED]), CompareSettings(n_resamples=300))
    samples = make_samples(n=30)
    perf = make_perf(samples, {("guest.vmexit.pio[cet=none]", "kvm:kvm_fpu"): 0.0,
                               ("guest.vmexit.pio[cet=ibt+shstk]", "kvm:kvm_fpu"): 2.0})
    builds = ("6.18", "6.18.1", "6.19-rc1", "6.19")
    series = make_samples(builds, n=20, variants=variants, factors={(b, REGRESSED): 1.1 for b in builds[2:]})
    reason = f"KVM does not offer IBT {HOSTILE}" if hostile else "KVM does not offer IBT to guests"
    refused = (NotMeasured("unsupported", reason, "kvm", ("guest.vmexit.cpuid[cet=ibt]",)),
               NotMeasured("failed", "workload exited with status 139", None, ("host.ctxswitch[shstk=on]",)))
    return Report(title=f"cetbench: 6.19 against 6.18{' ' + HOSTILE if hostile else ''}", comparison=comparison,
                  overhead=cet_overhead(samples, perf, n_resamples=300), trend=trend(series), not_measured=refused)
