"""The results and analysis commands end to end, on bundles from real quick runs made here:
ci (regression -> exit 1 and JUnit; no baseline -> exit 3; --mark-good), mark-good, compare,
overhead, trend, report in every format with plots, and bad input (empty selections, an
unreachable store whose password is never printed, a corrupt file among good ones)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from cetbench.analysis.render_json import parse_json
from cetbench.analysis.report import EMULATED_LABEL
from cetbench.analysis.trend import MIN_BUILDS

pytestmark = pytest.mark.slow

HOST = "host.syscall[shstk=off]"
GUEST = "guest.vmexit.cpuid[cet=none]"
# 6 worker processes per run: the comparison's minimum per side (its unit is the process)
PYPERF = ("--processes", "6", "--values", "2", "--warmups", "1", "--loops", "20000")
GUEST_PYPERF = ("--processes", "6", "--values", "2", "--warmups", "1", "--loops", "200")
#: Added per op by the injected candidate: several times the cost of a getppid syscall (a few
#: hundred cycles), so the regression is far beyond any noise of this machine.
INJECT = 2000
SECRET_URL = "postgresql://u:secret@127.0.0.1:1/x"


def cetbench(home: Path, *args: str, store: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CETBENCH_STORE"}
    env.update(CETBENCH_HOME=str(home), COLUMNS="120")
    if store is not None:
        env["CETBENCH_STORE"] = store
    return subprocess.run([sys.executable, "-m", "cetbench", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def pyperf_args(config: tuple[str, ...]) -> list[str]:
    return [f"--pyperf-arg={a}" for a in config]


def run(home: Path, label: str, only: str = HOST, config: tuple[str, ...] = PYPERF) -> str:
    # these tests are about the injected change, not this machine's load: never call a run disturbed
    proc = cetbench(home, "run", "--only", only, "--kernel-label", label, "--perf", "off", "--json",
                    "--disturbed-above", "100", "--steal-above", "1", *pyperf_args(config))
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["run_id"])


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line a refused command prints (and nothing on stdout)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("cetbench: ")
    return lines[0]


def stored_runs(home: Path, *extra: str) -> dict[str, dict]:
    proc = cetbench(home, "list", "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return {r["run_id"]: r for r in json.loads(proc.stdout)}


@dataclass
class World:
    home: Path
    tmp: Path
    runs: dict[str, str]  # kernel label -> run id
    ci: subprocess.CompletedProcess[str]
    junit: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Labels: A (baseline, marked good), B (`cetbench ci` with injected cycles), A2 and C (normal
    runs of the same build), G (an emulated guest variant)."""
    tmp = tmp_path_factory.mktemp("cli")
    home = tmp / "home"
    runs = {"A": run(home, "A")}
    marked = cetbench(home, "mark-good", runs["A"])
    assert marked.returncode == 0 and "marked good" in marked.stdout, marked.stderr
    junit = tmp / "ci.xml"
    ci = cetbench(home, "ci", "--only", HOST, "--runs", "1", "--kernel-label", "B", "--inject-cycles", str(INJECT),
                  # the verdict under test is the injection's, whatever else runs or the hypervisor steals
                  "--disturbed-above", "100", "--steal-above", "1",
                  "--mark-good", "--format", "json", "--junit", str(junit), *pyperf_args(PYPERF))
    runs["B"] = next(r for r in stored_runs(home) if r not in runs.values())
    runs["A2"] = run(home, "A2")
    runs["C"] = run(home, "C")
    runs["G"] = run(home, "G", GUEST, GUEST_PYPERF)
    return World(home, tmp, runs, ci, junit)


