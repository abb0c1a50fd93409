"""The report's view: what the HTML and Markdown templates show, computed once from the flow model.

Why a view between the model and the templates: both report formats show the same facts (display names, p50/p95,
"seen in 3 of 4 traces", the mode wording, the narrative), and computing them in Python keeps the templates about
layout only, keeps the two formats in agreement, and makes the numbers testable without parsing HTML.

Everything here is plain text: escaping is the templates' job (Jinja autoescape for HTML, :mod:`._filters` for
Markdown). No I/O, no clock: the generated time comes from ``model.generated_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from tracegen.model import Element, FlowModel, Scenario, Source, Step
from tracegen.render.puml import DiagramRef, diagram_files
from tracegen.render.narrative import describe_scenario

__all__ = [
    "DiagramView",
    "GapView",
    "ReportView",
    "ScenarioView",
    "SourceView",
    "StepView",
    "build_report",
    "diagram_key",
]

_MODE_WORDING = {"sync": "synchronous", "async": "asynchronous", "mixed": "synchronous + async"}
_TRIGGER_WORDING = {
    "person": "a person",
    "program": "a program",
    "scheduled": "a schedule",
    "unknown": "unknown (a consumer with no producer in the traces)",
    "service": "the service itself (a script or job)",
    "declared": "declared in config",
}


@dataclass(frozen=True, slots=True)
class DiagramView:
    """One diagram: its name (file stem under ``diagrams/``), its section anchor and title, and what can be shown."""

    name: str
    anchor: str
    title: str
    svg: str | None  # the SVG text as the renderer wrote it (not yet prepared for inlining)
    source: str | None  # the PlantUML source, shown when the diagram was not rendered


@dataclass(frozen=True, slots=True)
class StepView:
    index: str
    source: str
    target: str
    label: str
    technology: str
    is_async: bool
    count: int
    traces: int
    total_traces: int
    optional: bool
    declared: bool
    p50: str
    p95: str
    errors: int
    retries: int
    provenance: str
    exemplar: str


@dataclass(frozen=True, slots=True)
class ScenarioView:
    id: str
    anchor: str
    title: str
    mode: str
    mode_wording: str
    description: str
    generated_description: bool
    trigger: str
    cadence: str
    traces: int
    declared: bool
    diagram: DiagramView
    steps: tuple[StepView, ...]


@dataclass(frozen=True, slots=True)
class SourceView:
    source: str
    consumer: str
    transport: str
    cadence: str
    data: str
    source_of_truth: str
    brittle: bool
    why: str
    inferred: bool
    scenario_anchor: str
    scenario_title: str


@dataclass(frozen=True, slots=True)
class GapView:
    """One "Instrumentation gaps" entry: ``what`` (element or count), its detail, and a kind for styling."""

    kind: str
    what: str
    detail: str


@dataclass(frozen=True, slots=True)
class ReportView:
    title: str
    generated: str
    generator: str
    context: DiagramView | None
    containers: tuple[DiagramView, ...]
    scenarios: tuple[ScenarioView, ...]
    sources: tuple[SourceView, ...]
    source_consumers: str
    gaps: tuple[GapView, ...]
    counts: Mapping[str, int]
    rendered: bool  # at least one diagram is an SVG
    unrendered: tuple[str, ...]  # names of diagrams shown as PlantUML source only


def diagram_key(key: str) -> str:
    """A diagram's name from a key given as ``context``, ``diagrams/context.puml`` or ``out/diagrams/context.svg``."""
    name = key.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".svg", ".puml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def build_report(model: FlowModel, svgs: Mapping[str, str], puml_sources: Mapping[str, str]) -> ReportView:
    """The whole report's view of ``model``; ``svgs`` and ``puml_sources`` map diagram names (or paths) to text."""
    svg_by_name = {diagram_key(k): v for k, v in svgs.items()}
    src_by_name = {diagram_key(k): v for k, v in puml_sources.items()}
    names = _display_names(model.elements)

    def diagram(name: str, anchor: str, title: str) -> DiagramView | None:
        svg, source = svg_by_name.get(name), src_by_name.get(name)
        if svg is None and source is None:
            return None
        return DiagramView(name, anchor, title, svg, source)

    # The diagram files and section anchors come from puml.diagram_files, so links drawn in the diagrams land on
    # this report's sections by construction.
    refs = diagram_files(model)
    system_names = {system.id: system.name for system in model.systems}
    context: DiagramView | None = None
    containers: list[DiagramView] = []
    scenario_refs: dict[str, DiagramRef] = {}
    for ref in refs:
        if ref.kind == "context":
            context = diagram(ref.stem, ref.anchor, "System Context")
        elif ref.kind == "container":
            view = diagram(ref.stem, ref.anchor, f"Containers of {system_names.get(ref.object_id, ref.object_id)}")
            if view is not None:
                containers.append(view)
        else:
            scenario_refs.setdefault(ref.object_id, ref)
    scenarios = tuple(
        _scenario_view(s, model, names, scenario_refs[s.id], svg_by_name, src_by_name) for s in model.scenarios
    )
    all_diagrams = ([context] if context else []) + containers + [s.diagram for s in scenarios]
    anchors = {scenario_id: ref.anchor for scenario_id, ref in scenario_refs.items()}
    sources = tuple(_source_view(s, model, names, anchors) for s in model.sources)
    consumers = sorted({s.consumer for s in sources if s.consumer})
    counts = {
        "scenarios": len(model.scenarios),
        "steps": sum(len(s.steps) for s in model.scenarios),
        "traces": model.diagnostics.traces or sum(s.traces for s in model.scenarios),
        "spans": model.diagnostics.spans,
        "elements": len(model.elements),
    }
    return ReportView(
        title=_title(model),
        generated=_generated(model.generated_at),
        generator=_generator(model.generator),
        context=context,
        containers=tuple(containers),
        scenarios=scenarios,
        sources=sources,
        source_consumers=" / ".join(consumers),
        gaps=_gaps(model, names),
        counts=counts,
        rendered=any(d.svg for d in all_diagrams),
        unrendered=tuple(d.name for d in all_diagrams if not d.svg),
    )


