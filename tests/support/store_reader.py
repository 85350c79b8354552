"""Subprocess for the store fault tests: run `cetbench compare` and `cetbench trend` against a store
over and over while writers ingest, until STOP_FILE exists; print a JSON summary. STOP_FILE.ready
appears once the reader is ready to start.

    python -m tests.support.store_reader URL STOP_FILE BASELINE CANDIDATE

Each command runs in this process through the CLI's `main`, as a user would run it. It ends `ok` (exit 0
or 1, or 3 with a report), `empty` (exit 2: nothing to select yet), `store error` (a one-line store
failure, exit 3) or `failed` (anything else, e.g. a traceback): the summary counts each and keeps the
first lines of what failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections import Counter
from pathlib import Path

from cetbench.cli import main as cetbench


def run(argv: list[str]) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cetbench(argv)
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # a bug: main re-raises what it cannot map
        return "failed", f"{type(exc).__name__}: {exc}"
    said = err.getvalue().strip()
    if code in (0, 1) or (code == 3 and out.getvalue().strip() and not said):
        return "ok", ""
    if code == 2 and any(w in said for w in ("names no run", "no stored samples", "needs at least 3 builds")):
        return "empty", said
    if code == 3 and said.startswith("cetbench: ") and " store " in said and len(said.splitlines()) == 1:
        return "store error", said
    return "failed", f"exit {code}: {said[-300:]}"


def main() -> int:
    url, stop, baseline, candidate = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    counts: Counter[str] = Counter()
    failures: list[str] = []
    commands = (["compare", "--baseline", baseline, "--candidate", candidate, "--format", "json"],
                ["trend", "--format", "json"])
    Path(f"{stop}.ready").touch()  # imports done: the writers may start
    while True:  # at least one round, however fast the writers were
        for argv in commands:
            kind, said = run([*argv, "--store", url])
            counts[kind] += 1
            if kind == "failed" and len(failures) < 5:
                failures.append(f"{argv[0]}: {said}")
        if stop.exists():
            break
    print(json.dumps({"counts": counts, "failures": failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
