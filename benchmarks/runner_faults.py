"""The runner under SIGKILL and SIGTERM at random points, then `--resume` (a script, not a test).

    python benchmarks/runner_faults.py [--kills 40] [--seed 1] [--keep DIR]

Runs `cetbench run` over host.syscall[shstk=off] and guest.vmexit.cpuid[cet=none] (a KVM guest; it is
refused where /dev/kvm is missing) with 4 processes x 2 values (tests/support/runner_faults.py), and
signals the runner at a point drawn in turn from: as soon as the bundle exists, while pyperf's workers
time a variant, during the perf counting pass, while the guest's VMM runs; after a random delay on
top. Only the runner gets the signal, as from the OOM killer or `kill PID`. A killed run is resumed
(and the resume may be killed in its turn); a bundle is finished by a resume that runs to the end after
one to three kills, then checked:

- after SIGTERM: exit 143 with one line on stderr naming the resume command, no process of the run
  left, no temporary file left;
- the finished bundle: exactly one run with values per process and the configured values in each,
  raw records exactly the pyperf values and warmups (none from a killed worker), no stray partial
  file, every sample ingested once.

Prints kills by signal and point, resumes, SIGTERM exits that were clean, bundles verified intact, and
anything that was not as it must be. Exit status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cetbench.leftovers import working_for
from tests.support import runner_faults as rf

POINTS = ("any", "pyperf", "perf", "guest")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work directory to use and keep (default: temporary)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kills: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    problems: list[str] = []
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="cetbench-runner-faults-") as tmp:
        work = (args.keep or Path(tmp)).absolute()
        home = work / "home"
        bundle: Path | None = None
        kills_left = 0
        n = 0
        while sum(kills.values()) < args.kills or bundle is not None:
            if bundle is None:
                n += 1
                bundle, kills_left = work / f"run-{n}", rng.randint(1, 3)
                proc = rf.start(rf.run_argv(bundle), home)
                before: set[int] = set()
            else:
                before = set(working_for(bundle))  # what a SIGKILL left; the resume is to end it
                proc = rf.start(rf.cetbench_argv("run", "--resume", str(bundle), "--no-store"), home)
                counts["resumes"] += 1
            if kills_left and sum(kills.values()) < args.kills:
                point = POINTS[sum(kills.values()) % len(POINTS)]
                signum = rng.choice((signal.SIGKILL, signal.SIGTERM))
                reached = rf.wait_until(proc, point, bundle, under=None if point == "any" else proc.pid)
                time.sleep(rng.random() * 0.3)
                if reached and proc.poll() is None:
                    proc.send_signal(signum)
                    kills[f"{signum.name} {point}"] += 1
                    kills_left -= 1
                    _, stderr = proc.communicate(timeout=rf.GUARD_S)
                    if signum == signal.SIGTERM:
                        _check_sigterm(proc.returncode, stderr, bundle, before, counts, problems)
                    if not (bundle / "manifest.json").exists():
                        counts["killed before the bundle existed"] += 1
                        bundle = None
                    continue
                counts[f"ended before {point}"] += 1
            _, stderr = proc.communicate(timeout=rf.GUARD_S)
            if proc.returncode != 0:
                problems.append(f"{bundle.name}: run ended {proc.returncode}: {stderr.strip()[-300:]}")
            else:
                found = rf.problems(bundle)
                counts["bundles verified intact" if not found else "bundles with problems"] += 1
                problems += [f"{bundle.name}: {p}" for p in found]
            bundle = None

    print(f"kills: {sum(kills.values())} ({', '.join(f'{k}: {n}' for k, n in sorted(kills.items()))})")
    for what in ("resumes", "SIGTERM exits clean (143, one line, nothing left)", "bundles verified intact",
                 "bundles with problems", "killed before the bundle existed"):
        print(f"{what}: {counts[what]}")
    for what, n in sorted(counts.items()):
        if what.startswith("ended before"):
            print(f"runs that {what} (no kill there): {n}")
    print(f"time: {time.perf_counter() - started:.0f} s")
    for p in problems:
        print(f"  problem: {p}")
    return 1 if problems else 0


def _check_sigterm(code: int | None, stderr: str, bundle: Path, before: set[int], counts: Counter[str],
                   problems: list[str]) -> None:
    left = set(working_for(bundle)) - before  # a resume stopped before it ended a SIGKILL's leftovers
    stray = [p.name for d in (bundle, bundle / "variants") if d.is_dir() for p in d.glob(".*")]
    if code == 128 + signal.SIGTERM and rf.one_line(stderr) and not left and not stray:
        counts["SIGTERM exits clean (143, one line, nothing left)"] += 1
    else:
        problems.append(f"{bundle.name}: SIGTERM: exit {code}, stderr {stderr.strip()[-200:]!r}, "
                        f"{len(left)} processes left, files left: {stray}")


if __name__ == "__main__":
    sys.exit(main())
