"""Markdown (GitHub flavour): the same sections and figures as the plain-text report."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from cetbench.analysis.render_common import (
    COMPARE_HEADERS,
    MECHANISM_HEADERS,
    MECHANISM_TITLE,
    NOISE_LEGEND,
    OVERHEAD_HEADERS,
    VARIANT_HEADERS,
    compare_lines,
    compare_summary,
    disturbed_lines,
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

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape(text: str) -> str:
    """Make user-provided text inert: no HTML, no Markdown syntax, no table breaks."""
    flat = " ".join(text.splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _label(name: str, emulated: str | None) -> str:
    return escape(name) + (f" *({escape(emulated)})*" if emulated else "")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(escape(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join(rows_cell for rows_cell in row) + " |" for row in rows]
    return out


def render_markdown(report: Report) -> str:
    lines = [f"# {escape(report.title)}"]
    if report.variants is not None:
        lines += ["", "## Variants measured", ""]
        lines += _table(("variant", *VARIANT_HEADERS),
                        [(_label(v.variant, v.emulated), *(escape(c) for c in v.cells))
                         for v in variant_lines(report.variants)])
        lines += [f"- {escape(x)}" for x in disturbed_lines(report.variants)]
    if report.comparison is not None:
        lines += ["", "## A/B comparison", ""]
        lines += [f"- {escape(s)}" for s in compare_summary(report.comparison)]
        rows = compare_lines(report.comparison)
        cells = [(_label(r.variant, r.emulated), *(escape(c) for c in r.cells)) for r in rows]
        lines += ["", *_table(("variant", *COMPARE_HEADERS), cells)]
        notes = [f"- {escape(r.variant)}: {escape(r.reason)}" for r in rows if r.reason]
        if notes:
            lines += ["", "Notes:", "", *notes]
        lines += ["", escape(NOISE_LEGEND)]
    if report.overhead is not None:
        lines += ["", "## CET overhead", "",
                  "CET-on against CET-off, 95 % CI; paired by run or interleaved round where both shared one, "
                  "else bootstrap.", ""]
        rows_o = overhead_lines(report.overhead)
        empty = overhead_empty_line(report.overhead)
        lines += [escape(empty)] if empty else _table(
            ("kernel", "workload and configuration", *OVERHEAD_HEADERS, "cycles, perf events"),
            [
                (escape(r.kernel), _label(r.title, r.emulated), *(escape(c) for c in r.cells),
                 "<br>".join(escape(x) for x in ([r.cycles] if r.cycles else []) + list(r.events)))
                for r in rows_o
            ],
        )
        missing = [f"- not compared: {escape(m.variant)} on {escape(m.kernel)}: {escape(m.reason)}"
                   for m in report.overhead.unpaired]
        lines += (["", *missing]) if missing else []
    if report.mechanisms is not None:
        lines += ["", "## Mechanism costs", "", escape(MECHANISM_TITLE) + ".", ""]
        rows_m = [(escape(m.kernel), _label(f"{m.mechanism}: {m.what}", m.emulated), *(escape(c) for c in m.cells))
                  for m in mechanism_lines(report.mechanisms)]
        lines += _table(("kernel", "mechanism", *MECHANISM_HEADERS), rows_m) if rows_m else ["None identified."]
        notes = mechanism_notes(report.mechanisms)
        lines += (["", *[f"- {escape(n)}" for n in notes]]) if notes else []
    if report.trend is not None:
        lines += ["", "## Trend", ""] + [f"- {escape(s)}" for s in trend_summary(report.trend)]
        for series in report.trend.variants:
            lines += ["", f"### {_label(series.variant, series.emulated)}", ""]
            if series.note:
                lines += [escape(series.note), ""]
            lines += _table(
                ("build", "median", "±", "change point"),
                [(escape(t.build), escape(t.median), escape(t.noise), escape(t.change or ""))
                 for t in trend_lines(series)],
            )
    if report.not_measured:
        lines += ["", "## Not measured (no numbers)", ""]
        lines += [f"- {escape(x)}" for x in not_measured_lines(report.not_measured)]
    if report.emulations:
        lines += ["", f"*{escape('; '.join(report.emulations))}*: rows so marked were measured on an emulated "
                  "machine, never a hardware timing."]
    return "\n".join(lines) + "\n"