def _title(model: FlowModel) -> str:
    if model.title:
        return model.title
    if model.systems:
        return " + ".join(system.name for system in model.systems)
    return "tracegen"


def _generated(generated_at: str) -> str:
    """``2026-11-28T14:51:00Z`` as ``2026-11-28 14:51 UTC``; "" when absent, the raw text when unparsable."""
    if not generated_at:
        return ""
    try:
        moment = datetime.fromisoformat(generated_at.replace("Z", "+00:00"))
    except ValueError:
        return generated_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _generator(generator: str) -> str:
    """``tracegen 0.1.0`` as given; a bare version gets the name in front."""
    if not generator:
        from tracegen.__about__ import __version__

        return f"tracegen {__version__}"
    return generator if generator.startswith("tracegen") else f"tracegen {generator}"


def _display_names(elements: tuple[Element, ...]) -> dict[str, str]:
    """Element id → the name people read; names shared by two elements get their technology (or kind) beside them,
    so "catalog" the service and "catalog" the database stay distinguishable (DESIGN.md, names and ids)."""
    by_name: dict[str, list[Element]] = {}
    for element in elements:
        by_name.setdefault(element.name or element.id, []).append(element)
    names: dict[str, str] = {}
    for name, group in by_name.items():
        for element in group:
            if len(group) > 1:
                names[element.id] = f"{name} ({element.technology or element.kind})"
            else:
                names[element.id] = name
    return names


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def _scenario_view(
    scenario: Scenario,
    model: FlowModel,
    names: Mapping[str, str],
    ref: DiagramRef,
    svgs: Mapping[str, str],
    sources: Mapping[str, str],
) -> ScenarioView:
    description = scenario.description.strip()
    generated = not description
    if generated:
        description = describe_scenario(scenario, model)
    wording = scenario.mode_wording or _MODE_WORDING.get(scenario.mode, scenario.mode)
    anchor = ref.anchor
    return ScenarioView(
        id=scenario.id,
        anchor=anchor,
        title=scenario.title,
        mode=scenario.mode,
        mode_wording=wording,
        description=description,
        generated_description=generated,
        trigger=_TRIGGER_WORDING.get(scenario.trigger, scenario.trigger),
        cadence=scenario.cadence,
        traces=scenario.traces,
        declared=scenario.declared,
        diagram=DiagramView(ref.stem, anchor, scenario.title, svgs.get(ref.stem), sources.get(ref.stem)),
        steps=tuple(_step_view(step, scenario.traces, names) for step in scenario.steps),
    )


