"""The HTML report without a browser: every section, severity order, the emulated label, escaping
of hostile text, a page that fetches nothing, and empty sections that say why."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from cetbench.analysis.render_html import render_html
from cetbench.analysis.report import EMULATED_LABEL, Report
from tests.support.reports import EMULATED, HOSTILE, HOSTILE_VARIANT, REGRESSED, full_report


class Page(HTMLParser):
    """What the tests look for: elements by tag with their attributes, and the visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.elements if t == tag]


@pytest.fixture(scope="module")
def hostile_page() -> str:
    return render_html(full_report(hostile=True))


def test_hostile_names_and_reasons_are_escaped(hostile_page: str) -> None:
    assert HOSTILE not in hostile_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_page
    page = Page(hostile_page)
    assert len(page.all("script")) == 1  # ours; none came from the data
    text = " ".join(page.text)
    assert HOSTILE_VARIANT in text  # shown, as text, in the table, the title and the reason
    assert f"KVM does not offer IBT {HOSTILE}" in text
    rows = [r for r in page.all("tr") if r.get("data-variant") == HOSTILE_VARIANT]
    assert len(rows) == 1 and "verdict-regression" in rows[0]["class"]


def test_rows_are_ordered_by_severity_with_verdict_classes(hostile_page: str) -> None:
    rows = [r for r in Page(hostile_page).all("tr") if "data-verdict" in r]
    verdicts = [r["data-verdict"] for r in rows]
    assert verdicts == ["regression", "regression", "inconclusive", "improvement", "no change"]
    assert all(f"verdict-{v.replace(' ', '-')}" in r["class"] for r, v in zip(rows, verdicts, strict=True))
    assert {rows[0]["data-variant"], rows[1]["data-variant"]} == {HOSTILE_VARIANT, REGRESSED}


def test_every_section_plots_inline_and_emulated_figures_marked(hostile_page: str) -> None:
    page = Page(hostile_page)
    assert [s["id"] for s in page.all("section")] == ["comparison", "overhead", "trend", "not-measured"]
    assert len(page.all("svg")) == 2  # overhead bars and trend lines, drawn by render_plot
    text = " ".join(page.text)
    emulated_row = next(r for r in page.all("tr") if r.get("data-variant") == EMULATED)
    assert "emulated-row" in emulated_row["class"]
    assert f"({EMULATED_LABEL})" in text
    assert EMULATED_LABEL in hostile_page.split("<svg", 1)[1]  # the plots carry it too
    assert "change: +" in text and "slower" in text  # the trend's change point
    assert "unsupported" in text and "workload exited with status 139" in text


def test_the_page_fetches_nothing_and_runs_only_its_own_script(hostile_page: str) -> None:
    # no external reference of any kind: scripts, styles, fonts, images, links out
    # (an SVG's xmlns attributes name its vocabulary; nothing is fetched from them)
    markup = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", hostile_page)
    assert not re.search(r"(?i)\bsrc\s*=|@import|url\((?!#)|\b(https?|ftp)://|//[a-z0-9.-]+\.[a-z]{2,}/", markup)
    ids = re.findall(r'\sid="([^"]*)"', hostile_page)
    assert len(ids) == len(set(ids))  # the two plots' ids do not collide
    for ref in re.findall(r'url\(#([^)]*)\)|href="#([^"]*)"', hostile_page):
        assert "".join(ref) in ids  # every in-page reference finds its target
    page = Page(hostile_page)
    (meta,) = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    policy = meta["content"]
    assert "default-src 'none'" in policy
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


def test_empty_sections_say_why() -> None:
    page = Page(render_html(Report(title="nothing")))
    text = " ".join(page.text)
    assert "no comparison in this report" in text
    assert "no CET overhead in this report" in text
    assert "no trend in this report" in text
    assert page.all("svg") == [] and page.all("table") == []
