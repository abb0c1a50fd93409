"""The HTML report in a real browser: Debian's headless Chromium driven by Playwright, the page opened from disk.

Why a browser: "opens from disk with no network", "pan and zoom work" and "drill-down links land" are promises
about what a person sees, which only a real engine can check. The browser is the machine's ``/usr/bin/chromium``
(never a Playwright download), started with a new empty profile and without its background services, so every
request it makes is one the page asked for. The diagrams are real PlantUML SVGs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests._report_models import report_model
from tests.conftest import CHROMIUM
from tests._svgtools import requires_plantuml, write_sources
from tracegen.render.html import render_html
from tracegen.render.puml import diagram_files, render_puml
from tracegen.render.svg import render_svgs

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.environ.get("CI") and not shutil.which(CHROMIUM),
                       reason="needs Debian's chromium: apt-get install chromium"),
]

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``index.html`` of the report model with every diagram rendered by real PlantUML."""
    root = tmp_path_factory.mktemp("site")
    model = report_model()
    sources = render_puml(model, link_style="anchor")
    rendered = render_svgs(write_sources(sources, root), root / "diagrams")
    assert len(rendered) == len(diagram_files(model))
    svgs = {svg.stem: svg.read_text(encoding="utf-8") for svg in rendered.values()}
    index = root / "index.html"
    index.write_text(render_html(model, svgs, puml_sources=sources), encoding="utf-8")
    return index


def _view_box(page: object, selector: str) -> list[float]:
    return [float(n) for n in page.get_attribute(selector, "viewBox").split()]  # type: ignore[attr-defined]


@requires_plantuml
def test_report_opens_from_disk_without_errors_or_network(site: Path, browser_page, tmp_path: Path) -> None:
    """The page loads with no console error and no request but itself, and every diagram is visible."""
    page, errors, requests = browser_page
    url = site.as_uri()
    page.goto(url)
    page.wait_for_load_state("load")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'report.png'}")
    assert errors == []
    assert [r for r in requests if r != url and not r.startswith("data:")] == []
    diagrams = page.locator("svg.c4")
    assert diagrams.count() == len(diagram_files(report_model()))
    for n in range(diagrams.count()):
        box = diagrams.nth(n).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, n
        assert diagrams.nth(n).is_visible()
    assert page.title() == "Data Flows — xPRO Open edX"


@requires_plantuml
def test_wheel_zooms_and_drag_pans_the_diagram(site: Path, browser_page) -> None:
    """Scrolling the wheel over a diagram shrinks its viewBox around the pointer; dragging moves it."""
    page, errors, _ = browser_page
    page.goto(site.as_uri())
    selector = "#scenario-xpro-enrollment-sync svg.c4"
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before_text = page.get_attribute(selector, "viewBox")
    before = _view_box(page, selector)
    page.mouse.move(*centre)
    page.mouse.wheel(0, -400)
    page.wait_for_function("([sel, home]) => document.querySelector(sel).getAttribute('viewBox') !== home",
                           arg=[selector, before_text])
    zoomed = _view_box(page, selector)
    assert zoomed[2] < before[2] and zoomed[3] < before[3]  # zoomed in: a smaller piece of the diagram
    assert abs(zoomed[2] / zoomed[3] - before[2] / before[3]) < 0.01  # aspect ratio kept
    page.mouse.move(*centre)
    page.mouse.down()
    page.mouse.move(centre[0] + 120, centre[1] + 60, steps=6)
    page.mouse.up()
    panned = _view_box(page, selector)
    assert panned[0] < zoomed[0] and panned[1] < zoomed[1]  # content follows the pointer right and down
    assert panned[2:] == zoomed[2:]
    page.locator("#scenario-xpro-enrollment-sync button[data-zoom=reset]").click()
    assert _view_box(page, selector) == before
    page.locator("#scenario-xpro-enrollment-sync button[data-zoom=in]").click()
    assert _view_box(page, selector)[2] < before[2]
    assert errors == []


@requires_plantuml
def test_drill_down_link_lands_on_its_section(site: Path, browser_page) -> None:
    """Clicking a system on the context diagram scrolls to that system's container section."""
    page, errors, requests = browser_page
    page.goto(site.as_uri())
    link = page.locator('#context svg.c4 a[href="#container-openedx"]').first
    link.scroll_into_view_if_needed()
    link.click()
    page.wait_for_function("location.hash === '#container-openedx'")
    top = page.evaluate("document.getElementById('container-openedx').getBoundingClientRect().top")
    assert 0 <= top < 100
    assert page.locator("#container-openedx svg.c4").is_visible()
    # And from a container diagram down to a scenario.
    down = page.locator('#container-openedx svg.c4 a[href^="#scenario-"]').first
    target = down.get_attribute("href")
    down.scroll_into_view_if_needed()
    down.click()
    page.wait_for_function(f"location.hash === '{target}'")
    top = page.evaluate(f"document.getElementById('{target[1:]}').getBoundingClientRect().top")
    assert 0 <= top < 100
    assert errors == []
    assert [r for r in requests if r != site.as_uri() and not r.startswith("data:")] == []


@requires_plantuml
def test_phone_layout_does_not_overflow(site: Path, browser_page, tmp_path: Path) -> None:
    """On a phone-sized viewport the page does not scroll sideways: wide tables scroll inside their box."""
    page, errors, _ = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site.as_uri())
    page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    wrap = page.locator("#scenario-xpro-enrollment-sync .table-wrap")
    assert page.evaluate("(el) => el.scrollWidth > el.clientWidth", wrap.element_handle())
    assert page.locator("svg.c4").first.bounding_box()["width"] <= 390
    assert errors == []