def test_ci_fails_on_an_injected_regression_with_junit_naming_the_figures(world: World) -> None:
    report = parse_json(world.ci.stdout)
    why = [(v.verdict, v.reason, v.disturbed) for v in (report.comparison.variants if report.comparison else [])]
    assert world.ci.returncode == 1, (world.ci.stderr, why)  # the verdict's reason when it is not a regression
    assert report.comparison is not None
    (row,) = report.comparison.variants
    assert row.variant == HOST and row.verdict == "regression"
    assert row.n_baseline >= 6 and row.n_candidate >= 6
    assert row.change is not None and row.change > 0.5  # the clear injected slowdown
    assert report.comparison.baseline_label == "A (1 run)" and report.comparison.candidate_label == "B (1 run)"

    root = ET.parse(world.junit).getroot()
    assert root.get("failures") == "1"
    case = next(c for c in root.iter("testcase") if c.get("name") == HOST)
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message", "")
    for figure in ("regressed", "baseline:", "candidate:", "change: +", "95% CI of change:", "p:"):
        assert figure in message, message
    # a regressed run is never made the baseline, even with --mark-good
    good = {rid for rid, r in stored_runs(world.home).items() if r["marked_good"]}
    assert good == {world.runs["A"]}


def test_ci_with_several_runs_marks_them_all_and_tests_runs_against_runs(tmp_path: Path) -> None:
    home = tmp_path / "multi"
    first = cetbench(home, "ci", "--only", HOST, "--runs", "2", "--kernel-label", "K", "--mark-good",
                     *pyperf_args(PYPERF))
    assert first.returncode == 0, first.stderr
    runs = stored_runs(home)
    assert len(runs) == 2 and all(r["marked_good"] for r in runs.values())
    # a good run of another build is not part of the baseline (it is not the newest good build)
    other = run(home, "OLD")
    assert cetbench(home, "mark-good", other).returncode == 0
    newer = run(home, "K")  # the newest good run again is of build K
    assert cetbench(home, "mark-good", newer).returncode == 0

    second = cetbench(home, "ci", "--only", HOST, "--runs", "2", "--kernel-label", "K2", "--format", "json",
                      *pyperf_args(PYPERF))
    assert second.returncode in (0, 1, 3), second.stderr
    report = parse_json(second.stdout)
    assert report.comparison is not None
    (row,) = report.comparison.variants
    assert (row.runs_baseline, row.runs_candidate, row.tested_on) == (3, 2, "runs")
    assert report.comparison.baseline_label == "K (3 runs)" and report.comparison.candidate_label == "K2 (2 runs)"


