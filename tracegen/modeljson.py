"""``model.json``: the contract other tools read (DESIGN.md). Serialise and parse it; nothing else.

Keys of ``tracegen.model/1`` are never renamed or dropped without bumping ``schema``; new keys may be added.
Beyond the contract, each step carries its raw statistics (``stats``) and the file carries ``state``: the
accumulator's commutative state, so ``tracegen merge`` and ``tracegen check`` can rebuild the exact model.
Output is canonical: sorted keys inside objects where order carries no meaning, lists in model order, two-space
indentation and a trailing newline, so the same model always gives the same bytes.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Mapping

from tracegen.errors import BaselineError
from tracegen.model import (
    SCHEMA,
    Diagnostics,
    Element,
    FlowModel,
    Histogram,
    Scenario,
    Source,
    Step,
    System,
)

__all__ = ["model_to_dict", "dump_model", "load_model_dict", "model_from_dict", "schema", "format_ns"]


def format_ns(ns: int) -> str:
    """An epoch-nanosecond time as ISO 8601 UTC with millisecond precision ("" for 0)."""
    if not ns:
        return ""
    moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _step_dict(step: Step) -> dict[str, Any]:
    return {
        "index": step.index,
        "from": step.source,
        "to": step.target,
        "label": step.label,
        "technology": step.technology,
        "async": step.is_async,
        "count": step.count,
        "traces": step.traces,
        "optional": step.optional,
        "duration_ms": {"p50": step.latency.quantile(0.5), "p95": step.latency.quantile(0.95)},
        "errors": step.errors,
        "retries": step.retries,
        "declared": step.declared,
        "provenance": step.provenance,
        "exemplars": list(step.exemplars),
        "first_seen": format_ns(step.first_seen_ns),
        "last_seen": format_ns(step.last_seen_ns),
        "stats": {
            "histogram": [list(pair) for pair in step.latency.buckets],
            "rank_sum": step.rank_sum,
            "rank_count": step.rank_count,
            "first_seen_ns": step.first_seen_ns,
            "last_seen_ns": step.last_seen_ns,
        },
    }


def model_to_dict(model: FlowModel, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.json`` document for a model (and, optionally, the accumulator state behind it)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "generator": model.generator,
        "generated_at": model.generated_at,
        "config_hash": model.config_hash,
        "title": model.title,
        "systems": [{"id": s.id, "name": s.name, "description": s.description} for s in model.systems],
        "elements": [{
            "id": e.id, "name": e.name, "kind": e.kind, "system": e.system, "technology": e.technology,
            "description": e.description, "aliases": list(e.aliases), "virtual": e.virtual,
            "declared": e.declared, "why_virtual": e.why_virtual, "first_seen": format_ns(e.first_seen_ns),
            "last_seen": format_ns(e.last_seen_ns), "first_seen_ns": e.first_seen_ns,
            "last_seen_ns": e.last_seen_ns,
        } for e in model.elements],
        "scenarios": [{
            "id": s.id, "title": s.title, "mode": s.mode, "mode_wording": s.mode_wording,
            "description": s.description, "traces": s.traces, "trigger": s.trigger, "cadence": s.cadence,
            "declared": s.declared, "entries": list(s.entries), "first_seen": format_ns(s.first_seen_ns),
            "last_seen": format_ns(s.last_seen_ns), "first_seen_ns": s.first_seen_ns,
            "last_seen_ns": s.last_seen_ns, "run_starts_ns": list(s.run_starts_ns),
            "steps": [_step_dict(step) for step in s.steps],
        } for s in model.scenarios],
        "sources": [{
            "source": r.source, "consumer": r.consumer, "transport": r.transport, "cadence": r.cadence,
            "data": r.data, "source_of_truth": r.source_of_truth, "brittle": r.brittle, "why": r.why,
            "inferred": r.inferred, "scenario": r.scenario, "task": r.task,
        } for r in model.sources],
        "diagnostics": {
            "spans": model.diagnostics.spans,
            "traces": model.diagnostics.traces,
            "orphan_spans": model.diagnostics.orphan_spans,
            "duplicate_spans": model.diagnostics.duplicate_spans,
            "conflicting_duplicates": model.diagnostics.conflicting_duplicates,
            "unresolved_links": model.diagnostics.unresolved_links,
            "consumers_without_producer": list(model.diagnostics.consumers_without_producer),
            "dropped": dict(model.diagnostics.dropped),
            "virtual_elements": [{"id": e.id, "why": e.why_virtual} for e in model.elements
                                 if e.virtual and e.kind != "person"],
            "notes": list(model.diagnostics.notes),
        },
    }
    if state is not None:
        doc["state"] = state
    return doc


def dump_model(model: FlowModel, state: Mapping[str, Any] | None = None) -> str:
    """Canonical ``model.json`` text."""
    return json.dumps(model_to_dict(model, state), indent=2, ensure_ascii=False) + "\n"


def load_model_dict(text: str, source: str) -> dict[str, Any]:
    """Parse a ``model.json`` text, checking it is a tracegen model of a schema this version reads."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{source}: not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("tracegen.model/"):
        raise BaselineError(f"{source}: not a tracegen model.json (no 'schema': 'tracegen.model/1')")
    if doc["schema"] != SCHEMA:
        raise BaselineError(f"{source}: schema {doc['schema']!r} is not {SCHEMA!r}, which this tracegen reads")
    return doc


