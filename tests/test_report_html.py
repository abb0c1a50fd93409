"""The HTML report: its structure, its wording, its escaping, and that it loads nothing from anywhere."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from tests._report_models import HOSTILE, report_model
from tests._svgtools import requires_plantuml, write_sources
from tracegen.model import FlowModel
from tracegen.render._env import html_env
from tracegen.render.html import inline_svg, render_html
from tracegen.render.puml import diagram_files, render_puml
from tracegen.render.svg import render_svgs

# A PlantUML-shaped SVG: an XML prologue, fixed size, ids that every diagram repeats, url(#…) and href="#…"
# references to them, a drill-down link to a page section, and things a page must never inline.
_FAKE_SVG = """<?plantuml 1.2026.2?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
 height="300px" preserveAspectRatio="none" style="width:400px;height:300px;background:#FFFFFF;" version="1.1"
 viewBox="0 0 400 300" width="400px" zoomAndPan="magnify"><defs><filter id="f1"/><linearGradient id="g1"/></defs>
<!--entity e_lms--><g id="ent0002" filter="url(#f1)" onclick="alert(2)"><rect fill="url(#g1)" width="10" height="10"/>
<a href="#{link}" xlink:href="#{link}" target="_self"><text>{name}</text></a><use xlink:href="#ent0002"/>
<a href="javascript:alert(3)"><text>x</text></a></g><script>alert(4)</script></svg>"""


class _Page(HTMLParser):
    """Collects what the tests look at: ids (in order), tags with attributes, and the text under each id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._stack: list[tuple[str, str | None]] = []
        self.text_by_id: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "id" in values:
            self.ids.append(values["id"])
        if tag not in ("meta", "br", "img", "input", "link", "path", "line", "rect", "use", "image", "filter",
                       "linearGradient", "polygon", "ellipse", "circle", "polyline", "stop"):
            self._stack.append((tag, values.get("id")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "id" in values:
            self.ids.append(values["id"])

    def handle_endtag(self, tag: str) -> None:
        for position in range(len(self._stack) - 1, -1, -1):
            if self._stack[position][0] == tag:
                del self._stack[position:]
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, element_id in self._stack:
            if element_id:
                self.text_by_id.setdefault(element_id, []).append(data)

    def under(self, element_id: str) -> str:
        """The whitespace-normalised text inside the element with that id."""
        return re.sub(r"\s+", " ", " ".join(self.text_by_id.get(element_id, []))).strip()

    def attrs(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


def _fake_svgs(model: FlowModel) -> dict[str, str]:
    """A fake SVG per diagram, each linking down to the section the real diagram would link to."""
    out = {}
    for ref in diagram_files(model):
        link = "container-openedx" if ref.kind == "context" else "scenario-learner-takes-a-course"
        out[f"diagrams/{ref.stem}.svg"] = _FAKE_SVG.format(link=link, name=ref.stem)
    return out


def _page(model: FlowModel | None = None, svgs: dict[str, str] | None = None) -> tuple[str, _Page]:
    model = model or report_model()
    svgs = _fake_svgs(model) if svgs is None else svgs
    text = render_html(model, svgs, puml_sources=render_puml(model))
    page = _Page()
    page.feed(text)
    page.close()
    return text, page


def test_header_names_the_system_and_when_it_was_generated() -> None:
    """The page opens like the reference: "Data Flows — <title>" and "Generated <UTC> · tracegen <version>"."""
    text, page = _page()
    assert "<title>Data Flows — xPRO Open edX</title>" in text
    assert re.search(r"<h1>Data Flows — xPRO Open edX</h1>", text)
    assert '<p class="generated">Generated 2026-11-28 14:51 UTC · tracegen 0.1.0</p>' in text
    assert "Each scenario below replays one interaction as a C4 Dynamic diagram. Amber steps are asynchronous " \
           "(queued / scheduled / event-driven)." in text


def test_legend_says_how_to_read_the_diagrams() -> None:
    """The "How to read these diagrams" legend covers shapes, solid/amber dashed arrows, pan/zoom and drill-down."""
    _, page = _page()
    legend = page.under("how-to-read")
    assert legend.startswith("How to read these diagrams These are C4 model diagrams (C4-PlantUML).")
    for phrase in ("People are rounded boxes; systems and containers are rectangles; databases and queues have "
                   "distinct shapes.",
                   "Solid arrows are synchronous (request/response, caller blocks).",
                   "Amber dashed arrows are asynchronous (queued, scheduled, or event-driven — caller does not "
                   "block).",
                   "Drag to pan, scroll to zoom",
                   "Boxes with a link drill into the next level."):
        assert phrase in legend


def test_every_scenario_has_a_section_with_its_mode_wording_and_steps() -> None:
    """Each scenario is a section ``scenario-<id>`` titled "<title> (<mode wording>)" with one table row a step."""
    model = report_model()
    text, page = _page(model)
    for scenario in model.scenarios:
        anchor = f"scenario-{scenario.id}"
        assert anchor in page.ids
        assert page.under(f"{anchor}-title") == f"{scenario.title} ({scenario.mode_wording})"
        section = text[text.index(f'id="{anchor}"'):]
        section = section[: section.index("</section>")]
        assert section.count("<tr class=") == len(scenario.steps)
    assert page.under("scenario-xpro-enrollment-sync-title").endswith("(cross-service, mixed)")
    assert page.under("scenario-learner-takes-a-course-title").endswith("(synchronous)")


def test_step_table_shows_counts_latency_async_optional_and_exemplar() -> None:
    """A step row says what moves, sync/async, how often, p50/p95, errors, provenance and an exemplar trace id."""
    _, page = _page()
    section = page.under("scenario-xpro-enrollment-sync")
    for header in ("#", "From → To", "What moves", "Sync/async", "Seen", "p50 / p95 ms", "Errors", "How inferred",
                   "Exemplar trace"):
        assert header in section
    assert "LMS → edx.lms.core.default update_course_in_cache [Celery] async" in section
    assert "10× in 5/10 traces optional" in section
    assert "12.6 / 42.5" in section
    assert "0af7651916cd43dd8448eb211c80319c" in section


def test_description_falls_back_to_the_generated_narrative() -> None:
    """A scenario without a description shows the narrative of its steps, marked as generated."""
    text, page = _page()
    scheduled = page.under("scenario-daily-course-run-sync")
    assert "On a schedule (daily at 00:00 UTC), the xPRO beat queues sync_courseruns_data on the xpro celery " \
           "queue, which xPRO runs." in scheduled
    assert '<p class="description generated">On a schedule' in text
    assert "xPRO enrolls learners in the LMS." in page.under("scenario-xpro-enrollment-sync")


def test_etl_table_marks_brittle_rows_with_their_reason_and_inferred_rows() -> None:
    """The ETL table has the reference's columns; a brittle row carries ⚠️ and why; inferred rows say so."""
    text, page = _page()
    etl = page.under("etl")
    assert "Source Transport Cadence Data Source of truth" in etl
    assert "Every external source xPRO pulls from, with transport and cadence." in etl
    rows = re.findall(r"<tr class=\"(brittle)?\">(.*?)</tr>", text[text.index('id="etl"'):], re.DOTALL)
    assert len(rows) == 2
    annotated, brittle = rows
    assert annotated[0] == "" and "⚠️" not in annotated[1] and "inferred" not in annotated[1]
    assert "MITx Pro (grades/course-run API consumer)" in annotated[1] and "daily cron" in annotated[1]
    assert brittle[0] == "brittle" and "⚠️" in brittle[1] and ">inferred<" in brittle[1]
    assert "HTML scrape (response content type text/html): breaks when the page layout changes" in brittle[1]


def test_gaps_section_lists_what_the_picture_cannot_show() -> None:
    """Virtual elements with why, orphan spans, consumers without producer, unresolved links and dropped noise."""
    _, page = _page()
    gaps = page.under("gaps")
    for phrase in ("Virtual elements", "xpro celery named from the producer's messaging.destination",
                   "MySQL client spans only", "3 orphan spans", "Studio: update_search_index",
                   "2 unresolved span links", "health checks (GET /heartbeat) 12 dropped as noise",
                   "sampling at 25 % in MIT Learn", "from 1234 spans in 50 traces"):
        assert phrase in gaps


def test_toc_and_every_internal_link_land_on_an_element_of_the_page() -> None:
    """Every ``href="#x"`` (TOC, ETL row, drill-down links inside diagrams) names an id that exists."""
    _, page = _page()
    ids = set(page.ids)
    hrefs = [a.get("href", "") or a.get("xlink:href", "") for a in page.attrs("a")]
    internal = [h[1:] for h in hrefs if h.startswith("#")]
    assert {"how-to-read", "context", "container-openedx", "container-mitxpro", "scenario-learner-takes-a-course",
            "etl", "gaps"} <= set(internal)
    assert [target for target in internal if target not in ids] == []


def test_inlined_svg_ids_are_unique_and_references_stay_within_their_diagram() -> None:
    """Ids repeated by every diagram get a per-diagram prefix, and so do their url(#…)/href references."""
    text, page = _page()
    duplicates = sorted({i for i in page.ids if page.ids.count(i) > 1})
    assert duplicates == []
    prefixes = sorted({i.split("-", 1)[0] for i in page.ids if re.match(r"d\d+-ent0002$", i)})
    assert len(prefixes) == len(diagram_files(report_model()))  # one prefix per inlined diagram
    for prefix in prefixes:
        assert f'filter="url(#{prefix}-f1)"' in text
        assert f'xlink:href="#{prefix}-ent0002"' in text


def test_no_resource_is_loaded_from_the_network() -> None:
    """No ``src``/``href`` to an external URL, no stylesheet link, no @import or url(http…), and a strict CSP."""
    text, page = _page()
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = attrs.get(name, "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:", "javascript:")), (tag, name, value)
    assert page.attrs("link") == [] and page.attrs("img") == [] and page.attrs("iframe") == []
    assert "@import" not in text and not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert "default-src 'none'" in text
    assert len(page.attrs("script")) == 1 and "src" not in page.attrs("script")[0]


def test_hostile_scenario_title_is_escaped_everywhere() -> None:
    """A title with markup shows as text in the TOC, the heading and the table captions; no tag gets through."""
    model = report_model(hostile=True)
    text, page = _page(model)
    assert "<script>alert(1)</script>" not in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert page.under("scenario-learner-takes-a-course-title") == f"{HOSTILE} (synchronous)"
    assert len(page.attrs("script")) == 1


def test_inline_svg_drops_fixed_size_scripts_and_handlers() -> None:
    """inline_svg keeps the viewBox, drops width/height, sets preserveAspectRatio, removes active content."""
    out = inline_svg(_FAKE_SVG.format(link="context", name="x"), prefix="d7-", labelledby="context-title")
    root = re.match(r"<svg [^>]*>", out)
    assert root is not None
    tag = root.group(0)
    assert 'viewBox="0 0 400 300"' in tag and 'preserveAspectRatio="xMidYMid meet"' in tag
    assert " width=" not in tag and " height=" not in tag and "width:400px" not in tag
    assert 'class="c4"' in tag and 'aria-labelledby="context-title"' in tag and "background:#FFFFFF" in tag
    assert "<?plantuml" not in out and "<script" not in out and "onclick" not in out and "javascript:" not in out
    assert 'href="#context"' in out  # a page anchor, not an id of the diagram: left alone


def test_without_svgs_the_page_shows_plantuml_sources_and_says_so() -> None:
    """With renderer none every diagram is its PlantUML source in a <pre>, escaped, and the page says why."""
    model = report_model(hostile=True)
    text, page = _page(model, svgs={})
    assert "Diagrams were not rendered (renderer: none)" in text
    assert len(page.attrs("pre")) == len(diagram_files(model))
    assert "@startuml" in text and 'class="c4"' not in text
    assert "!include &lt;C4/C4_Dynamic&gt;" in text


def test_page_has_print_and_phone_styles() -> None:
    """Print styles, a viewport meta, and tables that scroll sideways on narrow screens."""
    text, _ = _page()
    assert "@media print" in text and "@media (max-width: 640px)" in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert ".table-wrap { overflow-x: auto;" in text


def test_same_model_gives_the_same_bytes() -> None:
    """Rendering is deterministic: no clock, no randomness, no dict-order surprises."""
    model = report_model()
    svgs = _fake_svgs(model)
    sources = render_puml(model)
    assert render_html(model, svgs, puml_sources=sources) == render_html(model, dict(reversed(svgs.items())),
                                                                          puml_sources=sources)


def test_templates_dir_overrides_the_page(tmp_path: Path) -> None:
    """``--templates DIR`` brands the report: a CSS partial there replaces the built-in one."""
    (tmp_path / "_report.css.j2").write_text("body { color: rebeccapurple; }\n", encoding="utf-8")
    model = report_model()
    text = render_html(model, {}, env=html_env(tmp_path), puml_sources=render_puml(model))
    assert "rebeccapurple" in text and "--async: #d97706" not in text


def test_missing_title_falls_back_to_the_systems() -> None:
    """Without a configured title the header names the systems."""
    model = replace(report_model(), title="")
    _, page = _page(model)
    assert "Data Flows — Open edX + MIT xPRO" in "".join(page.text)


@requires_plantuml
def test_real_plantuml_diagrams_inline_with_unique_ids_and_working_links(tmp_path: Path) -> None:
    """Real PlantUML SVGs inline with unique ids, and every drill-down link they carry lands on a section."""
    model = report_model()
    sources = render_puml(model)
    rendered = render_svgs(write_sources(sources, tmp_path), tmp_path / "diagrams")
    svgs = {svg.stem: svg.read_text(encoding="utf-8") for svg in rendered.values()}
    text, page = _page(model, svgs)
    assert len(page.attrs("svg")) >= len(diagram_files(model))
    assert sorted({i for i in page.ids if page.ids.count(i) > 1}) == []
    links = [a.get("href", "") for a in page.attrs("a") if a.get("target") == "_self"]
    assert "#container-openedx" in links and "#scenario-learner-takes-a-course" in links
    assert [href for href in links if href[1:] not in set(page.ids)] == []
    referenced = re.findall(r"url\(#([^)]+)\)", text)
    assert [ref for ref in referenced if ref not in set(page.ids)] == []
