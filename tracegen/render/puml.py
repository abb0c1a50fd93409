"""C4-PlantUML sources from a flow model: one dynamic diagram per scenario, a context diagram, a container diagram
per system.

Rules (DESIGN.md, "C4 output"):
- stdlib includes only (``!include <C4/C4_Dynamic>`` …), so rendering needs no network;
- every text from traces goes through :func:`._filters.puml_text` in the templates, aliases come from one
  :class:`._filters.AliasAllocator` per model (``e_<id>`` for elements, ``s_<id>`` for systems);
- shapes by kind: ``Person``; ``Container``; ``ContainerDb`` for databases; ``ContainerQueue`` for queues;
  externals ``Container_Ext`` inside a system boundary, ``System_Ext`` outside. On the context diagram a
  system-less element is drawn at system level (``System``/``SystemDb``/``SystemQueue``/``System_Ext``);
- each system is a ``System_Boundary``; elements without a system are drawn outside every boundary;
- a dynamic diagram shows only the elements its steps touch, in order of first appearance, with explicit step
  indices (``$index``, C4-PlantUML ≥ 2.7), async steps carrying the one ``async`` tag (amber, dashed, in the
  legend) and optional steps suffixed "(optional)";
- counts and latencies stay out of diagrams so they only change when the model's shape changes;
- context and container diagrams aggregate every scenario's steps into one arrow per (from, to, sync/async),
  labelled with up to two of the step labels and the technologies.

Links (relative, because the report and the SVGs live in one folder): a system on the context diagram and a
boundary on a dynamic diagram lead to that system's container diagram; on a container diagram, a container leads
to the first scenario (in model order) it takes part in, and a neighbouring system to its own container diagram.
``link_style="anchor"`` gives ``#container-<system>`` / ``#scenario-<id>`` (the HTML report's sections, see
:func:`._filters.anchor_id`), ``"file"`` gives ``<diagram>.svg`` (the Markdown report and a bare SVG folder),
``"none"`` no links.

File names (:func:`diagram_files`): ``diagrams/context.puml``, ``diagrams/container-<system>.puml``,
``diagrams/<scenario>.puml`` — a scenario whose id would clash with the first two becomes
``diagrams/scenario-<scenario>.puml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import jinja2

from tracegen.model import Element, FlowModel, Scenario, Step, System
from tracegen.render import _env
from tracegen.render._filters import LINK_STYLES, AliasAllocator, anchor_id, puml_link, slug

__all__ = ["DiagramRef", "diagram_files", "render_puml"]

_SYSTEM_SHAPES = {"person": "Person", "container": "System", "database": "SystemDb", "queue": "SystemQueue",
                  "external": "System_Ext"}
_CONTAINER_SHAPES = {"person": "Person", "container": "Container", "database": "ContainerDb",
                     "queue": "ContainerQueue", "external": "Container_Ext"}
_MAX_LABELS = 2


@dataclass(frozen=True, slots=True)
class DiagramRef:
    """One diagram of a run: ``kind`` is ``context``, ``container`` or ``scenario``; ``object_id`` the system or
    scenario id (empty for the context); ``stem`` its file name without extension; ``anchor`` its report section."""

    kind: str
    object_id: str
    stem: str
    anchor: str

    @property
    def path(self) -> str:
        """The ``.puml`` path relative to the output directory."""
        return f"diagrams/{self.stem}.puml"


@dataclass(frozen=True, slots=True)
class _Node:
    alias: str
    shape: str
    name: str
    technology: str = ""
    description: str = ""
    link: str = ""

    @property
    def system_level(self) -> bool:
        """Whether the C4 macro takes no technology argument (Person and System*)."""
        return self.shape == "Person" or self.shape.startswith("System")


@dataclass(frozen=True, slots=True)
class _Boundary:
    alias: str
    name: str
    link: str
    nodes: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Rel:
    source: str
    target: str
    label: str
    technology: str
    is_async: bool
    index: str = ""


class _Names:
    """Aliases and diagram files for one model, computed once so every diagram agrees."""

    def __init__(self, model: FlowModel, link_style: str) -> None:
        if link_style not in LINK_STYLES:
            raise ValueError(f"link_style must be one of {LINK_STYLES}, not {link_style!r}")
        step_ids = {end for s in model.scenarios for step in s.steps for end in (step.source, step.target)}
        self.elements = AliasAllocator([e.id for e in model.elements] + sorted(step_ids))
        system_ids = [s.id for s in model.systems] + [e.system for e in model.elements if e.system is not None]
        self.systems = AliasAllocator(system_ids, prefix="s_")
        self.refs = {(ref.kind, ref.object_id): ref for ref in diagram_files(model)}
        self.link_style = link_style

    def link(self, kind: str, object_id: str) -> str:
        """A relative link to a diagram in the chosen style, or "" when links are off or it does not exist."""
        ref = self.refs.get((kind, object_id))
        if ref is None or self.link_style == "none":
            return ""
        return puml_link("#" + ref.anchor if self.link_style == "anchor" else ref.stem + ".svg")


def diagram_files(model: FlowModel) -> list[DiagramRef]:
    """Every diagram :func:`render_puml` writes for ``model``, in output order: context, containers, scenarios.

    The report uses this to find each diagram's file and section anchor. Ids are slugged (they normally are
    slugs already) and de-duplicated with ``-2``, ``-3`` … in model order, so every file and anchor is unique.
    """
    refs = [DiagramRef("context", "", "context", anchor_id("context"))]
    for system, name in zip(model.systems, _unique_slugs(s.id for s in model.systems)):
        refs.append(DiagramRef("container", system.id, f"container-{name}", f"container-{name}"))
    taken = {ref.stem for ref in refs}
    for scenario, name in zip(model.scenarios, _unique_slugs(s.id for s in model.scenarios)):
        clash = name in taken or name.startswith(("container-", "scenario-"))
        stem = f"scenario-{name}" if clash else name
        refs.append(DiagramRef("scenario", scenario.id, stem, f"scenario-{name}"))
    return refs


def _unique_slugs(ids: Iterable[str]) -> list[str]:
    names: list[str] = []
    for object_id in ids:
        base = name = slug(object_id)
        n = 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def render_puml(model: FlowModel, *, env: jinja2.Environment | None = None,
                link_style: str = "anchor") -> dict[str, str]:
    """``{relative path: PlantUML text}`` for every diagram of ``model``; the same model gives the same bytes."""
    env = env or _env.text_env()
    names = _Names(model, link_style)
    out: dict[str, str] = {}
    for ref in diagram_files(model):
        if ref.kind == "context":
            text = _render_context(env, model, names)
        elif ref.kind == "container":
            text = _render_container(env, model, names, ref.object_id)
        else:
            scenario = model.scenario(ref.object_id)
            assert scenario is not None
            text = _render_dynamic(env, model, names, scenario)
        out[ref.path] = text
    return out


# --- dynamic diagrams -------------------------------------------------------------------------------------------


def _render_dynamic(env: jinja2.Environment, model: FlowModel, names: _Names, scenario: Scenario) -> str:
    participants = _participants(scenario.steps)
    boundaries, loose = _group(model, names, [_element(model, i) for i in participants], _container_node)
    title = f"{scenario.title} ({scenario.mode_wording})" if scenario.mode_wording else scenario.title
    rels = [_step_rel(names, step) for step in scenario.steps]
    return env.get_template("c4_dynamic.puml.j2").render(
        title=title, boundaries=boundaries, nodes=loose, rels=rels)


def _participants(steps: Sequence[Step]) -> list[str]:
    seen: dict[str, None] = {}
    for step in steps:
        seen.setdefault(step.source)
        seen.setdefault(step.target)
    return list(seen)


def _step_rel(names: _Names, step: Step) -> _Rel:
    label = f"{step.label} (optional)" if step.optional else step.label
    return _Rel(names.elements(step.source), names.elements(step.target), label, step.technology,
                step.is_async, step.index)


# --- container diagrams -----------------------------------------------------------------------------------------


def _render_container(env: jinja2.Environment, model: FlowModel, names: _Names, system_id: str) -> str:
    system = next(s for s in model.systems if s.id == system_id)
    inside = [e for e in model.elements if _in_system(e, system_id)]
    first_scenario = _first_scenarios(model)

    def inner(element: Element) -> _Node:
        node = _container_node(element, names)
        if element.id in first_scenario:
            node = _with_link(node, names.link("scenario", first_scenario[element.id]))
        return node

    def outer(element: Element) -> tuple[str, _Node | None]:
        if _in_system(element, system_id):
            return element.id, None
        if element.system is not None and element.kind != "person":
            return _system_key(element.system), _system_node(model, names, element.system)
        return element.id, _container_node(element, names)

    key_of, neighbours = _neighbourhood(model, system_id, outer)
    key_alias = {e.id: names.elements(e.id) for e in inside}
    key_alias.update({key: node.alias for key, node in neighbours.items()})
    rels = _aggregate(_all_steps(model), key_of, key_alias)
    boundary = _Boundary(names.systems(system.id), system.name, "", tuple(inner(e) for e in inside))
    return env.get_template("c4_container.puml.j2").render(
        title=f"Container diagram: {system.name}", boundaries=[boundary], nodes=list(neighbours.values()),
        rels=rels)


def _neighbourhood(model: FlowModel, system_id: str, outer: Callable[[Element], tuple[str, _Node | None]]
                  ) -> tuple[dict[str, str], dict[str, _Node]]:
    """Map every element to its node key on a container diagram and collect the outside nodes that touch it."""
    key_of: dict[str, str] = {}
    nodes: dict[str, _Node] = {}
    pending: dict[str, _Node] = {}
    for element_id in _all_ids(model):
        key, node = outer(_element(model, element_id))
        key_of[element_id] = key
        if node is not None:
            pending[key] = node
    inside = {e.id for e in model.elements if _in_system(e, system_id)}
    for step in _all_steps(model):
        ends = (step.source, step.target)
        for end, other in (ends, ends[::-1]):
            if other in inside and end not in inside:
                nodes.setdefault(key_of[end], pending[key_of[end]])
    ordered = [key_of[i] for i in _all_ids(model) if key_of[i] in nodes]
    return key_of, {key: nodes[key] for key in dict.fromkeys(ordered)}


def _in_system(element: Element, system_id: str) -> bool:
    """Whether ``element`` is drawn inside ``system_id``'s boundary (people never are)."""
    return element.system == system_id and element.kind != "person"


