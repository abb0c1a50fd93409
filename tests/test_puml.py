"""The C4-PlantUML sources: includes, tags, shapes, indices, boundaries, links, aliases, file names, determinism."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests._models import ELEMENT_IDS, step, xpro_model
from tracegen.model import Element, FlowModel, Scenario, System
from tracegen.render import _env
from tracegen.render._filters import AliasAllocator, anchor_id, puml_alias
from tracegen.render.puml import diagram_files, render_puml

ASYNC_TAG = ('AddRelTag("async", $textColor="#d97706", $lineColor="#d97706", $lineStyle=DashedLine(), '
             '$legendText="asynchronous")')
SYNC = "diagrams/learner-takes-a-course.puml"
MIXED = "diagrams/xpro-enrollment-sync.puml"
CONTEXT = "diagrams/context.puml"
OPENEDX = "diagrams/container-openedx.puml"
_DECLARATION = re.compile(r"^\s*(Person|System|SystemDb|SystemQueue|System_Ext|Container|ContainerDb|ContainerQueue"
                          r"|Container_Ext|System_Boundary)\((\w+),")
_REL = re.compile(r"^Rel\((\w+), (\w+), ")


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    """The xPRO model rendered with anchor links."""
    return render_puml(xpro_model())


def _lines(text: str, prefix: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]


def _declared(text: str) -> dict[str, str]:
    """alias → macro of every element and boundary declared in a diagram."""
    found = {}
    for line in text.splitlines():
        match = _DECLARATION.match(line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_file_names(files: dict[str, str]) -> None:
    """One context diagram, one container diagram per system, one dynamic diagram per scenario."""
    assert list(files) == [CONTEXT, OPENEDX, "diagrams/container-mitxpro.puml", SYNC, MIXED]


@pytest.mark.parametrize("path, include", [(CONTEXT, "C4_Context"), (OPENEDX, "C4_Container"), (SYNC, "C4_Dynamic"),
                                           (MIXED, "C4_Dynamic")])
def test_stdlib_include_tag_legend_and_link_target(files: dict[str, str], path: str, include: str) -> None:
    """Each diagram uses the offline stdlib include, the one async tag, a legend and in-page link targets."""
    lines = files[path].splitlines()
    assert lines[0] == "@startuml" and lines[-1] == "@enduml"
    assert lines[1] == f"!include <C4/{include}>"
    assert [line for line in lines if line.startswith("!")] == [lines[1]]
    assert lines.count(ASYNC_TAG) == 1
    assert lines.count("SHOW_LEGEND()") == 1
    assert "skinparam svgLinkTarget _self" in lines
    assert files[path].endswith("@enduml\n")


def test_shapes_per_kind(files: dict[str, str]) -> None:
    """Person, Container, ContainerDb, ContainerQueue and System_Ext for a system-less external."""
    assert _declared(files[MIXED]) == {
        "e_s3_amazonaws_com": "System_Ext", "s_mitxpro": "System_Boundary", "e_mitxpro_web": "Container",
        "s_openedx": "System_Boundary", "e_lms": "Container", "e_mysql": "ContainerDb",
        "e_celery_edx_lms_core_default": "ContainerQueue", "e_edx_cms": "Container",
    }
    assert _declared(files[SYNC])["e_learner"] == "Person"


def test_external_inside_a_system_is_a_container_ext() -> None:
    """An external element that belongs to a system is drawn as Container_Ext inside its boundary."""
    model = xpro_model()
    elements = tuple(replace(e, system="openedx") if e.id == "s3.amazonaws.com" else e for e in model.elements)
    text = render_puml(replace(model, elements=elements))[MIXED]
    assert '  Container_Ext(e_s3_amazonaws_com, "S3", "S3", "Course assets")' in text.splitlines()


def test_dynamic_diagram_shows_only_its_participants(files: dict[str, str]) -> None:
    """The sync scenario draws the learner, the LMS and MySQL, nothing else."""
    assert set(_declared(files[SYNC])) == {"e_learner", "s_openedx", "e_lms", "e_mysql"}


def test_steps_keep_their_indices_tags_and_optional_marks(files: dict[str, str]) -> None:
    """Every step is a Rel with its explicit index; async ones carry the async tag; optional ones say so."""
    rels = _lines(files[MIXED], "Rel(")
    assert [re.search(r'\$index="([^"]*)"', r).group(1) for r in rels] == ["1", "2", "3", "4", "5", "5"]
    assert [r.endswith('$tags="async")') for r in rels] == [False, False, True, True, False, False]
    assert "(optional)" in rels[4] and all("(optional)" not in r for r in rels[:4] + rels[5:])
    assert rels[2] == ('Rel(e_lms, e_celery_edx_lms_core_default, "update~_course~_in~_cache", "Celery", '
                       '$index="3", $tags="async")')


def test_counts_and_latency_stay_out_of_diagrams() -> None:
    """Changing counts, traces and latency leaves every diagram byte-identical."""
    model = xpro_model()
    busier = replace(model, scenarios=tuple(
        replace(s, traces=s.traces * 7, steps=tuple(replace(st, count=st.count * 3 + 1, traces=st.traces + 2,
                                                            latency=st.latency.merge(st.latency), errors=5)
                                                    for st in s.steps))
        for s in model.scenarios))
    assert render_puml(busier) == render_puml(model)


def test_boundaries_hold_their_systems_elements(files: dict[str, str]) -> None:
    """Elements sit inside their system's boundary; system-less ones and people sit outside every boundary."""
    text = files[MIXED]
    inside_openedx = text.split('System_Boundary(s_openedx, "Open edX"', 1)[1].split("}", 1)[0]
    assert all(f"({alias}," in inside_openedx for alias in ("e_lms", "e_mysql", "e_edx_cms"))
    outside = re.sub(r"System_Boundary\(.*?\n\}", "", text, flags=re.S)
    assert "System_Ext(e_s3_amazonaws_com," in outside


