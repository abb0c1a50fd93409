"""Diagram drift: compare a committed flow model (the baseline) with the one today's traces give, semantically.

Why semantic: a baseline is committed next to the code and read in review, so ``check`` must fail on what a
reviewer would call a change of architecture and on nothing else. Text diffs of ``model.json`` would fail on every
run (``generated_at``, counts, latencies, exemplars, first/last seen all move).

Rules, one pass per level (no I/O here; the CLI reads, writes and picks the exit code):

Scenarios
- Matched by id first; then each remaining baseline scenario is paired with the remaining current scenario whose
  steps are most alike — the multiset of (from, to, sync/async) edges, labels ignored — when the Jaccard
  similarity is at least one half and their entries start in the same service. So a renamed entry route is a
  ``~`` on the scenario and on its first step, not a ``-`` and a ``+`` of whole scenarios.
- A current scenario with no partner is ``+`` (drift). A baseline scenario with no partner was *not exercised*:
  traces cannot tell a removed scenario from one today's tests did not run, so it is reported as coverage and is
  drift (``-``) only with ``require_all``.
- Traces of scenarios that match no declared scenario (when the config declares any) are listed as coverage.

Steps (within a matched pair)
- The same (from, to, label, sync/async) is the same step; its technology may be ``~``. With ``strict``, a
  changed relative order among the matched steps and optional↔required are ``~`` too.
- Of the rest, in this order: the same (from, to, label) with sync/async flipped is a ``~``; a removed sync call
  A → C replaced by async A → Q → C through a queue Q (a call turned into a task), or the reverse, is a ``~``;
  the same (from, to, sync/async) with another label is a ``~`` label change (a renamed route); what remains is
  ``-`` or ``+``.
- Not drift: a baseline step marked optional that this run did not exercise; with ``min_count`` N, a ``+`` or
  ``-`` step seen fewer than N times (sampled runs). Both are listed as notes. Declared steps (config) always count.

Elements (participants) and ETL sources
- An element is ``+`` or ``-`` only as a consequence of reported step changes (or when no step refers to it), so
  an element of an unexercised scenario does not vanish as drift. An element present on both sides is ``~`` when
  its kind, technology, display name or system changed.
- ETL rows are keyed by (scenario, source) and compared when their scenario was exercised: ``+``/``-`` rows, and
  ``~`` transport, cadence or brittleness. A cadence only counts when both sides know it (not ``""`` or
  ``"scheduled"``): a short test run cannot show that a job runs daily.

Never drift: generation time, tracegen version, config hash, counts, latencies, errors, retries, exemplars,
first/last seen, diagnostics. ``compare_models(m, m)`` has no items.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from tracegen.model import Element, FlowModel, Scenario, Source, Step

__all__ = [
    "DriftItem",
    "ScenarioResult",
    "Drift",
    "compare_models",
    "format_text",
    "format_markdown",
    "format_json",
    "format_junit",
]

# Drift kinds (DriftItem.kind).
SCENARIO_ADDED = "scenario-added"
SCENARIO_REMOVED = "scenario-removed"
SCENARIO_RENAMED = "scenario-renamed"
STEP_ADDED = "step-added"
STEP_REMOVED = "step-removed"
STEP_LABEL = "step-label"
STEP_MODE = "step-async"
STEP_TECHNOLOGY = "step-technology"
STEP_ORDER = "step-order"
STEP_OPTIONAL = "step-optional"
ELEMENT_ADDED = "element-added"
ELEMENT_REMOVED = "element-removed"
ELEMENT_KIND = "element-kind"
ELEMENT_TECHNOLOGY = "element-technology"
ELEMENT_NAME = "element-name"
ELEMENT_SYSTEM = "element-system"
SOURCE_ADDED = "source-added"
SOURCE_REMOVED = "source-removed"
SOURCE_CHANGED = "source-changed"

_SIMILARITY = 0.5
_UNKNOWN_CADENCES = ("", "scheduled")
MODEL_GROUP = ""  # DriftItem.scenario of model-wide items (elements, sources without a scenario)


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One change: ``sign`` is ``+`` (new), ``-`` (gone) or ``~`` (changed); ``scenario`` is the current id of
    the scenario it belongs to (the baseline id when the scenario is gone), ``""`` for model-wide items."""

    kind: str
    scenario: str
    sign: str
    message: str

    @property
    def line(self) -> str:
        """The item as one line of the text report: sign, space, message."""
        return f"{self.sign} {self.message}"


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """How one scenario fared: ``status`` is ``matched``, ``added`` or ``not-exercised``; ``baseline_id`` differs
    from ``id`` when the scenario was recognised under a new id (a renamed entry route)."""

    id: str
    title: str
    status: str
    baseline_id: str = ""