def _first_scenarios(model: FlowModel) -> dict[str, str]:
    first: dict[str, str] = {}
    for scenario in model.scenarios:
        for element_id in _participants(scenario.steps):
            first.setdefault(element_id, scenario.id)
    return first


# --- context diagram --------------------------------------------------------------------------------------------


def _render_context(env: jinja2.Environment, model: FlowModel, names: _Names) -> str:
    key_of: dict[str, str] = {}
    nodes: dict[str, _Node] = {}
    for element_id in _all_ids(model):
        element = _element(model, element_id)
        if element.system is not None and element.kind != "person":
            key, node = _system_key(element.system), _system_node(model, names, element.system)
        else:
            key, node = element.id, _system_level_node(element, names)
        key_of[element_id] = key
        nodes.setdefault(key, node)
    for system in model.systems:
        nodes.setdefault(_system_key(system.id), _system_node(model, names, system.id))
    rels = _aggregate(_all_steps(model), key_of, {key: node.alias for key, node in nodes.items()})
    title = f"System context: {model.title}" if model.title else "System context"
    return env.get_template("c4_context.puml.j2").render(
        title=title, boundaries=[], nodes=list(nodes.values()), rels=rels)


# --- shared helpers ---------------------------------------------------------------------------------------------


def _all_steps(model: FlowModel) -> Iterable[Step]:
    return (step for scenario in model.scenarios for step in scenario.steps)


