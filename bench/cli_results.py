"""The store and analysis commands: ingest, list, mark-good, overhead, compare, trend, report, ci."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, cast

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cetbench import results
from cetbench.analysis import AnalysisInputError, Report, cet_overhead, compare, exit_status, trend
from cetbench.analysis.compare import CompareSettings
from cetbench.cli import EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE, cli, fail
from cetbench.selection import SelectionError, key_events, load_all, load_runs, load_selection, newest_run

FORMATS = ("terminal", "text", "markdown", "json", "junit")
store_option = click.option("--store", "store_url", envvar="CETBENCH_STORE", metavar="URL",
                            help="Store URL (default: the SQLite file in the data directory; env CETBENCH_STORE).")
host_option = click.option("--host", help="Only runs of this host name.")
format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True)
output_option = click.option("--output", "-o", type=click.Path(path_type=Path),
                             help="Write the report here instead of standard output.")


def open_store(url: str | None) -> Any:
    try:
        return results.open_store(url)
    except results.StoreError as exc:
        fail(str(exc), EXIT_ENVIRONMENT)


def emit(report: Report, fmt: str, output: Path | None) -> None:
    from cetbench.analysis.render_json import render_json
    from cetbench.analysis.render_junit import render_junit
    from cetbench.analysis.render_markdown import render_markdown
    from cetbench.analysis.render_terminal import render_terminal, render_terminal_text
    from cetbench.analysis.render_text import render_text

    if fmt == "terminal" and output is None:
        render_terminal(report, Console())
        return
    renderers = {"terminal": render_terminal_text, "text": render_text, "markdown": render_markdown,
                 "json": render_json, "junit": render_junit}
    text = renderers[fmt](report)
    if output is None:
        click.echo(text)
    else:
        from cetbench.results.bundle import atomic_write
        atomic_write(output, text.encode() if text.endswith("\n") else (text + "\n").encode())


def not_measured(store: Any, run_ids: list[str], fmt: str, output: Path | None) -> None:
    """Say which variants carry no numbers and why (to stderr for terminal/text, so the report stays
    clean): a report must never leave a reader guessing whether CET-on figures are missing."""
    if fmt not in ("terminal", "text") or output is not None:
        return
    statuses = results.load_statuses(store, run_ids=run_ids)
    for row in statuses[statuses["status"] != "measured"].itertuples():
        click.echo(f"not measured: {row.variant} ({row.status}): {row.reason}", err=True)


def plots(report: Report, directory: Path | None) -> None:
    if directory is not None:
        from cetbench.analysis.render_plot import render_plots
        directory.mkdir(parents=True, exist_ok=True)
        for path in render_plots(report, directory):
            click.echo(f"plot: {path}", err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
@click.option("--json", "as_json", is_flag=True)
def ingest(paths: tuple[Path, ...], store_url: str | None, as_json: bool) -> None:
    """Add run bundles, pyperf JSON and pytest-benchmark JSON files to the store (idempotent)."""
    store = open_store(store_url)
    try:
        report = results.ingest_paths(store, paths)
    except results.StoreError as exc:
        fail(str(exc), EXIT_ENVIRONMENT)
    for r in report.results:
        if as_json:
            continue
        if r.status == "error":
            click.echo(f"cetbench: {r.path}: {r.message}", err=True)
        else:
            click.echo(f"{r.status}: {r.path} ({r.run_id}, {r.variants} variants, {r.samples} samples)")
    if as_json:
        click.echo(json.dumps([vars(r) for r in report.results], indent=2))
    sys.exit(EXIT_OK if report.ok else EXIT_USAGE)


@cli.command(name="list")
@store_option
@host_option
@click.option("--json", "as_json", is_flag=True)
def list_runs(store_url: str | None, host: str | None, as_json: bool) -> None:
    """List the stored runs: id, time, kernel, variants measured/unsupported/failed."""
    store = open_store(store_url)
    runs = results.list_runs(store, host=host)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in runs], indent=2))
        return
    table = Table(title=f"runs in {escape(store.display_url)}", title_justify="left")
    for col in ("run id", "started (UTC)", "host", "kernel", "label", "ok", "unsup", "failed", "good"):
        table.add_column(col)
    for r in runs:
        table.add_row(escape(r.run_id), f"{r.started_utc:%Y-%m-%d %H:%M}", escape(r.host or ""),
                      escape(r.kernel_release or ""), escape(r.kernel_label or ""), str(r.measured),
                      str(r.unsupported), str(r.failed), "yes" if r.marked_good else "")
    Console().print(table)


@cli.command(name="mark-good")
@click.argument("run_id")
@store_option
@click.option("--undo", is_flag=True, help="Remove the mark.")
def mark_good(run_id: str, store_url: str | None, undo: bool) -> None:
    """Mark a run as a good baseline (`cetbench ci` compares with the newest good run of the host)."""
    store = open_store(store_url)
    try:
        results.mark_good(store, run_id, good=not undo)
    except results.RunNotFound as exc:
        fail(str(exc))
    click.echo(f"{run_id}: {'unmarked' if undo else 'marked good'}")


@cli.command()
@click.argument("selection", required=False)
@store_option
@host_option
@format_option
@output_option
@click.option("--plots", "plot_dir", type=click.Path(path_type=Path), help="Also write plots (PNG, SVG) here.")
def overhead(selection: str | None, store_url: str | None, host: str | None, fmt: str, output: Path | None,
             plot_dir: Path | None) -> None:
    """CET overhead (CET on against off) with 95 % intervals, for a run id, kernel label or build id
    (default: the newest run)."""
    store = open_store(store_url)
    try:
        frame, counters = load_selection(store, selection or newest_run(store, host), host)
        result = cet_overhead(frame, counters, key_events=key_events())
    except (SelectionError, AnalysisInputError) as exc:
        fail(str(exc))
    report = Report(title="CET overhead", overhead=result)
    emit(report, fmt, output)
    not_measured(store, sorted(frame["run_id"].unique()), fmt, output)
    plots(report, plot_dir)


#: What a comparison side names: a selection (run id, kernel label or build id) or exact run ids.
Side = str | list[str]


def _load_side(store: Any, side: Side, host: str | None) -> tuple[Any, Any]:
    return load_selection(store, side, host) if isinstance(side, str) else load_runs(store, side, host)


def _side_name(side: Side) -> str:
    return side if isinstance(side, str) else side[0] if len(side) == 1 else f"{len(side)} runs"


def _compare(store: Any, baseline: Side, candidate: Side, host: str | None, settings: CompareSettings) -> Report:
    base, _ = _load_side(store, baseline, host)
    cand, counters = _load_side(store, candidate, host)
    result = compare(base, cand, settings)
    return Report(title=f"cetbench: {_side_name(candidate)} against {_side_name(baseline)}", comparison=result,
                  overhead=cet_overhead(cand, counters, key_events=key_events()))


def settings_from(alpha: float, correction: str, floor: float, force: bool) -> CompareSettings:
    return CompareSettings(alpha=alpha, correction=cast(Literal["holm", "bh"], correction), floor=floor, force=force)


def compare_and_report(store: Any, baseline: Side, candidate: Side, host: str | None, settings: CompareSettings,
                       fmt: str, output: Path | None, junit: Path | None) -> int:
    """Compare, write the report (and JUnit), and return the exit status the verdicts call for."""
    try:
        report = _compare(store, baseline, candidate, host, settings)
    except (SelectionError, AnalysisInputError) as exc:
        fail(str(exc))
    emit(report, fmt, output)
    if junit:
        emit(report, "junit", junit)
    assert report.comparison is not None
    return exit_status(report.comparison)


compare_options = [
    click.option("--floor", type=click.FloatRange(min=0), default=CompareSettings.floor, show_default=True,
                 help="Smallest relative change called a regression or improvement (0.02 = 2 %)."),
    click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
                 show_default=True),
    click.option("--correction", type=click.Choice(["holm", "bh"]), default="holm", show_default=True,
                 help="Multiple-comparison correction across the variants."),
    click.option("--force", is_flag=True, help="Compare runs from different CPU models or hosts."),
]


def with_compare_options(f: Any) -> Any:
    for option in reversed(compare_options):
        f = option(f)
    return f


@cli.command(name="compare")
@click.option("--baseline", required=True, help="Run id, kernel label or kernel build id.")
@click.option("--candidate", required=True, help="Run id, kernel label or kernel build id.")
@store_option
@host_option
@with_compare_options
@format_option
@output_option
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
def compare_cmd(baseline: str, candidate: str, store_url: str | None, host: str | None, floor: float, alpha: float,
                correction: str, force: bool, fmt: str, output: Path | None, junit: Path | None) -> None:
    """A/B between kernel builds per variant. Exit 0 no regression, 1 regression, 3 inconclusive."""
    store = open_store(store_url)
    sys.exit(compare_and_report(store, baseline, candidate, host, settings_from(alpha, correction, floor, force),
                                fmt, output, junit))


@cli.command(name="trend")
@store_option
@host_option
@click.option("--order", default="version", show_default=True,
              help="version (kernel release order), time, or a comma-separated list of kernel labels.")
@click.option("--only", "only", multiple=True, metavar="PATTERN", help="Only variants matching this glob.")
@format_option
@output_option
@click.option("--plots", "plot_dir", type=click.Path(path_type=Path), help="Also write trend plots here.")
def trend_cmd(store_url: str | None, host: str | None, order: str, only: tuple[str, ...], fmt: str,
              output: Path | None, plot_dir: Path | None) -> None:
    """Each variant over a series of kernel builds, with change points marked."""
    store = open_store(store_url)
    order_arg: str | list[str] = order if order in ("version", "time") else order.split(",")
    try:
        result = trend(load_all(store, host, list(only) or None), order_arg)
    except (SelectionError, AnalysisInputError) as exc:
        fail(str(exc))
    report = Report(title="cetbench trend", trend=result)
    emit(report, fmt, output)
    plots(report, plot_dir)


@cli.command(name="report")
@click.option("--baseline", help="Run id, kernel label or build id to compare against (optional).")
@click.option("--candidate", help="Run id, kernel label or build id (default: the newest run).")
@click.option("--trend", "with_trend", is_flag=True, help="Add the trend over every stored build.")
@store_option
@host_option
@with_compare_options
@format_option
@output_option
@click.option("--plots", "plot_dir", type=click.Path(path_type=Path), help="Also write plots (PNG, SVG) here.")
def report_cmd(baseline: str | None, candidate: str | None, with_trend: bool, store_url: str | None,
               host: str | None, floor: float, alpha: float, correction: str, force: bool, fmt: str,
               output: Path | None, plot_dir: Path | None) -> None:
    """One report (comparison, CET overhead, trend) in a chosen format, with plots."""
    store = open_store(store_url)
    settings = settings_from(alpha, correction, floor, force)
    try:
        candidate = candidate or newest_run(store, host)
        if baseline:
            report = _compare(store, baseline, candidate, host, settings)
        else:
            frame, counters = load_selection(store, candidate, host)
            report = Report(title=f"cetbench: {candidate}", overhead=cet_overhead(frame, counters,
                                                                                  key_events=key_events()))
        if with_trend:
            report = Report(title=report.title, comparison=report.comparison, overhead=report.overhead,
                            trend=trend(load_all(store, host)))
    except (SelectionError, AnalysisInputError) as exc:
        fail(str(exc))
    emit(report, fmt, output)
    plots(report, plot_dir)


@cli.command(name="ci")
@click.option("--quick", is_flag=True, help="The quick pyperf configuration.")
@click.option("--only", "only", multiple=True, metavar="PATTERN", help="Only variants matching this glob.")
@click.option("--baseline", help="Run id, kernel label or build id (default: this host's newest good runs).")
@click.option("--kernel-label", help="Label for the kernel build under test.")
@click.option("--runs", "repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs of the build under test; with >= 2 runs on both sides the run is the unit of the test.")
@click.option("--cpu", type=int, default=0, show_default=True)
@click.option("--inject-cycles", type=click.IntRange(min=0), default=0, help="Add K TSC cycles per op (self-test).")
@click.option("--pyperf-arg", "pyperf_args", multiple=True, metavar="ARG",
              help="Replace the pyperf configuration (repeat: --pyperf-arg=--processes --pyperf-arg=5).")
@click.option("--mark-good", "mark", is_flag=True,
              help="Mark these runs good when they show no regression (or when there is no baseline yet).")
@store_option
@with_compare_options
@format_option
@output_option
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
def ci(quick: bool, only: tuple[str, ...], baseline: str | None, kernel_label: str | None, repeat: int, cpu: int,
       inject_cycles: int, pyperf_args: tuple[str, ...], mark: bool, store_url: str | None, floor: float,
       alpha: float, correction: str, force: bool, fmt: str, output: Path | None, junit: Path | None) -> None:
    """Run, store, compare with the baseline, report, and exit 0 (no regression), 1 (regression),
    2 (usage or input error) or 3 (inconclusive, or no baseline).

    The default baseline is the newest run marked good on this host together with the other good
    runs of its kernel build."""
    from cetbench.cli import store_bundle
    from cetbench.runner import RunError, RunOptions, execute

    store = open_store(store_url)
    run_ids: list[str] = []
    for _ in range(repeat):
        try:
            bundle = execute(RunOptions(quick=quick, only=list(only), kernel_label=kernel_label, cpu=cpu,
                                        inject_cycles=inject_cycles, pyperf_args=pyperf_args or None))
        except RunError as exc:
            fail(str(exc))
        store_bundle(bundle.root, store_url)
        run_ids.append(bundle.manifest["run_id"])
    host = bundle.manifest["host"]
    base: Side = baseline or results.good_baseline_runs(
        store, host=host["hostname"], host_fingerprint=host["fingerprint"], exclude_run_ids=tuple(run_ids))
    if not base:
        if mark:
            for run_id in run_ids:
                results.mark_good(store, run_id)
            click.echo(f"no baseline yet for this host: {', '.join(run_ids)} now the baseline")
            sys.exit(EXIT_OK)
        fail(f"no baseline for this host: mark a run good (cetbench mark-good RUN_ID) or pass --baseline; "
             f"this run is {', '.join(run_ids)}", EXIT_ENVIRONMENT)
    status = compare_and_report(store, base, run_ids, None, settings_from(alpha, correction, floor, force), fmt,
                                output, junit)
    if mark and status == EXIT_OK:
        for run_id in run_ids:
            results.mark_good(store, run_id)
    sys.exit(status)
