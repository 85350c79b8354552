"""What one input (bundle, pyperf file, pytest-benchmark file) becomes before it is stored.

The readers turn their format into a RunRecord and check it; the ingest writes a RunRecord in one
transaction. Helpers here give the readers' error messages one shape: which file, what is wrong.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from cetbench.workloads.variants import VariantName, VariantNameError, parse

from .errors import InputError


@dataclass
class CounterRecord:
    event: str
    count: float | None
    per_op: float | None
    state: str | None
    note: str | None
    unit: str | None = None
    running_pct: float | None = None


@dataclass
class VariantRecord:
    name: str
    status: str  # measured | unsupported | failed | pending
    workload: str | None = None
    kind: str | None = None
    cet: str | None = None
    cet_on: bool | None = None
    reason: str | None = None
    refused_by: str | None = None
    #: (who refused, their words) for each party that refused; `reason` joins them.
    refusals: list[tuple[str, str]] = field(default_factory=list)
    #: what else used the machine while it was timed (as the bundle records it), and why that
    #: disturbed it (None: quiet, or not recorded)
    interference: dict[str, Any] | None = None
    disturbance: str | None = None
    unit: str | None = None
    op: str | None = None
    emulated: bool = False
    values: list[float] = field(default_factory=list)
    cycles: list[float | None] = field(default_factory=list)  # per sample, where known
    #: Per sample, the worker process (pyperf run) it came from, where the input says; samples
    #: of one process are replicates of each other, not independent measurements.
    processes: list[int | None] = field(default_factory=list)
    cycles_per_op_median: float | None = None
    perf_reason: str | None = None
    counters: list[CounterRecord] = field(default_factory=list)


@dataclass
class RunRecord:
    run_id: str
    content_hash: str
    source_kind: str  # bundle | pyperf | pytest-benchmark
    started_utc: dt.datetime
    manifest_json: str
    host: str | None = None
    host_fingerprint: str | None = None
    cpu_model_name: str | None = None
    kernel_release: str | None = None
    kernel_version: str | None = None
    kernel_build_id: str | None = None
    kernel_label: str | None = None
    suite_version: str | None = None
    suite_commit: str | None = None
    finished_utc: dt.datetime | None = None
    kvm_implementation: str | None = None
    #: what emulated the machine the run measured (bundle `backend.emulator`); None for a host
    emulator: str | None = None
    options_json: str | None = None
    variants: list[VariantRecord] = field(default_factory=list)


VARIANT_STATUSES = ("measured", "unsupported", "failed", "pending")
RUN_ID_MAX = 200  # characters: the store's runs.run_id column


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text, or None. PostgreSQL refuses a NUL character, and a lone
    surrogate (JSON's "\\ud800") is not Unicode that any database, file name or terminal can encode."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 text (it holds a lone surrogate)"
    return None


def as_float(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (bool, string, ...). An integer too large for a
    float (JSON allows 400 digits) raises OverflowError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class Fields:
    """Typed access to a JSON object, failing with `InputError(path, "<where>: ...")`."""

    def __init__(self, path: str, where: str, doc: Any) -> None:
        if not isinstance(doc, dict):
            raise InputError(path, f"{where}: expected a JSON object, got {_kind(doc)}")
        self.path, self.where, self.doc = path, where, doc

    def fail(self, message: str) -> InputError:
        return InputError(self.path, f"{self.where}: {message}")

    def names(self) -> list[str]:
        """The object's keys (variant names, event names): each must be non-empty storable text."""
        for key in self.doc:
            if not key.strip():
                raise self.fail(f"key {key!r} is empty")
            why = text_problem(key)
            if why:
                raise self.fail(f"key {key!r} {why}")
        return list(self.doc)

    def obj(self, key: str, required: bool = True) -> Fields:
        value = self.doc.get(key)
        if value is None and not required:
            return Fields(self.path, f"{self.where}.{key}", {})
        if not isinstance(value, dict):
            raise self.fail(f"field {key!r} must be an object, got {_kind(value)}")
        return Fields(self.path, f"{self.where}.{key}", value)

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.doc.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            raise self.fail(f"field {key!r} must be a non-empty string, got {_kind(value)}")
        why = text_problem(value)
        if why:
            raise self.fail(f"field {key!r} {why}")
        return value

    def flag(self, key: str, default: bool | None = None) -> bool | None:
        value = self.doc.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(f"field {key!r} must be true or false, got {_kind(value)}")
        return value

    def number(self, key: str, minimum: float | None = None) -> float | None:
        """A finite number (at least `minimum`, when given), or None when absent."""
        value = self.doc.get(key)
        if value is None:
            return None
        try:
            number = as_float(value)
        except OverflowError:
            raise self.fail(f"field {key!r} is too large for a number ({len(str(value))} digits)") from None
        if number is None:
            raise self.fail(f"field {key!r} must be a number, got {_kind(value)}")
        if not math.isfinite(number) or (minimum is not None and number < minimum):
            bound = "" if minimum is None else f" and >= {minimum:g}"
            raise self.fail(f"field {key!r} is {value!r}; it must be finite{bound}")
        return number

    def refusals(self, key: str) -> list[tuple[str, str]]:
        """A list of {"by": ..., "reason": ...} objects as (by, reason) pairs; [] when absent."""
        value = self.doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"field {key!r} must be a list, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            entry = Fields(self.path, f"{self.where}.{key}[{i}]", item)
            by, reason = entry.text("by", required=True), entry.text("reason", required=True)
            assert by is not None and reason is not None
            out.append((by, reason))
        return out

    def time(self, key: str, required: bool = False) -> dt.datetime | None:
        value = self.text(key, required=required)
        return None if value is None else parse_utc(value, lambda m: self.fail(f"{key}: {m}"))


def parse_utc(text: str, fail: Any) -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime; a time without zone is taken as UTC."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise fail(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise fail(f"time {text!r} is out of range in UTC") from None


def check_values(path: str, where: str, values: Any) -> list[float]:
    """Sample values must be finite numbers > 0 (seconds per op cannot be NaN, inf or <= 0)."""
    if not isinstance(values, list):
        raise InputError(path, f"{where}: values must be a list, got {_kind(values)}")
    out: list[float] = []
    for i, value in enumerate(values):
        try:
            number = as_float(value)
        except OverflowError:
            number = math.inf  # an integer of hundreds of digits: refused below as not finite
        if number is None:
            raise InputError(path, f"{where}: sample {i} is not a number ({_kind(value)})")
        if not math.isfinite(number) or number <= 0:
            shown = repr(value) if len(repr(value)) <= 40 else f"a number of {len(repr(value))} digits"
            raise InputError(path, f"{where}: sample {i} is {shown}; samples must be finite and > 0")
        out.append(number)
    return out


def split_variant_name(path: str, where: str, name: str) -> tuple[str, str | None, bool | None]:
    """`host.syscall[shstk=on]` -> ("host.syscall", "shstk=on", True), by the variant grammar.

    For inputs that do not state the CET configuration (pyperf / pytest-benchmark files): CET is
    on when a CET axis of the grammar is not off; a name without a CET axis: unknown (None).
    A name that gives one axis twice says two things: InputError.
    """
    try:
        parsed = parse(name, strict=False)
    except VariantNameError as exc:
        raise InputError(path, f"{where}: {exc}") from None
    if parsed == VariantName(name.strip()):
        return name, None, None
    return parsed.workload, parsed.config_text, parsed.cet_on


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
