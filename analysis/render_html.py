"""One self-contained HTML page: the rows every format shows, verdict colours, tables ordered by
severity, and the report's plots inline as SVG.

The page fetches nothing: no external script, style or font, and its Content-Security-Policy
lets it load nothing and run only its own sort script (allowed by hash), so a name that slipped
past the escaping still could not run. Every string from a report goes through `esc`.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Sequence

from cetbench.analysis.compare import CompareResult
from cetbench.analysis.render_common import (
    COMPARE_HEADERS,
    NOISE_LEGEND,
    OVERHEAD_HEADERS,
    SEVERITY,
    VARIANT_HEADERS,
    absent_section,
    compare_lines_by_severity,
    compare_summary,
    not_measured_rows,
    overhead_empty_line,
    overhead_lines,
    trend_lines,
    trend_summary,
    variant_lines,
    verdict_counts,
)
from cetbench.analysis.report import Report
from cetbench.analysis.trend import VariantTrend

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #1f2328; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; cursor: pointer; } td.num { text-align: right; white-space: nowrap; }
tr.verdict-regression { background: #ffd7d5; } tr.verdict-inconclusive { background: #fff1c2; }
tr.verdict-improvement { background: #d3f5dc; }
.badge { display: inline-block; border-radius: 1em; padding: .1em .8em; margin-right: .4em; font-weight: 600; }
.badge { color: #fff; } .badge.verdict-regression { background: #cf222e; }
.badge.verdict-inconclusive { background: #bf8700; } .badge.verdict-improvement { background: #1a7f37; }
.badge.verdict-no-change { background: #6e7781; }
td.verdict { font-weight: 600; } .emulated { color: #8250df; font-style: italic; }
tr.change-slower td.change { color: #cf222e; font-weight: 600; } tr.change-faster td.change { color: #1a7f37; }
.why { color: #57606a; font-style: italic; } .note { color: #57606a; }
figure { margin: .8em 0; } figure svg { max-width: 100%; height: auto; }
"""

# Click a header to sort its table by that column (numbers in their natural order); the rows
# start in severity order, which the page is readable in without the script. The attribute it
# sets says the script ran (the policy allowed it).
_SCRIPT = """
document.documentElement.dataset.sortable = "on";
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], dir = th.dataset.dir === "asc" ? -1 : 1;
    th.dataset.dir = dir === 1 ? "asc" : "desc";
    Array.from(body.rows).sort(function (a, b) {
      return dir * a.cells[col].textContent.localeCompare(b.cells[col].textContent, undefined, {numeric: true});
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def _slug(verdict: str) -> str:
    return verdict.replace(" ", "-")


def _name(name: str, emulated: str | None) -> str:
    return esc(name) + (f' <span class="emulated">({esc(emulated)})</span>' if emulated else "")


def _table(headers: Sequence[str], rows: Iterable[str]) -> list[str]:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return ['<table class="sortable">', f"<thead><tr>{head}</tr></thead>", "<tbody>", *rows, "</tbody>", "</table>"]


def _cells(cells: Sequence[str], cls: str = "num") -> str:
    return "".join(f'<td class="{cls}">{esc(c)}</td>' for c in cells)


def _why(text: str) -> str:
    return f'<p class="why">{esc(text)}</p>'


def _figure(svg: str, caption: str) -> list[str]:
    # matplotlib writes the SVG and escapes the text in it; the caption is ours to escape
    return ["<figure>", svg, f"<figcaption>{esc(caption)}</figcaption>", "</figure>"]


def _badges(result: CompareResult) -> str:
    counts = dict(verdict_counts(result))
    badges = [f'<span class="badge verdict-{_slug(v)}">{counts[v]} {esc(v)}</span>' for v in SEVERITY if counts[v]]
    return f'<p class="verdicts">{"".join(badges) or esc("no variant compared")}</p>'


def _comparison(report: Report) -> list[str]:
    if report.comparison is None:
        return [_why(absent_section(report, "comparison"))]
    result = report.comparison
    out = [_badges(result), "<ul>", *(f"<li>{esc(s)}</li>" for s in compare_summary(result)), "</ul>"]
    rows = []
    for line in compare_lines_by_severity(result):
        verdict = _slug(line.verdict)
        rows.append(f'<tr class="verdict verdict-{verdict}{" emulated-row" if line.emulated else ""}" '
                    f'data-variant="{esc(line.variant)}" data-verdict="{esc(line.verdict)}">'
                    f"<td>{_name(line.variant, line.emulated)}</td>{_cells(line.cells[:-1])}"
                    f'<td class="verdict">{esc(line.cells[-1])}</td>'
                    f'<td class="note">{esc(line.reason or "")}</td></tr>')
    out += _table(("variant", *COMPARE_HEADERS, "note"), rows)
    return [*out, f'<p class="note">{esc(NOISE_LEGEND)}</p>']


def _overhead(report: Report) -> list[str]:
    result = report.overhead
    if result is None:
        return [_why(absent_section(report, "overhead"))]
    empty = overhead_empty_line(result)
    out = [_why(empty)] if empty else []
    if result.rows:
        from cetbench.analysis.render_plot import overhead_figure, svg_text

        out += _figure(svg_text(overhead_figure(result), "overhead-plot-"),
                       "CET overhead: CET-on against CET-off, median ratio with its 95 % percentile bootstrap interval")
        rows = [f'<tr class="overhead{" emulated-row" if o.emulated else ""}"><td>{esc(o.kernel)}</td>'
                f"<td>{_name(o.title, o.emulated)}</td>{_cells(o.cells)}"
                f'<td>{"<br>".join(esc(x) for x in ([o.cycles] if o.cycles else []) + list(o.events))}</td>'
                "</tr>" for o in overhead_lines(result)]
        out += _table(("kernel", "workload and configuration", *OVERHEAD_HEADERS, "cycles, perf events"), rows)
    out += [f'<p class="note">not compared: {esc(m.variant)} on {esc(m.kernel)}: {esc(m.reason)}</p>'
            for m in result.unpaired]
    return out


def _series_rank(series: VariantTrend) -> int:
    """Slower first, then faster, then no change point: the trend's order of severity."""
    directions = {c.direction for c in series.change_points}
    return 0 if "slower" in directions else 1 if directions else 2


