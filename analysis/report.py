"""The one report structure every renderer draws from, and its lossless dict form.

A :class:`Report` bundles whichever analyses were run (comparison, CET overhead, trend).  The
``render_*`` modules turn it into terminal tables, plain text, Markdown, JSON, JUnit XML and
plots; they all read the same fields, so each format carries the same content.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cetbench.analysis.compare import CompareResult, VariantComparison
from cetbench.analysis.costmodel import CostModelResult
from cetbench.analysis.figures import NotMeasured, VariantFigure
from cetbench.analysis.frames import EMULATED_KVM
from cetbench.analysis.overhead import EventCost, OverheadResult
from cetbench.analysis.trend import ChangePoint, TrendResult

#: Printed beside every figure measured on emulated (software) KVM, in every format (the default
#: label: a lab run names its emulator instead, frames.emulation).
EMULATED_LABEL = EMULATED_KVM

SCHEMA = "cetbench-report/1"


@dataclass(frozen=True)
class Report:
    title: str = "cetbench report"
    #: Each measured variant's own figures (a run's summary).
    variants: tuple[VariantFigure, ...] | None = None
    comparison: CompareResult | None = None
    overhead: OverheadResult | None = None
    #: What each CET mechanism costs per time it is paid, fitted over the variants (costmodel.py).
    mechanisms: CostModelResult | None = None
    trend: TrendResult | None = None
    #: Variants of the runs behind the report that carry no numbers, grouped by reason.
    not_measured: tuple[NotMeasured, ...] = ()

    @property
    def any_emulated(self) -> bool:
        return any(_emulated_flags(self))

    @property
    def emulations(self) -> tuple[str, ...]:
        """The distinct emulation labels of the report's figures, sorted."""
        return tuple(sorted({e for e in _emulated_flags(self) if e}))


def _emulated_flags(report: Report) -> typing.Iterator[str | None]:
    if report.variants:
        yield from (v.emulated for v in report.variants)
    if report.comparison:
        yield from (v.emulated for v in report.comparison.variants)
    if report.overhead:
        yield from (r.emulated for r in report.overhead.rows)
    if report.mechanisms:
        yield from (c.emulated for c in report.mechanisms.costs)
    if report.trend:
        yield from (v.emulated for v in report.trend.variants)


#: Read-only properties written into the dict form for readers of the JSON (ignored on load).
_DERIVED: dict[type, tuple[str, ...]] = {
    VariantComparison: ("change",),
    ChangePoint: ("magnitude", "direction"),
    EventCost: ("delta_per_op",),
    OverheadResult: ("why_empty",),
}

def report_to_dict(report: Report) -> dict[str, Any]:
    """Plain JSON-ready data (dicts, lists, str, float, bool, None); an emulated row's `emulated` is its label."""
    data = _to_plain(report)
    assert isinstance(data, dict)
    return {"schema": SCHEMA, **data}


def _to_plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in _DERIVED.get(type(value), ()):
            out[name] = _to_plain(getattr(value, name))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


def report_from_dict(data: dict[str, Any]) -> Report:
    """Inverse of :func:`report_to_dict`."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document (schema: {data.get('schema')!r})")
    result = _from_plain(Report, data)
    assert isinstance(result, Report)
    return result


def _from_plain(hint: Any, value: Any) -> Any:
    """Rebuild a value of type ``hint`` from its plain form (dataclasses, enums, tuples, unions)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _from_plain(options[0], value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_from_plain(item, v) for v in value)
    if origin is typing.Literal:
        return value
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        kwargs = {f.name: _from_plain(hints[f.name], value[f.name]) for f in dataclasses.fields(hint)}
        return hint(**kwargs)
    if hint is float and value is not None:
        return float(value)
    return value
