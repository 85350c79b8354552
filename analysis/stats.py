"""Distribution-free statistics on samples of one benchmark (pure functions, no I/O).

Benchmark timings are skewed and often multi-modal (interrupts, frequency changes, emulation), so
everything here is non-parametric: medians, order-statistic and bootstrap intervals, rank tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]
Correction = Literal["holm", "bh"]

#: Smallest sample with a distribution-free 95 % interval for its median: with n <= 5 even
#: [min, max] covers the median with probability 1 - 2 * 0.5**n < 0.95.
MIN_SAMPLES_FOR_CI = 6

#: Above this many resampled values (n_resamples * total sample size) the bootstrap uses the
#: order-statistic shortcut below instead of materialising resamples.
_MATERIALISED_BOOTSTRAP_LIMIT = 20_000_000


@dataclass(frozen=True)
class MedianEstimate:
    """A median with its distribution-free confidence interval (None when n is too small)."""

    median: float
    low: float | None
    high: float | None
    n: int

    @property
    def relative_halfwidth(self) -> float:
        """Half the interval's width relative to the median: the "±" of a report; inf if unknown."""
        if self.low is None or self.high is None or self.median == 0:
            return float("inf")
        return (self.high - self.low) / 2.0 / abs(self.median)


@dataclass(frozen=True)
class MedianShift:
    """Candidate against baseline: difference and ratio of medians with bootstrap intervals."""

    baseline_median: float
    candidate_median: float
    difference: float
    difference_low: float
    difference_high: float
    ratio: float
    ratio_low: float
    ratio_high: float
    confidence: float
    n_resamples: int


def as_array(values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64).ravel()


