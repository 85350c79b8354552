"""`cetbench bisect start | run | step | status | reset`: the commands over bench/bisect.py, and the
lab it drives: runs through run_and_store, verdicts through the comparison `compare` uses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cetbench.cli import options
from cetbench.cli.errors import EXIT_OK, CommandError
from cetbench.interference import DISTURBED_ABOVE_CPUS, DISTURBED_ABOVE_STEAL

if TYPE_CHECKING:
    from cetbench.bisect import Judgement

RUN_OPTIONS = ("quick", "cpu", "timeout", "pyperf_args", "perf", "disturbed_above", "steal_above")


def _default_state() -> Path:
    from cetbench.results.paths import default_data_dir

    return default_data_dir() / "bisect.json"


state_option = click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False),
                            help="The bisect's state file (default: bisect.json in the data directory).")


@click.command(name="run arguments", add_help_option=False)
@options.cpu
@options.inject_cycles
@options.timeout
@options.pyperf_args
@options.perf
def _hook_run_args(**_: Any) -> None:
    """The `cetbench run` options a build hook may write for its revision's runs."""


def parse_run_args(args: list[str]) -> dict[str, Any]:
    """The options a build hook wrote, as `run` parameters (only those it gave)."""
    from click.core import ParameterSource

    from cetbench.bisect import BisectInputError

    try:
        ctx = _hook_run_args.make_context("run arguments", list(args))
    except click.ClickException as exc:
        raise BisectInputError(f"the build hook's run options {' '.join(args)!r}: {exc.format_message()}") from None
    return {k: v for k, v in ctx.params.items() if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE}


class StoreLab:
    """Measure with `run_and_store` into the store, judge with the comparison of `compare`."""

    def __init__(self, variant: str, opts: dict[str, Any], store_url: str | None) -> None:
        self.variant, self.opts, self.store_url = variant, opts, store_url

    def check_run_args(self, run_args: list[str]) -> None:
        parse_run_args(run_args)

    def measure(self, label: str, run_args: list[str]) -> list[str]:
        from cetbench.bisect import VariantNotMeasured
        from cetbench.cli.run import progress_bar
        from cetbench.run_and_store import run_and_store
        from cetbench.runner import RunOptions

        given = {k: self.opts[k] for k in RUN_OPTIONS if k in self.opts} | parse_run_args(run_args)
        opts = RunOptions(quick=given["quick"], only=[self.variant], kernel_label=label, cpu=given["cpu"],
                          inject_cycles=given.get("inject_cycles", 0), timeout=given["timeout"],
                          pyperf_args=tuple(given["pyperf_args"]) or None, perf=given["perf"],
                          disturbed_above=given.get("disturbed_above", DISTURBED_ABOVE_CPUS),
                          steal_above=given.get("steal_above", DISTURBED_ABOVE_STEAL))
        run_ids = []
        with progress_bar(True) as hook:
            for _ in range(self.opts["runs"]):
                stored = run_and_store(opts, self.store_url, progress=hook)
                entry = stored.bundle.manifest["variants"][self.variant]
                if entry["status"] != "measured":
                    raise VariantNotMeasured(f"{self.variant} was not measured on {label}: {entry['status']}: "
                                             f"{entry.get('reason') or 'no reason given'}")
                run_ids.append(stored.run_id)
        return run_ids

    def judge(self, baseline: list[str], candidate: list[str]) -> Judgement:
        from cetbench import results
        from cetbench.bisect import Judgement
        from cetbench.cli.reporting import comparison_report

        settings = options.compare_settings(self.opts["floor"], self.opts["alpha"], self.opts["correction"],
                                            self.opts["force"], self.opts["max_noise"])
        with results.open_store(self.store_url) as store:
            report = comparison_report(store, baseline, candidate, None, settings)
        assert report.comparison is not None
        row = next(v for v in report.comparison.variants if v.variant == self.variant)
        return Judgement(row.verdict.value, row.change, row.reason)


@click.group()
def bisect() -> None:
    """Find the commit of a kernel tree that brought a regression: git bisect, measuring each boot.

    `start` checks the input and writes the state; `run` builds (build hook), boots (reboot hook),
    measures and marks each revision until the first bad commit is named. Run `cetbench bisect run`
    again after each reboot (e.g. from a boot service): it resumes from the state file."""


