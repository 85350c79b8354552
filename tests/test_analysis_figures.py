"""analysis.figures: each variant's own figures, and the variants with no numbers by reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cetbench.analysis.figures import not_measured, variant_figures
from tests.support.synthetic import make_perf, make_samples


def test_figures_are_medians_over_processes_with_the_key_event_counted() -> None:
    samples = make_samples(n=40, noise=0.0)
    samples["process"] = np.arange(len(samples)) // 4  # 4 values a worker process
    names = sorted(samples["variant"].unique())
    counters = make_perf(samples, {(names[0], "ev:second"): 2.0, (names[0], "ev:first"): 1.0})
    workload = str(samples.loc[samples["variant"] == names[0], "workload"].iloc[0])
    figures = {f.variant: f for f in variant_figures(samples, counters, {workload: ("ev:first", "ev:second")})}
    assert sorted(figures) == names
    first = figures[names[0]]
    truth = samples.loc[samples["variant"] == names[0], "value"].median()
    assert first.time.median == pytest.approx(truth)
    assert first.time.n == 10  # 40 values, 4 per process: the process is the unit
    assert (first.key_event, first.events_per_op) == ("ev:first", 1.0)
    # a key event perf did not count is named, with no figure
    other = variant_figures(samples, counters, {workload: ("ev:missing",)})[0]
    assert (other.key_event, other.events_per_op) == ("ev:missing", None)


def test_not_measured_lists_each_refusal_once_with_every_variant_it_covers() -> None:
    statuses = pd.DataFrame([
        ("a[cet=ibt]", "unsupported", "x; y", "cpu", [("cpu", "no IBT"), ("kvm", "no SHSTK")]),
        ("b[cet=ibt]", "unsupported", "no IBT", "cpu", [("cpu", "no IBT")]),
        ("c[shstk=on]", "failed", "exit 139", None, []),
        ("d[shstk=off]", "measured", None, None, []),
    ], columns=["variant", "status", "reason", "refused_by", "refusals"])
    groups = not_measured(statuses)
    assert [(g.status, g.refused_by, g.reason, g.variants) for g in groups] == [
        ("unsupported", "cpu", "no IBT", ("a[cet=ibt]", "b[cet=ibt]")),
        ("unsupported", "kvm", "no SHSTK", ("a[cet=ibt]",)),
        ("failed", None, "exit 139", ("c[shstk=on]",)),
    ]
