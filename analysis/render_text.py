"""Plain text within 80 columns, for pasting into a mail (e.g. a kernel review on LKML).

Each variant takes two lines: its name (never truncated), then its figures under a header, so
long variant names need no shortening and every line fits the width.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from cetbench.analysis.render_common import (
    COMPARE_HEADERS,
    NOISE_LEGEND,
    compare_lines,
    compare_summary,
    disturbed_lines,
    emulated_note,
    mechanism_lines,
    mechanism_notes,
    not_measured_lines,
    overhead_empty_line,
    overhead_lines,
    trend_lines,
    trend_summary,
    variant_lines,
)
from cetbench.analysis.report import Report

WIDTH = 80
INDENT = "  "


def render_text(report: Report) -> str:
    lines = [report.title, "=" * min(len(report.title), WIDTH)]
    if report.variants is not None:
        lines += ["", "Variants measured", "-" * 17]
        for v in variant_lines(report.variants):
            time, cycles, runs, processes, event = v.cells
            lines += [*_name_lines(v.variant, v.emulated),
                      f"{INDENT}time/op {time}, cycles/op {cycles}, runs {runs}, processes {processes}",
                      f"{INDENT}{event}"]
        lines += disturbed_lines(report.variants)
    if report.comparison is not None:
        lines += ["", "A/B comparison", "-" * 14]
        lines += compare_summary(report.comparison)
        rows = compare_lines(report.comparison)
        lines += ["", *_table([(c.variant, c.emulated, c.cells) for c in rows], COMPARE_HEADERS)]
        reasons = [(c.variant, c.reason) for c in rows if c.reason]
        if reasons:
            lines += ["", "notes:"] + [f"{INDENT}{v}: {r}" for v, r in reasons]
        lines += ["", NOISE_LEGEND]
    if report.overhead is not None:
        lines += ["", "CET overhead (CET-on against CET-off, 95 % CI; paired by run or interleaved round",
                  "where both shared one, else bootstrap)"]
        lines += ["-" * 66]
        lines += _overhead(report)
    if report.mechanisms is not None:
        lines += ["", "Mechanism costs (joint fit, 95 % bootstrap CI over worker processes)", "-" * 68]
        kernel = None
        for m in mechanism_lines(report.mechanisms):
            if m.kernel != kernel:
                kernel = m.kernel
                lines += ["", f"kernel {kernel}"]
            cost, informed = m.cells
            lines += [*_name_lines(f"{m.mechanism}: {m.what}", m.emulated), f"{INDENT}{cost}"]
            if informed != "-":
                lines.append(f"{INDENT}paid in {informed}")
        lines += ["", *mechanism_notes(report.mechanisms)]
    if report.trend is not None:
        lines += ["", "Trend", "-" * 5, *trend_summary(report.trend), *_trend(report)]
    if report.not_measured:
        lines += ["", "Not measured (no numbers)", "-" * 25, *not_measured_lines(report.not_measured)]
    note = emulated_note(report)
    if note:
        lines += ["", note]
    return "\n".join(wrapped for line in lines for wrapped in fit(line)) + "\n"


def fit(line: str, width: int = WIDTH) -> list[str]:
    """The line, or its wrapped pieces when it is wider than ``width`` (continuations indented)."""
    if len(line) <= width:
        return [line]
    lead = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(
        line, width, initial_indent="", subsequent_indent=lead + "    ",
        break_long_words=True, break_on_hyphens=False,
    ) or [line[:width]]


def _name_lines(name: str, emulated: str | None) -> list[str]:
    """A variant's name, with the emulated label beside it or, if that is too wide, below it."""
    if not emulated:
        return [name]
    labelled = f"{name}  ({emulated})"
    return [labelled] if len(labelled) <= WIDTH else [name, f"{INDENT}({emulated})"]


def _table(rows: Sequence[tuple[str, str | None, Sequence[str]]], headers: Sequence[str]) -> list[str]:
    widths = [len(h) for h in headers]
    for _, _, cells in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]

    # two spaces between columns when that fits the width, else one
    gap = "  " if len(INDENT) + sum(widths) + 2 * (len(widths) - 1) <= WIDTH else " "

    def line(cells: Sequence[str]) -> str:
        # numbers right-aligned, the verdict (last column) left-aligned
        body = [c.rjust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        return (INDENT + gap.join([*body, cells[-1].ljust(widths[-1])])).rstrip()

    out = ["variant", line(headers)]
    for name, emulated, cells in rows:
        out += [*_name_lines(name, emulated), line(cells)]
    return out


def _overhead(report: Report) -> list[str]:
    assert report.overhead is not None
    empty = overhead_empty_line(report.overhead)
    out: list[str] = [empty] if empty else []
    kernel = None
    for row in overhead_lines(report.overhead):
        if row.kernel != kernel:
            kernel = row.kernel
            out += ["", f"kernel {kernel}"]
        off, on, diff, ratio, n = row.cells
        out += [
            *_name_lines(row.title, row.emulated),
            f"{INDENT}time/op {off} -> {on}: {diff}, n {n}",
            f"{INDENT}ratio {ratio}",
        ]
        if row.cycles:
            out.append(INDENT + row.cycles)
        out += [INDENT + e for e in row.events]
    for miss in report.overhead.unpaired:
        out.append(f"not compared: {miss.variant} on {miss.kernel}: {miss.reason}")
    return out


def _trend(report: Report) -> list[str]:
    assert report.trend is not None
    out: list[str] = []
    for series in report.trend.variants:
        out += ["", *_name_lines(series.variant, series.emulated)]
        if series.note:
            out.append(f"{INDENT}{series.note}")
        lines = trend_lines(series)
        width = max(len(t.build) for t in lines)
        for t in lines:
            marker = f"  <- {t.change}" if t.change else ""
            out.append(f"{INDENT}{t.build.ljust(width)}  {t.median:>10} {t.noise:>8}{marker}")
        if not series.change_points and not series.note:
            out.append(f"{INDENT}no change point")
    return out
