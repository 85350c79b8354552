"""`python -m cetbench.lab` (`make lab`): every variant of the suite (or --only) once in the emulated CET
lab, each at two iteration counts; prints status, the CET state read back and tracepoint counts per op.

Exit status 0 when no variant failed, 1 otherwise, 2 when the lab could not be set up. Figures from the
lab are instruction counts on an emulated CPU, never hardware time (docs/lab.md): none are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from cetbench.lab.bochs import get_emulator
from cetbench.lab.errors import LabError
from cetbench.lab.kernel import get_kernel
from cetbench.lab.run import run_lab
from cetbench.lab.suite import summarize, variant_jobs
from cetbench.workloads.build import BuildError
from cetbench.workloads.table import select
from cetbench.workloads.variants import UnknownVariantError


def _cet_seen(record: dict[str, object]) -> str:
    if "cet_active" in record:
        return f"cet={record['cet_active']}"
    if "shstk" in record:
        peer = f", peer {record['peer_shstk']}" if "peer_shstk" in record else ""
        return f"shstk={record['shstk']} ssp={record.get('ssp', '?')}{peer}"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cetbench.lab", description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="sid", help="suite, package or path (default sid)")
    ap.add_argument("--only", action="append", help="variant glob (repeatable); default: every variant")
    ap.add_argument("--out", type=Path, help="work directory (bochsrc, serial.log, lab.json); default: a new temp dir")
    ap.add_argument("--timeout", type=float, default=1800.0, help="host seconds for the whole boot")
    a = ap.parse_args(argv)
    try:
        variants = select(a.only)
        kernel = get_kernel(a.kernel)
        emulator = get_emulator()
        workdir = a.out or Path(tempfile.mkdtemp(prefix="cetbench-lab-"))
        jobs = variant_jobs(variants)
        print(f"lab: {len(variants)} variants on {kernel.release} ({kernel.source}), {emulator.description}",
              flush=True)
        run = run_lab(kernel, jobs, workdir, timeout_s=a.timeout, emulator=emulator,
                      on_result=lambda r: print(f"  {r.id}: exit {r.exit_code}", flush=True))
    except (LabError, BuildError, UnknownVariantError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    rows = summarize(variants, {r.id: r for r in run.jobs})
    width = max(len(r.variant.name) for r in rows)
    for r in rows:
        counts = ", ".join(f"{e} {v:g}" for e, v in r.per_op.items())
        detail = _cet_seen(r.outcome.record) if r.outcome.measured else (r.outcome.reason or "")
        per_op = f"  per op: {counts}" if counts else ""
        print(f"{r.variant.name:<{width}}  {r.outcome.status:<11}  {detail}{per_op}")
    (workdir / "lab.json").write_text(json.dumps({"run": run.to_json(), "variants": [r.to_json() for r in rows]},
                                                 indent=1))
    failed = [r.variant.name for r in rows if r.outcome.status == "failed"]
    print(f"lab: {len(rows) - len(failed)} of {len(rows)} variants measured or unsupported with a reason; "
          f"{run.total_s:.0f} s wall (boot to init {run.boot_s:.0f} s); serial log {run.serial_log}")
    if run.failure:
        print(f"lab: {run.failure}", file=sys.stderr)
    return 1 if failed or run.failure else 0


if __name__ == "__main__":
    sys.exit(main())
