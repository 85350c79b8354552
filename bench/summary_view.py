"""Print a run's summary with rich (escaped: variant names contain brackets)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cetbench.summary import EMULATED_NOTE

STATUS_STYLE = {"measured": "green", "unsupported": "yellow", "failed": "red", "pending": "dim"}


def _ns(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def render_summary(rows: list[dict[str, Any]], pairs: list[dict[str, Any]], run_id: str, root: str,
                   console: Console) -> None:
    table = Table(title=f"run {escape(run_id)}", title_justify="left")
    table.add_column("variant", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for col in ("ns/op", "±stdev", "cycles/op", "n", "events/op"):
        table.add_column(col, justify="right", no_wrap=True, min_width=max(len(col), 9 if col == "ns/op" else 0))
    table.add_column("key event", no_wrap=True)
    emulated = False
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "")
        mark = " *" if r["emulated"] and r["status"] == "measured" else ""
        emulated = emulated or bool(mark)
        table.add_row(escape(r["variant"]) + mark, f"[{style}]{r['status']}[/]", _ns(r["median_ns"]),
                      _ns(r["stdev_ns"]), "" if r["cycles_per_op"] is None else f"{r['cycles_per_op']:,.0f}",
                      str(r["values"] or ""),
                      "" if r.get("events_per_op") is None else f"{r['events_per_op']:.3f}",
                      escape(r.get("key_event") or ""))
    console.print(table)
    if emulated:
        console.print(f"* {EMULATED_NOTE}")
    for r in rows:
        if r["reason"]:
            style = STATUS_STYLE[r["status"]]
            console.print(f"[{style}]{r['status']}[/] {escape(r['variant'])}: {escape(r['reason'])}")
    if pairs:
        cet = Table(title="CET on vs off (median ns/op)", title_justify="left")
        for col in ("workload", "CET", "off", "on", "change"):
            cet.add_column(col, no_wrap=True)
        for p in pairs:
            on = _ns(p["on_ns"]) if p["on_ns"] is not None else p["on_status"]
            change = "" if p["delta_pct"] is None else f"{p['delta_pct']:+.1f} %"
            mark = " *" if p["emulated"] else ""
            cet.add_row(escape(p["workload"]) + mark, escape(p["cet"]), _ns(p["off_ns"]), on, change)
        console.print(cet)
    console.print(f"bundle: {escape(root)}")
