"""Subprocess for the store fault tests: ingest the bundles listed in a file, print a JSON summary.

    python -m tests.support.store_worker URL LIST_FILE [--hang-at N --marker FILE]

With --hang-at N the worker stops for good inside the transaction of its N-th new run (rows
written, not committed) after creating MARKER, so a test can SIGKILL it at exactly that point.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cetbench.results import ingest
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("list_file", type=Path)
    parser.add_argument("--hang-at", type=int)
    parser.add_argument("--marker", type=Path)
    args = parser.parse_args()
    if args.hang_at:
        _hang_at(args.hang_at, args.marker)
    paths = args.list_file.read_text().split("\n")
    with open_store(args.url) as store:
        report = ingest.ingest_paths(store, [p for p in paths if p])
    print(json.dumps({
        "statuses": Counter(r.status for r in report.results),
        "errors": [f"{r.path}: {r.message}" for r in report.errors],
    }))


if __name__ == "__main__":
    main()
