"""Renderers: one Report, every format; width, parseability, escaping and the emulated label."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cetbench.analysis.compare import CompareSettings, compare
from cetbench.analysis.overhead import cet_overhead
from cetbench.analysis.render_json import parse_json, render_json
from cetbench.analysis.render_junit import render_junit
from cetbench.analysis.render_markdown import render_markdown
from cetbench.analysis.render_plot import plot_overhead, plot_trend, render_plots
from cetbench.analysis.render_terminal import render_terminal_text
from cetbench.analysis.render_text import render_text
from cetbench.analysis.report import EMULATED_LABEL, Report
from cetbench.analysis.trend import trend
from tests.support.synthetic import frame_from_values, make_perf, make_samples

REGRESSED = "host.syscall[shstk=on]"
EMULATED = "guest.vmexit.pio[cet=ibt+shstk]"
SHORT = "host.pipe[shstk=on]"
NASTY = 'evil<script>|"&amp;\x01[b]'


def lognormal(seed: int, n: int, median: float) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0.0, 0.01, n))


def build_comparison(extra: dict[str, np.ndarray] | None = None):  # type: ignore[no-untyped-def]
    base = {REGRESSED: lognormal(1, 30, 1e-7), EMULATED: lognormal(2, 30, 2e-6), SHORT: lognormal(3, 3, 1e-6)}
    cand = {REGRESSED: lognormal(4, 30, 1.1e-7), EMULATED: lognormal(5, 30, 2e-6), SHORT: lognormal(6, 30, 1e-6)}
    base.update(extra or {})
    cand.update(extra or {})
    return compare(
        frame_from_values(base, emulated=[EMULATED]),
        frame_from_values(cand, build="6.19", emulated=[EMULATED]),
        CompareSettings(n_resamples=300),
    )


@pytest.fixture(scope="module")
def report() -> Report:
    samples = make_samples(n=30)
    perf = make_perf(samples, {
        ("guest.vmexit.pio[cet=none]", "kvm:kvm_fpu"): 0.0,
        ("guest.vmexit.pio[cet=ibt+shstk]", "kvm:kvm_fpu"): 2.0,
    })
    builds = ("6.18", "6.18.1", "6.19-rc1", "6.19")
    series = make_samples(builds, n=20, factors={(b, REGRESSED): 1.1 for b in builds[2:]})
    return Report(
        title="cetbench: 6.18 against 6.19",
        comparison=build_comparison(),
        overhead=cet_overhead(samples, perf, n_resamples=300),
        trend=trend(series),
    )


def test_text_fits_80_columns_and_has_every_section(report: Report) -> None:
    text = render_text(report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in (REGRESSED, EMULATED, SHORT):
        assert name in text
    assert "REGRESSION" in text
    assert "too few processes: baseline 3, candidate 30 (need >= 6)" in text
    assert "CET overhead" in text and "per extra kvm:kvm_fpu" in text
    assert "change: +" in text and "slower" in text  # the trend's change point
    # the emulated variant's name line carries the label
    assert any(EMULATED in line and EMULATED_LABEL in line for line in lines)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=150))
def test_text_width_holds_for_any_variant_name(name: str) -> None:
    text = render_text(Report(comparison=build_comparison({name + "[shstk=on]": lognormal(9, 10, 1e-6)})))
    assert max(len(line) for line in text.splitlines()) <= 80


def test_junit_has_a_failure_with_figures_for_the_regression(report: Report) -> None:
    root = ET.fromstring(render_junit(report))
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "cetbench.compare")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {REGRESSED, EMULATED, SHORT}
    failure = cases[REGRESSED].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "+10." in message and "p:" in message and "[" in message  # change, p-value, CI
    assert cases[EMULATED].find("failure") is None
    skipped = cases[SHORT].find("skipped")
    assert skipped is not None and "too few processes" in skipped.get("message", "")
    assert suite.get("failures") == "1" and suite.get("skipped") == "1" and suite.get("tests") == "3"
    out = cases[EMULATED].find("system-out")
    assert out is not None and EMULATED_LABEL in (out.text or "")


def test_junit_escapes_user_text() -> None:
    xml = render_junit(Report(title="a & b <c>", comparison=build_comparison({NASTY: lognormal(7, 10, 1e-6)})))
    root = ET.fromstring(xml)  # would raise on bad escaping or a raw control character
    names = [c.get("name") for c in root.iter("testcase")]
    assert 'evil<script>|"&amp;?[b]' in names
    assert root.get("name") == "a & b <c>"


def test_json_round_trips(report: Report) -> None:
    text = render_json(report)
    data = json.loads(text)
    assert data["schema"] == "cetbench-report/1"
    assert parse_json(text) == report
    emulated_rows = [v for v in data["comparison"]["variants"] if v["emulated"]]
    assert emulated_rows and all(v["emulated"] == EMULATED_LABEL for v in emulated_rows)
    regressed = next(v for v in data["comparison"]["variants"] if v["variant"] == REGRESSED)
    assert regressed["verdict"] == "regression" and regressed["change"] > 0.05


def test_markdown_tables_and_escaping(report: Report) -> None:
    md = render_markdown(Report(comparison=build_comparison({NASTY: lognormal(8, 10, 1e-6)})))
    assert "<script>" not in md and "&lt;script&gt;" in md
    row = next(line for line in md.splitlines() if "evil" in line)
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    unescaped = lambda line: line.replace("\\|", "").count("|")  # noqa: E731
    assert unescaped(row) == unescaped(header)  # the name's "|" does not add a column
    full = render_markdown(report)
    assert EMULATED_LABEL in full and "REGRESSION" in full and "## Trend" in full


def test_terminal_keeps_bracketed_names_and_label(report: Report) -> None:
    out = render_terminal_text(report, width=220)
    assert REGRESSED in out  # "[shstk=on]" must not be eaten as rich markup
    assert EMULATED_LABEL in out
    assert "REGRESSION" in out


def test_plots_are_valid_png_and_svg(report: Report, tmp_path: Path) -> None:
    files = render_plots(report, tmp_path)
    assert sorted(f.name for f in files) == ["overhead.png", "overhead.svg", "trend.png", "trend.svg"]
    for f in files:
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            root = ET.parse(f).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert EMULATED_LABEL in f.read_text()
    with pytest.raises(ValueError, match="format"):
        plot_overhead(report.overhead, tmp_path / "x.gif")  # type: ignore[arg-type]
    assert report.trend is not None
    one = plot_trend(report.trend, tmp_path / "one.svg", variants=[REGRESSED])
    assert "stroke-dasharray" in one.read_text()  # the change point's dashed line


def test_a_single_run_on_a_side_is_said_and_several_runs_are_not() -> None:
    note = "one run a side, so drift between runs is not in the test"
    single = build_comparison()
    assert (single.runs_baseline, single.runs_candidate) == (1, 1)
    assert note in render_text(Report(title="t", comparison=single))
    values = {REGRESSED: lognormal(1, 30, 1e-7)}
    base = frame_from_values(values, run_id="r1")
    base = base.assign(run_id=np.where(np.arange(len(base)) % 2, "r1", "r2"))
    several = compare(base, frame_from_values(values, build="6.19", run_id="r3").assign(
        run_id=lambda f: np.where(np.arange(len(f)) % 2, "r3", "r4")), CompareSettings(n_resamples=100))
    assert (several.runs_baseline, several.runs_candidate) == (2, 2)
    assert note not in render_text(Report(title="t", comparison=several))
    assert parse_json(render_json(Report(title="t", comparison=several))).comparison == several
