"""Writing a report in the chosen format, and the comparison both `compare` and `ci` run."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from cetbench.analysis import CompareSettings, Report, compare, exit_status
from cetbench.cli.console import console
from cetbench.results import Store
from cetbench.selection import load_runs, load_selection, run_report

#: What a comparison side names: a selection (run id, kernel label or build id) or exact run ids.
Side = str | list[str]


def emit(report: Report, fmt: str, output: Path | None) -> None:
    """The report in `fmt` on standard output, or written whole (atomically) to `output`."""
    from cetbench.analysis.render_html import render_html
    from cetbench.analysis.render_json import render_json
    from cetbench.analysis.render_junit import render_junit
    from cetbench.analysis.render_markdown import render_markdown
    from cetbench.analysis.render_terminal import render_terminal, render_terminal_text
    from cetbench.analysis.render_text import render_text
    from cetbench.results.bundle import atomic_write

    if fmt == "terminal" and output is None:
        render_terminal(report, console())
        return
    renderers = {"terminal": render_terminal_text, "text": render_text, "markdown": render_markdown,
                 "json": render_json, "junit": render_junit, "html": render_html}
    text = renderers[fmt](report)
    if output is None:
        click.echo(text)
    else:
        atomic_write(output, text.encode() if text.endswith("\n") else (text + "\n").encode())


def plots(report: Report, directory: Path | None) -> None:
    if directory is not None:
        from cetbench.analysis.render_plot import render_plots
        directory.mkdir(parents=True, exist_ok=True)
        for path in render_plots(report, directory):
            click.echo(f"plot: {path}", err=True)


def _load_side(store: Store, side: Side, host: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_selection(store, side, host) if isinstance(side, str) else load_runs(store, side, host)


def _side_name(side: Side) -> str:
    return side if isinstance(side, str) else side[0] if len(side) == 1 else f"{len(side)} runs"


def comparison_report(store: Store, baseline: Side, candidate: Side, host: str | None,
                      settings: CompareSettings) -> Report:
    """The candidate against the baseline, with the candidate's own CET overhead and the variants of
    its runs that carry no numbers."""
    base, _ = _load_side(store, baseline, host)
    cand, _ = _load_side(store, candidate, host)
    own = run_report(store, sorted(cand["run_id"].unique()), "")
    return Report(title=f"cetbench: {_side_name(candidate)} against {_side_name(baseline)}",
                  comparison=compare(base, cand, settings), overhead=own.overhead, mechanisms=own.mechanisms,
                  not_measured=own.not_measured)


def compare_and_report(store: Store, baseline: Side, candidate: Side, host: str | None, settings: CompareSettings,
                       fmt: str, output: Path | None, junit: Path | None) -> int:
    """Compare, write the report (and JUnit), and return the exit status the verdicts call for."""
    report = comparison_report(store, baseline, candidate, host, settings)
    emit(report, fmt, output)
    if junit:
        emit(report, "junit", junit)
    assert report.comparison is not None
    return exit_status(report.comparison)

