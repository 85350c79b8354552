"""Read pyperf JSON (format version 1.0, what pyperf >= 1.0 writes) into plain values.

Read directly rather than through pyperf.BenchmarkSuite: errors can then name the benchmark and
the bad sample, and NaN/inf values (which pyperf's loader partly lets through) are refused.
A value is what pyperf stores per run in "values": seconds per op already (pyperf divides the
timed seconds by the loop count); warmups are not samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .records import check_values, text_problem

PYPERF_FORMAT = "1.0"


@dataclass
class PyperfBenchmark:
    name: str
    unit: str
    values: list[float]
    metadata: dict[str, Any]  # the suite's and the benchmark's common metadata, merged
    dates: list[str] = field(default_factory=list)  # the runs' "date" metadata (local time)
    #: Per value, the index of the pyperf run (one worker process) it came from: values of one
    #: process share its address layout and moment, so they are not independent of each other.
    processes: list[int] = field(default_factory=list)


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice is ambiguous (json.loads would keep the last silently): refuse the file.
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [k for k, _ in pairs]
        raise _RepeatedKey(next(k for k in keys if keys.count(k) > 1))
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)  # made once: a raw file is read line by line


def load_json(path: str, label: str, data: bytes) -> Any:
    """Parse JSON bytes, failing with the file's label and where the text breaks."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        # The parser ran out of text (rather than meeting a wrong character): a cut-off file.
        at_end = exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip())
        what = "truncated" if at_end and text.strip() else "invalid JSON"
        raise InputError(
            path, f"{label}: {what} ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except _RepeatedKey as exc:
        raise InputError(path, f"{label}: key {exc.args[0]!r} appears twice in one object") from None
    except RecursionError:
        raise InputError(path, f"{label}: invalid JSON (nested too deeply to read)") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(path, f"{label}: invalid JSON ({exc})") from None


def is_pyperf(doc: Any) -> bool:
    return isinstance(doc, dict) and "benchmarks" in doc and "version" in doc and "machine_info" not in doc


def parse_pyperf(path: str, label: str, doc: Any) -> tuple[dict[str, Any], list[PyperfBenchmark]]:
    """The suite metadata and the benchmarks of a parsed pyperf JSON document."""
    if not isinstance(doc, dict):
        raise InputError(path, f"{label}: not a pyperf JSON document (expected an object)")
    version = doc.get("version")
    if version != PYPERF_FORMAT:
        raise InputError(
            path, f"{label}: pyperf file format {version!r} not supported (expected {PYPERF_FORMAT!r})"
        )
    suite_md = doc.get("metadata") or {}
    benchmarks = doc.get("benchmarks")
    if not isinstance(suite_md, dict) or not isinstance(benchmarks, list) or not benchmarks:
        raise InputError(path, f"{label}: no benchmarks (a pyperf suite needs 'benchmarks')")
    out = []
    for i, bench in enumerate(benchmarks):
        if not isinstance(bench, dict) or not isinstance(bench.get("runs"), list):
            raise InputError(path, f"{label}: benchmark {i} has no 'runs' list")
        bench_md = bench.get("metadata") or {}
        if not isinstance(bench_md, dict):
            raise InputError(path, f"{label}: benchmark {i}: metadata must be an object")
        metadata = {**suite_md, **bench_md}
        name = metadata.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(path, f"{label}: benchmark {i} has no name")
        why = text_problem(name)
        if why:
            raise InputError(path, f"{label}: benchmark {i}: name {name!r} {why}")
        values: list[float] = []
        processes: list[int] = []
        dates: list[str] = []
        for j, run in enumerate(bench["runs"]):
            if not isinstance(run, dict):
                raise InputError(path, f"{label}: benchmark {name!r}: run {j} is not an object")
            run_values = check_values(path, f"{label}: benchmark {name!r}: run {j}", run.get("values", []))
            values.extend(run_values)
            processes.extend([j] * len(run_values))
            run_md = run.get("metadata") or {}
            if not isinstance(run_md, dict):
                raise InputError(path, f"{label}: benchmark {name!r}: run {j}: metadata must be an object")
            date = run_md.get("date", metadata.get("date"))
            if isinstance(date, str):
                dates.append(date)
        unit = metadata.get("unit")
        unit = unit if isinstance(unit, str) and unit.strip() else "second"
        if text_problem(unit):
            raise InputError(path, f"{label}: benchmark {name!r}: unit {unit!r} {text_problem(unit)}")
        out.append(PyperfBenchmark(name, unit, values, metadata, dates, processes))
    names = [b.name for b in out]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise InputError(path, f"{label}: benchmark name {twice!r} repeats")
    return suite_md, out