def _histogram(raw: Any) -> Histogram:
    return Histogram(tuple((int(a), int(b)) for a, b in raw or ()))


def model_from_dict(doc: Mapping[str, Any]) -> FlowModel:
    """A :class:`FlowModel` from a ``model.json`` document (the inverse of :func:`model_to_dict`)."""
    def step(raw: Mapping[str, Any]) -> Step:
        stats = raw.get("stats", {})
        return Step(
            index=str(raw["index"]), source=raw["from"], target=raw["to"], label=raw["label"],
            technology=raw.get("technology", ""), is_async=bool(raw["async"]), count=int(raw.get("count", 0)),
            traces=int(raw.get("traces", 0)), optional=bool(raw.get("optional", False)),
            latency=_histogram(stats.get("histogram")), errors=int(raw.get("errors", 0)),
            retries=int(raw.get("retries", 0)), first_seen_ns=int(stats.get("first_seen_ns", 0)),
            last_seen_ns=int(stats.get("last_seen_ns", 0)), provenance=raw.get("provenance", ""),
            exemplars=tuple(raw.get("exemplars", ())), rank_sum=int(stats.get("rank_sum", 0)),
            rank_count=int(stats.get("rank_count", 0)), declared=bool(raw.get("declared", False)))

    diagnostics = doc.get("diagnostics", {})
    return FlowModel(
        systems=tuple(System(s["id"], s["name"], s.get("description", "")) for s in doc.get("systems", [])),
        elements=tuple(Element(
            id=e["id"], name=e["name"], kind=e["kind"], system=e.get("system"), technology=e.get("technology", ""),
            description=e.get("description", ""), aliases=tuple(e.get("aliases", ())),
            virtual=bool(e.get("virtual", False)), declared=bool(e.get("declared", False)),
            why_virtual=e.get("why_virtual", ""), first_seen_ns=int(e.get("first_seen_ns", 0)),
            last_seen_ns=int(e.get("last_seen_ns", 0))) for e in doc.get("elements", [])),
        scenarios=tuple(Scenario(
            id=s["id"], title=s["title"], mode=s["mode"], mode_wording=s.get("mode_wording", ""),
            traces=int(s.get("traces", 0)), steps=tuple(step(x) for x in s.get("steps", [])),
            description=s.get("description", ""), entries=tuple(s.get("entries", ())),
            trigger=s.get("trigger", ""), cadence=s.get("cadence", ""), declared=bool(s.get("declared", False)),
            first_seen_ns=int(s.get("first_seen_ns", 0)), last_seen_ns=int(s.get("last_seen_ns", 0)),
            run_starts_ns=tuple(s.get("run_starts_ns", ()))) for s in doc.get("scenarios", [])),
        sources=tuple(Source(
            source=r["source"], consumer=r.get("consumer", ""), transport=r.get("transport", ""),
            cadence=r.get("cadence", ""), data=r.get("data", ""), source_of_truth=r.get("source_of_truth", ""),
            brittle=bool(r.get("brittle", False)), why=r.get("why", ""), inferred=bool(r.get("inferred", True)),
            scenario=r.get("scenario", ""), task=r.get("task", "")) for r in doc.get("sources", [])),
        diagnostics=Diagnostics(
            spans=int(diagnostics.get("spans", 0)), traces=int(diagnostics.get("traces", 0)),
            orphan_spans=int(diagnostics.get("orphan_spans", 0)),
            duplicate_spans=int(diagnostics.get("duplicate_spans", 0)),
            conflicting_duplicates=int(diagnostics.get("conflicting_duplicates", 0)),
            unresolved_links=int(diagnostics.get("unresolved_links", 0)),
            consumers_without_producer=tuple(diagnostics.get("consumers_without_producer", ())),
            dropped=dict(diagnostics.get("dropped", {})), notes=tuple(diagnostics.get("notes", ()))),
        generator=doc.get("generator", ""), generated_at=doc.get("generated_at", ""),
        config_hash=doc.get("config_hash", ""), title=doc.get("title", ""))


def schema() -> dict[str, Any]:
    """The JSON Schema of ``model.json`` shipped in the package."""
    text = resources.files("tracegen").joinpath("model.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
