"""Real PlantUML renders every diagram; the SVGs show amber dashed async arrows, shapes, names and links."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests._models import many_scenarios, xpro_model
from tests._svgtools import CountingRunner, normalise, requires_plantuml, svg_text, write_sources
from tracegen.errors import RenderError
from tracegen.render.puml import render_puml
from tracegen.render.svg import JVM_FLAGS, PLANTUML_FLAGS, render_svgs

_SVG = "{http://www.w3.org/2000/svg}"
AMBER = "#D97706"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The xPRO model's diagrams rendered once: ``{puml path relative to the output: svg}``."""
    root = tmp_path_factory.mktemp("site")
    files = render_puml(xpro_model())
    paths = write_sources(files, root)
    svgs = render_svgs(paths, root / "diagrams")
    return {str(p.relative_to(root)): svg for p, svg in svgs.items()}


def _entities(svg: Path) -> dict[str, ET.Element]:
    """alias → the entity's <g> (PlantUML qualifies aliases inside boundaries as ``boundary.alias``)."""
    root = ET.parse(svg).getroot()
    return {g.get("data-qualified-name", "").rsplit(".", 1)[-1]: g
            for g in root.iter(f"{_SVG}g") if g.get("class") == "entity"}


def _link_styles(svg: Path) -> dict[tuple[str, str], str]:
    """(from alias, to alias) → the style of the arrow's line."""
    root = ET.parse(svg).getroot()
    names = {g.get("id"): g.get("data-qualified-name", "").rsplit(".", 1)[-1] for g in root.iter(f"{_SVG}g")}
    styles = {}
    for g in root.iter(f"{_SVG}g"):
        if g.get("class") == "link":
            path = g.find(f"{_SVG}path")
            styles[(names[g.get("data-entity-1")], names[g.get("data-entity-2")])] = path.get("style", "")
    return styles


@requires_plantuml
def test_every_diagram_renders(rendered: dict[str, Path]) -> None:
    """Context, both container diagrams and both scenarios become non-empty SVGs without error images."""
    assert sorted(rendered) == sorted(render_puml(xpro_model()))
    for svg in rendered.values():
        text = svg.read_text(encoding="utf-8")
        assert text.startswith("<?plantuml 1.2026.2?><svg") and "An error has occured" not in text


@requires_plantuml
def test_async_steps_are_amber_and_dashed(rendered: dict[str, Path]) -> None:
    """Async arrows carry stroke-dasharray and the amber colour; sync arrows carry neither."""
    styles = _link_styles(rendered["diagrams/xpro-enrollment-sync.puml"])
    queue = "e_celery_edx_lms_core_default"
    for ends in (("e_lms", queue), (queue, "e_edx_cms")):
        assert "stroke-dasharray" in styles[ends] and AMBER in styles[ends].upper()
    for ends in (("e_mitxpro_web", "e_lms"), ("e_lms", "e_mysql"), ("e_edx_cms", "e_s3_amazonaws_com")):
        assert "stroke-dasharray" not in styles[ends] and AMBER not in styles[ends].upper()
    assert "asynchronous" in svg_text(rendered["diagrams/xpro-enrollment-sync.puml"])


@requires_plantuml
def test_databases_and_queues_have_their_shapes(rendered: dict[str, Path]) -> None:
    """MySQL is a cylinder and the Celery queue a pipe (curved paths); containers are rectangles."""
    entities = _entities(rendered["diagrams/xpro-enrollment-sync.puml"])
    for alias in ("e_mysql", "e_celery_edx_lms_core_default"):
        shape = entities[alias][0]
        assert shape.tag == f"{_SVG}path" and " C" in shape.get("d", "")
    assert entities["e_lms"][0].tag == f"{_SVG}rect"


@requires_plantuml
@pytest.mark.parametrize("diagram", ["diagrams/learner-takes-a-course.puml", "diagrams/xpro-enrollment-sync.puml",
                                     "diagrams/container-openedx.puml", "diagrams/context.puml"])
def test_each_participant_is_named(rendered: dict[str, Path], diagram: str) -> None:
    """Every box drawn carries its element's display name."""
    model = xpro_model()
    shown = normalise(svg_text(rendered[diagram]))
    entities = _entities(rendered[diagram])
    names = {e.id: e.name for e in model.elements} | {s.id: s.name for s in model.systems}
    aliases = {("s_" if i in {s.id for s in model.systems} else "e_") + i.replace("-", "_").replace(".", "_"): n
               for i, n in names.items()}
    assert entities
    for alias in entities:
        assert aliases[alias] in shown


@requires_plantuml
def test_links_survive_into_the_svg(rendered: dict[str, Path]) -> None:
    """Drill-down links are in the SVG as in-page anchors opened in the same frame."""
    context = rendered["diagrams/context.puml"].read_text(encoding="utf-8")
    assert 'href="#container-openedx"' in context and 'target="_self"' in context
    container = rendered["diagrams/container-openedx.puml"].read_text(encoding="utf-8")
    assert 'href="#scenario-learner-takes-a-course"' in container


@requires_plantuml
def test_twenty_diagrams_one_jvm(tmp_path: Path) -> None:
    """Twenty diagrams render in a single Java process with the documented flags."""
    model = many_scenarios(xpro_model(), 20)
    paths = write_sources(render_puml(model), tmp_path)
    assert len(paths) == 20
    runner = CountingRunner()
    started = time.perf_counter()
    svgs = render_svgs(paths, tmp_path / "svg", runner=runner)
    elapsed = time.perf_counter() - started
    assert len(runner.commands) == 1
    command = runner.commands[0]
    assert command[1:1 + len(JVM_FLAGS)] == list(JVM_FLAGS) and all(flag in command for flag in PLANTUML_FLAGS)
    assert sorted(svg.name for svg in svgs.values()) == sorted(f"{p.stem}.svg" for p in paths)
    print(f"20 diagrams in one JVM: {elapsed:.2f} s")
    assert elapsed < 60, elapsed  # the budget (≤ 0.3 s a diagram) is a bench/ ratio, not a flaky unit-test bound


@requires_plantuml
def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A broken source fails with PlantUML's 'Error line N in file' message."""
    good, bad = tmp_path / "good.puml", tmp_path / "bad.puml"
    good.write_text("@startuml\nBob -> Alice\n@enduml\n", encoding="utf-8")
    bad.write_text("@startuml\n!include <C4/C4_Dynamic>\nRel(a, b, \"x\n@enduml\n", encoding="utf-8")
    with pytest.raises(RenderError, match=r"Error line \d+ in file: .*bad\.puml"):
        render_svgs([good, bad], tmp_path / "out")


@requires_plantuml
def test_plantuml_crash_is_an_error(tmp_path: Path) -> None:
    """An internal PlantUML crash (exit 0, error image) is reported, not passed off as a diagram."""
    source = tmp_path / "crash.puml"
    source.write_text('@startuml\n!include <C4/C4_Context>\nSystem(a, "x &#92;n")\n@enduml\n', encoding="utf-8")
    with pytest.raises(RenderError, match="crashed"):
        render_svgs([source], tmp_path / "out")
