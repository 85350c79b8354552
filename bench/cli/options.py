"""Options several commands share, declared once (click decorators)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from cetbench.analysis.compare import CompareSettings
from cetbench.interference import DISTURBED_ABOVE_CPUS, DISTURBED_ABOVE_STEAL

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("terminal", "text", "markdown", "json", "junit", "html")


def _all(*options: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f
    return apply


store = click.option("--store", "store_url", envvar="CETBENCH_STORE", metavar="URL",
                     help="Store URL: postgresql://... or a SQLite file (default: store.sqlite in the data "
                          "directory; env CETBENCH_STORE).")
host = click.option("--host", help="Only runs of this host name.")
as_json = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
only = click.option("--only", "only", multiple=True, metavar="PATTERN",
                    help="Only variants matching this glob (* and ? are wildcards, brackets literal; repeat).")
report_output = _all(
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True),
    click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
                 help="Write the report here instead of standard output."),
)
plots = click.option("--plots", "plot_dir", type=click.Path(path_type=Path, file_okay=False),
                     help="Also write plots (PNG, SVG) here.")
junit = click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Also write JUnit XML here.")

quick = click.option("--quick", is_flag=True, help="Short pyperf configuration (CI, first contact).")
kernel_label = click.option("--kernel-label", help="Label for the kernel build under test (e.g. v6.19-rc3, a commit).")
cpu = click.option("--cpu", type=int, default=0, show_default=True,
                   help="CPU to pin the workloads to (-1: no pinning).")
inject_cycles = click.option("--inject-cycles", type=click.IntRange(min=0), default=0,
                             help="Add K TSC cycles of work per op.")
timeout = click.option("--timeout", type=click.FloatRange(min=1), help="Per-variant time limit in seconds.")
pyperf_args = click.option("--pyperf-arg", "pyperf_args", multiple=True, metavar="ARG",
                           help="Replace the pyperf configuration (repeat: --pyperf-arg=--processes "
                                "--pyperf-arg=5).")
perf = click.option("--perf", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
                    help="perf counting pass per variant, after the timed samples (auto: when perf is usable).")

#: How a variant is run: `run` and `ci` take the same.
disturbed_above = click.option(
    "--disturbed-above", type=click.FloatRange(min=0), default=DISTURBED_ABOVE_CPUS, show_default=True,
    help="Other processes' CPU use (in CPUs) above which a variant's timing counts as disturbed (never the basis "
         "of a regression verdict).")
steal_above = click.option(
    "--steal-above", type=click.FloatRange(min=0, max=1), default=DISTURBED_ABOVE_STEAL, show_default=True,
    help="Share of the run's time the hypervisor gave the machine's CPUs to others (steal) above which a "
         "variant's timing counts as disturbed.")
retry_disturbed = click.option("--retry-disturbed/--no-retry-disturbed", default=True, show_default=True,
                               help="Time a disturbed variant once more.")
interleave = click.option("--interleave", is_flag=True,
                          help="Alternate the worker processes of each workload's variants in time, so drift "
                               "cancels in CET on against off (slower: one pyperf start per process).")
running = _all(quick, only, kernel_label, cpu, inject_cycles, timeout, pyperf_args, perf, disturbed_above,
               steal_above, retry_disturbed, interleave, store)

#: How two sides are compared: `compare`, `report` and `ci` take the same.
comparing = _all(
    click.option("--floor", type=click.FloatRange(min=0), default=CompareSettings.floor, show_default=True,
                 help="Smallest relative change called a regression or improvement (0.02 = 2 %)."),
    click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                 default=CompareSettings.alpha, show_default=True),
    click.option("--correction", type=click.Choice(["holm", "bh"]), default=CompareSettings.correction,
                 show_default=True, help="Multiple-comparison correction across the variants."),
    click.option("--max-noise", type=click.FloatRange(min=0, min_open=True), default=CompareSettings.max_noise,
                 show_default=True, help="A change that is not significant is inconclusive when a median is more "
                 "uncertain than this (0.05 = ±5 %)."),
    click.option("--force", is_flag=True, help="Compare runs from different CPU models or hosts."),
)


def compare_settings(floor: float, alpha: float, correction: str, force: bool,
                     max_noise: float = CompareSettings.max_noise) -> CompareSettings:
    return CompareSettings(alpha=alpha, correction="bh" if correction == "bh" else "holm", floor=floor, force=force,
                           max_noise=max_noise)
