"""The Markdown report (``DIR/README.md``): the same facts as the HTML page, as linked SVGs and GFM tables."""

from __future__ import annotations

import re

from tests._report_models import HOSTILE, report_model
from tracegen.render.markdown import md_text, render_markdown
from tracegen.render.puml import diagram_files


def test_header_generated_line_and_legend() -> None:
    """The Markdown opens like the reference page: title, generated line, intro and the legend."""
    text = render_markdown(report_model(), svg_links=True)
    assert text.startswith("# Data Flows — xPRO Open edX\n\nGenerated 2026-11-28 14:51 UTC · tracegen 0.1.0\n")
    assert "## How to read these diagrams" in text
    assert "- Amber dashed arrows are asynchronous (queued, scheduled, or event-driven — caller does not block)." \
        in text


def test_every_diagram_is_a_linked_svg_file() -> None:
    """Each diagram appears as ``[![title](diagrams/<name>.svg)](diagrams/<name>.svg)``."""
    model = report_model()
    text = render_markdown(model, svg_links=True)
    for ref in diagram_files(model):
        assert re.search(rf"\[!\[[^\]]*\]\(diagrams/{re.escape(ref.stem)}\.svg\)\]\(diagrams/{re.escape(ref.stem)}"
                         rf"\.svg\)", text), ref.stem
    assert ".puml" not in text


def test_without_svgs_diagrams_link_their_plantuml_sources() -> None:
    """With renderer none the Markdown says so and links each ``.puml``."""
    model = report_model()
    text = render_markdown(model, svg_links=False)
    assert "Diagrams were not rendered (renderer: none)" in text
    assert ".svg" not in text
    for ref in diagram_files(model):
        assert f"[diagrams/{ref.stem}.puml](diagrams/{ref.stem}.puml)" in text


def test_scenarios_have_anchors_mode_wording_and_gfm_step_tables() -> None:
    """Each scenario has an explicit anchor, "<title> (<mode>)" heading and a step table with one row a step."""
    model = report_model()
    text = render_markdown(model, svg_links=True)
    for scenario in model.scenarios:
        assert f'<a id="scenario-{scenario.id}"></a>' in text
    assert "### xPRO enrollment, grade & run sync (cross-service, mixed)" in text
    header = ("| # | From → To | What moves | Sync/async | Seen | p50 / p95 ms | Errors | How inferred "
              "| Exemplar trace |")
    assert text.count(header) == len(model.scenarios)
    assert "| 3 | LMS → edx.lms.core.default | update\\_course\\_in\\_cache \\[Celery\\] | **async** |" in text
    assert "10× in 5/10 traces, *optional*" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "→" in line and "From" not in line]
    assert len(rows) == sum(len(s.steps) for s in model.scenarios)
    assert all(row.count(" | ") == 8 for row in rows)  # nine cells: no value split a row


def test_etl_table_and_gaps() -> None:
    """The ETL table flags the brittle row with ⚠️ and its reason; the gaps list virtual elements and counts."""
    text = render_markdown(report_model(), svg_links=True)
    assert "| Source | Transport | Cadence | Data | Source of truth |" in text
    brittle = next(line for line in text.splitlines() if line.startswith("| ⚠️"))
    assert "partner catalog *(inferred)*" in brittle and "⚠️ Brittle: HTML scrape" in brittle
    assert "- **xpro celery** (virtual): named from the producer's messaging.destination" in text
    assert "- **3 orphan spans**:" in text


def test_hostile_text_cannot_become_markup_or_split_a_table() -> None:
    """Markup, pipes and newlines from traces stay literal text in Markdown."""
    text = render_markdown(report_model(hostile=True), svg_links=True)
    assert "<script>" not in text
    assert "\\<script\\>alert(1)\\</script\\>" in text
    assert md_text("a|b\nc") == "a\\|b c"
    assert md_text("# heading") == "\\# heading"
    assert md_text("[x](javascript:y)") == "\\[x\\](javascript:y)"
    assert md_text("&lt;b&gt; & done") == "&amp;lt;b&amp;gt; & done"
    assert md_text(HOSTILE).count("\\<") == 2


def test_same_model_gives_the_same_bytes() -> None:
    """The Markdown is deterministic."""
    assert render_markdown(report_model(), svg_links=True) == render_markdown(report_model(), svg_links=True)