def test_container_diagram_collapses_other_systems(files: dict[str, str]) -> None:
    """On Open edX's container diagram, xPRO appears as one System box linked to its own container diagram."""
    declared = _declared(files[OPENEDX])
    assert declared["s_mitxpro"] == "System" and "e_mitxpro_web" not in declared
    assert 'Rel(s_mitxpro, e_lms, "POST ~/api~/enrollment~/v1~/enrollment", "HTTPS")' in files[OPENEDX]


def test_context_diagram_has_systems_people_and_loose_elements(files: dict[str, str]) -> None:
    """The context diagram draws people, each system as one box and system-less elements, with no self-loops."""
    assert _declared(files[CONTEXT]) == {"e_learner": "Person", "s_openedx": "System", "s_mitxpro": "System",
                                         "e_s3_amazonaws_com": "System_Ext"}
    ends = [_REL.match(r).groups() for r in _lines(files[CONTEXT], "Rel(")]
    assert ("s_openedx", "s_openedx") not in ends
    assert set(ends) == {("e_learner", "s_openedx"), ("s_mitxpro", "s_openedx"), ("s_openedx", "e_s3_amazonaws_com")}


def test_anchor_links_go_down_a_level(files: dict[str, str]) -> None:
    """Anchor style: systems → #container-<system>, containers → #scenario-<first scenario they are in>."""
    assert '$link="#container-openedx"' in _lines(files[CONTEXT], "System(s_openedx")[0]
    assert '$link="#scenario-learner-takes-a-course"' in _lines(files[OPENEDX], "Container(e_lms")[0]
    assert '$link="#scenario-xpro-enrollment-sync"' in _lines(files[OPENEDX], "ContainerQueue(")[0]
    assert '$link="#container-openedx"' in _lines(files[SYNC], "System_Boundary(s_openedx")[0]


def test_file_links_point_at_sibling_svgs() -> None:
    """File style links to the SVG next to the diagram; links are always relative."""
    files = render_puml(xpro_model(), link_style="file")
    assert '$link="container-openedx.svg"' in files[CONTEXT]
    assert '$link="learner-takes-a-course.svg"' in files[OPENEDX]
    links = re.findall(r'\$link="([^"]*)"', "".join(files.values()))
    assert links and all(not link.startswith(("/", "http")) and ":" not in link for link in links)


def test_no_links_style() -> None:
    """Link style "none" writes no $link at all."""
    assert "$link" not in "".join(render_puml(xpro_model(), link_style="none").values())


def test_unknown_link_style_is_rejected() -> None:
    """A typo in the link style is an error, not silently unlinked diagrams."""
    with pytest.raises(ValueError):
        render_puml(xpro_model(), link_style="anchors")


def test_aliases_are_identifiers_and_unique(files: dict[str, str]) -> None:
    """Every alias is [a-z0-9_], and distinct ids never share one across the whole run."""
    owner: dict[str, str] = {}
    for text in files.values():
        for line in text.splitlines():
            match = _DECLARATION.match(line)
            if match:
                alias = match.group(2)
                assert re.fullmatch(r"[a-z][a-z0-9_]*", alias)
                name = re.search(r', "([^"]*)"', line).group(1)
                assert owner.setdefault(alias, name) == name
    assert len(set(owner)) == len(ELEMENT_IDS) + 2


def test_alias_allocator_deduplicates_in_id_order() -> None:
    """Ids that slug to the same alias get _2, _3 in sorted id order, whatever order they arrive in."""
    ids = ["my.db", "my-db", "MY_DB", "title", "123", "ünïcode", ""]
    first = AliasAllocator(ids)
    assert first.items() == AliasAllocator(reversed(ids)).items()
    aliases = [first(i) for i in ids]
    assert len(set(aliases)) == len(ids)
    assert all(re.fullmatch(r"e_[a-z0-9_]+", a) for a in aliases)
    assert [first("MY_DB"), first("my-db"), first("my.db")] == ["e_my_db", "e_my_db_2", "e_my_db_3"]
    assert first("title") == "e_title" and first("123") == "e_123"
    assert puml_alias("", "s_").startswith("s_") and len(puml_alias("")) == 14


