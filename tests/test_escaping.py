"""Text from traces reaches PlantUML only through puml_text, and real PlantUML shows it back literally."""

from __future__ import annotations

import random
import string
from dataclasses import replace
from pathlib import Path

from hypothesis import given, strategies as st

from tests._models import step, xpro_model
from tests._svgtools import normalise, requires_plantuml, svg_text, write_sources
from tracegen.model import Element, FlowModel, Scenario
from tracegen.render._filters import puml_text
from tracegen.render.puml import render_puml
from tracegen.render.svg import render_svgs

HOSTILE = (
    "!include /etc/passwd",
    "next line\n!include /etc/hostname",
    "%date()",
    "%chr(65) %newline() %getenv(HOME)",
    "$ARROW_COLOR ${X} $x=1",
    "<b>x</b> <color:red>r</color> <U+0041> <u+0042> <#red> <size:20> <&star> <:smile:> <img:x.png>",
    "**b** //i// --s-- __u__ ~~w~~ \"\"mono\"\"",
    "[[x]] [[http://evil.example/ click]]",
    "&#65; &#x41; &amp; &lt;",
    "say \"hi\" and 'bye'",
    "back\\slash C:\\temp\\new \\t \\n end\\",
    "@enduml @startuml {{ nested }} ~ ^^s^^ ,,x,,",
)


def test_puml_text_maps_each_special_character() -> None:
    """Each character of rendering.md's mapping is replaced as documented."""
    assert puml_text('"') == "~%chr(34)"
    assert puml_text("%") == "%chr(37)"
    assert puml_text("$") == "%chr(36)"
    assert puml_text("\\") == "<U+005C>"
    assert puml_text("\n") == "\\n"
    assert puml_text("~") == "&#126;"
    assert puml_text("&#") == "&\u200b#"
    assert puml_text("\\t") == "<U+005C>\u200bt"
    assert puml_text("<U+0041>") == "~<\u200bU+0041>"
    assert puml_text("*/_-<[") == "~*~/~_~-~<~["
    assert puml_text("= ' > { } ^ |") == "= ' > { } ^ |"
    assert puml_text("a\r\nb\rc\td") == "a\\nb\\nc d"
    assert puml_text(None) == ""


@given(st.text())
def test_puml_text_is_one_line_inside_one_argument(value: str) -> None:
    """Whatever the input, the result has no newline, no raw quote, no variable and only %chr() calls."""
    out = puml_text(value)
    assert "\n" not in out and "\r" not in out
    assert '"' not in out
    assert "$" not in out
    assert out.count("%") == out.count("%chr(")


def _hostile_model() -> FlowModel:
    base = xpro_model()
    steps = tuple(step(str(i + 1), "learner", "lms", text, "HTTPS") for i, text in enumerate(HOSTILE))
    steps += (step(str(len(HOSTILE) + 1), "lms", "mysql", "q", "tech $X %date() **b**"),)
    scenario = Scenario("hostile", "Title !include /etc/passwd %date() **b** \"q\"", "sync", "synchronous",
                        1, steps)
    elements = tuple(
        replace(e, name="LMS <b>x</b> $X", description="desc %date() [[x]] ~~w~~") if e.id == "lms" else e
        for e in base.elements
    )
    systems = tuple(replace(s, name="Open edX **b** \"q\"") if s.id == "openedx" else s for s in base.systems)
    return replace(base, elements=elements, systems=systems, scenarios=(scenario,))


def test_hostile_text_never_starts_a_line() -> None:
    """No rendered source line starts with a preprocessor directive other than the C4 include."""
    for text in render_puml(_hostile_model()).values():
        directives = [line for line in text.splitlines() if line.lstrip().startswith(("!", "%", "$", "@"))]
        assert all(line.startswith(("!include <C4/", "@startuml", "@enduml")) for line in directives), directives


@requires_plantuml
def test_hostile_text_round_trips_through_real_plantuml(tmp_path: Path) -> None:
    """Real PlantUML renders every hostile label, name, title and technology literally and includes nothing."""
    paths = write_sources(render_puml(_hostile_model()), tmp_path)
    svgs = render_svgs(paths, tmp_path / "svg")
    shown = normalise(svg_text(svgs[tmp_path / "diagrams" / "hostile.puml"]))
    for text in HOSTILE + ("tech $X %date() **b**", "LMS <b>x</b> $X", "desc %date() [[x]] ~~w~~",
                           "Title !include /etc/passwd %date() **b** \"q\"", "Open edX **b** \"q\""):
        assert normalise(text) in shown, text
    everything = " ".join(svg.read_text(encoding="utf-8") for svg in svgs.values())
    assert "root:" not in everything
    assert 'href="http://evil.example' not in everything


@requires_plantuml
def test_backslash_before_any_character_round_trips(tmp_path: Path) -> None:
    """A backslash followed by any ASCII letter, digit or punctuation renders as those two characters."""
    chars = string.ascii_letters + string.digits + string.punctuation
    names = [f"{i}Q\\{c}Q" for i, c in enumerate(chars)]
    elements = tuple(Element(f"e{i}", name, "container") for i, name in enumerate(names))
    steps = tuple(step(str(i + 1), f"e{i}", f"e{i}", "x", "t") for i in range(len(names)))
    model = FlowModel(systems=(), elements=elements, scenarios=(Scenario("s", "S", "sync", "", 1, steps),))
    paths = write_sources({"diagrams/s.puml": render_puml(model)["diagrams/s.puml"]}, tmp_path)
    shown = normalise(svg_text(render_svgs(paths, tmp_path)[paths[0]]))
    missing = [name for name in names if name not in shown]
    assert not missing


@requires_plantuml
def test_random_hostile_strings_round_trip(tmp_path: Path) -> None:
    """Seeded random strings over PlantUML's special characters render literally (one diagram, one JVM)."""
    alphabet = "\"%$\\~*/_-<>[]{}&#!@'^|=:.,+()U tnb0A"
    rng = random.Random(20261128)
    names = [f"{i}Q" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) + "Q" for i in range(80)]
    elements = tuple(Element(f"e{i}", name, "container") for i, name in enumerate(names))
    steps = tuple(step(str(i + 1), f"e{i}", f"e{i}", "x", "t") for i in range(len(names)))
    model = FlowModel(systems=(), elements=elements, scenarios=(Scenario("s", "S", "sync", "", 1, steps),))
    paths = write_sources({"diagrams/s.puml": render_puml(model)["diagrams/s.puml"]}, tmp_path)
    shown = normalise(svg_text(render_svgs(paths, tmp_path)[paths[0]]))
    missing = [name for name in names if normalise(name) not in shown]
    assert not missing
