"""analysis.trend: build ordering and change points on series with known steps."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from cetbench.analysis.errors import AnalysisInputError, HostMismatchError, TooFewBuildsError
from cetbench.analysis.trend import kernel_version_key, trend
from tests.support.synthetic import make_samples

BUILDS = ("6.16", "6.16.1", "6.17-rc1", "6.17-rc2", "6.17", "6.17.1", "6.18-rc1", "6.18")
ONE = (("host.syscall", "shstk=on", 100e-9, False),)
VARIANT = "host.syscall[shstk=on]"


def test_kernel_version_order() -> None:
    expected = ["6.9", "6.18", "6.18.1", "6.19-rc1", "6.19-rc3", "6.19-rc10", "6.19", "6.19.2", "7.0-rc1",
                "not-a-version"]
    shuffled = expected[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=kernel_version_key) == expected
    assert kernel_version_key("6.19") == kernel_version_key("6.19.0")
    assert kernel_version_key("v6.18-rc2") < kernel_version_key("6.18")
    # distro suffixes break ties in natural order
    assert kernel_version_key("6.8.0-9-generic") < kernel_version_key("6.8.0-45-generic")


def series(factors: dict[str, float], noise: float = 0.01, seed: int = 0, builds: tuple[str, ...] = BUILDS):
    return make_samples(builds, n=30, seed=seed, noise=noise, variants=ONE,
                        factors={(b, VARIANT): f for b, f in factors.items()})


def test_step_is_found_at_the_first_build_after_it() -> None:
    result = trend(series({b: 1.05 for b in BUILDS[5:]}))
    (v,) = result.variants
    assert result.builds == BUILDS
    (cp,) = v.change_points
    assert cp.build == "6.17.1" and cp.previous_build == "6.17"
    assert cp.direction == "slower"
    assert cp.magnitude == pytest.approx(0.05, abs=0.01)


def test_up_then_down_gives_two_change_points() -> None:
    result = trend(series({b: 1.08 for b in BUILDS[2:5]}))
    cps = result.variants[0].change_points
    assert [(c.build, c.direction) for c in cps] == [("6.17-rc1", "slower"), ("6.17.1", "faster")]


@pytest.mark.parametrize("seed", range(5))
def test_flat_series_has_no_change_point(seed: int) -> None:
    assert trend(series({}, seed=seed)).variants[0].change_points == ()


def test_step_below_floor_is_not_a_change_point() -> None:
    data = series({b: 1.004 for b in BUILDS[4:]}, noise=0.001)
    assert trend(data, floor=0.01).variants[0].change_points == ()
    assert len(trend(data, floor=0.002).variants[0].change_points) == 1


def test_explicit_label_order_and_unknown_labels() -> None:
    data = series({"6.17": 1.1})
    order = ["6.18", "6.17", "6.16"]
    result = trend(data, order)
    assert result.builds == tuple(order) and result.order == "labels"
    assert [p.build for p in result.variants[0].points] == order
    with pytest.raises(AnalysisInputError, match=r"6\.99.*it has: 6\.16"):
        trend(data, ["6.16", "6.99", "6.18"])


def test_time_order_follows_start_times() -> None:
    data = series({})
    # make the oldest release the newest run
    data.loc[data["kernel_release"] == "6.16", "started_utc"] = pd.Timestamp("2030-01-01", tz="UTC")
    assert trend(data, "time").builds == (*BUILDS[1:], "6.16")


def test_too_few_builds_is_a_clear_error() -> None:
    with pytest.raises(TooFewBuildsError, match="at least 3 builds; the selection has 2"):
        trend(series({}, builds=("6.17", "6.18")))


def test_variant_on_too_few_builds_gets_a_note() -> None:
    data = make_samples(BUILDS[:4], n=10, variants=ONE)
    extra = make_samples(BUILDS[:2], n=10, variants=(("host.pipe", "shstk=on", 2e-6, True),))
    result = trend(pd.concat([data, extra], ignore_index=True))
    by = {v.variant: v for v in result.variants}
    assert by["host.pipe[shstk=on]"].note == "too few builds: 2 (need >= 3)"
    assert by["host.pipe[shstk=on]"].emulated
    assert by[VARIANT].note is None


def test_mixed_hosts_refused_unless_forced() -> None:
    data = series({})
    data.loc[data["kernel_release"] == "6.18", "host_fingerprint"] = "other-cpu"
    with pytest.raises(HostMismatchError):
        trend(data)
    assert len(trend(data, force=True).builds) == len(BUILDS)


def test_build_to_build_noise_rarely_makes_change_points() -> None:
    # Each build's median wanders by 0.5 % (a reboot, a different placement) while its samples
    # are tight: pooled samples alone would call almost every wiggle significant.
    rng = np.random.default_rng(77)
    spurious = 0
    for seed in range(40):
        wander = {b: float(rng.lognormal(0.0, 0.005)) for b in BUILDS}
        spurious += len(trend(series(wander, noise=0.005, seed=seed)).variants[0].change_points)
    assert spurious <= 4


def test_real_step_is_found_despite_build_to_build_noise() -> None:
    rng = np.random.default_rng(78)
    found = 0
    for seed in range(20):
        factors = {b: float(rng.lognormal(0.0, 0.003)) * (1.05 if i >= 4 else 1.0) for i, b in enumerate(BUILDS)}
        cps = trend(series(factors, seed=seed)).variants[0].change_points
        found += [c.build for c in cps] == ["6.17"]
    assert found >= 18
