"""Run the test-only CET capability probe (cet_probe.c) under bochs and parse what it reports.

`python -m cetbench.workloads.guest.bochs.probe` prints every probe's report: which CET instructions, MSRs and
states the emulated CPU implements, and what it gets wrong.
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cetbench.workloads.guest.bochs.cdefs import c_constants
from cetbench.workloads.guest.bochs.programs import BOCHS_DIR, cet_probe_image
from cetbench.workloads.guest.bochs.run import BochsRun, guest_text, run_guest

END_TAG = "CETBENCH-PROBE-END"


def probe_ids() -> dict[str, int]:
    """PROBE_* ids from cet_probe.c's enum."""
    return {k: v for k, v in c_constants(BOCHS_DIR / "cet_probe.c").items() if k.startswith("PROBE_")}


@dataclass
class ProbeReport:
    run: BochsRun
    steps: dict[str, dict[str, int | str]]  # step name -> its values; "outcome" = ok | fault | ...
    ended: bool  # the probe reached its end marker (a clean end or a reported exception)


def parse_steps(text: str) -> dict[str, dict[str, int | str]]:
    """`probe NAME [word] k=v ...` lines -> {NAME: {"outcome": word, k: v}}; a repeated NAME gets #2, #3."""
    steps: dict[str, dict[str, int | str]] = {}
    for line in text.splitlines():
        if not line.startswith("probe "):
            continue
        name, *rest = line[len("probe ") :].split()
        fields: dict[str, int | str] = {}
        for tok in rest:
            key, eq, val = tok.partition("=")
            if not eq:
                fields.setdefault("outcome", key)
                continue
            fields[key] = int(val, 0) if re.fullmatch(r"0x[0-9a-f]+|\d+", val) else val
        unique, n = name, 1
        while unique in steps:
            n += 1
            unique = f"{name}#{n}"
        steps[unique] = fields
    return steps


def run_probe(probe_id: int, timeout: float = 60.0) -> ProbeReport:
    result = run_guest(cet_probe_image(), probe_id, 0, 1, timeout=timeout)
    text = guest_text(result.console)
    return ProbeReport(result, parse_steps(text), END_TAG in text)


def main() -> int:
    ids = probe_ids()
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(run_probe, ids.values()))
    for name, report in zip(ids, reports, strict=False):
        print(f"== {name} (bochs {'ended' if report.ended else 'did NOT end'})")
        print(guest_text(report.run.console).rstrip())
    return 0 if all(r.ended for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