@dataclass(frozen=True, slots=True)
class Drift:
    """The outcome of :func:`compare_models`. Truthy when there is drift (any item).

    ``scenarios`` lists every scenario compared (current order, then unexercised baseline ones) for per-scenario
    reports; ``not_exercised`` the baseline scenario ids today's traces did not reach; ``unmatched`` the
    (scenario id, traces) that match no declared scenario; ``notes`` what was seen but deliberately not drift.
    """

    items: tuple[DriftItem, ...] = ()
    scenarios: tuple[ScenarioResult, ...] = ()
    not_exercised: tuple[str, ...] = ()
    unmatched: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def items_of(self, scenario_id: str) -> tuple[DriftItem, ...]:
        """The items of one scenario (``""``: the model-wide ones)."""
        return tuple(item for item in self.items if item.scenario == scenario_id)


# --- comparison -------------------------------------------------------------------------------------------------

def compare_models(baseline: FlowModel, current: FlowModel, *, strict: bool = False, min_count: int = 1,
                   require_all: bool = False) -> Drift:
    """The semantic drift from ``baseline`` to ``current`` (rules in the module docstring)."""
    ctx = _Context(baseline, current, strict=strict, min_count=max(1, min_count))
    pairs = _match_scenarios(baseline.scenarios, current.scenarios)
    paired_baseline = {b.id for b, _ in pairs}
    by_current = {c.id: b for b, c in pairs}
    results: list[ScenarioResult] = []
    for scenario in current.scenarios:
        partner = by_current.get(scenario.id)
        if partner is None:
            results.append(ScenarioResult(scenario.id, scenario.title, "added"))
            ctx.add_scenario(scenario)
        else:
            results.append(ScenarioResult(scenario.id, scenario.title, "matched", partner.id))
            ctx.compare_scenario(partner, scenario)
    not_exercised: list[str] = []
    for scenario in baseline.scenarios:
        if scenario.id in paired_baseline:
            continue
        not_exercised.append(scenario.id)
        results.append(ScenarioResult(scenario.id, scenario.title, "not-exercised", scenario.id))
        if require_all:
            ctx.remove_scenario(scenario)
    ctx.compare_elements()
    ctx.compare_sources({b.id: c.id for b, c in pairs}, paired_baseline, require_all)
    declared = any(s.declared for s in (*baseline.scenarios, *current.scenarios))
    unmatched = tuple((s.id, s.traces) for s in current.scenarios if declared and not s.declared)
    return Drift(items=ctx.sorted_items(results), scenarios=tuple(results), not_exercised=tuple(not_exercised),
                 unmatched=unmatched, notes=tuple(ctx.notes))


def _edges(scenario: Scenario) -> Counter:
    return Counter((s.source, s.target, s.is_async) for s in scenario.steps)


def _entry_services(scenario: Scenario) -> set[str]:
    return {entry.split(" ")[0] for entry in scenario.entries if entry}


def _similarity(a: Scenario, b: Scenario) -> float:
    """Jaccard similarity of two scenarios' edge multisets; 0 when their entries start in different services."""
    ea, eb = _entry_services(a), _entry_services(b)
    if ea and eb and not ea & eb:
        return 0.0
    left, right = _edges(a), _edges(b)
    union = sum((left | right).values())
    return sum((left & right).values()) / union if union else 0.0


