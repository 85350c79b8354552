"""The `cetbench` command line: thin commands over the library.

Exit codes (README): 0 fine, 1 regression found, 2 usage or input error, 3 inconclusive or the
environment cannot run what was asked. `main` is the one place exceptions become exit codes.
"""

from __future__ import annotations

import sys

import click

from cetbench import __version__
from cetbench.cli import analyze, bisect, host, lab, run, store
from cetbench.cli.console import one_line
from cetbench.cli.errors import EXIT_USAGE, exit_code_for
from cetbench.runner import RunInterrupted


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cetbench")
def cli() -> None:
    """Measure what CET (shadow stack, IBT) costs on Linux/KVM context-switch paths."""


for command in (host.probe, host.explain, run.run, run.ci, lab.lab, store.ingest, store.list_runs, store.mark_good,
                analyze.overhead, analyze.compare, analyze.trend, analyze.report, bisect.bisect):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    try:
        status = cli.main(args=argv, prog_name="cetbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("cetbench: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # click's own usage errors (unknown option, bad value)
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except (Exception, RunInterrupted) as exc:
        code = exit_code_for(exc)
        if code is None:
            raise  # a bug: the traceback is what a developer needs
        click.echo(f"cetbench: {one_line(str(exc))}", err=True)
        sys.exit(code)
    sys.exit(status if isinstance(status, int) else 0)
