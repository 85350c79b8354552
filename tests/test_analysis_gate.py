"""The CI gate (analysis.compare): a disturbed run never yields a regression; with one run a side a
change must also exceed how far two runs of one build drift on this host, from its history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cetbench.analysis.compare import CompareSettings, RunSpread, Verdict, compare, run_spread
from cetbench.analysis.render_html import render_html
from cetbench.analysis.render_json import parse_json, render_json
from cetbench.analysis.render_junit import render_junit
from cetbench.analysis.render_markdown import render_markdown
from cetbench.analysis.render_terminal import render_terminal_text
from cetbench.analysis.render_text import render_text
from cetbench.analysis.report import Report
from tests.support.synthetic import frame_from_values

V = "host.syscall[shstk=off]"


def side(level: float, seed: int, run: str, processes: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = level * np.exp(rng.normal(0.0, 0.004, processes))
    return frame_from_values({V: values}, run_id=run, values_per_process=1)


def verdict(base: pd.DataFrame, cand: pd.DataFrame, history: dict[str, RunSpread] | None = None):
    (row,) = compare(base, cand, CompareSettings(), history).variants
    return row


def test_a_disturbed_run_never_yields_a_regression() -> None:
    base, cand = side(100e-9, 1, "b"), side(110e-9, 2, "c")
    quiet = verdict(base, cand, {V: RunSpread(0.005, 8)})
    assert quiet.verdict is Verdict.REGRESSION
    cand["disturbance"] = "other processes used 0.95 CPUs (limit 0.25)"
    loud = verdict(base, cand, {V: RunSpread(0.005, 8)})
    assert loud.verdict is Verdict.INCONCLUSIVE
    assert loud.reason is not None and "disturbed run (candidate run c: other processes used 0.95 CPUs" in loud.reason
    # a faster disturbed run is still reported (a disturbance only ever makes a run look slower)
    assert verdict(side(121e-9, 3, "b"), cand, {V: RunSpread(0.005, 8)}).verdict is Verdict.IMPROVEMENT


@pytest.mark.parametrize("sigma,expected", [(0.002, Verdict.REGRESSION), (0.03, Verdict.INCONCLUSIVE)])
def test_one_run_a_side_must_exceed_the_hosts_drift_between_runs(sigma: float, expected: Verdict) -> None:
    """+5 %: a regression where runs of one build agree within ±0.6 % (sigma 0.2 %), within the
    drift where they wander ±8 % (sigma 3 %)."""
    row = verdict(side(100e-9, 4, "b"), side(105e-9, 5, "c"), {V: RunSpread(sigma, 8)})
    assert row.verdict is expected
    assert (row.drift, row.drift_runs) == (sigma, 8)
    if expected is Verdict.INCONCLUSIVE:
        assert row.reason is not None and "within the drift of two runs of one build" in row.reason


def test_without_enough_history_only_a_change_far_beyond_the_floor_is_called() -> None:
    few = {V: RunSpread(0.002, 2)}
    small = verdict(side(100e-9, 6, "b"), side(104e-9, 7, "c"), few)
    assert small.verdict is Verdict.INCONCLUSIVE
    assert small.reason is not None and "2 stored run(s)" in small.reason and "need 4" in small.reason
    large = verdict(side(100e-9, 8, "b"), side(110e-9, 9, "c"))  # +10 %: beyond 3 x the 2 % floor
    assert large.verdict is Verdict.REGRESSION


def test_run_spread_is_the_sd_of_log_run_medians_per_variant() -> None:
    runs = [side(level, i, f"r{i}") for i, level in enumerate((100e-9, 102e-9, 98e-9))]
    (spread,) = run_spread(pd.concat(runs, ignore_index=True)).values()
    medians = [np.median(r["value"]) for r in runs]
    assert spread.runs == 3 and spread.sigma == pytest.approx(np.std(np.log(medians), ddof=1))


def test_every_comparison_report_shows_the_disturbance_figures_and_what_the_gate_gives_up() -> None:
    base, cand = side(100e-9, 10, "b"), side(100.2e-9, 11, "c")  # no change: the disturbance is shown all the same
    cand["disturbance"] = "other processes used 0.95 CPUs (limit 0.25)"
    result = compare(base, cand, CompareSettings(n_resamples=100), {V: RunSpread(0.005, 8)})
    assert result.variants[0].verdict is not Verdict.REGRESSION
    report = Report(title="t", comparison=result)
    figures = f"disturbed: {V}: candidate run c: other processes used 0.95 CPUs (limit 0.25)"
    for text in (render_text(report), render_markdown(report), render_terminal_text(report), render_html(report),
                 render_junit(report)):
        # lines wrapped to a width, markdown and HTML escapes
        flat = " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("\\", "").split())
        assert figures in flat and "the gate gives up detection on a busy host" in flat
    assert parse_json(render_json(report)).comparison == result  # the JSON keeps the figure per variant
    # one run a side: the note says a change must also beat the host's drift
    assert "beyond how far runs of the baseline's build drift apart" in " ".join(render_text(report).split())