def _match_scenarios(baseline: Sequence[Scenario], current: Sequence[Scenario]) -> list[tuple[Scenario, Scenario]]:
    """(baseline, current) pairs: equal ids, then the most similar remaining pairs (greedy, deterministic)."""
    current_ids = {s.id for s in current}
    pairs = [(b, c) for b in baseline for c in current if b.id == c.id]
    rest_b = [b for b in baseline if b.id not in current_ids]
    taken = {b.id for b, _ in pairs}
    rest_c = [c for c in current if c.id not in taken]
    scored = sorted(((-_similarity(b, c), b.id, c.id, b, c) for b in rest_b for c in rest_c),
                    key=lambda t: t[:3])
    used_b: set[str] = set()
    used_c: set[str] = set()
    for negative, b_id, c_id, b, c in scored:
        if -negative < _SIMILARITY or b_id in used_b or c_id in used_c:
            continue
        used_b.add(b_id)
        used_c.add(c_id)
        pairs.append((b, c))
    return pairs


def _index_key(index: str) -> tuple[int, ...]:
    parts = []
    for part in index.split("."):
        parts.append(int(part) if part.isdigit() else 0)
    return tuple(parts)


def _q(text: str) -> str:
    """A quoted, escaped label: span names are untrusted, so control characters never reach a terminal raw."""
    return json.dumps(text, ensure_ascii=False)


def _mode(is_async: bool) -> str:
    return "async" if is_async else "sync"


def _step_text(step: Step) -> str:
    tail = f"{_mode(step.is_async)}, {step.technology}" if step.technology else _mode(step.is_async)
    return f"step {step.index} {step.source} → {step.target} {_q(step.label)} ({tail})"


def _element_text(element: Element) -> str:
    tail = f"{element.kind}, {element.technology}" if element.technology else element.kind
    return f"element {element.id} {_q(element.name)} ({tail})"


def _source_text(row: Source) -> str:
    return f"source {_q(row.source)} → {_q(row.consumer)}"


