"""The store commands: ingest, list, mark-good."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from cetbench.cli import options
from cetbench.cli.console import console, one_line
from cetbench.cli.errors import EXIT_OK, EXIT_USAGE


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@options.store
@options.as_json
def ingest(paths: tuple[Path, ...], store_url: str | None, as_json: bool) -> int:
    """Add run bundles, pyperf JSON and pytest-benchmark JSON files to the store (idempotent)."""
    from cetbench import results

    with results.open_store(store_url) as store:
        report = results.ingest_paths(store, paths)
    for r in report.results:
        if as_json:
            continue
        if r.status == "error":
            click.echo(f"cetbench: {one_line(f'{r.path}: {r.message}')}", err=True)
        else:
            click.echo(one_line(f"{r.status}: {r.path} ({r.run_id}, {r.variants} variants, {r.samples} samples)"))
    if as_json:
        click.echo(json.dumps([vars(r) for r in report.results], indent=2))
    return EXIT_OK if report.ok else EXIT_USAGE


@click.command(name="list")
@options.store
@options.host
@options.as_json
def list_runs(store_url: str | None, host: str | None, as_json: bool) -> None:
    """List the stored runs: id, time, kernel, variants measured/unsupported/failed."""
    from cetbench import results

    with results.open_store(store_url) as store:
        runs = results.list_runs(store, host=host)
        where = store.display_url
    if as_json:
        click.echo(json.dumps([r.to_json() for r in runs], indent=2))
        return
    table = Table(title=f"runs in {escape(where)}", title_justify="left")
    for col in ("run id", "started (UTC)", "host", "kernel", "label", "ok", "unsup", "failed", "good"):
        table.add_column(col, no_wrap=col in ("run id", "started (UTC)"))
    for r in runs:
        table.add_row(escape(r.run_id), f"{r.started_utc:%Y-%m-%d %H:%M}", escape(r.host or ""),
                      escape(r.kernel_release or ""), escape(r.kernel_label or ""), str(r.measured),
                      str(r.unsupported), str(r.failed), "yes" if r.marked_good else "")
    console().print(table)


@click.command(name="mark-good")
@click.argument("run_id")
@options.store
@click.option("--undo", is_flag=True, help="Remove the mark.")
def mark_good(run_id: str, store_url: str | None, undo: bool) -> None:
    """Mark a run as a good baseline (`cetbench ci` compares with the newest good run of the host)."""
    from cetbench import results

    with results.open_store(store_url) as store:
        results.mark_good(store, run_id, good=not undo)
    click.echo(f"{run_id}: {'unmarked' if undo else 'marked good'}")
