"""The `cetbench` command line. Exit codes: 0 fine, 1 regression found, 2 usage or input error,
3 inconclusive or the environment cannot run what was asked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from cetbench import __version__

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
    from cetbench.probe import collect
    from cetbench.probe_view import render

    doc = collect()
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=False))
    else:
        render(doc, Console())


@cli.command()
@click.option("--quick", is_flag=True, help="Short pyperf configuration (CI, first contact): about a minute.")
@click.option("--only", "only", multiple=True, metavar="PATTERN", help="Run only variants matching this glob.")
@click.option("--out", type=click.Path(path_type=Path), help="Bundle directory (default: a new one in the runs dir).")
@click.option("--kernel-label", help="Label for the kernel build under test (e.g. v6.19-rc3, a commit).")
@click.option("--cpu", type=int, default=0, show_default=True, help="CPU to pin the workloads to (-1: no pinning).")
@click.option("--resume", type=click.Path(path_type=Path), help="Complete the variants a killed run left.")
@click.option("--inject-cycles", type=click.IntRange(min=0), default=0, help="Add K TSC cycles of work per op.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Per-variant time limit in seconds.")
@click.option("--pyperf-arg", "pyperf_args", multiple=True, metavar="ARG",
              help="Replace the pyperf configuration (repeat: --pyperf-arg=--processes --pyperf-arg=5).")
@click.option("--perf", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="perf counting pass per variant, after the timed samples (auto: when perf is usable).")
@click.option("--store", "store_url", envvar="CETBENCH_STORE", metavar="URL",
              help="Store to ingest the bundle into (default: the SQLite file in the data directory).")
@click.option("--no-store", is_flag=True, help="Only write the bundle; do not ingest it.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(quick: bool, only: tuple[str, ...], out: Path | None, kernel_label: str | None, cpu: int,
        resume: Path | None, inject_cycles: int, timeout: float | None, pyperf_args: tuple[str, ...],
        perf: str, store_url: str | None, no_store: bool, as_json: bool) -> None:
    """Run the benchmark variants, write a run bundle and ingest it into the store."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cetbench.runner import RunError, RunOptions, execute
    from cetbench.summary import side_by_side, variant_rows
    from cetbench.summary_view import render_summary

    if resume and (out or only):
        fail("--resume completes an existing bundle: it takes no --out or --only")
    opts = RunOptions(quick=quick, only=list(only), out=out, kernel_label=kernel_label, cpu=cpu, resume=resume,
                      inject_cycles=inject_cycles, timeout=timeout, pyperf_args=pyperf_args or None, perf=perf)
    console = Console(stderr=as_json)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("variants", total=None)

        def progress(name: str, index: int, total: int) -> None:
            bar.update(task, total=total, completed=index, description=f"variant {index + 1}/{total} {name}")

        try:
            bundle = execute(opts, progress)
        except RunError as exc:
            fail(str(exc))
    stored = None if no_store else store_bundle(bundle.root, store_url)
    rows = variant_rows(bundle.root, bundle.manifest)
    pairs = side_by_side(rows)
    if as_json:
        click.echo(json.dumps({"run_id": bundle.manifest["run_id"], "bundle": str(bundle.root), "store": stored,
                               "variants": rows, "cet_pairs": pairs}, indent=2))
    else:
        render_summary(rows, pairs, bundle.manifest["run_id"], str(bundle.root), console)
        if stored:
            console.print(f"stored in {stored}")


def store_bundle(root: Path, store_url: str | None) -> str:
    """Ingest a finished bundle; a store failure is one line and exit 3, and the bundle stays on disk
    (so `cetbench ingest` can add it later)."""
    from cetbench import results

    try:
        store = results.open_store(store_url)
        report = results.ingest_paths(store, [root])
    except results.StoreError as exc:
        fail(f"{exc} (the bundle is kept in {root}; `cetbench ingest {root}` adds it later)", EXIT_ENVIRONMENT)
    if not report.ok:
        fail(f"{report.errors[0].message} (bundle kept in {root})", EXIT_ENVIRONMENT)
    return str(store.display_url)


@cli.command()
@click.argument("variant")
@click.option("--vendor", type=click.Choice(["intel", "amd"]),
              help="Explain for this CPU vendor (default: this host's).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(variant: str, vendor: str | None, as_json: bool) -> None:
    """Exactly what VARIANT sets (CPUID bits, control registers, MSRs, shadow-stack layout, the loop's exit)."""
    from cetbench.explain import as_text
    from cetbench.explain import explain as explain_variant
    from cetbench.probe import collect
    from cetbench.workloads.build import BuildError
    from cetbench.workloads.table import all_variants, by_name

    try:
        chosen = by_name(variant)
    except LookupError:
        fail(f"unknown variant {variant!r}; known: {', '.join(v.name for v in all_variants())}")
    try:
        doc = explain_variant(chosen, collect(), vendor)
    except (BuildError, RuntimeError) as exc:
        fail(str(exc), EXIT_ENVIRONMENT)
    click.echo(json.dumps(doc, indent=2) if as_json else "\n".join(as_text(doc)))


def main() -> None:
    import cetbench.cli_results  # noqa: F401  (registers the store and analysis commands on `cli`)

    cli(prog_name="cetbench")