def test_hostile_ids_make_valid_aliases_and_anchors() -> None:
    """Ids with punctuation give [a-z0-9_] aliases and URL-safe anchors; clashing file names are avoided."""
    model = FlowModel(
        systems=(System("sys one/../x", "S"),),
        elements=(Element("a b", "A", "container", "sys one/../x"), Element("a\"b", "B", "container"),
                  Element("a$b", "C", "database")),
        scenarios=(Scenario("context", "Context", "sync", "", 1, (step("1", "a b", "a\"b", "x", "t"),)),
                   Scenario("container-sys-one-..-x", "C", "sync", "", 1, (step("1", "a b", "a$b", "y", "t"),))),
    )
    files = render_puml(model)
    assert sorted(files) == ["diagrams/container-sys-one-..-x.puml", "diagrams/context.puml",
                             "diagrams/scenario-container-sys-one-..-x.puml", "diagrams/scenario-context.puml"]
    anchors = {ref.object_id: ref.anchor for ref in diagram_files(model) if ref.kind == "scenario"}
    assert anchors == {"context": "scenario-context", "container-sys-one-..-x": "scenario-container-sys-one-..-x"}
    text = "".join(files.values())
    assert set(re.findall(r"\((\w+), \"", text)) == {"e_a_b", "e_a_b_2", "e_a_b_3", "s_sys_one_x"}
    assert '$link="#container-sys-one-..-x"' in text


def test_diagram_files_give_the_report_its_anchors() -> None:
    """diagram_files lists every diagram with the anchor the report must use."""
    refs = diagram_files(xpro_model())
    assert [(r.kind, r.object_id, r.path, r.anchor) for r in refs] == [
        ("context", "", CONTEXT, "context"),
        ("container", "openedx", OPENEDX, "container-openedx"),
        ("container", "mitxpro", "diagrams/container-mitxpro.puml", "container-mitxpro"),
        ("scenario", "learner-takes-a-course", SYNC, "scenario-learner-takes-a-course"),
        ("scenario", "xpro-enrollment-sync", MIXED, "scenario-xpro-enrollment-sync"),
    ]
    assert anchor_id("scenario", "Odd Id!") == "scenario-odd-id"


def test_step_to_an_unknown_element_is_still_drawn() -> None:
    """A step naming an element the model lacks draws a stand-in external box instead of failing."""
    model = xpro_model()
    scenario = replace(model.scenarios[0], steps=model.scenarios[0].steps + (step("4", "lms", "ghost", "g", "t"),))
    text = render_puml(replace(model, scenarios=(scenario,)))[SYNC]
    assert 'System_Ext(e_ghost, "ghost", "")' in text
    assert 'Rel(e_lms, e_ghost, "g", "t", $index="4")' in text


def test_same_model_same_bytes() -> None:
    """Rendering is deterministic: two renders of equal models are identical, aliases independent of order."""
    model = xpro_model()
    assert render_puml(model) == render_puml(xpro_model())
    reordered = replace(model, elements=tuple(reversed(model.elements)))
    assert re.findall(r"\((\w+),", render_puml(reordered)[MIXED]) == re.findall(r"\((\w+),", render_puml(model)[MIXED])


def test_text_environment_does_not_html_escape_and_is_strict() -> None:
    """The text environment leaves <, & and quotes alone and fails on an undefined name."""
    env = _env.text_env()
    assert env.from_string("{{ x }}").render(x="<&\">") == "<&\">"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


def test_html_environment_autoescapes_double_suffix_templates(tmp_path: Path) -> None:
    """report.html.j2 is autoescaped even though its last suffix is .j2."""
    (tmp_path / "probe.html.j2").write_text("{{ x }}", encoding="utf-8")
    assert _env.html_env(tmp_path).get_template("probe.html.j2").render(x="<b>") == "&lt;b&gt;"


def test_override_directory_is_searched_first(tmp_path: Path) -> None:
    """A --templates directory replaces a built-in template and falls back to the rest."""
    (tmp_path / "c4_context.puml.j2").write_text("@startuml\n' branded {{ title }}\n@enduml\n", encoding="utf-8")
    files = render_puml(xpro_model(), env=_env.text_env(tmp_path))
    assert files[CONTEXT] == "@startuml\n' branded System context: xPRO Open edX\n@enduml\n"
    assert files[SYNC].startswith("@startuml\n!include <C4/C4_Dynamic>")
    assert _env.template_dirs(tmp_path)[0] == tmp_path
