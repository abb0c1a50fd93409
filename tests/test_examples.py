"""The README's main command on the bundled xPRO Open edX examples: the reference page, produced from traces.

Expectations come from ``../shared/reference/data-flows-page.txt`` (titles, mode wording, ETL columns) and from
``examples/README.md`` (participants); nothing here is a golden copy of tracegen's own output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests._svgtools import requires_plantuml
from tests.conftest import CHROMIUM
from tracegen.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGE_SCENARIOS = {  # title on the reference page → its mode wording
    "Learner takes a course": "synchronous",
    "Course authoring & publish": "synchronous + async",
    "xPRO SSO & user provisioning": "synchronous",
    "xPRO enrollment, grade & run sync": "cross-service, mixed",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tracegen convert examples/traces --out site` with real PlantUML, as the README runs it."""
    out = tmp_path_factory.mktemp("examples") / "site"
    result = CliRunner().invoke(cli, ["convert", str(ROOT / "examples" / "traces"), "--out", str(out)],
                                env={"SOURCE_DATE_EPOCH": "1795000000"})
    assert result.exit_code == 0, result.output
    return out


def _model(site: Path) -> dict[str, Any]:
    return json.loads((site / "model.json").read_text(encoding="utf-8"))


def _scenario(model: dict[str, Any], title: str) -> dict[str, Any]:
    return next(s for s in model["scenarios"] if s["title"] == title)


def _kinds(model: dict[str, Any]) -> dict[str, str]:
    return {e["id"]: e["kind"] for e in model["elements"]}


def _edge(model: dict[str, Any], scenario: dict[str, Any], source: str, target_kind: str,
          is_async: bool) -> bool:
    kinds = _kinds(model)
    return any(s["from"] == source and kinds.get(s["to"]) == target_kind and s["async"] == is_async
               for s in scenario["steps"])


@requires_plantuml
def test_the_four_reference_scenarios_carry_the_pages_titles_and_wording(site: Path) -> None:
    """Each scenario of the reference page exists with its title and mode wording."""
    model = _model(site)
    wording = {s["title"]: s["mode_wording"] for s in model["scenarios"]}
    assert {title: wording.get(title) for title in PAGE_SCENARIOS} == PAGE_SCENARIOS


@requires_plantuml
def test_participants_match_what_the_examples_readme_lists(site: Path) -> None:
    """LMS reads MySQL and MongoDB synchronously; Studio hands search indexing to its workers asynchronously."""
    model = _model(site)
    learner = _scenario(model, "Learner takes a course")
    lms = "xpro-production-edxapp-lms"
    assert {s["to"] for s in learner["steps"] if s["from"] == lms} >= {
        "db-mysql-edxapp", "db-mongodb-edxapp", "cs-comments-service", "edx-notes-api"}
    authoring = _scenario(model, "Course authoring & publish")
    assert any(s["label"] == "update_search_index" and s["async"] and s["from"] == "queue-edx-cms-core-default"
               and s["to"] == "xpro-production-edxapp-cms-celery" for s in authoring["steps"])
    assert _edge(model, authoring, "xpro-production-edxapp-cms-celery", "database", False)
    enrollment = _scenario(model, "xPRO enrollment, grade & run sync")
    assert any(s["from"] == "mitxpro" and s["to"] == lms and not s["async"] for s in enrollment["steps"])
    assert "every 30 min" in enrollment["cadence"] and "daily at 00:00 UTC" in enrollment["cadence"]


@requires_plantuml
def test_etl_table_lists_each_pull_with_cadence_and_flags_brittle_linkages(site: Path) -> None:
    """Every pull has a cadence; the api_key-in-URL sync and the HTML scrape are brittle, with their reasons."""
    sources = _model(site)["sources"]
    assert sources and all(row["cadence"] for row in sources)
    brittle = {row["task"]: row["why"] for row in sources if row["brittle"]}
    assert "credentials in the URL" in brittle["courses.tasks.task_sync_external_course_runs"]
    assert "scrape" in brittle["news_events.tasks.get_sloan_exec_webinars"]
    cadences = {row["task"]: row["cadence"] for row in sources}
    assert cadences["courseware.tasks.retry_failed_edx_enrollments"] == "every 30 min"
    assert cadences["courses.tasks.generate_course_certificates"] == "daily at 00:00 UTC"


@requires_plantuml
def test_report_and_diagrams_are_written_and_rendered(site: Path) -> None:
    """index.html has every scenario, the context and container diagrams and the ETL table; SVGs are real."""
    html = (site / "index.html").read_text(encoding="utf-8")
    for title in PAGE_SCENARIOS:
        assert title.replace("&", "&amp;") in html
    assert "Ingestion sources (ETL)" in html and "System Context" in html
    model = _model(site)
    for stem in ["context", *(f"container-{s['id']}" for s in model["systems"]),
                 *(s["id"] for s in model["scenarios"])]:
        svg = site / "diagrams" / f"{stem}.svg"
        assert ET.parse(svg).getroot().tag.endswith("svg"), stem
    authoring = (site / "diagrams" / "course-authoring-and-publish.svg").read_text(encoding="utf-8")
    assert "stroke-dasharray" in authoring and "#D97706" in authoring.upper()


@requires_plantuml
@pytest.mark.browser
@pytest.mark.skipif(not os.environ.get("CI") and not shutil.which(CHROMIUM),
                    reason="needs Debian's chromium: apt-get install chromium")
def test_examples_report_opens_in_a_real_browser(site: Path, browser_page, tmp_path: Path) -> None:
    """site/index.html opens from disk with no console error, no network, and every diagram visible."""
    page, errors, requests = browser_page
    page.goto((site / "index.html").as_uri())
    diagrams = page.locator("svg[viewBox]")
    assert diagrams.count() >= 7
    for i in range(diagrams.count()):
        box = diagrams.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    page.screenshot(path=str(site / "report.png"), full_page=False)
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests


def test_realistic_set_converts_and_shows_its_gaps(tmp_path: Path) -> None:
    """The realistic set (edxapp instruments only Django, Celery and MySQL) converts; its gaps are diagnosed."""
    out = tmp_path / "site"
    result = CliRunner().invoke(cli, ["convert", str(ROOT / "examples" / "realistic" / "traces"), "--out",
                                      str(out), "--renderer", "none"])
    assert result.exit_code == 0, result.output
    model = _model(out)
    virtual = {v["id"]: v["why"] for v in model["diagnostics"]["virtual_elements"]}
    assert virtual and all(why for why in virtual.values())
    kinds = _kinds(model)
    assert "mongodb" not in " ".join(kinds)  # no PyMongo instrumentation in edxapp: MongoDB is invisible here
    # LMS → xPRO calls start new traces (no propagation): xPRO's own entries are called by a program, not a span
    entries = [entry for s in model["scenarios"] for entry in s["entries"]]
    assert any(entry.startswith("mitxpro GET /api/users/me") for entry in entries)


def test_example_generator_reproduces_the_committed_traces() -> None:
    """examples/generate_traces.py --check regenerates byte-identical files (fixed ids and clock)."""
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "generate_traces.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
