"""The analysis commands: overhead, compare, trend, report."""

from __future__ import annotations

from pathlib import Path

import click

from cetbench.cli import options
from cetbench.cli.reporting import compare_and_report, comparison_report, emit, plots


@click.command()
@click.argument("selection", required=False)
@options.store
@options.host
@options.report_output
@options.plots
def overhead(selection: str | None, store_url: str | None, host: str | None, fmt: str, output: Path | None,
             plot_dir: Path | None) -> None:
    """CET overhead (CET on against off) with 95 % intervals, for a run id, kernel label or build id
    (default: the newest run)."""
    from cetbench import results
    from cetbench.selection import load_selection, newest_run, run_report

    with results.open_store(store_url) as store:
        frame, _ = load_selection(store, selection or newest_run(store, host), host)
        report = run_report(store, sorted(frame["run_id"].unique()), "CET overhead")
    emit(report, fmt, output)
    plots(report, plot_dir)


@click.command(name="compare")
@click.option("--baseline", required=True, help="Run id, kernel label or kernel build id.")
@click.option("--candidate", required=True, help="Run id, kernel label or kernel build id.")
@options.store
@options.host
@options.comparing
@options.report_output
@options.junit
def compare(baseline: str, candidate: str, store_url: str | None, host: str | None, floor: float, alpha: float,
            correction: str, max_noise: float, force: bool, fmt: str, output: Path | None, junit: Path | None) -> int:
    """A/B between kernel builds per variant. Exit 0 no regression, 1 regression, 3 inconclusive."""
    from cetbench import results

    with results.open_store(store_url) as store:
        return compare_and_report(store, baseline, candidate, host,
                                  options.compare_settings(floor, alpha, correction, force, max_noise), fmt,
                                  output, junit)


@click.command(name="trend")
@options.store
@options.host
@click.option("--order", default="version", show_default=True,
              help="version (kernel release order), time, or a comma-separated list of kernel labels.")
@options.only
@options.report_output
@options.plots
def trend(store_url: str | None, host: str | None, order: str, only: tuple[str, ...], fmt: str,
          output: Path | None, plot_dir: Path | None) -> None:
    """Each variant over a series of kernel builds, with change points marked."""
    from cetbench import results
    from cetbench.analysis import Report
    from cetbench.analysis import trend as trend_of
    from cetbench.selection import load_all

    order_arg: str | list[str] = order if order in ("version", "time") else order.split(",")
    with results.open_store(store_url) as store:
        report = Report(title="cetbench trend", trend=trend_of(load_all(store, host, list(only) or None), order_arg))
    emit(report, fmt, output)
    plots(report, plot_dir)


@click.command(name="report")
@click.option("--baseline", help="Run id, kernel label or build id to compare against (optional).")
@click.option("--candidate", help="Run id, kernel label or build id (default: the newest run).")
@click.option("--trend", "with_trend", is_flag=True, help="Add the trend over every stored build.")
@options.store
@options.host
@options.comparing
@options.report_output
@options.plots
def report(baseline: str | None, candidate: str | None, with_trend: bool, store_url: str | None,
           host: str | None, floor: float, alpha: float, correction: str, max_noise: float, force: bool, fmt: str,
           output: Path | None, plot_dir: Path | None) -> None:
    """One report (comparison, CET overhead, trend) in a chosen format, with plots."""
    from dataclasses import replace

    from cetbench import results
    from cetbench.analysis import trend as trend_of
    from cetbench.selection import load_all, load_selection, newest_run, run_report

    with results.open_store(store_url) as store:
        candidate = candidate or newest_run(store, host)
        if baseline:
            result = comparison_report(store, baseline, candidate, host,
                                       options.compare_settings(floor, alpha, correction, force, max_noise))
        else:
            frame, _ = load_selection(store, candidate, host)
            result = run_report(store, sorted(frame["run_id"].unique()), f"cetbench: {candidate}")
        if with_trend:
            result = replace(result, trend=trend_of(load_all(store, host)))
    emit(result, fmt, output)
    plots(result, plot_dir)