def _step_view(step: Step, total: int, names: Mapping[str, str]) -> StepView:
    return StepView(
        index=step.index,
        source=names.get(step.source, step.source),
        target=names.get(step.target, step.target),
        label=step.label,
        technology=step.technology,
        is_async=step.is_async,
        count=step.count,
        traces=step.traces,
        total_traces=total,
        optional=step.optional,
        declared=step.declared,
        p50=_ms(step.latency.quantile(0.5)),
        p95=_ms(step.latency.quantile(0.95)),
        errors=step.errors,
        retries=step.retries,
        provenance=step.provenance or ("declared in config" if step.declared else ""),
        exemplar=step.exemplars[0] if step.exemplars else "",
    )


def _source_view(
    source: Source, model: FlowModel, names: Mapping[str, str], anchors: Mapping[str, str]
) -> SourceView:
    scenario = model.scenario(source.scenario) if source.scenario else None
    return SourceView(
        source=source.source,
        consumer=names.get(source.consumer, source.consumer),
        transport=source.transport,
        cadence=source.cadence,
        data=source.data,
        source_of_truth=source.source_of_truth,
        brittle=source.brittle,
        why=source.why,
        inferred=source.inferred,
        scenario_anchor=anchors.get(scenario.id, "") if scenario else "",
        scenario_title=scenario.title if scenario else "",
    )


def _gaps(model: FlowModel, names: Mapping[str, str]) -> tuple[GapView, ...]:
    """What the picture cannot show, most actionable first: virtual elements, then unplaced spans, then noise."""
    gaps: list[GapView] = []
    for element in model.elements:
        if element.virtual:
            why = element.why_virtual or "seen only from its callers' client spans; it sends no spans of its own"
            gaps.append(GapView("virtual", names.get(element.id, element.id), why))
    for element in model.elements:
        if element.declared:
            gaps.append(GapView("declared", names.get(element.id, element.id),
                                "declared in config: no instrumentation shows it"))
    diag = model.diagnostics
    if diag.orphan_spans:
        gaps.append(GapView("orphans", f"{diag.orphan_spans} orphan span{'s' if diag.orphan_spans != 1 else ''}",
                            "their parent span never arrived (not exported, sampled out, or from an uninstrumented "
                            "caller); kept, but where they hang in a flow is a guess"))
    for consumer in diag.consumers_without_producer:
        gaps.append(GapView("consumer", consumer,
                            "a consumer with no producer in the traces: whoever enqueues its messages is not "
                            "instrumented, or does not propagate trace context"))
    if diag.unresolved_links:
        gaps.append(GapView("links", f"{diag.unresolved_links} unresolved span link"
                            f"{'s' if diag.unresolved_links != 1 else ''}",
                            "links to traces that were not in the input: the async continuations they stand for "
                            "are not drawn"))
    if diag.duplicate_spans:
        detail = "collapsed into one"
        if diag.conflicting_duplicates:
            detail += f"; {diag.conflicting_duplicates} of them disagreed with their twin"
        gaps.append(GapView("duplicates", f"{diag.duplicate_spans} duplicate spans", detail))
    for reason, count in sorted(diag.dropped.items()):
        gaps.append(GapView("dropped", reason, f"{count} dropped as noise (by config or the built-in defaults)"))
    for note in diag.notes:
        gaps.append(GapView("note", "", note))
    return tuple(gaps)
