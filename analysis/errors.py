"""Exception types of the analysis package.

All derive from :class:`AnalysisInputError` (a ``ValueError``), so a caller can map every one of
them to "usage or input error" (exit code 2) with a single ``except``.
"""


class AnalysisInputError(ValueError):
    """The data handed to an analysis function cannot be analysed as asked."""


class HostMismatchError(AnalysisInputError):
    """Baseline and candidate come from different CPUs (host_fingerprint) and force was not set."""


class MixedUnitsError(AnalysisInputError):
    """Samples that would be compared carry different units."""


class InvalidValueError(AnalysisInputError):
    """A sample value is NaN, infinite or not positive; the message names the variants."""


class TooFewBuildsError(AnalysisInputError):
    """A trend was asked for over fewer builds than the change-point method needs."""
