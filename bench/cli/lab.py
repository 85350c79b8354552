"""`cetbench lab`: the selected variants run in the emulated CET lab (Debian's kernel on bochs's
tigerlake model), one boot per kernel, each written as a run bundle and stored like any run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from cetbench.cli import options
from cetbench.cli.console import console
from cetbench.cli.errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_REGRESSION, CommandError
from cetbench.results.bundle import Bundle

DEFAULT_KERNEL = "sid"  # the newest Debian kernel >= 6.18 (7.x: kvm_intel has its `cet` parameter)


def _serial(bundle: Bundle) -> Path:
    return bundle.root / bundle.manifest["backend"]["serial_log"]


def _parent(root: Path) -> Path:
    root.parent.mkdir(parents=True, exist_ok=True)
    return root.parent


def _fresh(root: Path) -> Path:
    """`root` if a bundle can be created there (checked before a boot of minutes, not after)."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CommandError(f"{root} exists and is not an empty directory: give a new --out")
    return root


def quick_selection() -> list[str]:
    """Per workload: CET fully on (every CET feature the kind has) and its CET-off partner."""
    from cetbench.workloads.table import select

    return [v.name for v in select(None) if len(v.id.config) == 1 and v.workload.kind != "linux" and
            (not v.cet_on or v.cet_features == ({"shstk"} if v.workload.kind == "host" else {"shstk", "ibt"}))]


@click.command()
@click.option("--quick", is_flag=True, help="Per workload, CET fully on and its CET-off partner only.")
@options.only
@click.option("--kernel", "kernels", multiple=True, metavar="SUITE|PACKAGE|PATH",
              help=f"Kernel to boot (repeat for a series of builds: one bundle each): a Debian suite (its newest "
                   f"kernel >= 6.18), a package, or a path to its .debs or unpacked tree (default {DEFAULT_KERNEL}).")
@options.kernel_label
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Bundle directory (default: a new one in the runs dir); with several kernels, one per kernel in it.")
@click.option("--timeout", type=click.FloatRange(min=60), default=1800.0, show_default=True,
              help="Host seconds for one boot and its jobs.")
@options.store
@click.option("--no-store", is_flag=True, help="Only write the bundles; do not ingest them.")
@options.as_json
def lab(quick: bool, only: tuple[str, ...], kernels: tuple[str, ...], kernel_label: str | None, out: Path | None,
        timeout: float, store_url: str | None, no_store: bool, as_json: bool) -> int:
    """Run variants in the emulated CET lab: CET state read back, event counts per op, stored as runs.
    Every figure is labelled with the emulator: a path length on an emulated CPU, never a hardware time.
    Exits 1 when a variant failed there (a CET path broken on a real CET kernel and KVM)."""
    from cetbench.analysis.render_terminal import render_terminal
    from cetbench.analysis.report import report_to_dict
    from cetbench.lab.bochs import get_emulator
    from cetbench.lab.bundle import write_bundle
    from cetbench.lab.errors import LabError
    from cetbench.lab.kernel import get_kernel
    from cetbench.lab.run import run_lab
    from cetbench.lab.suite import variant_jobs
    from cetbench.manifest import new_run_id
    from cetbench.results.paths import default_runs_dir
    from cetbench.run_and_store import store_and_summarise
    from cetbench.workloads.table import select
    from cetbench.workloads.variants import LINUX

    # linux.* variants boot a Linux guest under QEMU themselves (`cetbench run --only 'linux.*'`)
    variants = [v for v in select(list(only) or (quick_selection() if quick else None)) if v.workload.kind != LINUX]
    if not variants:
        raise CommandError("the lab runs host.* and guest.* variants; linux.* ones run under QEMU: "
                           "cetbench run --only 'linux.*'")
    specs = kernels or (DEFAULT_KERNEL,)
    if kernel_label and len(specs) > 1:
        raise CommandError("--kernel-label names one kernel build: give one --kernel with it (a series of kernels "
                           "is labelled by their releases)")
    if out and len(specs) == 1:
        _fresh(out)  # before the kernel is fetched or booted
    if not no_store:
        from cetbench import results

        results.open_store(store_url).close()  # before the boots: an unreachable store fails fast
    stored = []
    try:
        emulator = get_emulator()
        for spec in specs:
            kernel = get_kernel(spec)
            root = _fresh(out / kernel.release if out and len(specs) > 1 else
                          out or default_runs_dir() / f"lab-{new_run_id()}")
            if not as_json:
                console(stderr=True).print(f"lab: {len(variants)} variants, kernel {kernel.release} ({spec}), "
                                           f"{emulator.description}", markup=False, highlight=False)
            workdir = Path(tempfile.mkdtemp(prefix=".lab-", dir=_parent(root)))
            run = run_lab(kernel, variant_jobs(variants), workdir, timeout_s=timeout, emulator=emulator)
            bundle = write_bundle(root, run, workdir, variants, kernel_label or kernel.release)
            stored.append((store_and_summarise(bundle, store_url, no_store), run))
    except LabError as exc:
        raise CommandError(str(exc), EXIT_ENVIRONMENT) from None
    if as_json:
        click.echo(json.dumps([{"run_id": s.run_id, "bundle": str(s.bundle.root), "store": s.store,
                                "serial_log": str(_serial(s.bundle)), "total_s": r.total_s, "failure": r.failure,
                                "summary": report_to_dict(s.summary)} for s, r in stored], indent=2))
    else:
        shown = console()
        for s, r in stored:
            render_terminal(s.summary, shown)
            shown.print(f"bundle: {s.bundle.root} (serial log {_serial(s.bundle)}; {r.total_s:.0f} s wall, boot "
                        f"{r.boot_s:.0f} s)" + (f"; stored in {s.store}" if s.store else ""), markup=False,
                        highlight=False)
    failures = [r.failure for _, r in stored if r.failure]
    if failures:
        raise CommandError(f"the lab did not finish: {failures[0]}", EXIT_ENVIRONMENT)
    failed = sorted({n for s, _ in stored for n, v in s.bundle.manifest["variants"].items() if v["status"] == "failed"})
    if failed:  # a CET path that does not work on a real CET kernel: what the lab is for
        raise CommandError(f"{len(failed)} variant(s) failed in the lab: {', '.join(failed)}", EXIT_REGRESSION)
    return EXIT_OK