def median_ci(values: npt.ArrayLike, confidence: float = 0.95) -> MedianEstimate:
    """Median with an order-statistic (binomial) confidence interval.

    Exact for any continuous distribution, no resampling, no seed: scipy's ``quantile_test``
    inverts the binomial test of the 0.5 quantile.  Below MIN_SAMPLES_FOR_CI samples no such
    interval exists at 95 % and the bounds are None.
    """
    x = as_array(values)
    if x.size == 0:
        raise ValueError("median of an empty sample")
    median = float(np.median(x))
    if x.size < MIN_SAMPLES_FOR_CI:
        return MedianEstimate(median, None, None, int(x.size))
    ci = sps.quantile_test(x, q=median, p=0.5).confidence_interval(confidence)
    low, high = float(ci.low), float(ci.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        return MedianEstimate(median, None, None, int(x.size))
    return MedianEstimate(median, low, high, int(x.size))


def bootstrap_median_shift(
    baseline: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    seed: int,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> MedianShift:
    """Difference (candidate - baseline) and ratio (candidate / baseline) of medians, with CIs.

    Percentile bootstrap, each sample resampled independently, fixed ``seed`` so a report is
    reproducible.  Percentile rather than BCa: BCa's acceleration comes from a jackknife, which
    is inconsistent for the median (a non-smooth statistic) and costs O(n^2) on large samples;
    the percentile interval also maps exactly between ratio, log-ratio and percent change.
    """
    x, y = as_array(baseline), as_array(candidate)
    if x.size == 0 or y.size == 0:
        raise ValueError("bootstrap needs samples on both sides")
    base_med, cand_med = float(np.median(x)), float(np.median(y))
    if n_resamples * (x.size + y.size) <= _MATERIALISED_BOOTSTRAP_LIMIT:
        result = sps.bootstrap(
            (x, y),
            _shift_statistic,
            vectorized=True,
            paired=False,
            method="percentile",
            n_resamples=n_resamples,
            confidence_level=confidence,
            rng=np.random.default_rng(seed),
        )
        (d_low, r_low), (d_high, r_high) = result.confidence_interval
    else:
        rng = np.random.default_rng(seed)
        bx = bootstrap_medians(np.sort(x), n_resamples, rng)
        by = bootstrap_medians(np.sort(y), n_resamples, rng)
        tail = (1.0 - confidence) / 2.0 * 100.0
        d_low, d_high = np.percentile(by - bx, [tail, 100.0 - tail])
        r_low, r_high = np.percentile(by / bx, [tail, 100.0 - tail])
    return MedianShift(
        baseline_median=base_med,
        candidate_median=cand_med,
        difference=cand_med - base_med,
        difference_low=float(d_low),
        difference_high=float(d_high),
        ratio=cand_med / base_med,
        ratio_low=float(r_low),
        ratio_high=float(r_high),
        confidence=confidence,
        n_resamples=n_resamples,
    )


def _shift_statistic(x: FloatArray, y: FloatArray, axis: int = -1) -> FloatArray:
    mx, my = np.median(x, axis=axis), np.median(y, axis=axis)
    return np.stack([my - mx, my / mx])


def bootstrap_medians(sorted_x: FloatArray, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """Medians of ``n_resamples`` bootstrap resamples of ``sorted_x``, without building them.

    Written by hand because scipy has no such shortcut and materialising resamples of a
    100k-sample variant costs seconds.  It is the same distribution, not an approximation: a
    resample draws n indices floor(n*U) from iid uniforms U, so its k-th smallest index is
    floor(n*U_(k)) with U_(k) ~ Beta(k, n-k+1); given U_(k) = u the next order statistic is
    u + (1-u)*Beta(1, n-k).  The median is the middle one (odd n) or the mean of the two
    middle ones (even n), as in numpy.
    """
    n = sorted_x.size
    k = (n + 1) // 2  # 1-based rank of the (lower) middle element
    lower = rng.beta(k, n - k + 1, size=n_resamples)
    lo_idx = np.minimum((lower * n).astype(np.int64), n - 1)
    if n % 2 == 1:
        return sorted_x[lo_idx]
    upper = lower + (1.0 - lower) * rng.beta(1, n - k, size=n_resamples)
    hi_idx = np.minimum((upper * n).astype(np.int64), n - 1)
    return (sorted_x[lo_idx] + sorted_x[hi_idx]) / 2.0


def mann_whitney_p(baseline: npt.ArrayLike, candidate: npt.ArrayLike) -> float:
    """Two-sided Mann-Whitney U p-value (scipy picks exact or asymptotic by size and ties).

    Unlike a t-test it assumes no distribution shape and is not fooled by unequal sample counts.
    All-tied samples give scipy's NaN, which means "no evidence of a difference": 1.0.
    """
    p = float(sps.mannwhitneyu(as_array(baseline), as_array(candidate), alternative="two-sided").pvalue)
    return 1.0 if np.isnan(p) else p


def run_medians_t_p(baseline_runs: npt.ArrayLike, candidate_runs: npt.ArrayLike) -> float:
    """Two-sided p-value of Student's t on the logs of per-run medians (each side >= 2 runs).

    For several runs a side the run is the experimental unit: a host's speed drifts between runs
    by more than its processes differ within one, so only the spread of run medians measures how
    much two builds' runs differ by chance (the nested-design test, with processes as
    subsamples).  Parametric by necessity: with 2 to 5 runs a side no rank test can reach
    p < 0.05 (3 against 3: 0.1 at best).  Logs make it scale-free and swap-antisymmetric; the
    variance is pooled since both sides ran on one host.  Zero spread on both sides: 1.0 when
    the runs agree, 0.0 when they differ.
    """
    x, y = np.log(as_array(baseline_runs)), np.log(as_array(candidate_runs))
    if x.size < 2 or y.size < 2:
        raise ValueError("a run-level test needs at least 2 runs a side")
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread at all: scipy would warn and give NaN
        return 1.0 if x[0] == y[0] else 0.0
    p = float(sps.ttest_ind(x, y, equal_var=True).pvalue)
    return 1.0 if np.isnan(p) else p


def run_level_shift(
    baseline_runs: npt.ArrayLike, candidate_runs: npt.ArrayLike, confidence: float = 0.95
) -> MedianShift:
    """The shift between two builds measured in several runs each, on the model of
    :func:`run_medians_t_p`: so its interval excludes no change exactly when that test rejects
    at 1 - ``confidence``.

    Centres are geometric means of the run medians; the ratio is exp of the difference of mean
    logs, with Student's t interval (pooled variance).  The difference and its interval are that
    ratio applied to the baseline centre (the baseline taken as known: the ratio carries the
    uncertainty).  ``n_resamples`` is 0: nothing is resampled.
    """
    x, y = np.log(as_array(baseline_runs)), np.log(as_array(candidate_runs))
    if x.size < 2 or y.size < 2:
        raise ValueError("a run-level interval needs at least 2 runs a side")
    d = float(y.mean() - x.mean())
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread at all: the interval is the point itself
        log_low = log_high = d
    else:
        ci = sps.ttest_ind(y, x, equal_var=True).confidence_interval(confidence)
        log_low, log_high = float(ci.low), float(ci.high)
    base, cand = float(np.exp(x.mean())), float(np.exp(y.mean()))
    ratio, low, high = float(np.exp(d)), float(np.exp(log_low)), float(np.exp(log_high))
    return MedianShift(
        baseline_median=base,
        candidate_median=cand,
        difference=cand - base,
        difference_low=base * (low - 1.0),
        difference_high=base * (high - 1.0),
        ratio=ratio,
        ratio_low=low,
        ratio_high=high,
        confidence=confidence,
        n_resamples=0,
    )


def paired_shift(baseline: npt.ArrayLike, candidate: npt.ArrayLike, confidence: float = 0.95) -> MedianShift:
    """The shift between two sides measured in pairs that shared a moment (the same run, or one
    interleaved round): Student's t on the log ratios of the pairs (scipy's ttest_rel interval),
    so the drift the pair shared cancels. Centres are geometric means; the difference is the
    ratio applied to the baseline centre, as in :func:`run_level_shift`."""
    x, y = np.log(as_array(baseline)), np.log(as_array(candidate))
    if x.size != y.size or x.size < 2:
        raise ValueError("a paired interval needs at least 2 pairs")
    d = float((y - x).mean())
    if np.ptp(y - x) == 0:  # identical ratios: the interval is the point itself
        log_low = log_high = d
    else:
        ci = sps.ttest_rel(y, x).confidence_interval(confidence)
        log_low, log_high = float(ci.low), float(ci.high)
    base, cand = float(np.exp(x.mean())), float(np.exp(y.mean()))
    ratio, low, high = float(np.exp(d)), float(np.exp(log_low)), float(np.exp(log_high))
    return MedianShift(baseline_median=base, candidate_median=cand, difference=base * (ratio - 1.0),
                       difference_low=base * (low - 1.0), difference_high=base * (high - 1.0), ratio=ratio,
                       ratio_low=low, ratio_high=high, confidence=confidence, n_resamples=0)


def step_p_value(left: npt.ArrayLike, right: npt.ArrayLike, sigma: float, dof: int) -> float:
    """Two-sided p-value of a step between the means of two segments of a noisy series.

    ``sigma`` is the noise of one point, estimated from the whole series (so even a one-point
    segment can be tested); the statistic follows Student's t with ``dof`` degrees of freedom.
    """
    a, b = as_array(left), as_array(right)
    t = (b.mean() - a.mean()) / (sigma * np.sqrt(1.0 / a.size + 1.0 / b.size))
    return float(2.0 * sps.t.sf(abs(t), dof))


def holm(pvalues: npt.ArrayLike) -> FloatArray:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate).

    Hand-written because scipy has no Holm and statsmodels is not a dependency; it is a sort,
    a multiply and a running maximum.
    """
    p = as_array(pvalues)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def benjamini_hochberg(pvalues: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate), via scipy."""
    p = as_array(pvalues)
    return p.copy() if p.size == 0 else np.asarray(sps.false_discovery_control(p, method="bh"))


def adjust_pvalues(pvalues: npt.ArrayLike, method: Correction = "holm") -> FloatArray:
    if method == "holm":
        return holm(pvalues)
    if method == "bh":
        return benjamini_hochberg(pvalues)
    raise ValueError(f"unknown correction {method!r} (use 'holm' or 'bh')")


def check_sample_counts(n_baseline: int, n_candidate: int, minimum: int, what: str = "samples") -> str | None:
    """Why two samples are too small to compare, or None if they are large enough.

    ``what`` names the units counted (samples, processes).
    """
    if n_baseline == 0:
        return "no baseline samples"
    if n_candidate == 0:
        return "no candidate samples"
    if n_baseline < minimum or n_candidate < minimum:
        return (
            f"too few {what}: baseline {n_baseline}, candidate {n_candidate} (need >= {minimum})"
        )
    return None


def check_noise(baseline: MedianEstimate, candidate: MedianEstimate, limit: float) -> str | None:
    """Why the medians are too uncertain to call "no change", or None if they are precise enough.

    ``limit`` is the largest acceptable relative half-width of either median's 95 % interval.
    """
    b, c = baseline.relative_halfwidth, candidate.relative_halfwidth
    if b <= limit and c <= limit:
        return None
    return (
        f"too noisy: median uncertain by ±{_pct(b)} baseline, ±{_pct(c)} candidate "
        f"(limit ±{_pct(limit)})"
    )


def normal_quantile(q: float) -> float:
    return float(sps.norm.ppf(q))


def _pct(fraction: float) -> str:
    return "?" if not np.isfinite(fraction) else f"{fraction * 100:.1f} %"
