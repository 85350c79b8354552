"""Plots with matplotlib (Agg, no display): CET overhead bars and build trends, PNG or SVG.

Figures are built on :class:`matplotlib.figure.Figure` directly, not pyplot, so no global
backend or figure state is touched.  The file format follows the path's suffix; `svg_text`
gives a figure as SVG markup for pages that carry their plots inline (the HTML report).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cetbench.analysis.overhead import OverheadResult
from cetbench.analysis.report import Report
from cetbench.analysis.trend import TrendResult, VariantTrend

FORMATS = ("png", "svg")


def _save(fig: Figure, path: Path) -> Path:
    # SVG text stays text (searchable, selectable, and the emulated label can be found in it)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, format=_format(path))
    return path


def svg_text(fig: Figure, id_prefix: str = "") -> str:
    """The figure as an <svg> element to put inside a page: no XML declaration, doctype or RDF
    metadata (a creator and a date: the same figure gives the same markup), text kept as text.
    Its element ids (and the references to them) get `id_prefix`, so that several figures in one
    page keep their ids unique."""
    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], count=1, flags=re.DOTALL)
    if id_prefix:
        svg = re.sub(r'(\sid="|url\(#|href="#)', lambda m: m.group(1) + id_prefix, svg)
    return svg


def _format(path: Path) -> str:
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"plot format must be one of {FORMATS}, not {path.suffix!r}")
    return fmt


def plot_overhead(result: OverheadResult, path: str | Path) -> Path:
    """Grouped bars: overhead (%) per workload, one bar per CET configuration, 95 % CI whiskers.

    One panel per kernel build; bars from emulated KVM are hatched and the legend says so.
    """
    out = Path(path)
    _format(out)  # refuse an unknown format before drawing
    return _save(overhead_figure(result), out)


def overhead_figure(result: OverheadResult) -> Figure:
    """The figure `plot_overhead` saves."""
    kernels = sorted({r.kernel for r in result.rows})
    fig = Figure(figsize=(9, 3.2 * max(1, len(kernels))), layout="constrained")
    axes = fig.subplots(max(1, len(kernels)), 1, squeeze=False)[:, 0]
    for ax, kernel in zip(axes, kernels or ["(no data)"], strict=False):
        _overhead_panel(ax, result, kernel)
    title = "CET overhead: CET-on against CET-off, median ratio with 95 % CI"
    labels = sorted({r.emulated for r in result.rows if r.emulated})
    if labels:
        title += f"\nhatched bars: {'; '.join(labels)}"
    fig.suptitle(title, fontsize=10)
    return fig


def _overhead_panel(ax: Axes, result: OverheadResult, kernel: str) -> None:
    rows = [r for r in result.rows if r.kernel == kernel]
    workloads = sorted({r.workload for r in rows})
    configs = sorted({r.cet for r in rows})
    width = 0.8 / max(1, len(configs))
    labelled: set[str] = set()
    for j, cet in enumerate(configs):
        for i, workload in enumerate(workloads):
            match = [r for r in rows if r.workload == workload and r.cet == cet]
            if not match:
                continue
            t = match[0].time
            pct = (t.ratio - 1) * 100
            err = [[pct - (t.ratio_low - 1) * 100], [(t.ratio_high - 1) * 100 - pct]]
            ax.bar(i + (j - (len(configs) - 1) / 2) * width, pct, width, yerr=err, capsize=3,
                   color=f"C{j}", hatch="//" if match[0].emulated else None,
                   label=None if cet in labelled else cet)
            labelled.add(cet)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(workloads)), workloads, rotation=15, fontsize=8)
    ax.set_ylabel("CET overhead (%)")
    ax.set_title(f"kernel {kernel}", fontsize=10)
    if configs:
        ax.legend(fontsize=8)


def plot_trend(
    result: TrendResult, path: str | Path, variants: Sequence[str] | None = None, max_panels: int = 24
) -> Path:
    """One panel per variant: median per build with its 95 % CI; change points as dashed lines.

    At most ``max_panels`` panels, variants with change points first; the title says how many
    were left out.
    """
    out = Path(path)
    _format(out)
    return _save(trend_figure(result, variants, max_panels), out)


def trend_figure(result: TrendResult, variants: Sequence[str] | None = None, max_panels: int = 24) -> Figure:
    """The figure `plot_trend` saves."""
    wanted = [v for v in result.variants if variants is None or v.variant in variants]
    wanted.sort(key=lambda v: not v.change_points)  # stable: change points first
    chosen = wanted[:max_panels]
    fig = Figure(figsize=(9, 2.6 * max(1, len(chosen))), layout="constrained")
    if len(wanted) > len(chosen):
        fig.suptitle(f"{len(wanted) - len(chosen)} more variant(s) not shown", fontsize=9)
    axes = fig.subplots(max(1, len(chosen)), 1, squeeze=False)[:, 0]
    for ax, series in zip(axes, chosen, strict=False):
        _trend_panel(ax, series)
    return fig


def _trend_panel(ax: Axes, series: VariantTrend) -> None:
    x = np.arange(len(series.points))
    med = np.array([p.estimate.median for p in series.points]) * 1e9
    low = np.array([p.estimate.low if p.estimate.low is not None else p.estimate.median
                    for p in series.points]) * 1e9
    high = np.array([p.estimate.high if p.estimate.high is not None else p.estimate.median
                     for p in series.points]) * 1e9
    ax.errorbar(x, med, yerr=[med - low, high - med], marker="o", capsize=3)
    for c in series.change_points:
        ax.axvline(c.index - 0.5, color="red", linestyle="--", linewidth=1)
        ax.annotate(f" {c.magnitude * 100:+.1f}% ({c.direction})", (c.index - 0.5, 0.92),
                    xycoords=("data", "axes fraction"), color="red", fontsize=8, ha="left")
    ax.set_xticks(x, [p.build for p in series.points], rotation=15, fontsize=8)
    ax.set_ylabel("ns per op")
    title = series.variant + (f"  ({series.emulated})" if series.emulated else "")
    ax.set_title(title, fontsize=10)


def render_plots(report: Report, directory: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Every plot the report has, in each format, into ``directory``; returns the files."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        if report.overhead is not None:
            written.append(plot_overhead(report.overhead, folder / f"overhead.{fmt}"))
        if report.trend is not None:
            written.append(plot_trend(report.trend, folder / f"trend.{fmt}"))
    return written