def _all_ids(model: FlowModel) -> list[str]:
    """Model elements in model order, then ids that steps name but the model lacks, in step order."""
    ids = dict.fromkeys(e.id for e in model.elements)
    for step in _all_steps(model):
        ids.setdefault(step.source)
        ids.setdefault(step.target)
    return list(ids)


def _element(model: FlowModel, element_id: str) -> Element:
    """The element, or a stand-in external for a step end the model does not describe (drawn, never dropped)."""
    return model.element(element_id) or Element(id=element_id, name=element_id, kind="external")


def _system_key(system_id: str) -> str:
    return "\0system:" + system_id


def _system_node(model: FlowModel, names: _Names, system_id: str) -> _Node:
    system = next((s for s in model.systems if s.id == system_id), None) or System(system_id, system_id)
    return _Node(names.systems(system_id), "System", system.name, "", system.description, names.link("container", system_id))


def _container_node(element: Element, names: _Names) -> _Node:
    shape = _CONTAINER_SHAPES.get(element.kind, "Container")
    if shape == "Container_Ext" and element.system is None:
        shape = "System_Ext"
    description = element.description
    if shape in ("Person", "System_Ext") and not description:
        description = element.technology
    return _Node(names.elements(element.id), shape, element.name, element.technology, description)


def _system_level_node(element: Element, names: _Names) -> _Node:
    description = element.description or element.technology
    return _Node(names.elements(element.id), _SYSTEM_SHAPES.get(element.kind, "System"), element.name, "",
                 description)