class _Context:
    """Collects items and notes while comparing; knows both models' elements."""

    def __init__(self, baseline: FlowModel, current: FlowModel, *, strict: bool, min_count: int) -> None:
        self.baseline = baseline
        self.current = current
        self.strict = strict
        self.min_count = min_count
        self.items: list[tuple[tuple, DriftItem]] = []
        self.notes: list[str] = []
        self.base_elements = {e.id: e for e in baseline.elements}
        self.cur_elements = {e.id: e for e in current.elements}
        self.gone_endpoints: set[str] = set()  # baseline elements of reported - (or ~ moved) steps
        self.new_endpoints: set[str] = set()  # current elements of reported + (or ~ moved) steps

    def add(self, kind: str, scenario: str, sign: str, message: str, order: tuple = ()) -> None:
        self.items.append(((scenario, order), DriftItem(kind, scenario, sign, message)))

    def sorted_items(self, results: Sequence[ScenarioResult]) -> tuple[DriftItem, ...]:
        position = {r.id: i for i, r in enumerate(results)}
        ranked = sorted(enumerate(self.items), key=lambda pair: (
            len(position) if pair[1][0][0] == MODEL_GROUP else position.get(pair[1][0][0], len(position)),
            pair[1][0][1], pair[0]))
        return tuple(item for _, (_, item) in ranked)

    def _ignored(self, step: Step) -> bool:
        return not step.declared and step.count < self.min_count

    # scenarios

    def add_scenario(self, scenario: Scenario) -> None:
        steps = [s for s in scenario.steps if not self._ignored(s)]
        self.add(SCENARIO_ADDED, scenario.id, "+",
                 f"scenario {scenario.id} {_q(scenario.title)} ({scenario.mode}, {len(steps)} steps)", (0,))
        for step in steps:
            self._step_added(scenario.id, step)
        self._note_ignored(scenario.id, [s for s in scenario.steps if self._ignored(s)])

    def remove_scenario(self, scenario: Scenario) -> None:
        self.add(SCENARIO_REMOVED, scenario.id, "-",
                 f"scenario {scenario.id} {_q(scenario.title)} not exercised by these traces", (0,))
        for step in scenario.steps:
            self.gone_endpoints.update((step.source, step.target))

    def compare_scenario(self, base: Scenario, cur: Scenario) -> None:
        sid = cur.id
        if base.id != cur.id:
            extra = f", title {_q(base.title)} → {_q(cur.title)}" if base.title != cur.title else ""
            self.add(SCENARIO_RENAMED, sid, "~", f"scenario id {base.id} → {cur.id}{extra}", (0,))
        elif base.title != cur.title:
            self.add(SCENARIO_RENAMED, sid, "~", f"scenario {cur.id}: title {_q(base.title)} → {_q(cur.title)}",
                     (0,))
        cur_by_key = {s.key: s for s in cur.steps}
        matched = [(b, cur_by_key[b.key]) for b in base.steps if b.key in cur_by_key]
        matched_keys = {b.key for b, _ in matched}
        removed = [b for b in base.steps if b.key not in matched_keys]
        added = [c for c in cur.steps if c.key not in matched_keys]
        for b, c in matched:
            if b.technology != c.technology:
                self.add(STEP_TECHNOLOGY, sid, "~", f"step {c.index} {c.source} → {c.target} {_q(c.label)}: "
                         f"technology {b.technology or '(none)'} → {c.technology or '(none)'}",
                         (1, _index_key(c.index)))
            if self.strict and b.optional != c.optional:
                was, now = ("optional", "required") if b.optional else ("required", "optional")
                self.add(STEP_OPTIONAL, sid, "~", f"step {c.index} {c.source} → {c.target} {_q(c.label)}: "
                         f"{was} → {now}", (1, _index_key(c.index)))
        if self.strict:
            self._compare_order(sid, matched)
        removed, added = self._pair_mode_flips(sid, removed, added)
        removed, added = self._pair_queued_calls(sid, removed, added)
        removed, added = self._pair_labels(sid, removed, added)
        for step in removed:
            if step.optional and not step.declared:
                self.notes.append(f"{sid}: optional {_step_text(step)} not exercised in this run")
            elif self._ignored(step):
                self._note_ignored(sid, [step])
            else:
                self.add(STEP_REMOVED, sid, "-", _step_text(step), (1, _index_key(step.index)))
                self.gone_endpoints.update((step.source, step.target))
        for step in added:
            if self._ignored(step):
                self._note_ignored(sid, [step])
            else:
                self._step_added(sid, step)

    def _step_added(self, sid: str, step: Step) -> None:
        self.add(STEP_ADDED, sid, "+", _step_text(step), (1, _index_key(step.index)))
        self.new_endpoints.update((step.source, step.target))

    def _note_ignored(self, sid: str, steps: Iterable[Step]) -> None:
        for step in steps:
            self.notes.append(f"{sid}: {_step_text(step)} seen {step.count} times, fewer than --min-count "
                              f"{self.min_count}: ignored")

    def _compare_order(self, sid: str, matched: Sequence[tuple[Step, Step]]) -> None:
        """Relative order among matched steps only, so a step added in front shifts no one into drift."""
        def dense(indices: Sequence[str]) -> dict[str, int]:
            ordered = sorted(set(indices), key=_index_key)
            return {index: rank for rank, index in enumerate(ordered, start=1)}

        base_rank = dense([b.index for b, _ in matched])
        cur_rank = dense([c.index for _, c in matched])
        for b, c in matched:
            if base_rank[b.index] != cur_rank[c.index]:
                self.add(STEP_ORDER, sid, "~", f"step {c.index} {c.source} → {c.target} {_q(c.label)}: "
                         f"position {base_rank[b.index]} → {cur_rank[c.index]} among unchanged steps",
                         (1, _index_key(c.index)))

    def _pair_mode_flips(self, sid: str, removed: list[Step], added: list[Step]) -> tuple[list[Step], list[Step]]:
        rest: list[Step] = []
        for b in removed:
            partner = next((c for c in added if (c.source, c.target, c.label) == (b.source, b.target, b.label)),
                           None)
            if partner is None:
                rest.append(b)
                continue
            added.remove(partner)
            self.add(STEP_MODE, sid, "~", f"step {partner.index} {partner.source} → {partner.target} "
                     f"{_q(partner.label)}: {_mode(b.is_async)} → {_mode(partner.is_async)}",
                     (1, _index_key(partner.index)))
        return rest, added

    def _queue_hops(self, steps: Sequence[Step], kinds: Mapping[str, Element]) -> list[tuple[Step, Step]]:
        """Async (A → Q, Q → C) pairs through a queue element Q."""
        hops = []
        for first in steps:
            queue = kinds.get(first.target)
            if not first.is_async or queue is None or queue.kind != "queue":
                continue
            for second in steps:
                if second.is_async and second.source == first.target and second is not first:
                    hops.append((first, second))
        return hops

    def _pair_queued_calls(self, sid: str, removed: list[Step], added: list[Step]
                           ) -> tuple[list[Step], list[Step]]:
        """A sync call A → C that became async A → Q → C (or back) is one ``~``, not three lines."""
        rest_removed = list(removed)
        rest_added = list(added)
        for b in removed:
            if b.is_async:
                continue
            for first, second in self._queue_hops(rest_added, self.cur_elements):
                if first.source == b.source and second.target == b.target:
                    rest_removed.remove(b)
                    rest_added.remove(first)
                    rest_added.remove(second)
                    self.add(STEP_MODE, sid, "~", f"step {first.index} {b.source} → {b.target} {_q(b.label)}: "
                             f"sync → async via {first.target} {_q(first.label)}", (1, _index_key(first.index)))
                    self.new_endpoints.add(first.target)
                    break
        for c in list(rest_added):
            if c.is_async:
                continue
            for first, second in self._queue_hops(rest_removed, self.base_elements):
                if first.source == c.source and second.target == c.target:
                    rest_added.remove(c)
                    rest_removed.remove(first)
                    rest_removed.remove(second)
                    self.add(STEP_MODE, sid, "~", f"step {c.index} {c.source} → {c.target} {_q(c.label)}: "
                             f"async via {first.target} {_q(first.label)} → sync", (1, _index_key(c.index)))
                    self.gone_endpoints.add(first.target)
                    break
        return rest_removed, rest_added

    def _pair_labels(self, sid: str, removed: list[Step], added: list[Step]) -> tuple[list[Step], list[Step]]:
        rest: list[Step] = []
        for b in sorted(removed, key=lambda s: _index_key(s.index)):
            partner = next((c for c in sorted(added, key=lambda s: _index_key(s.index))
                            if (c.source, c.target, c.is_async) == (b.source, b.target, b.is_async)), None)
            if partner is None:
                rest.append(b)
                continue
            added.remove(partner)
            self.add(STEP_LABEL, sid, "~", f"step {partner.index} {partner.source} → {partner.target}: label "
                     f"{_q(b.label)} → {_q(partner.label)}", (1, _index_key(partner.index)))
        return rest, added

    # elements and sources

    def compare_elements(self) -> None:
        referenced_base = {e for s in self.baseline.scenarios for step in s.steps for e in (step.source, step.target)}
        referenced_cur = {e for s in self.current.scenarios for step in s.steps for e in (step.source, step.target)}
        for element in self.baseline.elements:
            if element.id in self.cur_elements:
                self._compare_element(element, self.cur_elements[element.id])
            elif element.id in self.gone_endpoints or element.id not in referenced_base:
                self.add(ELEMENT_REMOVED, MODEL_GROUP, "-", _element_text(element), (2, element.id))
        for element in self.current.elements:
            if element.id in self.base_elements:
                continue
            if element.id in self.new_endpoints or element.id not in referenced_cur:
                self.add(ELEMENT_ADDED, MODEL_GROUP, "+", _element_text(element), (2, element.id))

    def _compare_element(self, base: Element, cur: Element) -> None:
        for kind, attribute in ((ELEMENT_KIND, "kind"), (ELEMENT_TECHNOLOGY, "technology"),
                                (ELEMENT_NAME, "name"), (ELEMENT_SYSTEM, "system")):
            was, now = getattr(base, attribute) or "", getattr(cur, attribute) or ""
            if was != now:
                shown = (_q(was), _q(now)) if attribute == "name" else (was or "(none)", now or "(none)")
                self.add(kind, MODEL_GROUP, "~", f"element {cur.id}: {attribute} {shown[0]} → {shown[1]}",
                         (2, cur.id))

    def compare_sources(self, renamed: Mapping[str, str], exercised_base: set[str], require_all: bool) -> None:
        """Rows of current scenarios are always compared (this run exercised them); baseline rows only when their
        scenario was exercised too, or with ``require_all``."""
        base_ids = {s.id for s in self.baseline.scenarios}
        cur_ids = {s.id for s in self.current.scenarios}
        base_rows = {(renamed.get(r.scenario, r.scenario), r.source): r for r in self.baseline.sources
                     if require_all or r.scenario not in base_ids or r.scenario in exercised_base}
        cur_rows = {(r.scenario, r.source): r for r in self.current.sources}
        for key in sorted(set(base_rows) | set(cur_rows)):
            b, c = base_rows.get(key), cur_rows.get(key)
            group = key[0] if key[0] in cur_ids or key[0] in base_ids else MODEL_GROUP
            if b is None and c is not None:
                self.add(SOURCE_ADDED, group, "+", f"{_source_text(c)} ({c.transport}, {c.cadence}"
                         f"{', brittle' if c.brittle else ''})", (3, key))
            elif c is None and b is not None:
                self.add(SOURCE_REMOVED, group, "-", f"{_source_text(b)} ({b.transport}, {b.cadence}"
                         f"{', brittle' if b.brittle else ''})", (3, key))
            elif b is not None and c is not None:
                changes = []
                if b.transport != c.transport:
                    changes.append(f"transport {b.transport} → {c.transport}")
                if b.cadence != c.cadence:
                    if b.cadence in _UNKNOWN_CADENCES or c.cadence in _UNKNOWN_CADENCES:
                        self.notes.append(f"{group or 'model'}: {_source_text(c)} cadence {b.cadence or '(none)'}"
                                          f" vs {c.cadence or '(none)'}: not known on both sides, not compared")
                    else:
                        changes.append(f"cadence {b.cadence} → {c.cadence}")
                if b.brittle != c.brittle:
                    changes.append("brittle → robust" if b.brittle else "robust → brittle")
                for change in changes:
                    self.add(SOURCE_CHANGED, group, "~", f"{_source_text(c)}: {change}", (3, key))


