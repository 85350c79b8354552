"""The `cetbench` command line. Exit codes: 0 fine, 1 regression found, 2 usage or input error,
3 inconclusive or the environment cannot run what was asked."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from bench import __version__

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One clear line on stderr and a non-zero exit: the contract for bad input."""
    click.echo(f"cetbench: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cetbench")
def cli() -> None:
    """Measure what CET (shadow stack, IBT) costs on Linux/KVM context-switch paths."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the probe document as JSON.")
def probe(as_json: bool) -> None:
    """What CET support this host has (CPU, kernel, KVM, perf) and which variants can run."""
    from bench.probe import collect
    from bench.probe_view import render

    doc = collect()
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=False))
    else:
        render(doc, Console())


def main() -> None:
    cli(prog_name="cetbench")
