"""The HTML report in a real browser: headless Chromium renders the page and we check what it
shows (a screenshot that is not blank and shows the verdict colours) and what it holds once its
script has run (the verdict rows, the inline plots, no script from the data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cetbench.analysis.render_html import render_html
from tests.support import browser
from tests.support.reports import HOSTILE, HOSTILE_VARIANT, REGRESSED, full_report
from tests.test_render_html import Page

WIDTH, HEIGHT = 1280, 2400


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(full_report(hostile=True)))
    return path


def _has_colour(pixels: np.ndarray, hex_colour: str) -> bool:
    want = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    return bool((np.abs(pixels[..., :3] - want).max(axis=-1) < 2 / 255).any())


def test_screenshot_shows_the_page_with_its_verdict_colours(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    browser.run(page, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}")
    assert shot.stat().st_size > 0
    pixels = imread(shot)  # PNG decoded by matplotlib (through Pillow)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = (pixels[..., :3] * 255).round().astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert len(colours) > 50  # text, tables, plots: not a single colour, not a blank page
    # the verdict colours of the page's stylesheet are on screen: a regression row and badge,
    # an inconclusive row, an improvement row
    for colour in ("#ffd7d5", "#cf222e", "#fff1c2", "#d3f5dc"):
        assert _has_colour(pixels, colour), colour


def test_dom_has_the_verdict_rows_and_the_plots_and_no_script_from_the_data(page: Path) -> None:
    dom = Page(browser.run(page, "--dump-dom").stdout)
    (html,) = dom.all("html")
    assert html.get("data-sortable") == "on"  # the page's own script ran: the policy allows it
    rows = [r for r in dom.all("tr") if "data-verdict" in r]
    assert [r["data-verdict"] for r in rows] == ["regression", "regression", "inconclusive", "improvement",
                                                 "no change"]
    regressed = {r["data-variant"] for r in rows if "verdict-regression" in r["class"].split()}
    assert regressed == {HOSTILE_VARIANT, REGRESSED}
    assert len(dom.all("svg")) == 2 and len(dom.all("figure")) == 2
    assert len(dom.all("script")) == 1  # the hostile name stayed text
    assert HOSTILE_VARIANT in " ".join(dom.text) and HOSTILE in " ".join(dom.text)
