"""`cetbench run` and `cetbench ci`: one run-and-store path (run_and_store), one set of options."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cetbench.cli import options
from cetbench.cli.console import console
from cetbench.cli.errors import EXIT_ENVIRONMENT, EXIT_OK, CommandError
from cetbench.runner import ProgressHook, RunOptions, interruptible


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressHook]:
    """A progress bar on stderr while variants run; none when stderr is not a terminal (a CI log
    would only collect its redraws)."""
    err = console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=not (enabled and err.is_terminal)) as bar:
        task = bar.add_task("variants", total=None)

        def hook(name: str, index: int, total: int) -> None:
            bar.update(task, total=total, completed=index, description=f"variant {index + 1}/{total} {name}")

        yield hook


def _options(quick: bool, only: tuple[str, ...], kernel_label: str | None, cpu: int, inject_cycles: int,
             timeout: float | None, pyperf_args: tuple[str, ...], perf: str, disturbed_above: float,
             steal_above: float, retry_disturbed: bool, interleave: bool, out: Path | None = None,
             resume: Path | None = None) -> RunOptions:
    return RunOptions(quick=quick, only=list(only), out=out, kernel_label=kernel_label, cpu=cpu, resume=resume,
                      inject_cycles=inject_cycles, timeout=timeout, pyperf_args=pyperf_args or None, perf=perf,
                      interleave=interleave, disturbed_above=disturbed_above, steal_above=steal_above,
                      retry_disturbed=retry_disturbed)


@click.command()
@options.running
@click.option("--out", type=click.Path(path_type=Path), help="Bundle directory (default: a new one in the runs dir).")
@click.option("--resume", type=click.Path(path_type=Path), help="Complete the variants a killed run left.")
@click.option("--no-store", is_flag=True, help="Only write the bundle; do not ingest it.")
@options.as_json
def run(quick: bool, only: tuple[str, ...], kernel_label: str | None, cpu: int, inject_cycles: int,
        timeout: float | None, pyperf_args: tuple[str, ...], perf: str, disturbed_above: float,
        steal_above: float, retry_disturbed: bool, interleave: bool, store_url: str | None, out: Path | None,
        resume: Path | None,
        no_store: bool, as_json: bool) -> None:
    """Run the benchmark variants, write a run bundle, ingest it into the store and print a summary."""
    from cetbench.analysis.render_terminal import render_terminal
    from cetbench.analysis.report import report_to_dict
    from cetbench.run_and_store import run_and_store

    if resume and (out or only):
        raise CommandError("--resume completes an existing bundle: it takes no --out or --only")
    opts = _options(quick, only, kernel_label, cpu, inject_cycles, timeout, pyperf_args, perf, disturbed_above,
                    steal_above, retry_disturbed, interleave, out, resume)
    with interruptible(), progress_bar(not as_json) as hook:
        stored = run_and_store(opts, store_url, no_store, hook)
    if as_json:
        click.echo(json.dumps({"run_id": stored.run_id, "bundle": str(stored.bundle.root), "store": stored.store,
                               "summary": report_to_dict(stored.summary)}, indent=2))
        return
    out_console = console()
    render_terminal(stored.summary, out_console)
    out_console.print(f"bundle: {stored.bundle.root}", markup=False, highlight=False)
    if stored.store:
        out_console.print(f"stored in {stored.store}", markup=False, highlight=False)


#: Runs of the build under test that `cetbench ci` makes by default. Measured (README "CI gate"): one
#: run a side called the unchanged build a regression 2 in 20 times on a quiet host before the gate;
#: 8 runs a side gave no A/A false alarm quiet or beside a busy neighbour and caught a +5 % slowdown
#: 20 in 20 times on a quiet host, where runs of one build drift 1-2 % apart.
CI_RUNS = 8


@click.command()
@options.running
@click.option("--baseline", help="Run id, kernel label or build id (default: this host's newest good runs).")
@click.option("--runs", "repeat", type=click.IntRange(min=1), default=CI_RUNS, show_default=True,
              help="Runs of the build under test; with >= 2 runs on both sides the run is the unit of the test "
                   "(the baseline needs as many good runs: the first `ci --mark-good` on it makes them).")
@click.option("--mark-good", "mark", is_flag=True,
              help="Mark these runs good when they show no regression (or when there is no baseline yet).")
@options.comparing
@options.report_output
@options.junit
def ci(quick: bool, only: tuple[str, ...], kernel_label: str | None, cpu: int, inject_cycles: int,
       timeout: float | None, pyperf_args: tuple[str, ...], perf: str, disturbed_above: float,
       steal_above: float, retry_disturbed: bool, interleave: bool, store_url: str | None, baseline: str | None,
       repeat: int, mark: bool, floor: float, alpha: float, correction: str, max_noise: float, force: bool, fmt: str,
       output: Path | None, junit: Path | None) -> int:
    """Run, store, compare with the baseline, report, and exit 0 (no regression), 1 (regression),
    2 (usage or input error) or 3 (inconclusive, or no baseline).

    The default baseline is the newest run marked good on this host together with the other good
    runs of its kernel build."""
    from cetbench import results
    from cetbench.cli.reporting import Side, compare_and_report
    from cetbench.run_and_store import run_and_store

    opts = _options(quick, only, kernel_label, cpu, inject_cycles, timeout, pyperf_args, perf, disturbed_above,
                    steal_above, retry_disturbed, interleave)
    run_ids: list[str] = []
    with interruptible(), progress_bar(True) as hook:
        for _ in range(repeat):
            stored = run_and_store(opts, store_url, progress=hook)
            run_ids.append(stored.run_id)
    host = stored.bundle.manifest["host"]
    with results.open_store(store_url) as store:
        base: Side = baseline or results.good_baseline_runs(
            store, host=host["hostname"], host_fingerprint=host["fingerprint"], exclude_run_ids=tuple(run_ids))
        if not base:
            if not mark:
                raise CommandError(f"no baseline for this host: mark a run good (cetbench mark-good RUN_ID) or pass "
                                   f"--baseline; this run is {', '.join(run_ids)}", EXIT_ENVIRONMENT)
            for run_id in run_ids:
                results.mark_good(store, run_id)
            click.echo(f"no baseline yet for this host: {', '.join(run_ids)} now the baseline")
            return EXIT_OK
        settings = options.compare_settings(floor, alpha, correction, force, max_noise)
        status = compare_and_report(store, base, run_ids, None, settings, fmt, output, junit)
        if mark and status == EXIT_OK:
            for run_id in run_ids:
                results.mark_good(store, run_id)
    return status