# --- formatters -------------------------------------------------------------------------------------------------

def _groups(drift: Drift) -> list[tuple[ScenarioResult | None, tuple[DriftItem, ...]]]:
    """(scenario, its items) for scenarios with items, in report order, then the model-wide group."""
    out: list[tuple[ScenarioResult | None, tuple[DriftItem, ...]]] = []
    for result in drift.scenarios:
        items = drift.items_of(result.id)
        if items:
            out.append((result, items))
    model_items = drift.items_of(MODEL_GROUP)
    if model_items:
        out.append((None, model_items))
    return out


def _heading(result: ScenarioResult | None) -> str:
    if result is None:
        return "elements and sources"
    return f"scenario {result.id} {_q(result.title)}"


def _coverage_lines(drift: Drift) -> list[str]:
    lines: list[str] = []
    if drift.not_exercised:
        lines.append(f"not exercised by these traces ({len(drift.not_exercised)}): "
                     + ", ".join(drift.not_exercised))
    if drift.unmatched:
        lines.append("traces matching no declared scenario: "
                     + ", ".join(f"{sid} ({count} traces)" for sid, count in drift.unmatched))
    return lines


def _summary(drift: Drift) -> str:
    scenarios = sum(1 for result, _ in _groups(drift) if result is not None)
    if not drift:
        compared = sum(1 for r in drift.scenarios if r.status != "not-exercised")
        return f"no drift ({compared} scenario{'s' if compared != 1 else ''} compared)"
    return (f"drift: {len(drift.items)} change{'s' if len(drift.items) != 1 else ''} in {scenarios} "
            f"scenario{'s' if scenarios != 1 else ''}")


