"""Change points over a series of kernel builds, per variant (pure, no I/O).

Library choice.  Both libraries the design names were tried here: apache-otava 0.8.0 pins
numpy==2.2.* and scipy<1.17 and pulls google-cloud-bigquery, grpcio, slack-sdk and ~30 more
packages, so installing it would downgrade this project's numpy 2.4 / scipy 1.17; MongoDB's
signal-processing-algorithms 2.1.6 needs numpy<2 (and gevent).  Neither installs cleanly beside
our stack, so detection uses ``ruptures`` (maintained, no pins): exact penalised segmentation
(PELT) of the per-build medians.  (Otava's algorithm module itself ran fine on numpy 2.4 /
scipy 1.17 when imported without its dependencies: if its pins relax, it can replace
:func:`detect_breaks`.)

On top of PELT each change point must pass two tests between the segments it separates -- a
Mann-Whitney U test on their samples (within-build noise) and a t test on their build medians
(build-to-build noise, which pooled samples hide) -- Holm-corrected within the series, and the
effect-size floor.  As in Otava's split/merge, weak points are removed one at a time until every
remaining one is significant and large enough.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import pandas as pd
import ruptures as rpt

from cetbench.analysis import stats
from cetbench.analysis.errors import AnalysisInputError, TooFewBuildsError
from cetbench.analysis.frames import (
    KERNEL,
    check_single_host,
    emulation,
    process_medians,
    validate_samples,
    with_kernel_column,
)

#: PELT needs two differences to estimate build-to-build noise, so three builds at least.
MIN_BUILDS = 3

#: Fewest builds from whose successive differences a robust noise floor is taken.
_ROBUST_NOISE_MIN_BUILDS = 5

#: Normal-consistency factor of the median absolute deviation (1 / Phi^-1(3/4)).
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817


@dataclass(frozen=True)
class BuildPoint:
    build: str
    estimate: stats.MedianEstimate
    emulated: str | None  # the emulation label, None for hardware


@dataclass(frozen=True)
class ChangePoint:
    #: Index into the variant's points of the first build after the change.
    index: int
    build: str
    previous_build: str
    #: Median of the build medians of the segment before / after the change (seconds per op).
    before: float
    after: float
    p_value: float
    p_adjusted: float

    @property
    def magnitude(self) -> float:
        """Relative change of the median: after / before - 1."""
        return self.after / self.before - 1.0

    @property
    def direction(self) -> Literal["slower", "faster"]:
        return "slower" if self.after > self.before else "faster"


@dataclass(frozen=True)
class VariantTrend:
    variant: str
    workload: str
    points: tuple[BuildPoint, ...]
    change_points: tuple[ChangePoint, ...]
    #: Why no change points could be computed (e.g. too few builds), else None.
    note: str | None
    emulated: str | None  # the emulation label, None for hardware


@dataclass(frozen=True)
class TrendResult:
    builds: tuple[str, ...]
    order: str
    variants: tuple[VariantTrend, ...]
    alpha: float
    floor: float
    method: str


def kernel_version_key(release: str) -> tuple[object, ...]:
    """Sort key for kernel releases: 6.18 < 6.18.1 < 6.19-rc1 < 6.19-rc3 < 6.19 < 6.19.1.

    A release candidate sorts before its release; "6.19" and "6.19.0" are the same version;
    what follows (e.g. "-45-generic", "-next-20251201") breaks ties in natural order.  Strings
    that are not versions sort after every version, alphabetically.
    """
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-rc(\d+))?(.*)$", release.strip())
    if not match:
        return (1, release)
    major, minor, patch, rc, rest = match.groups()
    stage = (0, int(rc)) if rc is not None else (1, 0)
    return (0, int(major), int(minor), int(patch or 0), stage, _natural(rest))


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|\D+", text))


def order_builds(frame: pd.DataFrame, order: str | Sequence[str]) -> tuple[str, ...]:
    """Kernel builds of a frame (with the ``kernel`` column) in the requested order.

    ``order`` is "version" (kernel_release by :func:`kernel_version_key`, then time), "time"
    (earliest run first) or an explicit sequence of build names (labels) -- builds not named
    are left out, names that match nothing are an error listing what exists.
    """
    info = frame.groupby(KERNEL, observed=True).agg(
        release=("kernel_release", "first"), started=("started_utc", "min")
    )
    present = [str(k) for k in info.index]
    started = dict(zip(present, (pd.Timestamp(t).value for t in info["started"].tolist()), strict=True))
    release = dict(zip(present, (str(r) for r in info["release"].tolist()), strict=True))
    if order == "time":
        return tuple(sorted(present, key=lambda name: (started[name], name)))
    if order == "version":
        return tuple(sorted(present, key=lambda n: (kernel_version_key(release[n]), started[n], n)))
    if isinstance(order, str):
        raise AnalysisInputError(f"unknown trend order {order!r}: use 'version', 'time' or a list")
    unknown = [name for name in order if name not in present]
    if unknown:
        raise AnalysisInputError(
            f"build(s) {', '.join(unknown)} not in the selection; it has: {', '.join(sorted(present))}"
        )
    return tuple(dict.fromkeys(order))


def trend(
    samples: pd.DataFrame,
    order: str | Sequence[str] = "version",
    *,
    alpha: float = 0.05,
    floor: float = 0.02,  # the same default as CompareSettings.floor
    penalty_scale: float = 1.0,
    force: bool = False,
) -> TrendResult:
    """Per variant, the median of each build in order and the change points between them.

    Raises TooFewBuildsError when the selection has fewer than MIN_BUILDS builds; a variant
    measured on fewer builds than that gets a note instead of change points.
    """
    validate_samples({"samples": samples})
    check_single_host(samples, "the trend selection", force)
    frame = with_kernel_column(process_medians(samples))  # the unit is the worker process, as in compare
    builds = order_builds(frame, order)
    if len(builds) < MIN_BUILDS:
        raise TooFewBuildsError(
            f"a trend needs at least {MIN_BUILDS} builds; the selection has {len(builds)}"
            + (f": {', '.join(builds)}" if builds else "")
        )
    rank = {b: i for i, b in enumerate(builds)}
    values = frame["value"].to_numpy(np.float64)
    firsts = frame.groupby("variant", sort=False)["workload"].first()
    workloads = {str(v): str(w) for v, w in firsts.items()}
    groups: dict[str, list[tuple[int, str, np.ndarray, str | None]]] = {}
    for key, idx in frame.groupby(["variant", KERNEL], observed=True).indices.items():
        variant, kernel = (str(k) for k in cast(tuple[object, object], key))
        if kernel in rank:
            label = emulation(frame.iloc[idx])
            groups.setdefault(variant, []).append((rank[kernel], kernel, values[idx], label))
    series = [
        _variant_trend(v, workloads[v], sorted(g, key=lambda t: t[0]), alpha, floor, penalty_scale)
        for v, g in sorted(groups.items())
    ]
    method = (
        "ruptures PELT on log build medians; Mann-Whitney U (process medians) and t test (build medians) "
        f"between segments, Holm, alpha {alpha:g}, floor {floor * 100:.1f}%"
    )
    label = order if isinstance(order, str) else "labels"
    return TrendResult(builds, label, tuple(series), alpha, floor, method)


def _variant_trend(
    variant: str,
    workload: str,
    groups: list[tuple[int, str, np.ndarray, str | None]],
    alpha: float,
    floor: float,
    penalty_scale: float,
) -> VariantTrend:
    points = tuple(BuildPoint(name, stats.median_ci(x), emu) for _, name, x, emu in groups)
    emulated = next((p.emulated for p in points if p.emulated), None)
    if len(points) < MIN_BUILDS:
        note = f"too few builds: {len(points)} (need >= {MIN_BUILDS})"
        return VariantTrend(variant, workload, points, (), note, emulated)
    samples = [x for _, _, x, _ in groups]
    estimates = [p.estimate for p in points]
    breaks = detect_breaks(estimates, penalty_scale)
    change_points = _confirm(breaks, points, samples, alpha, floor)
    return VariantTrend(variant, workload, points, change_points, None, emulated)


def series_noise(
    estimates: Sequence[stats.MedianEstimate], between: Literal["rms", "robust", "none"] = "rms"
) -> float:
    """Noise (standard deviation) of the log median of one build, from the series itself.

    Build-to-build noise from successive differences: their RMS / sqrt 2 ("rms"), their
    MAD / sqrt 2 ("robust": steps barely move it) or not at all ("none"); never below the
    typical uncertainty of one build's median (its order-statistic interval), nor 1e-6.
    """
    logs = np.log([e.median for e in estimates])
    diffs = np.diff(logs)
    spread = 0.0
    if between == "robust":
        spread = float(np.median(np.abs(diffs))) * _MAD_TO_SIGMA / np.sqrt(2.0)
    elif between == "rms":
        spread = float(np.sqrt(np.mean(diffs**2) / 2.0))
    halfwidths = [e.relative_halfwidth for e in estimates if np.isfinite(e.relative_halfwidth)]
    within = float(np.median(halfwidths)) / 1.96 if halfwidths else 0.0
    return max(spread, within, 1e-6)


def detect_breaks(estimates: Sequence[stats.MedianEstimate], penalty_scale: float = 1.0) -> list[int]:
    """Candidate change points (index of the first build after each) in a series of medians.

    PELT with an l2 cost on log medians (relative changes, same bar up and down) and a BIC-style
    penalty 2 * sigma^2 * ln(n), sigma from :func:`series_noise`, not robust on purpose: a
    real step inflates it and costs some sensitivity, but with a robust (smaller) sigma PELT
    splits single outlier builds off as segments of their own.
    """
    logs = np.log([e.median for e in estimates])
    penalty = 2.0 * series_noise(estimates) ** 2 * np.log(len(logs)) * penalty_scale
    ends = rpt.Pelt(model="l2", min_size=1, jump=1).fit(logs).predict(pen=penalty)
    return [int(b) for b in ends[:-1]]


def _confirm(
    breaks: list[int],
    points: tuple[BuildPoint, ...],
    samples: list[np.ndarray],
    alpha: float,
    floor: float,
) -> tuple[ChangePoint, ...]:
    """Drop the weakest candidate until all are significant (Holm) and beyond the floor."""
    current = list(breaks)
    logs = np.log([p.estimate.median for p in points])
    estimates = [p.estimate for p in points]
    # a robust spread of the differences needs a few of them; below that only the within-build
    # uncertainty bounds the residual noise from below (the t test's few degrees of freedom
    # then carry the doubt)
    noise = series_noise(estimates, "robust" if len(points) >= _ROBUST_NOISE_MIN_BUILDS else "none")
    while current:
        sigma, dof = _residual_noise(logs, current, noise)
        found = [_evaluate(current, i, points, samples, logs, sigma, dof) for i in range(len(current))]
        adjusted = stats.holm([c.p_value for c in found])
        found = [_with_adjusted(c, float(p)) for c, p in zip(found, adjusted, strict=True)]
        weak = [c for c in found if c.p_adjusted >= alpha or abs(np.log(c.after / c.before)) < np.log1p(floor)]
        if not weak:
            return tuple(found)
        weakest = max(weak, key=lambda c: (c.p_adjusted, -abs(np.log(c.after / c.before))))
        current.remove(weakest.index)
    return ()


def _residual_noise(logs: np.ndarray, breaks: list[int], floor: float) -> tuple[float, int]:
    """Noise of one build's log median around its segment's mean, and its degrees of freedom.

    Estimated from the residuals of the current segmentation (the usual regression estimate),
    never below ``floor``: residuals of a segmentation chosen to fit them understate the noise.
    With no residual freedom left (every segment a single build) nothing can be tested.
    """
    segments = np.split(logs, breaks)
    dof = len(logs) - len(segments)
    if dof < 1:
        return float("inf"), 1
    residual = sum(float(((seg - seg.mean()) ** 2).sum()) for seg in segments)
    return max(np.sqrt(residual / dof), floor, 1e-9), dof


def _evaluate(
    breaks: list[int],
    i: int,
    points: tuple[BuildPoint, ...],
    samples: list[np.ndarray],
    logs: np.ndarray,
    sigma: float,
    dof: int,
) -> ChangePoint:
    """Test the change between the segments either side of ``breaks[i]``.

    Two tests, both of which must reject (so the larger p-value counts): Mann-Whitney U between
    the pooled samples, which knows the within-build spread, and a t test of the mean log build
    median of each segment against the residual build-to-build noise, which knows the spread
    that pooled samples hide (the samples of one build share its boot, placement, ...).  The
    t test's p-value is multiplied by the number of places the change could have been put
    (Bonferroni), because PELT chose the place that makes the step look largest.
    """
    edges = [0, *breaks, len(points)]
    start, cut, stop = edges[i], edges[i + 1], edges[i + 2]
    p_samples = stats.mann_whitney_p(np.concatenate(samples[start:cut]), np.concatenate(samples[cut:stop]))
    p_builds = stats.step_p_value(logs[start:cut], logs[cut:stop], sigma, dof) * (stop - start - 1)
    p_value = min(1.0, max(p_samples, p_builds))
    before = float(np.median([p.estimate.median for p in points[start:cut]]))
    after = float(np.median([p.estimate.median for p in points[cut:stop]]))
    return ChangePoint(cut, points[cut].build, points[cut - 1].build, before, after, p_value, p_value)


def _with_adjusted(c: ChangePoint, p_adjusted: float) -> ChangePoint:
    return ChangePoint(c.index, c.build, c.previous_build, c.before, c.after, c.p_value, p_adjusted)

