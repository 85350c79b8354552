"""Formatting shared by every renderer: numbers to short strings, results to display rows.

Each renderer lays out these same rows, which is what keeps the formats' content identical.
Units are ASCII (``us`` not ``µs``) so plain-text reports survive any mail client; the one
non-ASCII character is the "±" the report format asks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cetbench.analysis.compare import CompareResult, VariantComparison
from cetbench.analysis.costmodel import CostModelResult
from cetbench.analysis.figures import NotMeasured, VariantFigure
from cetbench.analysis.overhead import OverheadResult, OverheadRow
from cetbench.analysis.report import Report
from cetbench.analysis.stats import MedianShift
from cetbench.analysis.trend import TrendResult, VariantTrend

_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))

COMPARE_HEADERS = ("baseline", "candidate", "change", "±", "95% CI of change", "p", "verdict")
OVERHEAD_HEADERS = ("CET off", "CET on", "difference [95% CI]", "ratio [95% CI]", "n on/off (paired by)")
VARIANT_HEADERS = ("time/op [95% CI]", "cycles/op", "runs", "processes", "key event per op")
MECHANISM_HEADERS = ("cost per time paid [95% CI]", "paid in")
MECHANISM_TITLE = "Mechanism costs (joint fit over the variants, 95 % bootstrap CI over worker processes)"

NOISE_LEGEND = "±: 95 % uncertainty of the medians (larger of baseline and candidate)"


def fmt_time(seconds: float, signed: bool = False) -> str:
    """Seconds as a short time with 4 significant digits: 812.3 ns, 1.234 us."""
    magnitude = abs(seconds)
    scale, unit = next(((s, u) for s, u in _TIME_UNITS if magnitude >= s), _TIME_UNITS[-1])
    return f"{_sig4(seconds / scale, signed)} {unit}"


def fmt_time_ci(value: float, low: float, high: float) -> str:
    """A signed time difference and its interval in one unit: +23.8 [+20.1, +27.5] ns."""
    magnitude = max(abs(value), abs(low), abs(high))
    scale, unit = next(((s, u) for s, u in _TIME_UNITS if magnitude >= s), _TIME_UNITS[-1])
    parts = (_sig4(v / scale, True) for v in (value, low, high))
    v, lo, hi = parts
    return f"{v} [{lo}, {hi}] {unit}"


def fmt_time_interval(value: float, low: float | None, high: float | None) -> str:
    """A time and its interval in one unit: 101.2 [100.8, 101.9] ns (no interval: 101.2 ns)."""
    if low is None or high is None:
        return fmt_time(value)
    scale, unit = next(((s, u) for s, u in _TIME_UNITS if abs(high) >= s), _TIME_UNITS[-1])
    v, lo, hi = (_sig4(x / scale, False) for x in (value, low, high))
    return f"{v} [{lo}, {hi}] {unit}"


def _sig4(x: float, signed: bool) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:+.0f}" if signed else f"{x:.0f}"
    digits = max(0, 3 - math.floor(math.log10(abs(x))))
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_pct(fraction: float | None, signed: bool = True) -> str:
    if fraction is None or not math.isfinite(fraction):
        return "-"
    return f"{fraction * 100:+.2f}%" if signed else f"{fraction * 100:.2f}%"


def fmt_ratio_ci(shift: MedianShift) -> str:
    return f"[{fmt_pct(shift.ratio_low - 1)}, {fmt_pct(shift.ratio_high - 1)}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def fmt_count(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class VariantLine:
    variant: str
    emulated: str | None  # the emulation label, None for hardware
    cells: tuple[str, ...]  # in VARIANT_HEADERS order


def variant_lines(figures: tuple[VariantFigure, ...]) -> list[VariantLine]:
    out = []
    for f in figures:
        t = f.time
        event = "-" if f.key_event is None else (
            f"{f.key_event}: " + ("not counted" if f.events_per_op is None else f"{f.events_per_op:.3f}"))
        cells = (fmt_time_interval(t.median, t.low, t.high), "-" if f.cycles is None else f"{f.cycles:,.0f}",
                 str(f.runs), str(t.n), event)
        out.append(VariantLine(f.variant, f.emulated, cells))
    return out


def disturbed_lines(figures: tuple[VariantFigure, ...]) -> list[str]:
    """Variants timed while something else used the machine, with the figures."""
    return [f"disturbed: {f.variant}: {f.disturbed}" for f in figures if f.disturbed]


@dataclass(frozen=True)
class NotMeasuredLine:
    status: str  # unsupported | failed | pending
    refused_by: str | None
    reason: str
    variants: tuple[str, ...]


def not_measured_rows(groups: tuple[NotMeasured, ...]) -> list[NotMeasuredLine]:
    return [NotMeasuredLine(g.status, g.refused_by, g.reason or "no reason given", g.variants) for g in groups]


def not_measured_lines(groups: tuple[NotMeasured, ...]) -> list[str]:
    """One line per reason: `unsupported (kernel): <reason>: variant, variant`."""
    return [f"{r.status}" + (f" ({r.refused_by})" if r.refused_by else "") + f": {r.reason}: "
            + ", ".join(r.variants) for r in not_measured_rows(groups)]


def overhead_empty_line(result: OverheadResult) -> str | None:
    return None if result.why_empty is None else f"no CET overhead to show: {result.why_empty}"


@dataclass(frozen=True)
class MechanismLine:
    kernel: str
    mechanism: str
    what: str
    emulated: str | None  # the emulation label, None for hardware
    cells: tuple[str, ...]  # in MECHANISM_HEADERS order


def mechanism_lines(result: CostModelResult) -> list[MechanismLine]:
    """One line per identified mechanism (the others are in `mechanism_notes`, by reason)."""
    return [MechanismLine(c.kernel, c.mechanism, c.what, c.emulated,
                          (fmt_time_ci(c.seconds, c.low, c.high), ", ".join(c.informed_by) or "-"))
            for c in result.costs if c.seconds is not None and c.low is not None and c.high is not None]


def mechanism_notes(result: CostModelResult) -> list[str]:
    """The mechanisms not identified and the variants left out, one line per reason, and the largest
    residual (how well the model fits)."""
    refused: dict[tuple[str, str], list[str]] = {}
    for c in result.costs:
        if c.seconds is None:
            refused.setdefault((c.kernel, c.reason or ""), []).append(c.mechanism)
    left: dict[str, list[str]] = {}
    for e in result.excluded:
        left.setdefault(e.reason, []).append(e.variant)
    notes = [f"not identified on {k}: {', '.join(ms)}: {why}" for (k, why), ms in refused.items()]
    notes += [f"left out of the fit: {', '.join(vs)}: {why}" for why, vs in left.items()]
    if result.residuals:
        worst = max(result.residuals, key=lambda r: abs(r.observed - r.fitted) / r.observed)
        notes.append(f"largest residual: {worst.variant} observed {fmt_time(worst.observed)}, "
                     f"fitted {fmt_time(worst.fitted)} ({fmt_pct(worst.fitted / worst.observed - 1)})")
    return notes


@dataclass(frozen=True)
class CompareLine:
    variant: str
    emulated: str | None  # the emulation label, None for hardware
    cells: tuple[str, ...]  # in COMPARE_HEADERS order
    reason: str | None
    verdict: str  # the Verdict's value: "regression", "inconclusive", "improvement", "no change"


#: Most severe first: what a reader must look at before what they may skip.
SEVERITY = ("regression", "inconclusive", "improvement", "no change")


def compare_lines(result: CompareResult) -> list[CompareLine]:
    return [_compare_line(v) for v in result.variants]


def compare_lines_by_severity(result: CompareResult) -> list[CompareLine]:
    """The rows, regressions first, then inconclusive, improvements and no change (stable by name)."""
    return sorted(compare_lines(result), key=lambda line: SEVERITY.index(line.verdict))


def _compare_line(v: VariantComparison) -> CompareLine:
    noise = None
    if v.baseline and v.candidate:
        noise = max(v.baseline.relative_halfwidth, v.candidate.relative_halfwidth)
    cells = (
        fmt_time(v.baseline.median) if v.baseline else "-",
        fmt_time(v.candidate.median) if v.candidate else "-",
        fmt_pct(v.change),
        "±" + fmt_pct(noise, signed=False) if noise is not None and math.isfinite(noise) else "-",
        fmt_ratio_ci(v.shift) if v.shift else "-",
        fmt_p(v.p_adjusted),
        v.verdict.value.upper() if v.verdict.value in ("regression", "improvement") else v.verdict.value,
    )
    return CompareLine(v.variant, v.emulated, cells, v.reason, v.verdict.value)


def compare_summary(result: CompareResult) -> list[str]:
    s = result.settings
    tested = sum(1 for v in result.variants if v.p_value is not None)
    method = "Holm" if s.correction == "holm" else "Benjamini-Hochberg"
    lines = [
        f"baseline:  {result.baseline_label}",
        f"candidate: {result.candidate_label}",
        f"test: {_tests_used(result)}, {method} over {tested} variant(s), alpha {s.alpha:g}",
        f"effect floor {s.floor * 100:.1f}%, noise limit ±{s.max_noise * 100:.1f}%",
        f"CI: {_intervals_used(result, s.n_resamples, s.seed)}",
        "verdicts: " + ", ".join(
            f"{n} {name}" for name, n in verdict_counts(result) if n
        ),
    ]
    if result.hosts_differ:
        lines.append("WARNING: baseline and candidate come from different CPUs (forced)")
    if min(result.runs_baseline, result.runs_candidate) == 1:
        lines.append("note: one run a side, so drift between runs is not in the test" + (
            "; a change is called only beyond how far runs of the baseline's build drift apart on this host"
            if s.gate else ""))
    disturbed = [v for v in result.variants if v.disturbed]
    if disturbed and s.gate:
        lines.append(f"note: {len(disturbed)} variant(s) timed while something else used the machine: no regression "
                     "is called from them (the gate gives up detection on a busy host to keep false alarms down)")
    lines += [f"disturbed: {v.variant}: {v.disturbed}" for v in disturbed]
    return lines


def _tests_used(result: CompareResult) -> str:
    on_runs = sum(1 for v in result.variants if v.tested_on == "runs")
    on_processes = sum(1 for v in result.variants if v.tested_on == "processes")
    if on_runs and on_processes:
        return f"t on run medians ({on_runs}), U on process medians ({on_processes})"
    return "Student t on log run medians" if on_runs else "Mann-Whitney U on process medians"


def _intervals_used(result: CompareResult, n_resamples: int, seed: int) -> str:
    on_runs = any(v.tested_on == "runs" for v in result.variants)
    bootstrap = any(v.shift is not None and v.shift.n_resamples for v in result.variants)
    parts = (["Student t on run medians"] if on_runs else []) + (
        [f"percentile bootstrap, {n_resamples} resamples, seed {seed}"] if bootstrap or not on_runs else [])
    return "; ".join(parts)


def verdict_counts(result: CompareResult) -> list[tuple[str, int]]:
    names = ("regression", "improvement", "no change", "inconclusive")
    return [(n, sum(1 for v in result.variants if v.verdict.value == n)) for n in names]


@dataclass(frozen=True)
class OverheadLine:
    title: str  # workload, configuration and its off partner
    kernel: str
    emulated: str | None  # the emulation label, None for hardware
    cells: tuple[str, ...]  # in OVERHEAD_HEADERS order
    cycles: str | None
    events: tuple[str, ...]


def overhead_lines(result: OverheadResult) -> list[OverheadLine]:
    return [_overhead_line(r) for r in result.rows]


def _overhead_line(r: OverheadRow) -> OverheadLine:
    t = r.time
    cells = (
        fmt_time(t.baseline_median),
        fmt_time(t.candidate_median),
        fmt_time_ci(t.difference, t.difference_low, t.difference_high),
        f"{fmt_pct(t.ratio - 1)} {fmt_ratio_ci(t)}",
        f"{r.n_on}/{r.n_off} ({r.pairing})",
    )
    cycles = None
    if r.cycles is not None:
        c = r.cycles
        cycles = (
            f"cycles/op {fmt_count(c.baseline_median)} -> {fmt_count(c.candidate_median)}: "
            f"{c.difference:+.4g} [{c.difference_low:+.4g}, {c.difference_high:+.4g}]"
        )
    events = []
    for e in r.events:
        if e.time_per_event is None or e.low is None or e.high is None:
            events.append(f"per {e.event}: - (it does not occur)")
        elif e.basis == "extra":
            events.append(f"per extra {e.event}: {fmt_time_ci(e.time_per_event, e.low, e.high)} "
                          f"(events {e.delta_per_op:+.4g} per op)")
        else:
            events.append(f"per {e.event}, each dearer by: {fmt_time_ci(e.time_per_event, e.low, e.high)} "
                          f"({fmt_count(e.on_per_op)} per op on both sides)")
    title = f"{r.workload} {r.cet} vs {r.off_cet}"
    return OverheadLine(title, r.kernel, r.emulated, cells, cycles, tuple(events))


@dataclass(frozen=True)
class TrendLine:
    build: str
    median: str
    noise: str
    change: str | None  # "change: +4.10% slower (p 0.0010)" at the first build after a change


def trend_lines(series: VariantTrend) -> list[TrendLine]:
    changes = {c.index: c for c in series.change_points}
    lines = []
    for i, point in enumerate(series.points):
        est = point.estimate
        noise = est.relative_halfwidth
        c = changes.get(i)
        lines.append(TrendLine(
            point.build,
            fmt_time(est.median),
            "±" + fmt_pct(noise, signed=False) if math.isfinite(noise) else "-",
            None if c is None else
            f"change: {fmt_pct(c.magnitude)} {c.direction} (p {fmt_p(c.p_adjusted)})",
        ))
    return lines


def trend_summary(result: TrendResult) -> list[str]:
    return [
        f"{len(result.builds)} builds in {result.order} order: {', '.join(result.builds)}",
        f"method: {result.method}",
    ]


def absent_section(report: Report, section: str) -> str:
    """Why a report has nothing to show in `section` ("comparison", "overhead", "trend",
    "not_measured"), for formats that lay out every section whether filled or not."""
    if section == "comparison":
        return "no comparison in this report: it names no baseline (cetbench report --baseline SEL, or compare)"
    if section == "overhead":
        return "no CET overhead in this report: it covers no run's samples (cetbench overhead SEL gives it)"
    if section == "trend":
        return "no trend in this report (cetbench report --trend, or cetbench trend)"
    if report.comparison is None and report.overhead is None and report.variants is None:
        return "a trend report lists no variants without numbers (cetbench report SEL lists those of a run)"
    return "every variant of the runs behind this report was measured"


def emulated_note(report: Report) -> str | None:
    return "* " + "; ".join(report.emulations) if report.emulations else None
