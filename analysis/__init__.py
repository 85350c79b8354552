"""Pure statistics and reports for cetbench.

Everything here takes pandas DataFrames shaped like ``results.load(...)`` output and returns plain
data (frozen dataclasses); only the ``render_*`` modules produce text or files.  Entry points:

- :func:`analysis.overhead.cet_overhead` -- CET-on vs CET-off per workload and kernel build.
- :func:`analysis.compare.compare` -- baseline vs candidate per variant, with verdicts.
- :func:`analysis.trend.trend` -- change points over an ordered series of builds.
- :class:`analysis.report.Report` -- one structure rendered by every ``render_*`` module.
"""

from cetbench.analysis.compare import CompareResult, CompareSettings, VariantComparison, Verdict, compare, exit_status
from cetbench.analysis.errors import (
    AnalysisInputError,
    HostMismatchError,
    InvalidValueError,
    MixedUnitsError,
    TooFewBuildsError,
)
from cetbench.analysis.overhead import OverheadResult, OverheadRow, cet_overhead
from cetbench.analysis.report import EMULATED_LABEL, Report
from cetbench.analysis.trend import TrendResult, kernel_version_key, trend

__all__ = [
    "EMULATED_LABEL",
    "AnalysisInputError",
    "CompareResult",
    "CompareSettings",
    "HostMismatchError",
    "InvalidValueError",
    "MixedUnitsError",
    "OverheadResult",
    "OverheadRow",
    "Report",
    "TooFewBuildsError",
    "TrendResult",
    "VariantComparison",
    "Verdict",
    "cet_overhead",
    "compare",
    "exit_status",
    "kernel_version_key",
    "trend",
]
