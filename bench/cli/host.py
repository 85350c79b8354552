"""`cetbench probe` and `cetbench explain`: what this host offers, and what a variant sets."""

from __future__ import annotations

import json

import click

from cetbench.cli import options
from cetbench.cli.console import console
from cetbench.cli.errors import EXIT_ENVIRONMENT, CommandError


@click.command()
@options.as_json
def probe(as_json: bool) -> None:
    """What CET support this host has (CPU, kernel, KVM, perf) and which variants can run."""
    from cetbench.cli.probe_view import render
    from cetbench.plan import plan
    from cetbench.probe import collect, document
    from cetbench.workloads.table import all_variants

    facts = collect()
    decided = plan(facts, all_variants())
    if as_json:
        click.echo(json.dumps(document(facts, decided), indent=2))
    else:
        render(facts, decided, console())


@click.command()
@click.argument("variant")
@click.option("--vendor", type=click.Choice(["intel", "amd"]),
              help="Explain for this CPU vendor (default: this host's).")
@options.as_json
def explain(variant: str, vendor: str | None, as_json: bool) -> None:
    """Exactly what VARIANT sets (CPUID bits, control registers, MSRs, shadow-stack layout, the loop's exit)."""
    from cetbench.explain import as_text
    from cetbench.explain import explain as explain_variant
    from cetbench.probe import collect
    from cetbench.workloads.table import by_name

    chosen = by_name(variant)
    try:
        doc = explain_variant(chosen, collect(), vendor)
    except RuntimeError as exc:
        raise CommandError(str(exc), EXIT_ENVIRONMENT) from None
    click.echo(json.dumps(doc, indent=2) if as_json else "\n".join(as_text(doc)))
