"""analysis.stats on synthetic data whose true answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from cetbench.analysis import stats


def test_median_ci_covers_true_median_at_nominal_rate() -> None:
    # Exponential(1): true median ln 2.  The order-statistic interval is exact or conservative,
    # so over many samples it must cover at least ~95 % of the time (and not always).
    rng = np.random.default_rng(11)
    trials = 400
    covered = 0
    for _ in range(trials):
        est = stats.median_ci(rng.exponential(1.0, 40))
        assert est.low is not None and est.high is not None
        covered += est.low <= np.log(2) <= est.high
    assert 0.93 <= covered / trials <= 0.995


def test_median_ci_needs_six_samples() -> None:
    five = stats.median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert five.median == 3.0 and five.low is None and five.high is None
    assert five.relative_halfwidth == float("inf")
    six = stats.median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # with n = 6 only [min, max] reaches 95 % (1 - 2/64 = 0.969)
    assert (six.low, six.high) == (1.0, 6.0)


def test_median_ci_rejects_empty() -> None:
    with pytest.raises(ValueError):
        stats.median_ci([])


def test_bootstrap_ratio_ci_covers_known_shift() -> None:
    # Normal samples, candidate median 5 % above baseline: the 95 % CI of the ratio should
    # contain 1.05 in most trials and the difference CI should contain +0.5.
    rng = np.random.default_rng(3)
    trials, hits_ratio, hits_diff = 60, 0, 0
    for seed in range(trials):
        x = rng.normal(10.0, 0.3, 40)
        y = rng.normal(10.5, 0.3, 40)
        shift = stats.bootstrap_median_shift(x, y, seed=seed, n_resamples=1000)
        hits_ratio += shift.ratio_low <= 1.05 <= shift.ratio_high
        hits_diff += shift.difference_low <= 0.5 <= shift.difference_high
        assert shift.ratio_low <= shift.ratio <= shift.ratio_high
    assert hits_ratio / trials >= 0.85
    assert hits_diff / trials >= 0.85


def test_bootstrap_is_reproducible_with_seed() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(1, 0.1, 30), rng.normal(1.1, 0.1, 30)
    a = stats.bootstrap_median_shift(x, y, seed=42, n_resamples=500)
    b = stats.bootstrap_median_shift(x, y, seed=42, n_resamples=500)
    c = stats.bootstrap_median_shift(x, y, seed=43, n_resamples=500)
    assert a == b
    assert (a.ratio_low, a.ratio_high) != (c.ratio_low, c.ratio_high)


@pytest.mark.parametrize("n", [31, 30, 301])  # odd and even sizes take different branches
def test_order_statistic_bootstrap_matches_materialised_resampling(n: int) -> None:
    # The shortcut must draw from the same distribution as resampling for real: the two sets of
    # 20,000 bootstrap medians must be indistinguishable (Kolmogorov-Smirnov distance, which an
    # off-by-one rank would push to ~0.2 for n = 31).
    rng = np.random.default_rng(5)
    x = np.sort(rng.lognormal(0.0, 0.5, n))
    fast = stats.bootstrap_medians(x, 20_000, np.random.default_rng(1))
    slow = np.median(rng.choice(x, size=(20_000, n), replace=True), axis=1)
    assert sps.ks_2samp(fast, slow).statistic < 0.025
    assert np.median(fast) == pytest.approx(np.median(x), rel=0.05)


def test_large_samples_use_shortcut_and_still_cover() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(100.0, 5.0, 60_000)
    y = rng.normal(102.0, 5.0, 60_000)
    shift = stats.bootstrap_median_shift(x, y, seed=1, n_resamples=2000)
    assert shift.ratio_low <= 1.02 <= shift.ratio_high
    assert shift.ratio_high - shift.ratio_low < 0.005


def test_mann_whitney_detects_shift_and_not_identity() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 0.05, 30)
    assert stats.mann_whitney_p(x, x * 1.1) < 1e-6
    assert stats.mann_whitney_p(x, x) == pytest.approx(1.0)
    assert stats.mann_whitney_p([2.0] * 8, [2.0] * 8) == 1.0  # all tied


def test_holm_known_example() -> None:
    # Worked by hand from the definition: sorted p 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1
    # = 0.02, 0.03, 0.06, 0.04, then the running maximum keeps 0.06 for the last one.
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_bh_known_example() -> None:
    # BH by hand: sorted p 0.005, 0.01, 0.03, 0.04 times m/rank 4, 2, 4/3, 1 = 0.02, 0.02,
    # 0.04, 0.04; running minimum from the top leaves them as they are.
    adjusted = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.02, 0.04, 0.04, 0.02])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_corrections_are_monotone_and_bounded(pvalues: list[float]) -> None:
    p = np.array(pvalues)
    h = stats.holm(p)
    b = stats.benjamini_hochberg(p)
    assert np.all(h >= p - 1e-12) and np.all(h <= 1.0)
    assert np.all(b >= p - 1e-12) and np.all(b <= 1.0)
    assert np.all(h >= b - 1e-12)  # Holm is never less strict than BH
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(h[order]) >= -1e-12)


def test_adjust_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown correction"):
        stats.adjust_pvalues([0.1], "bonferroni")  # type: ignore[arg-type]


def test_sample_count_reasons() -> None:
    assert stats.check_sample_counts(0, 5, 6) == "no baseline samples"
    assert stats.check_sample_counts(5, 0, 6) == "no candidate samples"
    assert stats.check_sample_counts(2, 5, 6) == "too few samples: baseline 2, candidate 5 (need >= 6)"
    assert stats.check_sample_counts(6, 6, 6) is None


def test_noise_check() -> None:
    rng = np.random.default_rng(4)
    tight = stats.median_ci(rng.normal(100, 0.5, 50))
    wide = stats.median_ci(rng.normal(100, 30, 50))
    assert stats.check_noise(tight, tight, 0.05) is None
    reason = stats.check_noise(tight, wide, 0.05)
    assert reason is not None and reason.startswith("too noisy") and "candidate" in reason


def test_run_level_t_is_scale_free_swap_symmetric_and_needs_two_runs_a_side() -> None:
    base, cand = [1.00, 1.02, 0.99], [1.05, 1.07, 1.06]
    p = stats.run_medians_t_p(base, cand)
    assert 0 < p < 0.05
    assert stats.run_medians_t_p([b * 1e-9 for b in base], [c * 1e-9 for c in cand]) == pytest.approx(p)
    assert stats.run_medians_t_p(cand, base) == pytest.approx(p)
    assert stats.run_medians_t_p([2.0, 2.0], [2.0, 2.0]) == 1.0  # no spread, no difference: no evidence
    assert stats.run_medians_t_p([2.0, 2.0], [3.0, 3.0]) == 0.0
    with pytest.raises(ValueError, match="2 runs"):
        stats.run_medians_t_p([1.0], [1.0, 1.1])


def test_run_level_interval_excludes_no_change_exactly_when_the_run_level_test_rejects() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(2, 7))
        base = np.exp(rng.normal(0.0, 0.02, k))
        cand = np.exp(rng.normal(rng.normal(0.0, 0.03), 0.02, k))
        shift = stats.run_level_shift(base, cand)
        p = stats.run_medians_t_p(base, cand)
        assert (shift.ratio_low > 1.0 or shift.ratio_high < 1.0) == (p < 0.05)
        assert shift.ratio_low <= shift.ratio <= shift.ratio_high
        assert shift.ratio == pytest.approx(shift.candidate_median / shift.baseline_median)
        swapped = stats.run_level_shift(cand, base)
        assert swapped.ratio == pytest.approx(1.0 / shift.ratio)
        assert swapped.ratio_low == pytest.approx(1.0 / shift.ratio_high)
