"""JUnit XML for CI systems: one testcase per compared variant; a regression is a <failure>.

Inconclusive variants are <skipped> with their reason; overhead rows and trends are reported as
passing testcases whose output carries the figures.  Text goes through ElementTree, which
escapes markup; characters XML 1.0 cannot carry at all are replaced first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from cetbench.analysis.compare import CompareResult, Verdict
from cetbench.analysis.render_common import (
    COMPARE_HEADERS,
    compare_lines,
    compare_summary,
    mechanism_lines,
    overhead_lines,
    trend_lines,
    trend_summary,
)
from cetbench.analysis.report import Report

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean(text: str) -> str:
    return _XML_INVALID.sub("?", text)


def render_junit(report: Report) -> str:
    root = ET.Element("testsuites", name=clean(report.title))
    if report.comparison is not None:
        _comparison_suite(root, report.comparison)
    if report.overhead is not None:
        suite = _suite(root, "cetbench.overhead")
        for o in overhead_lines(report.overhead):
            details = [f"kernel {o.kernel}", *(f"{h}: {c}" for h, c in zip(
                ("CET off", "CET on", "difference", "ratio", "n on/off"), o.cells, strict=True))]
            details += ([o.cycles] if o.cycles else []) + list(o.events)
            _case(suite, "cetbench.overhead", f"{o.kernel}: {o.title}", details, o.emulated)
    if report.mechanisms is not None:
        suite = _suite(root, "cetbench.mechanisms")
        for m in mechanism_lines(report.mechanisms):
            _case(suite, "cetbench.mechanisms", f"{m.kernel}: {m.mechanism}", [m.what, *m.cells], m.emulated)
    if report.trend is not None:
        suite = _suite(root, "cetbench.trend")
        _properties(suite, trend_summary(report.trend))
        for series in report.trend.variants:
            details = [f"{t.build}: {t.median} {t.noise}" + (f"  {t.change}" if t.change else "")
                       for t in trend_lines(series)]
            case = _case(suite, "cetbench.trend", series.variant, details, series.emulated)
            if series.note:
                ET.SubElement(case, "skipped", message=clean(series.note))
    _count(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _comparison_suite(root: ET.Element, result: CompareResult) -> None:
    suite = _suite(root, "cetbench.compare")
    _properties(suite, compare_summary(result))
    by_name = {v.variant: v for v in result.variants}
    for line in compare_lines(result):
        v = by_name[line.variant]
        figures = [f"{h}: {c}" for h, c in zip(COMPARE_HEADERS, line.cells, strict=True)]
        tested = f", tested on {v.tested_on}" if v.tested_on else ""
        figures += [f"n: {v.n_baseline} baseline, {v.n_candidate} candidate processes in "
                    f"{v.runs_baseline} and {v.runs_candidate} runs{tested}"]
        case = _case(suite, f"cetbench.{v.workload}", v.variant, figures, v.emulated)
        message = "; ".join(figures[:-1] + ([v.emulated] if v.emulated else []))
        if v.verdict is Verdict.REGRESSION:
            failure = ET.SubElement(case, "failure", type="regression",
                                    message=clean(f"{v.variant} regressed: {message}"))
            failure.text = clean("\n".join(figures))
        elif v.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=clean(f"inconclusive: {v.reason}"))


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name)


def _properties(suite: ET.Element, lines: list[str]) -> None:
    props = ET.SubElement(suite, "properties")
    for i, line in enumerate(lines):
        ET.SubElement(props, "property", name=f"info.{i}", value=clean(line))


def _case(suite: ET.Element, classname: str, name: str, details: list[str], emulated: str | None) -> ET.Element:
    case = ET.SubElement(suite, "testcase", classname=clean(classname), name=clean(name), time="0")
    out = ET.SubElement(case, "system-out")
    out.text = clean("\n".join(details + ([emulated] if emulated else [])))
    return case


def _count(root: ET.Element) -> None:
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(1 for c in cases if c.find("failure") is not None),
            "skipped": sum(1 for c in cases if c.find("skipped") is not None),
        }
        for key, n in counts.items():
            suite.set(key, str(n))
            totals[key] += n
        suite.set("errors", "0")
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("errors", "0")
