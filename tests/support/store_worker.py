"""Subprocess for the store fault tests: ingest the bundles listed in a file, one JSON line per input.

    python -m tests.support.store_worker URL LIST_FILE [--hang-at N --marker FILE]

Each input gives a line `{"path": ..., "status": ..., "run_id": ..., "message": ...}` as soon as it is
done (flushed, so a killed worker has told what it finished). A store failure ends the worker with a
line `{"path": <the input in flight>, "status": "store error", "message": ...}` and exit status 3: the
input in flight is not in the store and must be ingested again.

With --hang-at N the worker stops for good inside the transaction of its N-th new run (rows
written, not committed) after creating MARKER, so a test can SIGKILL it at exactly that point.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from cetbench.results import ingest
from cetbench.results.errors import StoreError
from cetbench.results.store import open_store


def _hang_at(n: int, marker: Path) -> None:
    original = ingest._insert_run
    calls = 0

    def insert_then_hang(conn: Any, record: Any) -> None:
        nonlocal calls
        calls += 1
        original(conn, record)
        if calls == n:
            marker.write_text(record.run_id)
            time.sleep(600)

    ingest._insert_run = insert_then_hang  # type: ignore[assignment]


def _say(**line: Any) -> None:
    print(json.dumps(line), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("list_file", type=Path)
    parser.add_argument("--hang-at", type=int)
    parser.add_argument("--marker", type=Path)
    args = parser.parse_args()
    if args.hang_at:
        _hang_at(args.hang_at, args.marker)
    paths = [p for p in args.list_file.read_text().split("\n") if p]
    current = paths[0] if paths else ""
    try:
        with open_store(args.url) as store:
            for current in paths:
                r = ingest.ingest_path(store, Path(current))
                _say(path=r.path, status=r.status, run_id=r.run_id, message=r.message)
    except StoreError as exc:
        _say(path=current, status="store error", run_id=None, message=str(exc))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