def format_text(drift: Drift) -> str:
    """The terminal report: a summary line, then ``+``/``-``/``~`` lines grouped per scenario, then coverage."""
    lines = [f"tracegen check: {_summary(drift)}"]
    for result, items in _groups(drift):
        lines.append("")
        lines.append(_heading(result))
        lines.extend(f"  {item.line}" for item in items)
    coverage = _coverage_lines(drift)
    if coverage:
        lines.append("")
        lines.extend(coverage)
    return "\n".join(lines) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


def _md(text: str) -> str:
    """Inline Markdown text from an untrusted value: one line, every markup character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _fence(body: str, info: str) -> str:
    """A fenced block whose fence is longer than any backtick run inside (labels are untrusted)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body.rstrip(chr(10))}\n{fence}"


def _diagram_of(scenario_id: str, pumls: Mapping[str, str]) -> tuple[str, str] | None:
    from tracegen.render._filters import slug

    for stem in (slug(scenario_id), f"scenario-{slug(scenario_id)}"):
        path = f"diagrams/{stem}.puml"
        if path in pumls:
            return path, pumls[path]
    return None


def format_markdown(drift: Drift, current_pumls: Mapping[str, str]) -> str:
    """A pull-request comment: the changes per scenario in a ``diff`` block, each changed scenario's new diagram
    source in a ``plantuml`` block, coverage, and the command that accepts the change."""
    lines = ["## tracegen: architecture drift" if drift else "## tracegen: no architecture drift", ""]
    lines.append(_md(_summary(drift)).replace("\\(", "(").replace("\\)", ")") + ".")
    for result, items in _groups(drift):
        lines.append("")
        if result is None:
            lines.append("### Elements and sources")
        else:
            renamed = (f" (was `{result.baseline_id}`)" if result.baseline_id and result.baseline_id != result.id
                       else "")
            lines.append(f"### Scenario `{result.id}`{renamed}: {_md(result.title)}")
        lines.append("")
        lines.append(_fence("\n".join(item.line for item in items), "diff"))
        diagram = _diagram_of(result.id, current_pumls) if result and result.status != "not-exercised" else None
        if diagram is not None:
            path, source = diagram
            lines.extend(["", "<details open><summary>New diagram source: " + f"<code>{path}</code></summary>", "",
                          _fence(source, "plantuml"), "", "</details>"])
    coverage = _coverage_lines(drift)
    if coverage:
        lines.append("")
        lines.extend(f"- {_md(line)}" for line in coverage)
    if drift.notes:
        lines.extend(["", "<details><summary>Not drift</summary>", ""])
        lines.extend(f"- {_md(note)}" for note in drift.notes)
        lines.extend(["", "</details>"])
    if drift:
        lines.extend(["", "If the change is intended, accept it with `tracegen check --update` and commit the "
                          "baseline."])
    return "\n".join(lines) + "\n"