def test_ci_without_a_baseline_is_inconclusive_then_mark_good_makes_one(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    first = cetbench(home, "ci", "--only", HOST, "--runs", "1", *pyperf_args(PYPERF))
    assert first.returncode == 3
    line = one_line(first)
    assert "no baseline" in line and "mark-good" in line
    assert first.stdout == ""
    (first_id,) = stored_runs(home)
    assert first_id in line  # the run is stored and named, so it can be marked good later

    second = cetbench(home, "ci", "--only", HOST, "--runs", "1", "--mark-good", *pyperf_args(PYPERF))
    assert second.returncode == 0, second.stderr
    runs = stored_runs(home)
    (second_id,) = set(runs) - {first_id}
    assert second_id in second.stdout and "baseline" in second.stdout
    assert runs[second_id]["marked_good"] and not runs[first_id]["marked_good"]


def test_compare_of_two_normal_runs_is_well_formed_and_its_exit_code_follows_the_verdicts(world: World) -> None:
    # Two runs of one build on a shared machine can differ by more than the 1 % floor (each run is
    # its own six processes), so the verdict is not asserted; the exit code must follow it.
    proc = cetbench(world.home, "compare", "--baseline", "A", "--candidate", "A2", "--format", "json")
    assert proc.returncode in (0, 1, 3), proc.stderr
    report = parse_json(proc.stdout)
    assert report.comparison is not None
    (row,) = report.comparison.variants
    assert row.variant == HOST and row.n_baseline == 6 and row.n_candidate == 6  # processes, not values
    assert row.shift is not None and row.p_value is not None
    expected = {"regression": 1, "inconclusive": 3}.get(row.verdict, 0)
    assert proc.returncode == expected, row

    # the same run on both sides: identical samples are never a change (no change, or inconclusive
    # when the run itself was too noisy), and the exit code says which
    same = cetbench(world.home, "compare", "--baseline", world.runs["A"], "--candidate", "A", "--format", "json")
    report = parse_json(same.stdout)
    assert report.comparison is not None
    (row,) = report.comparison.variants
    assert row.p_value == pytest.approx(1.0) and row.change == pytest.approx(0.0)
    assert (row.verdict, same.returncode) in (("no change", 0), ("inconclusive", 3)), (row, same.stderr)


def test_overhead_json_parses(world: World) -> None:
    proc = cetbench(world.home, "overhead", "A", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "cetbench-report/1" and doc["comparison"] is None
    assert doc["overhead"]["confidence"] == 0.95
    assert parse_json(proc.stdout).overhead is not None


def test_trend_over_an_ordered_series_and_too_few_builds(world: World) -> None:
    proc = cetbench(world.home, "trend", "--order", "A,B,C", "--only", "host.*", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = parse_json(proc.stdout)
    assert report.trend is not None
    assert report.trend.builds == ("A", "B", "C")
    (series,) = report.trend.variants
    assert series.variant == HOST and [p.build for p in series.points] == ["A", "B", "C"]

    text = cetbench(world.home, "trend", "--order", "A,B,C", "--format", "text")
    assert text.returncode == 0 and HOST in text.stdout

    two = cetbench(world.home, "trend", "--order", "A,B")
    assert two.returncode == 2
    line = one_line(two)
    assert f"at least {MIN_BUILDS} builds" in line and "has 2" in line

    unknown = cetbench(world.home, "trend", "--order", "A,nosuch,C")
    assert unknown.returncode == 2
    line = one_line(unknown)
    assert "nosuch" in line and all(label in line for label in ("A2", "G"))


def _lines_fit(text: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


def test_report_text_fits_80_columns_and_labels_emulated_figures_only_with_a_guest_variant(world: World) -> None:
    host_only = cetbench(world.home, "report", "--baseline", "A", "--candidate", "B", "--format", "text")
    assert host_only.returncode == 0, host_only.stderr
    _lines_fit(host_only.stdout)
    assert HOST in host_only.stdout and "REGRESSION" in host_only.stdout
    assert EMULATED_LABEL not in host_only.stdout

    guest = cetbench(world.home, "report", "--candidate", "G", "--format", "text")
    assert guest.returncode == 0, guest.stderr
    _lines_fit(guest.stdout)

    series = cetbench(world.home, "report", "--baseline", "A", "--candidate", "B", "--trend", "--format", "text")
    assert series.returncode == 0, series.stderr
    _lines_fit(series.stdout)
    assert GUEST in series.stdout and EMULATED_LABEL in series.stdout


def test_report_in_markdown_json_junit_and_plots(world: World) -> None:
    args = ("report", "--baseline", "A", "--candidate", "B", "--trend")
    markdown = cetbench(world.home, *args, "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    table_row = next(line for line in markdown.stdout.splitlines() if line.startswith("| host.syscall"))
    cells = [c.strip() for c in table_row.strip("|").split(" | ")]
    assert cells[0] == HOST.replace("[", "\\[").replace("]", "\\]") and cells[-1].lower() == "regression"
    assert EMULATED_LABEL in markdown.stdout  # the trend holds the guest run

    as_json = cetbench(world.home, *args, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    report = parse_json(as_json.stdout)
    assert report.comparison is not None and report.comparison.variants[0].verdict == "regression"
    assert report.trend is not None and {v.variant for v in report.trend.variants} == {HOST, GUEST}

    junit = cetbench(world.home, *args, "--format", "junit")
    assert junit.returncode == 0, junit.stderr
    root = ET.fromstring(junit.stdout.encode())
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == [HOST]

    page = world.tmp / "report.html"
    as_html = cetbench(world.home, *args, "--format", "html", "--output", str(page))
    assert as_html.returncode == 0, as_html.stderr
    text = page.read_text()
    assert f'data-variant="{HOST}" data-verdict="regression"' in text
    # the trend plot inline (labelled: it holds the guest run); no CET-on run here, so the
    # overhead section says why it is empty instead of drawing
    assert text.count("<svg") == 1 and "trend-plot-" in text and EMULATED_LABEL in text
    assert "no CET overhead to show" in text

    plots = world.tmp / "plots"
    drawn = cetbench(world.home, *args, "--format", "json", "--output", str(world.tmp / "r.json"),
                     "--plots", str(plots))
    assert drawn.returncode == 0, drawn.stderr
    assert parse_json((world.tmp / "r.json").read_text()).comparison is not None
    names = {p.name for p in plots.iterdir()}
    assert {"overhead.png", "overhead.svg", "trend.png", "trend.svg"} <= names
    for png in plots.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for svg in plots.glob("*.svg"):
        assert ET.parse(svg).getroot().tag.endswith("svg")
    assert EMULATED_LABEL in (plots / "trend.svg").read_text()


def test_a_selection_that_matches_nothing_says_what_exists(world: World) -> None:
    for args in (("compare", "--baseline", "nosuch", "--candidate", "A"),
                 ("compare", "--baseline", "A", "--candidate", "nosuch"),
                 ("overhead", "nosuch"),
                 ("report", "--candidate", "nosuch", "--format", "text")):
        proc = cetbench(world.home, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        line = one_line(proc)
        assert "'nosuch'" in line and "kernel labels: A, A2, B, C, G" in line, line
        assert proc.stdout == ""
    trend = cetbench(world.home, "trend", "--only", "nosuch*")
    assert trend.returncode == 2
    line = one_line(trend)
    assert "nosuch*" in line and HOST in line and GUEST in line
    empty = cetbench(world.tmp / "empty-home", "overhead")
    assert empty.returncode == 2 and "store is empty" in one_line(empty)


@pytest.mark.parametrize("args", [
    ("list",), ("mark-good", "some-run"), ("overhead",), ("compare", "--baseline", "A", "--candidate", "B"),
    ("trend",), ("report",), ("ingest", "nothing.json"), ("ci", "--only", HOST),
], ids=lambda a: a[0])
def test_an_unreachable_store_is_one_line_and_never_shows_the_password(tmp_path: Path, args: tuple[str, ...]) -> None:
    for proc in (cetbench(tmp_path, *args, "--store", SECRET_URL), cetbench(tmp_path, *args, store=SECRET_URL)):
        assert proc.returncode == 3, (proc.stdout, proc.stderr)
        line = one_line(proc)
        assert "secret" not in proc.stdout + proc.stderr
        assert "u:***@127.0.0.1" in line
    assert not (tmp_path / "runs").exists()  # ci refused before running anything


def test_ingest_of_a_corrupt_file_fails_that_file_and_ingests_the_others(world: World) -> None:
    bundles = {label: world.home / "runs" / world.runs[label] for label in ("A", "G")}
    manifest = json.loads((bundles["A"] / "manifest.json").read_text())
    pyperf_file = bundles["A"] / manifest["variants"][HOST]["pyperf"]
    corrupt = world.tmp / "corrupt.json"
    corrupt.write_bytes(pyperf_file.read_bytes()[: pyperf_file.stat().st_size // 2])
    store = f"sqlite:///{world.tmp / 'other.sqlite'}"

    proc = cetbench(world.home, "ingest", str(bundles["A"]), str(corrupt), str(bundles["G"]), "--store", store)
    assert proc.returncode == 2
    line = one_line(proc)
    assert str(corrupt) in line
    assert proc.stdout.count("ingested: ") == 2
    assert set(stored_runs(world.home, "--store", store)) == {world.runs["A"], world.runs["G"]}

    again = cetbench(world.home, "ingest", str(bundles["A"]), "--store", store)
    assert again.returncode == 0 and again.stdout.startswith("duplicate: ")
