"""analysis.costmodel on synthetic CET hosts whose per-mechanism costs are known."""

from __future__ import annotations

import pytest

from cetbench.analysis.costmodel import MechanismCost, cost_model
from cetbench.workloads.mechanisms import MECHANISMS, PL3_SSP_WRITE
from tests.support.synthetic import MECHANISM_TRUTH, mechanism_suite


def fitted(seed: int, confound: bool = False, drop: tuple[str, ...] = ()) -> dict[str, MechanismCost]:
    samples, counts = mechanism_suite(seed=seed, confound=confound, drop=drop)
    return {c.mechanism: c for c in cost_model(samples, counts, MECHANISMS, n_resamples=400, seed=seed).costs}


def test_intervals_cover_the_true_costs_about_as_often_as_they_claim() -> None:
    """Over 40 synthetic runs with this host's noise (6 worker processes a variant, as --quick), each
    95 % interval holds its mechanism's true cost in at least 34 of them (a binomial(40, 0.95) falls
    below 34 with probability < 2 %)."""
    hits = dict.fromkeys(MECHANISM_TRUTH, 0)
    for seed in range(40):
        costs = fitted(seed=seed, confound=True)
        for mechanism, truth in MECHANISM_TRUTH.items():
            c = costs[mechanism]
            assert c.seconds is not None and c.low is not None and c.high is not None, c.reason
            hits[mechanism] += c.low <= truth <= c.high
    assert min(hits.values()) >= 34, hits


def test_a_mechanism_no_pair_isolates_is_refused_with_what_to_measure() -> None:
    costs = fitted(seed=1, drop=("guest.vmexit.pio[cet=shstk,cetu=init]", "guest.vmexit.pio[cet=none]"))
    swap = costs["cetu_fpu_swap"]
    assert swap.seconds is None and swap.reason is not None and "`cetu` axis" in swap.reason
    # the exit's own CET save is in every exit's baseline: never separable
    save = costs["exit_save_cet"]
    assert save.seconds is None and save.reason is not None and "nothing software can switch it" in save.reason
    assert costs["xss_switch"].reason == "no measured variant pays it (its count per op is 0 everywhere)"


def test_without_the_confound_in_the_model_on_minus_off_is_biased_and_the_model_is_not() -> None:
    """The XSS confound makes pio's CET-on minus CET-off come out below the CET_USER swap's cost;
    the joint fit separates the two."""
    samples, counts = mechanism_suite(seed=5, confound=True, process_noise=0.0, value_noise=0.0)
    medians = samples.groupby("variant")["value"].median()
    naive = medians["guest.vmexit.pio[cet=shstk]"] - medians["guest.vmexit.pio[cet=none]"]
    assert naive < 0  # 40 ns dearer swap, 120 ns fewer XSS writes
    costs = {c.mechanism: c for c in cost_model(samples, counts, MECHANISMS, n_resamples=50).costs}
    assert costs["cetu_fpu_swap"].seconds == pytest.approx(MECHANISM_TRUTH["cetu_fpu_swap"], rel=1e-6)
    assert costs["xss_switch"].seconds == pytest.approx(MECHANISM_TRUTH["xss_switch"], rel=1e-6)


def test_a_variant_without_the_counts_is_left_out_with_the_reason() -> None:
    samples, counts = mechanism_suite(seed=2)
    counts = counts[(counts["variant"] != "host.signal[shstk=on]") | (counts["event"] != PL3_SSP_WRITE)]
    result = cost_model(samples, counts, MECHANISMS, n_resamples=50)
    assert [(e.variant, e.reason) for e in result.excluded] == [
        ("host.signal[shstk=on]", "no count per op of msr:write_msr if msr == 0x6a7")]
    assert {r.variant for r in result.residuals} == set(samples["variant"]) - {"host.signal[shstk=on]"}
