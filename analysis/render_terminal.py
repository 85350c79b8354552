"""Terminal tables with rich: the same rows as the plain-text report, laid out as tables.

Every user-provided string goes in as :class:`rich.text.Text`, never as markup: variant names
such as ``host.syscall[shstk=on]`` would otherwise be read as style tags and vanish.
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

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

_VERDICT_STYLE = {"REGRESSION": "bold red", "IMPROVEMENT": "bold green", "inconclusive": "yellow"}


def _name(name: str, emulated: str | None) -> Text:
    text = Text(name)
    if emulated:
        text.append(f"\n({emulated})", style="italic magenta")
    return text


def build_renderable(report: Report) -> RenderableType:
    parts: list[RenderableType] = [Text(report.title, style="bold")]
    if report.variants is not None:
        table = Table(title="variants measured")
        table.add_column("variant", no_wrap=True)
        for header in VARIANT_HEADERS:
            table.add_column(Text(header), justify="left" if header == VARIANT_HEADERS[-1] else "right")
        for v in variant_lines(report.variants):
            table.add_row(_name(v.variant, v.emulated), *(Text(c) for c in v.cells))
        parts.append(table)
        parts += [Text(line, style="yellow") for line in disturbed_lines(report.variants)]
    if report.comparison is not None:
        parts += [Text(line) for line in compare_summary(report.comparison)]
        table = Table(title="A/B comparison", show_lines=False)
        table.add_column("variant")
        for header in COMPARE_HEADERS:
            table.add_column(Text(header), justify="left" if header == "verdict" else "right")
        rows = compare_lines(report.comparison)
        for r in rows:
            cells = [Text(c) for c in r.cells]
            cells[-1].stylize(_VERDICT_STYLE.get(r.cells[-1], ""))
            table.add_row(_name(r.variant, r.emulated), *cells)
        parts.append(table)
        parts += [Text(f"{r.variant}: {r.reason}", style="dim") for r in rows if r.reason]
        parts.append(Text(NOISE_LEGEND, style="dim"))
    if report.overhead is not None:
        empty = overhead_empty_line(report.overhead)
        if empty:
            parts.append(Text(empty))
        table = Table(title="CET overhead (CET-on against CET-off, 95 % CI)")
        for header in ("kernel", "workload / configuration", *OVERHEAD_HEADERS, "cycles, events"):
            table.add_column(Text(header))
        for o in overhead_lines(report.overhead):
            extra = "\n".join(([o.cycles] if o.cycles else []) + list(o.events))
            table.add_row(Text(o.kernel), _name(o.title, o.emulated), *(Text(c) for c in o.cells), Text(extra))
        if not empty:
            parts.append(table)
        parts += [Text(f"not compared: {m.variant} on {m.kernel}: {m.reason}", style="dim")
                  for m in report.overhead.unpaired]
    if report.mechanisms is not None:
        table = Table(title=MECHANISM_TITLE)
        for header in ("kernel", "mechanism", *MECHANISM_HEADERS):
            table.add_column(Text(header))
        lines = mechanism_lines(report.mechanisms)
        for m in lines:
            table.add_row(Text(m.kernel), _name(f"{m.mechanism}: {m.what}", m.emulated), *(Text(c) for c in m.cells))
        parts.append(table if lines else Text(MECHANISM_TITLE + ": none identified"))
        parts += [Text(n, style="dim") for n in mechanism_notes(report.mechanisms)]
    if report.trend is not None:
        parts += [Text(line) for line in trend_summary(report.trend)]
        for series in report.trend.variants:
            table = Table(title=_name(series.variant, series.emulated))
            for header in ("build", "median", "±", "change point"):
                table.add_column(Text(header))
            for t in trend_lines(series):
                table.add_row(Text(t.build), Text(t.median), Text(t.noise),
                              Text(t.change or "", style="bold"))
            parts.append(table)
            if series.note:
                parts.append(Text(series.note, style="yellow"))
    if report.not_measured:
        parts.append(Text("not measured (no numbers):", style="bold"))
        parts += [Text(line, style="yellow") for line in not_measured_lines(report.not_measured)]
    return Group(*parts)


def render_terminal(report: Report, console: Console) -> None:
    """Print the report on ``console``."""
    console.print(build_renderable(report))


def render_terminal_text(report: Report, width: int = 120) -> str:
    """The terminal rendering as plain text (no colour), e.g. for tests or logs."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(build_renderable(report))
    return console.export_text()