def format_json(drift: Drift) -> str:
    """Machine-readable: ``drift`` (bool), ``items``, ``scenarios``, ``not_exercised``, ``unmatched``, ``notes``."""
    doc = {
        "drift": bool(drift),
        "items": [{"kind": i.kind, "scenario": i.scenario, "sign": i.sign, "message": i.message}
                  for i in drift.items],
        "scenarios": [{"id": r.id, "title": r.title, "status": r.status, "baseline_id": r.baseline_id}
                      for r in drift.scenarios],
        "not_exercised": list(drift.not_exercised),
        "unmatched": [{"scenario": sid, "traces": count} for sid, count in drift.unmatched],
        "notes": list(drift.notes),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def format_junit(drift: Drift) -> str:
    """JUnit XML: one testcase per scenario (a failure lists its drift; unexercised ones are skipped unless they
    are drift) and one for the model-wide elements and sources."""
    cases: list[ET.Element] = []
    failures = skipped = 0
    for result in drift.scenarios:
        case = ET.Element("testcase", {"classname": "tracegen.check.scenario", "name": _xml(result.id)})
        items = drift.items_of(result.id)
        if items:
            failures += 1
            failure = ET.SubElement(case, "failure", {
                "type": "drift", "message": _xml(f"{len(items)} change{'s' if len(items) != 1 else ''}: "
                                                  f"{result.title}")})
            failure.text = _xml("\n".join(item.line for item in items))
        elif result.status == "not-exercised":
            skipped += 1
            ET.SubElement(case, "skipped", {"message": "not exercised by these traces"})
        cases.append(case)
    model_case = ET.Element("testcase", {"classname": "tracegen.check.model", "name": "elements and sources"})
    model_items = drift.items_of(MODEL_GROUP)
    if model_items:
        failures += 1
        failure = ET.SubElement(model_case, "failure", {
            "type": "drift", "message": f"{len(model_items)} change{'s' if len(model_items) != 1 else ''}"})
        failure.text = _xml("\n".join(item.line for item in model_items))
    cases.append(model_case)
    attrs = {"name": "tracegen check", "tests": str(len(cases)), "failures": str(failures), "errors": "0",
             "skipped": str(skipped)}
    root = ET.Element("testsuites", {k: v for k, v in attrs.items() if k != "skipped"})
    suite = ET.SubElement(root, "testsuite", attrs)
    suite.extend(cases)
    if drift.unmatched or drift.notes:
        out = ET.SubElement(suite, "system-out")
        out.text = _xml("\n".join(_coverage_lines(drift) + list(drift.notes)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
