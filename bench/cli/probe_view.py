"""Render the probe's facts and plan as tables for a terminal (or a CI log: nothing is cut)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cetbench.facts import HostFacts
from cetbench.plan import Plan


def _fmt(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))  # "[shstk=on]" would otherwise be read as rich markup


def _section(title: str, rows: list[tuple[str, Any]], unknown: dict[str, str]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", expand=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, _fmt(value))
    for key, why in unknown.items():
        table.add_row(f"{key} unknown", escape(why), style="yellow")
    return table


def render(facts: HostFacts, plan: Plan, console: Console) -> None:
    cpu, kernel, kvm, perf, noise = facts.cpu, facts.kernel, facts.kvm, facts.perf, facts.noise
    console.print(_section("CPU", [
        ("vendor", cpu.vendor), ("model name", cpu.model_name),
        ("family/model/stepping", f"{cpu.family}/{cpu.model}/{cpu.stepping}"),
        ("microcode", cpu.microcode),
        ("SHSTK  CPUID.7.0:ECX[7]", cpu.shstk), ("IBT    CPUID.7.0:EDX[20]", cpu.ibt),
        ("XSAVES CPUID.D.1:EAX[3]", cpu.xsaves),
        ("XSS CET_U CPUID.D.1:ECX[11]", cpu.xss_cet_u), ("XSS CET_S CPUID.D.1:ECX[12]", cpu.xss_cet_s),
    ], cpu.unknown))
    cmdline = ", ".join(f"{k}={v}" for k, v in kernel.cmdline.items() if v is not None) or "none of them"
    console.print(_section("Kernel", [
        ("release", kernel.release), ("version", kernel.version), ("build-id", kernel.build_id),
        ("boot options that matter", cmdline),
        (f"config ({kernel.config.get('source') or 'unknown'})",
         ", ".join(f"{k}={v}" for k, v in kernel.config.items() if k != "source")),
        ("cpuinfo flags", ", ".join(f"{k}={_fmt(v)}" for k, v in kernel.cpuinfo_flags.items())),
    ], kernel.unknown))
    console.print(_section("KVM", [
        ("/dev/kvm", "openable" if kvm.openable else kvm.error),
        ("API version", kvm.api_version), ("implementation", kvm.implementation),
        ("hardware virtualization", kvm.hardware),
        ("supported CPUID", ", ".join(f"{k}={_fmt(v)}" for k, v in asdict(kvm.supported).items())),
        ("verdict", kvm.verdict),
    ], kvm.unknown))
    events = ", ".join(f"{ev}={'yes' if e.counts else e.state}" for ev, e in perf.events.items())
    console.print(_section("perf", [
        ("binary", perf.binary), ("version", perf.version), ("perf_event_paranoid", perf.paranoid),
        ("events that count", events or "none tried"),
    ], perf.unknown))
    if facts.qemu is not None:
        q = facts.qemu
        console.print(_section("QEMU (linux.* guests)", [
            ("qemu", q.qemu or q.error), ("accelerator", q.accel + (f" ({q.accel_reason})" if q.accel_reason else "")),
            *((f"vCPU offering {offer}", said or "accepted") for offer, said in q.refusals.items()),
        ], {}))
    console.print(_section("Noise", [
        ("governor", noise.governor), ("turbo/boost", noise.boost), ("SMT active", noise.smt),
        ("isolated CPUs", noise.isolated_cpus or "none"), ("load average", noise.load_avg),
    ], {}))
    for warning in noise.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    runnable = [d.variant.name for d in plan.decisions if d.runnable]
    console.print(f"[bold]Variants that can run here[/] ({len(runnable)}): {escape(', '.join(runnable) or 'none')}")
    refused: dict[tuple[str, str], list[str]] = {}  # one line per refusal, naming the variants it covers
    for d in plan.decisions:
        for who_why in d.refusals:
            refused.setdefault(who_why, []).append(d.variant.name)
    for (who, why), names in refused.items():
        console.print(f"[red]unsupported[/] ({escape(who)}): {escape(why)}: {escape(', '.join(names))}")