def _trend(report: Report) -> list[str]:
    result = report.trend
    if result is None:
        return [_why(absent_section(report, "trend"))]
    out = ["<ul>", *(f"<li>{esc(s)}</li>" for s in trend_summary(result)), "</ul>"]
    if result.variants:
        from cetbench.analysis.render_plot import svg_text, trend_figure

        out += _figure(svg_text(trend_figure(result), "trend-plot-"),
                       "median per build with its 95 % interval; dashed red lines: change points")
    for series in sorted(result.variants, key=_series_rank):
        out.append(f'<h3 data-variant="{esc(series.variant)}">{_name(series.variant, series.emulated)}</h3>')
        if series.note:
            out.append(_why(series.note))
        elif not series.change_points:
            out.append(_why("no change point"))
        changes = {c.index: c.direction for c in series.change_points}
        rows = [f'<tr class="{"change-" + changes[i] if i in changes else "build"}"><td>{esc(t.build)}</td>'
                f'{_cells((t.median, t.noise))}<td class="change">{esc(t.change or "")}</td></tr>'
                for i, t in enumerate(trend_lines(series))]
        out += _table(("build", "median", "±", "change point"), rows)
    return out


def _not_measured(report: Report) -> list[str]:
    if not report.not_measured:
        return [_why(absent_section(report, "not_measured"))]
    rows = [f'<tr class="not-measured status-{esc(r.status)}"><td>{esc(r.status)}</td>'
            f'<td>{esc(r.refused_by or "-")}</td><td>{esc(r.reason)}</td><td>{esc(", ".join(r.variants))}</td></tr>'
            for r in not_measured_rows(report.not_measured)]
    return _table(("status", "refused by", "reason", "variants"), rows)


def _variants(report: Report) -> list[str]:
    assert report.variants is not None
    rows = [f'<tr class="variant"><td>{_name(v.variant, v.emulated)}</td>{_cells(v.cells)}</tr>'
            for v in variant_lines(report.variants)]
    return _table(("variant", *VARIANT_HEADERS), rows)


def render_html(report: Report) -> str:
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    sections: list[tuple[str, str, list[str]]] = []
    if report.variants is not None:
        sections.append(("variants", "Variants measured", _variants(report)))
    sections += [
        ("comparison", "Comparison verdicts", _comparison(report)),
        ("overhead", "CET overhead", _overhead(report)),
        ("trend", "Trend", _trend(report)),
        ("not-measured", "Not measured (no numbers)", _not_measured(report)),
    ]
    body = [f"<header><h1>{esc(report.title)}</h1>",
            "<nav>" + " · ".join(f'<a href="#{key}">{esc(title)}</a>' for key, title, _ in sections) + "</nav>",
            "</header>"]
    for key, title, content in sections:
        body += [f'<section id="{key}">', f"<h2>{esc(title)}</h2>", *content, "</section>"]
    if report.emulations:
        body.append(f'<footer><p class="emulated">{esc("; ".join(report.emulations))}: rows and plots so marked '
                    "were measured on an emulated machine, never a hardware timing.</p></footer>")
    head = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(report.title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>"]
    return "\n".join([*head, *body, f"<script>{_SCRIPT}</script>", "</body>", "</html>"]) + "\n"