@bisect.command(name="start")
@click.option("--tree", type=click.Path(path_type=Path), help="The kernel's git tree.")
@click.option("--good", help="A revision without the regression.")
@click.option("--bad", help="A later revision with it.")
@click.option("--variant", help="The variant that regressed, e.g. host.syscall[shstk=off].")
@click.option("--build-hook", metavar="COMMAND", help="Builds and installs the revision checked out (no shell).")
@click.option("--reboot-hook", metavar="COMMAND", help="Boots the installed build (no shell).")
@click.option("--runs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per revision; with >= 2 a side the run is the unit of the test.")
@options.quick
@options.cpu
@options.timeout
@options.pyperf_args
@options.perf
@options.disturbed_above
@options.steal_above
@options.comparing
@state_option
def start(tree: Path | None, good: str | None, bad: str | None, variant: str | None, build_hook: str | None,
          reboot_hook: str | None, state_path: Path | None, **measuring: Any) -> None:
    """Check the tree, the revisions, the variant and the hooks, and write the bisect's state."""
    from cetbench import bisect as driver
    from cetbench.bisect_git import hook_command
    from cetbench.workloads.table import select

    given = {"--tree": tree, "--good": good, "--bad": bad, "--variant": variant, "--build-hook": build_hook,
             "--reboot-hook": reboot_hook}
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise CommandError(f"bisect start needs {', '.join(missing)}")
    assert tree and good and bad and variant and build_hook and reboot_hook
    if [v.name for v in select([variant])] != [variant]:
        raise CommandError(f"--variant takes one variant name, not a pattern: {variant!r}")
    path = state_path or _default_state()
    state = driver.start(path, tree, good, bad, variant, hook_command(build_hook, "build"),
                         hook_command(reboot_hook, "reboot"), measuring)
    click.echo(f"bisect of {variant} in {state.tree}: good {state.good[:12]}, bad {state.bad[:12]}; "
               f"state in {path}")
    click.echo("next: cetbench bisect run (again after each reboot)")


def _drive(state_path: Path | None, store_url: str | None, loop: bool) -> int:
    from cetbench import bisect as driver

    path = state_path or _default_state()
    state = driver.load(path)
    lab = StoreLab(state.variant, state.options, store_url)
    while True:
        state = driver.step(path, lab, click.echo)
        if state.phase == "done" or not loop:
            break
    if state.phase == "done":
        click.echo(driver.conclusion(state))
    else:
        click.echo(f"next: {state.stage} {state.phase} {state.current[:12]} (cetbench bisect step)")
    return EXIT_OK


@bisect.command(name="run")
@state_option
@options.store
def run(state_path: Path | None, store_url: str | None) -> int:
    """Go on until the first bad commit is named (after a real reboot, run it again at boot).
    Exit 0 with the commit, 3 when there is none (no regression between the ends, or only skipped
    revisions left) or a hook failed (the state is kept), 2 for bad input."""
    return _drive(state_path, store_url, loop=True)


@bisect.command(name="step")
@state_option
@options.store
def step(state_path: Path | None, store_url: str | None) -> int:
    """Go on to the next reboot: measure and mark the booted build, build the next revision, run
    the reboot hook, and stop."""
    return _drive(state_path, store_url, loop=False)


@bisect.command(name="status")
@state_option
@options.as_json
def status(state_path: Path | None, as_json: bool) -> None:
    """Where the bisect stands: each revision measured, its verdict and mark."""
    import dataclasses
    import json

    from cetbench import bisect as driver

    state = driver.load(state_path or _default_state())
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(state), indent=1))
        return
    click.echo(f"bisect of {state.variant} in {state.tree}: {state.phase}"
               + (f" ({state.outcome})" if state.outcome else f", next: {state.stage} {state.current[:12]}"))
    for s in state.steps:
        change = "" if s.change is None else f" {s.change * 100:+.1f} %"
        click.echo(f"  {s.phase:6} {s.rev[:12]}  {s.verdict or 'not measured'}{change} -> {s.mark}"
                   + (f"  ({s.reason})" if s.reason else ""))
    if state.first_bad:
        click.echo(f"first bad commit: {state.first_bad}")


@bisect.command(name="reset")
@state_option
def reset(state_path: Path | None) -> None:
    """End the bisect: git bisect reset, the tree back where it was, the state file removed."""
    from cetbench import bisect as driver

    state = driver.reset(state_path or _default_state())
    click.echo(f"bisect of {state.variant} ended; {state.tree} is back at {state.original}")
