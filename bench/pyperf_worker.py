"""The pyperf program for one variant: `python -m cetbench.pyperf_worker [pyperf options] --cb-... `.

pyperf runs this module as its master and again as each worker process. Each value is one run of
the native workload for `loops` ops, and the figure pyperf records is the workload's own self-timed
span (clock_gettime around its loop, or the guest's loop as seen by the VMM), so process start-up and
Python never enter it. Every native record is appended to the variant's raw file, calibration and
warmups included, so cycles per op and exit counts stay available to analysis.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pyperf

from cetbench.native import run_variant_once
from cetbench.workloads.table import by_name

_OWN_OPTIONS = ("variant", "raw", "timeout", "cmd")


def _forward(cmd: list[str], args: argparse.Namespace) -> None:
    """pyperf callback: give each worker process the same variant options."""
    for name in _OWN_OPTIONS:
        cmd.extend([f"--cb-{name}", str(getattr(args, f"cb_{name}"))])


def _timed(loops: int, args: argparse.Namespace, cmd: list[str]) -> float:
    outcome = run_variant_once(by_name(args.cb_variant), cmd, loops, args.cb_timeout)
    if not outcome.measured:
        raise RuntimeError(f"{args.cb_variant}: {outcome.status}: {outcome.reason}")
    record: dict[str, Any] = outcome.record
    with open(args.cb_raw, "a", encoding="utf-8") as raw:
        raw.write(json.dumps(record, separators=(",", ":")) + "\n")
    return float(record["elapsed_ns"]) / 1e9


def main() -> None:
    runner = pyperf.Runner(program_args=("-m", "cetbench.pyperf_worker"), add_cmdline_args=_forward)
    parser = runner.argparser
    for name in _OWN_OPTIONS:
        parser.add_argument(f"--cb-{name}", required=True, type=float if name == "timeout" else str)
    args = runner.parse_args()
    cmd = json.loads(args.cb_cmd)
    runner.bench_time_func(
        args.cb_variant, _timed, args, cmd,
        metadata={"description": f"cetbench {args.cb_variant}"},
    )


if __name__ == "__main__":
    main()