def _with_link(node: _Node, link: str) -> _Node:
    return _Node(node.alias, node.shape, node.name, node.technology, node.description, link)


def _group(model: FlowModel, names: _Names, elements: Sequence[Element],
           make: Callable[[Element, _Names], _Node]) -> tuple[list[_Boundary], list[_Node]]:
    """Split elements into one boundary per system (in order of first appearance) and the loose rest."""
    by_system: dict[str, list[_Node]] = {}
    loose: list[_Node] = []
    for element in elements:
        node = make(element, names)
        if element.system is None or element.kind == "person":
            loose.append(node)
        else:
            by_system.setdefault(element.system, []).append(node)
    boundaries = []
    for system_id, nodes in by_system.items():
        system_node = _system_node(model, names, system_id)
        boundaries.append(_Boundary(system_node.alias, system_node.name, system_node.link, tuple(nodes)))
    return boundaries, loose


def _aggregate(steps: Iterable[Step], key_of: dict[str, str], alias_of: dict[str, str]) -> list[_Rel]:
    """One arrow per (from, to, sync/async) between drawn nodes; self-loops of a collapsed system are dropped."""
    labels: dict[tuple[str, str, bool], set[str]] = {}
    techs: dict[tuple[str, str, bool], set[str]] = {}
    for step in steps:
        source, target = key_of.get(step.source), key_of.get(step.target)
        if source not in alias_of or target not in alias_of:
            continue
        if source == target and source.startswith("\0system:"):
            continue
        key = (alias_of[source], alias_of[target], step.is_async)
        labels.setdefault(key, set()).add(step.label)
        techs.setdefault(key, set()).update(t for t in [step.technology] if t)
    return [_Rel(s, t, _summary(labels[(s, t, a)]), ", ".join(sorted(techs[(s, t, a)])), a)
            for (s, t, a) in sorted(labels)]


def _summary(labels: set[str]) -> str:
    ordered = sorted(labels)
    shown = ", ".join(ordered[:_MAX_LABELS])
    more = len(ordered) - _MAX_LABELS
    return f"{shown} (+{more} more)" if more > 0 else shown
