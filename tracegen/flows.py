"""Merge per-trace flows into scenarios, and finalise them into the :class:`~tracegen.model.FlowModel`.

Two halves, both without I/O:

:class:`FlowAccumulator` (``add_flow``, ``merge``, ``to_state``/``from_state``) holds only commutative state:
per scenario and step, counts, fixed-bucket latency histograms, min/max times, rank sums, the smallest exemplar
trace ids, the largest run start times; a producer index (span id → scenario) for link stitching; and
continuations whose producer has not been seen yet. Adding the same traces in any order, or merging shards in any
grouping, gives the same state.

:func:`build_model` turns that state into the model, deciding what needs the whole picture:
- scenario membership: an explicit ``tracegen.scenario`` attribute wins, then the first matching config rule
  (a declared journey; its entries number their steps in the rule's order), else the entry signature;
- a virtual element whose name (or an alias) is a known service's name or host name becomes that service;
- a root consumer's trigger is a ``Scheduler`` when its runs recur at a regular cadence, else the traced
  services that publish the same message to the same destination elsewhere, else an unknown external producer;
  a continuation whose producer never arrived becomes a scenario of its own;
- step order is the mean of each step's ranks; equal means share an index (parallel steps); a step seen in fewer
  traces than its scenario is optional;
- mode and its wording (DESIGN.md): sync → "synchronous"; mixed within one system → "synchronous + async";
  mixed across two or more systems → "cross-service, mixed"; async only → "asynchronous".
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, Iterable, Mapping

from tracegen.config import Config, ScenarioRule, ServiceConfig
from tracegen.infer import TRIGGER, ElementSeen, StepSeen, TraceFlow, service_element_id
from tracegen.model import (
    Diagnostics,
    Element,
    FlowModel,
    Histogram,
    Scenario,
    Source,
    Step,
    System,
)
from tracegen.naming import slugify

__all__ = ["FlowAccumulator", "build_model", "infer_cadence", "MAX_EXEMPLARS", "MAX_RUN_STARTS"]

MAX_EXEMPLARS = 3
MAX_RUN_STARTS = 256
_RANK_STRIDE = 1000  # a declared journey's entry k numbers its steps after entry k-1's


@dataclass(slots=True)
class _StepAcc:
    source: str
    target: str
    label: str
    is_async: bool
    technology: str = ""
    count: int = 0
    traces: int = 0
    errors: int = 0
    retries: int = 0
    histogram: dict[int, int] = field(default_factory=dict)
    first_ns: int = 0
    last_ns: int = 0
    provenance: str = ""
    exemplars: list[str] = field(default_factory=list)
    rank_sum: int = 0
    rank_count: int = 0
    hints: set[str] = field(default_factory=set)
    entries: set[str] = field(default_factory=set)
    phase_ranks: dict[int, list[int]] = field(default_factory=dict)

    def merge(self, other: "_StepAcc") -> None:
        self.technology = _min_nonempty(self.technology, other.technology)
        self.count += other.count
        self.traces += other.traces
        self.errors += other.errors
        self.retries += other.retries
        for index, value in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + value
        self.first_ns = _min_time(self.first_ns, other.first_ns)
        self.last_ns = max(self.last_ns, other.last_ns)
        self.provenance = _min_nonempty(self.provenance, other.provenance)
        self.exemplars = sorted(set(self.exemplars) | set(other.exemplars))[:MAX_EXEMPLARS]
        self.rank_sum += other.rank_sum
        self.rank_count += other.rank_count
        self.hints |= other.hints
        self.entries |= other.entries
        for phase, (total, count) in other.phase_ranks.items():
            mine = self.phase_ranks.setdefault(phase, [0, 0])
            mine[0] += total
            mine[1] += count

    def order_key(self) -> tuple[int, Fraction]:
        """Earliest journey phase (entry) the step occurs in, then its mean rank there (commutative)."""
        if not self.phase_ranks:
            return (0, Fraction(self.rank_sum, max(1, self.rank_count)))
        phase = min(self.phase_ranks)
        total, count = self.phase_ranks[phase]
        return (phase, Fraction(total, max(1, count)))


@dataclass(slots=True)
class _ScenarioAcc:
    key: str
    traces: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    triggers: Counter = field(default_factory=Counter)
    steps: dict[tuple[str, str, str, bool], _StepAcc] = field(default_factory=dict)
    run_starts: dict[str, list[int]] = field(default_factory=dict)
    signature_triggers: dict[str, Counter] = field(default_factory=dict)
    signature_traces: Counter = field(default_factory=Counter)
    unknown_producers: dict[str, ElementSeen] = field(default_factory=dict)
    tasks: set[str] = field(default_factory=set)
    first_ns: int = 0
    last_ns: int = 0
    title_hint: str = ""

    def merge(self, other: "_ScenarioAcc") -> None:
        self.traces += other.traces
        for signature, position in other.signatures.items():
            self.signatures[signature] = min(position, self.signatures.get(signature, position))
        self.triggers.update(other.triggers)
        for key, step in other.steps.items():
            if key in self.steps:
                self.steps[key].merge(step)
            else:
                self.steps[key] = _copy_step(step)
        for signature, starts in other.run_starts.items():
            self.run_starts[signature] = _latest(self.run_starts.get(signature, []), starts)
        for signature, counter in other.signature_triggers.items():
            self.signature_triggers.setdefault(signature, Counter()).update(counter)
        self.signature_traces.update(other.signature_traces)
        for element_id, element in other.unknown_producers.items():
            self.unknown_producers.setdefault(element_id, element)
        self.tasks |= other.tasks
        self.first_ns = _min_time(self.first_ns, other.first_ns)
        self.last_ns = max(self.last_ns, other.last_ns)
        self.title_hint = _min_nonempty(self.title_hint, other.title_hint)


def _latest(a: Iterable[int], b: Iterable[int]) -> list[int]:
    """The most recent run starts of both (a bounded, commutative union)."""
    return sorted(heapq.nlargest(MAX_RUN_STARTS, set(a) | set(b)))


def _copy_step(step: _StepAcc) -> _StepAcc:
    fresh = _StepAcc(step.source, step.target, step.label, step.is_async)
    fresh.merge(step)
    return fresh


def _min_nonempty(a: str, b: str) -> str:
    if not a:
        return b
    if not b:
        return a
    return min(a, b)


def _min_time(a: int, b: int) -> int:
    if not a:
        return b
    if not b:
        return a
    return min(a, b)


@dataclass(slots=True)
class _Pending:
    """A continuation whose producer span has not been seen (yet)."""

    trace_id: str
    links: tuple[tuple[str, str], ...]
    flow_key: str
    signature: str
    steps: list[StepSeen]
    start_ns: int
    task: str
    producers: tuple[tuple[str, int], ...] = ()


class FlowAccumulator:
    """Commutative, mergeable state of everything seen; :func:`build_model` finalises it."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.scenarios: dict[str, _ScenarioAcc] = {}
        self.elements: dict[str, ElementSeen] = {}
        self.element_times: dict[str, tuple[int, int]] = {}
        self.producers: dict[str, tuple[str, int, str]] = {}
        self.pending: dict[str, _Pending] = {}
        self.waiting: dict[str, set[str]] = {}  # producer span id → trace ids of continuations waiting for it
        self.counters: Counter = Counter()
        self.dropped: Counter = Counter()
        self.consumers_without_producer: set[str] = set()

    # -- adding ---------------------------------------------------------------------------------------------
    def add_flow(self, flow: TraceFlow) -> None:
        """Add one trace's flow (its steps go to its scenario, or wait for the producer it continues)."""
        self.counters["traces"] += 1
        self.counters["orphan_spans"] += flow.orphan_spans
        self.dropped.update(flow.dropped)
        self.consumers_without_producer.update(flow.consumers_without_producer)
        for element in flow.elements.values():
            self._observe(element, flow.start_ns, flow.end_ns)
        if not flow.steps and not flow.entry_service:
            self.counters["dropped_traces"] += 1
            return
        if flow.is_continuation:
            pending = _Pending(flow.trace_id, flow.links, _scenario_key(flow, self.config)[0], flow.signature,
                               list(flow.steps), flow.start_ns, flow.task, tuple(flow.producers))
            if flow.unknown_producer is not None:
                self._observe(flow.unknown_producer, flow.start_ns, flow.end_ns)
            self._continue(pending)
            return
        key, position, title = _scenario_key(flow, self.config)
        scenario = self.scenarios.setdefault(key, _ScenarioAcc(key))
        scenario.traces += 1
        scenario.signatures[flow.signature] = min(position, scenario.signatures.get(flow.signature, position))
        scenario.triggers[flow.trigger] += 1
        scenario.signature_triggers.setdefault(flow.signature, Counter())[flow.trigger] += 1
        scenario.signature_traces[flow.signature] += 1
        scenario.title_hint = _min_nonempty(scenario.title_hint, title)
        if flow.task:
            scenario.tasks.add(flow.task)
        if flow.trigger in ("unknown", "scheduled"):
            scenario.run_starts[flow.signature] = _latest(scenario.run_starts.get(flow.signature, []),
                                                          [flow.start_ns])
        if flow.unknown_producer is not None:
            scenario.unknown_producers.setdefault(flow.unknown_producer.id, flow.unknown_producer)
        scenario.first_ns = _min_time(scenario.first_ns, flow.start_ns)
        scenario.last_ns = max(scenario.last_ns, flow.end_ns)
        _add_steps(scenario, flow.steps, flow.trace_id, position * _RANK_STRIDE, flow.signature)
        for span_id, rank in flow.producers:
            self._index_producer(span_id, (key, position * _RANK_STRIDE + rank, flow.signature))

    def _observe(self, element: ElementSeen, start_ns: int, end_ns: int) -> None:
        known = self.elements.get(element.id)
        if known is None:
            self.elements[element.id] = element
        elif known is not element and known != element:
            self.elements[element.id] = _merge_element(known, element)
        first, last = self.element_times.get(element.id, (0, 0))
        self.element_times[element.id] = (_min_time(first, start_ns), max(last, end_ns))

    def _index_producer(self, span_id: str, target: tuple[str, int, str]) -> None:
        """Remember which scenario (and entry, at which rank) a producer span belongs to; wake its waiters."""
        known = self.producers.get(span_id)
        self.producers[span_id] = target if known is None else min(known, target)
        for trace_id in sorted(self.waiting.pop(span_id, ())):
            pending = self.pending.pop(trace_id, None)
            if pending is not None:
                self._unwait(pending)
                self._continue(pending)

    def forget_producer(self, span_id: str) -> bool:
        """Drop a producer from the link index (a sidecar's TTL); True when it was indexed."""
        return self.producers.pop(span_id, None) is not None

    def evict_pending(self, trace_id: str) -> bool:
        """Drop a continuation still waiting for its producer (a sidecar's cap); True when it was waiting."""
        pending = self.pending.pop(trace_id, None)
        if pending is None:
            return False
        self._unwait(pending)
        return True

    def _unwait(self, pending: _Pending) -> None:
        for _, linked in pending.links:
            waiters = self.waiting.get(linked)
            if waiters is not None:
                waiters.discard(pending.trace_id)
                if not waiters:
                    del self.waiting[linked]

    def _continue(self, pending: _Pending) -> None:
        targets = sorted({self.producers[span_id] for _, span_id in pending.links if span_id in self.producers})
        if not targets:
            self.pending[pending.trace_id] = pending
            for _, linked in pending.links:
                self.waiting.setdefault(linked, set()).add(pending.trace_id)
            return
        done: set[str] = set()
        for scenario_key, rank, signature in targets:
            if scenario_key in done:
                continue
            done.add(scenario_key)
            scenario = self.scenarios.setdefault(scenario_key, _ScenarioAcc(scenario_key))
            _add_steps(scenario, pending.steps, pending.trace_id, rank, signature)
            if pending.task:
                scenario.tasks.add(pending.task)
        self.counters["continuations"] += 1
        # Producers inside a continuation continue the same scenario: chains (beat → task → subtasks) resolve.
        first_key, first_rank, first_signature = targets[0]
        for span_id, rank in pending.producers:
            self._index_producer(span_id, (first_key, first_rank + rank, first_signature))

    # -- merging --------------------------------------------------------------------------------------------
    def merge(self, other: "FlowAccumulator") -> None:
        """Fold another accumulator (a shard, a file, a sidecar's model) into this one."""
        for key, scenario in other.scenarios.items():
            if key in self.scenarios:
                self.scenarios[key].merge(scenario)
            else:
                fresh = _ScenarioAcc(key)
                fresh.merge(scenario)
                self.scenarios[key] = fresh
        for element_id, element in other.elements.items():
            first, last = other.element_times.get(element_id, (0, 0))
            self._observe(element, first, last)
        self.counters.update(other.counters)
        self.dropped.update(other.dropped)
        self.consumers_without_producer |= other.consumers_without_producer
        for span_id, target in sorted(other.producers.items()):
            self._index_producer(span_id, target)
        for pending in sorted(other.pending.values(), key=lambda p: p.trace_id):
            if pending.trace_id not in self.pending:
                self._continue(pending)

    # -- state ----------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-able state, embedded in ``model.json`` so ``tracegen merge`` can combine runs exactly."""
        return {
            "scenarios": [_scenario_state(s) for _, s in sorted(self.scenarios.items())],
            "elements": [_element_state(e, self.element_times.get(e.id, (0, 0)))
                         for _, e in sorted(self.elements.items())],
            "producers": [[span_id, *target] for span_id, target in sorted(self.producers.items())],
            "pending": [_pending_state(p) for _, p in sorted(self.pending.items())],
            "counters": dict(sorted(self.counters.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "consumers_without_producer": sorted(self.consumers_without_producer),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: Config | None = None) -> "FlowAccumulator":
        """Rebuild an accumulator from :meth:`to_state` output (the ``state`` of a ``model.json``)."""
        acc = cls(config)
        for raw in state.get("scenarios", []):
            scenario = _ScenarioAcc(raw["key"], traces=raw["traces"], signatures=dict(raw["signatures"]),
                                    triggers=Counter(raw["triggers"]),
                                    run_starts={k: list(v) for k, v in raw["run_starts"].items()},
                                    signature_triggers={k: Counter(v) for k, v in
                                                        raw["signature_triggers"].items()},
                                    signature_traces=Counter(raw["signature_traces"]),
                                    tasks=set(raw["tasks"]), first_ns=raw["first_ns"], last_ns=raw["last_ns"],
                                    title_hint=raw.get("title_hint", ""))
            scenario.unknown_producers = {e["id"]: _element_from_state(e) for e in raw["unknown_producers"]}
            for s in raw["steps"]:
                step = _StepAcc(s["source"], s["target"], s["label"], s["async"], technology=s["technology"],
                                count=s["count"], traces=s["traces"], errors=s["errors"], retries=s["retries"],
                                histogram={int(k): v for k, v in s["histogram"]}, first_ns=s["first_ns"],
                                last_ns=s["last_ns"], provenance=s["provenance"], exemplars=list(s["exemplars"]),
                                rank_sum=s["rank_sum"], rank_count=s["rank_count"], hints=set(s["hints"]),
                                entries=set(s["entries"]),
                                phase_ranks={int(p): [t, c] for p, t, c in s["phase_ranks"]})
                scenario.steps[(step.source, step.target, step.label, step.is_async)] = step
            acc.scenarios[scenario.key] = scenario
        for raw in state.get("elements", []):
            element = _element_from_state(raw)
            acc.elements[element.id] = element
            acc.element_times[element.id] = (raw.get("first_seen_ns", 0), raw.get("last_seen_ns", 0))
        acc.producers = {span_id: (key, rank, signature)
                         for span_id, key, rank, signature in state.get("producers", [])}
        for raw in state.get("pending", []):
            pending = _Pending(raw["trace_id"], tuple(tuple(link) for link in raw["links"]), raw["flow_key"],
                               raw["signature"], [_step_seen(s) for s in raw["steps"]], raw["start_ns"], raw["task"],
                               tuple((span_id, rank) for span_id, rank in raw.get("producers", [])))
            acc.pending[pending.trace_id] = pending
            for _, linked in pending.links:
                acc.waiting.setdefault(linked, set()).add(pending.trace_id)
        acc.counters = Counter(state.get("counters", {}))
        acc.dropped = Counter(state.get("dropped", {}))
        acc.consumers_without_producer = set(state.get("consumers_without_producer", []))
        return acc


def _add_steps(scenario: _ScenarioAcc, steps: Iterable[StepSeen], trace_id: str, offset: int,
               signature: str) -> None:
    """Fold one trace's steps into a scenario: identical steps collapse first, so ``traces`` counts once."""
    per_trace: dict[tuple[str, str, str, bool], _StepAcc] = {}
    for step in steps:
        key = (step.source, step.target, step.label, step.is_async)
        acc = per_trace.get(key)
        if acc is None:
            acc = per_trace[key] = _StepAcc(step.source, step.target, step.label, step.is_async,
                                            technology=step.technology, traces=1, provenance=step.provenance,
                                            exemplars=[trace_id], rank_sum=offset + step.rank, rank_count=1,
                                            first_ns=step.start_ns, last_ns=step.start_ns,
                                            entries={signature},
                                            phase_ranks={(offset + step.rank) // _RANK_STRIDE:
                                                         [offset + step.rank, 1]})
        acc.technology = _min_nonempty(acc.technology, step.technology)
        if step.retry:
            acc.retries += 1
        else:
            acc.count += 1
        acc.errors += int(step.error)
        bucket = Histogram.of(step.duration_ms).buckets[0][0]
        acc.histogram[bucket] = acc.histogram.get(bucket, 0) + 1
        acc.first_ns = _min_time(acc.first_ns, step.start_ns)
        acc.last_ns = max(acc.last_ns, step.start_ns)
        acc.hints.update(step.hints)
    for key, acc in per_trace.items():
        if key in scenario.steps:
            scenario.steps[key].merge(acc)
        else:
            scenario.steps[key] = acc


def _step_seen(raw: Mapping[str, Any]) -> StepSeen:
    return StepSeen(source=raw["source"], target=raw["target"], label=raw["label"], technology=raw["technology"],
                    is_async=raw["is_async"], rank=raw["rank"], duration_ms=raw["duration_ms"], error=raw["error"],
                    retry=raw["retry"], provenance=raw["provenance"], start_ns=raw["start_ns"],
                    hints=tuple(raw.get("hints", ())))


def _scenario_state(s: _ScenarioAcc) -> dict[str, Any]:
    return {
        "key": s.key, "traces": s.traces, "signatures": dict(sorted(s.signatures.items())),
        "triggers": dict(sorted(s.triggers.items())),
        "run_starts": {k: sorted(v) for k, v in sorted(s.run_starts.items())},
        "signature_triggers": {k: dict(sorted(v.items())) for k, v in sorted(s.signature_triggers.items())},
        "signature_traces": dict(sorted(s.signature_traces.items())),
        "tasks": sorted(s.tasks), "first_ns": s.first_ns, "last_ns": s.last_ns, "title_hint": s.title_hint,
        "unknown_producers": [_element_state(e, (0, 0)) for _, e in sorted(s.unknown_producers.items())],
        "steps": [{
            "source": a.source, "target": a.target, "label": a.label, "async": a.is_async,
            "technology": a.technology, "count": a.count, "traces": a.traces, "errors": a.errors,
            "retries": a.retries, "histogram": sorted(a.histogram.items()), "first_ns": a.first_ns,
            "last_ns": a.last_ns, "provenance": a.provenance, "exemplars": a.exemplars,
            "rank_sum": a.rank_sum, "rank_count": a.rank_count, "hints": sorted(a.hints),
            "entries": sorted(a.entries),
            "phase_ranks": [[phase, *pair] for phase, pair in sorted(a.phase_ranks.items())],
        } for _, a in sorted(s.steps.items())],
    }


def _element_state(e: ElementSeen, times: tuple[int, int]) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "kind": e.kind, "technology": e.technology,
            "tech_priority": e.tech_priority, "system_hint": e.system_hint, "aliases": list(e.aliases),
            "virtual": e.virtual, "why_virtual": e.why_virtual, "service_names": list(e.service_names),
            "hosts": list(e.hosts), "first_seen_ns": times[0], "last_seen_ns": times[1]}


def _element_from_state(raw: Mapping[str, Any]) -> ElementSeen:
    return ElementSeen(id=raw["id"], name=raw["name"], kind=raw["kind"], technology=raw["technology"],
                       tech_priority=raw["tech_priority"], system_hint=raw["system_hint"],
                       aliases=tuple(raw["aliases"]), virtual=raw["virtual"], why_virtual=raw["why_virtual"],
                       service_names=tuple(raw["service_names"]), hosts=tuple(raw["hosts"]))


def _pending_state(p: _Pending) -> dict[str, Any]:
    return {"trace_id": p.trace_id, "links": [list(link) for link in p.links], "flow_key": p.flow_key,
            "signature": p.signature, "start_ns": p.start_ns, "task": p.task,
            "producers": [list(pair) for pair in p.producers],
            "steps": [{"source": s.source, "target": s.target, "label": s.label, "technology": s.technology,
                       "is_async": s.is_async, "rank": s.rank, "duration_ms": s.duration_ms, "error": s.error,
                       "retry": s.retry, "provenance": s.provenance, "start_ns": s.start_ns,
                       "hints": list(s.hints)} for s in p.steps]}


def _merge_element(known: ElementSeen, element: ElementSeen) -> ElementSeen:
    better = element.tech_priority < known.tech_priority or (
        element.tech_priority == known.tech_priority and element.technology < known.technology)
    return ElementSeen(
        id=known.id, name=min(known.name, element.name) if known.kind != "container" else known.name,
        kind=known.kind, technology=element.technology if better else known.technology,
        tech_priority=min(known.tech_priority, element.tech_priority),
        system_hint=_min_nonempty(known.system_hint, element.system_hint),
        aliases=tuple(sorted(set(known.aliases) | set(element.aliases))), virtual=known.virtual and element.virtual,
        why_virtual=_min_nonempty(known.why_virtual, element.why_virtual),
        service_names=tuple(sorted(set(known.service_names) | set(element.service_names))),
        hosts=tuple(sorted(set(known.hosts) | set(element.hosts))))


def _scenario_key(flow: TraceFlow, config: Config) -> tuple[str, int, str]:
    """(scenario key, entry position within a declared journey, title hint) for a non-continuation flow."""
    if flow.declared_scenario:
        rule = _rule_by_id(config, slugify(flow.declared_scenario))
        return (rule.id if rule else slugify(flow.declared_scenario)), 0, flow.declared_scenario
    for rule in config.scenarios:
        for position, match in enumerate(rule.match):
            if match.matches(flow.entry_service_name, flow.entry_operation, flow.entry_span_name,
                             flow.entry_route, flow.entry_attributes):
                return rule.id, position, rule.title
    return "entry:" + flow.signature, 0, ""


def _rule_by_id(config: Config, scenario_id: str) -> ScenarioRule | None:
    for rule in config.scenarios:
        if rule.id == scenario_id:
            return rule
    return None


# --- finalisation ---------------------------------------------------------------------------------------------

def infer_cadence(starts_ns: Iterable[int]) -> str:
    """A human cadence ("every 30 min", "hourly", "daily at 00:00 UTC") when runs recur regularly, else "".

    Needs three runs or more. The base period is the smallest gap (rounded to the minute); every gap must be a
    whole multiple of it within 2 % (missed runs are allowed, jitter of seconds too).
    """
    starts = sorted(set(starts_ns))
    if len(starts) < 3:
        return ""
    gaps = [(b - a) / 1e9 for a, b in zip(starts, starts[1:])]
    base = round(min(gaps) / 60.0) * 60
    if base < 60:
        return ""
    for gap in gaps:
        multiple = round(gap / base)
        if multiple < 1 or abs(gap - multiple * base) > max(30.0, 0.02 * base):
            return ""
    times = [datetime.fromtimestamp(ns / 1e9, tz=timezone.utc) for ns in starts]
    minutes = {t.hour * 60 + t.minute for t in times}
    if base % 604800 == 0:
        days = {t.strftime("%A") for t in times}
        at = f" at {times[0]:%H:%M} UTC" if len(minutes) == 1 else ""
        day = f" on {days.pop()}" if len(days) == 1 else ""
        return ("weekly" if base == 604800 else f"every {base // 604800} weeks") + day + at
    if base % 86400 == 0:
        at = f" at {times[0]:%H:%M} UTC" if len(minutes) == 1 else ""
        return ("daily" if base == 86400 else f"every {base // 86400} days") + at
    if base % 3600 == 0:
        return "hourly" if base == 3600 else f"every {base // 3600} h"
    return f"every {base // 60} min"


def signature_cadences(acc: "_ScenarioAcc") -> dict[str, str]:
    """Each scheduled or unknown-triggered entry's cadence, from its own run times (empty when irregular)."""
    out: dict[str, str] = {}
    for signature, starts in acc.run_starts.items():
        triggers = acc.signature_triggers.get(signature, Counter())
        if _majority(triggers) in ("unknown", "scheduled"):
            out[signature] = infer_cadence(starts)
    return out


_WORDING = {"sync": "synchronous", "async": "asynchronous"}


def build_model(acc: FlowAccumulator, *, generator: str = "", generated_at: str = "") -> FlowModel:
    """The flow model of everything accumulated (pure: the same state and config give the same model)."""
    config = acc.config
    scenarios = {key: _copy_scenario(s) for key, s in acc.scenarios.items()}
    unresolved = 0
    for pending in sorted(acc.pending.values(), key=lambda p: p.trace_id):
        unresolved += 1
        key = pending.flow_key
        scenario = scenarios.setdefault(key, _ScenarioAcc(key))
        scenario.traces += 1
        scenario.signatures.setdefault(pending.signature, 0)
        scenario.triggers["continuation"] += 1
        scenario.signature_triggers.setdefault(pending.signature, Counter())["continuation"] += 1
        scenario.signature_traces[pending.signature] += 1
        if pending.task:
            scenario.tasks.add(pending.task)
        _add_steps(scenario, pending.steps, pending.trace_id, 0, pending.signature)
    elements = dict(acc.elements)
    for scenario in scenarios.values():
        for element_id, element in scenario.unknown_producers.items():
            elements.setdefault(element_id, element)
    resolve = _service_resolution(elements, config)
    publishers = _publishers(scenarios.values(), resolve)
    built: list[Scenario] = []
    used: set[str] = set()
    persons: dict[str, Element] = {}
    source_rows: list[Source] = []
    for key, scenario in sorted(scenarios.items()):
        rule = _rule_by_id(config, key)
        model_scenario, extra, rows = _finish_scenario(key, scenario, rule, resolve, elements, config, publishers)
        built.append(model_scenario)
        source_rows.extend(rows)
        for person in extra:
            persons[person.id] = person
        for step in model_scenario.steps:
            used.update((step.source, step.target))
    final_elements = _final_elements(elements, acc.element_times, used, persons, config, built)
    systems = _final_systems(final_elements, config)
    built = _apply_wording(built, final_elements, config)
    built = _unique_ids(built)
    order = {rule.id: index for index, rule in enumerate(config.scenarios)}
    built.sort(key=lambda s: (order.get(s.id, len(order)), s.id))
    diagnostics = Diagnostics(
        spans=acc.counters.get("spans", 0), traces=acc.counters.get("traces", 0),
        orphan_spans=acc.counters.get("orphan_spans", 0),
        duplicate_spans=acc.counters.get("duplicate_spans", 0),
        conflicting_duplicates=acc.counters.get("conflicting_duplicates", 0), unresolved_links=unresolved,
        consumers_without_producer=tuple(sorted(acc.consumers_without_producer)),
        dropped=dict(sorted(acc.dropped.items())), notes=())
    return FlowModel(
        systems=systems, elements=final_elements, scenarios=tuple(built),
        sources=_annotate_sources(_named_sources(source_rows, final_elements), config), diagnostics=diagnostics,
        generator=generator, generated_at=generated_at, config_hash=config.digest,
        title=config.title or (systems[0].name if len(systems) == 1 else "Architecture"))


def _unique_ids(scenarios: list[Scenario]) -> list[Scenario]:
    """Two entries whose slugs collide ("GET /a-b" and "GET /a/b") get -2, -3… in key order (deterministic)."""
    seen: dict[str, int] = {}
    out = []
    for scenario in scenarios:
        count = seen.get(scenario.id, 0) + 1
        seen[scenario.id] = count
        out.append(scenario if count == 1 else replace(scenario, id=f"{scenario.id}-{count}"))
    return out


def _copy_scenario(s: _ScenarioAcc) -> _ScenarioAcc:
    fresh = _ScenarioAcc(s.key)
    fresh.merge(s)
    return fresh


def _service_resolution(elements: Mapping[str, ElementSeen], config: Config) -> dict[str, str]:
    """Virtual element id → service element id, when the virtual name is a known service's name or host."""
    names: dict[str, str] = {}
    for element in elements.values():
        if element.virtual or element.kind == "person":
            continue
        for value in (element.id, element.name, *element.service_names, *element.hosts):
            names.setdefault(value.lower(), element.id)
    for service, body in config.services.items():
        for host in body.hosts:
            target = service_element_id(service, config)
            names.setdefault(host.lower(), target)
    stores: dict[str, str] = {}
    for element in sorted(elements.values(), key=lambda e: e.id):
        if element.virtual and element.kind == "database":
            for value in (element.name, *element.aliases):
                stores.setdefault(value.lower(), element.id)
    mapping: dict[str, str] = {}
    for element in elements.values():
        if not element.virtual or element.kind != "external":
            continue  # a database named like a service (catalog next to catalog) stays its own element
        for value in sorted({element.name, *element.aliases}):
            hit = names.get(value.lower()) or names.get(value.lower().rsplit(":", 1)[0])
            if hit:
                mapping[element.id] = hit
                break
        else:
            # Plain HTTP to a host that database clients also reach (an HTTP client to Elasticsearch) is that store.
            for value in sorted({element.name, *element.aliases}):
                if value.lower() in stores:
                    mapping[element.id] = stores[value.lower()]
                    break
    return mapping


def _finish_scenario(key: str, acc: _ScenarioAcc, rule: ScenarioRule | None, resolve: Mapping[str, str],
                     elements: Mapping[str, ElementSeen], config: Config,
                     publishers: Mapping[tuple[str, str], set[str]]) -> tuple[Scenario, list[Element], list[Source]]:
    trigger = _majority(acc.triggers)
    cadences = signature_cadences(acc)
    ordered_signatures = sorted(acc.signatures, key=lambda sig: (acc.signatures[sig], sig))
    cadence = "; ".join(dict.fromkeys(cadences[sig] for sig in ordered_signatures if cadences.get(sig)))
    unknown_producer = sorted(acc.unknown_producers)[0] if acc.unknown_producers else "ext-unknown-producer"
    extra: list[Element] = []
    uses_scheduler = any(step.source == TRIGGER and any(cadences.get(e) for e in step.entries)
                         for step in acc.steps.values())
    if trigger == "unknown" and uses_scheduler:
        trigger = "scheduled"
    actor_id = ""
    if rule is not None and rule.actor:
        actor_id = slugify(rule.actor)
        extra.append(Element(id=actor_id, name=rule.actor, kind="person", aliases=("user",), virtual=True,
                             why_virtual="the person who starts this scenario (config actor)"))

    def remap(element_id: str, entries: set[str] = frozenset()) -> str:
        if element_id == TRIGGER:
            # A root consumer is fed by a scheduler when its entry's runs recur regularly, else by an unknown producer.
            return "scheduler" if any(cadences.get(e) for e in entries) else unknown_producer
        if element_id == "user" and actor_id:
            return actor_id
        return resolve.get(element_id, element_id)

    merged: dict[tuple[str, str, str, bool], _StepAcc] = {}
    for step in acc.steps.values():
        sources = [remap(step.source, step.entries)]
        provenance = step.provenance
        if step.source == TRIGGER and not any(cadences.get(e) for e in step.entries):
            # No producer span, link or cadence: the same message published by traced services elsewhere.
            known = sorted(publishers.get((step.target, step.label), ()))
            if known:
                sources = known
                provenance = "entry: consumer matched to the publishers of the same destination and message"
                if trigger == "unknown":
                    trigger = "message"
        target = remap(step.target)
        for source in sources:
            moved = _StepAcc(source, target, step.label, step.is_async)
            moved.merge(step)
            moved.provenance = provenance
            if step.source != source or step.target != target:
                moved.provenance = provenance + (
                    "; resolved to a known service by name or host" if resolve.get(step.target) or
                    resolve.get(step.source) else "")
            k = (source, target, step.label, step.is_async)
            if k in merged:
                merged[k].merge(moved)
            else:
                merged[k] = moved
    if uses_scheduler:
        extra.append(Element(id="scheduler", name="Scheduler", kind="external", technology="cron",
                             virtual=True, why_virtual="runs recur at a regular cadence with no producer span"))
    ordered = sorted(merged.values(), key=lambda a: (a.order_key(), a.source, a.target, a.label, a.is_async))
    steps: list[Step] = []
    index = 0
    last_rank: tuple[int, Fraction] | None = None
    for a in ordered:
        rank = a.order_key()
        if rank != last_rank:
            index += 1
            last_rank = rank
        steps.append(Step(
            index=str(index), source=a.source, target=a.target, label=a.label, technology=a.technology,
            is_async=a.is_async, count=a.count, traces=a.traces, optional=a.traces < _expected_traces(a, acc),
            latency=Histogram(tuple(sorted(a.histogram.items()))), errors=a.errors, retries=a.retries,
            first_seen_ns=a.first_ns, last_seen_ns=a.last_ns, provenance=a.provenance,
            exemplars=tuple(a.exemplars), rank_sum=a.rank_sum, rank_count=a.rank_count))
    for declared in config.steps:
        if declared.scenario != key:
            continue
        index += 1
        steps.append(Step(index=str(index), source=declared.source, target=declared.target,
                          label=declared.label, technology=declared.technology, is_async=declared.is_async,
                          count=0, traces=0, optional=False, provenance="declared in config", declared=True))
    has_async = any(s.is_async for s in steps)
    has_sync = any(not s.is_async for s in steps)
    mode = "mixed" if has_async and has_sync else "async" if has_async else "sync"
    signatures = tuple(sig for sig, _ in sorted(acc.signatures.items(), key=lambda item: (item[1], item[0])))
    title = rule.title if rule else (acc.title_hint or _title_of(signatures, elements))
    scenario_id = key if rule or not key.startswith("entry:") else slugify(key[len("entry:"):])
    if not rule and acc.title_hint:
        scenario_id = slugify(acc.title_hint)
    return Scenario(
        id=scenario_id, title=title, mode=mode, mode_wording=rule.mode_wording if rule else "",
        traces=acc.traces, steps=tuple(steps), description=rule.description if rule else "",
        entries=signatures, trigger=trigger, cadence=cadence, declared=rule is not None,
        first_seen_ns=acc.first_ns, last_seen_ns=acc.last_ns,
        run_starts_ns=tuple(sorted({t for starts in acc.run_starts.values() for t in starts}))), extra, \
        _scenario_sources(scenario_id, merged.values(), acc, cadences, elements)


def _publishers(scenarios: Iterable[_ScenarioAcc],
                resolve: Mapping[str, str]) -> dict[tuple[str, str], set[str]]:
    """Who publishes what: (queue id, message label) → publishing elements, over every scenario (a union)."""
    out: dict[tuple[str, str], set[str]] = {}
    for scenario in scenarios:
        for step in scenario.steps.values():
            if step.is_async and step.source != TRIGGER and step.target.startswith("queue-") and \
                    not step.source.startswith("queue-"):
                out.setdefault((step.target, step.label), set()).add(resolve.get(step.source, step.source))
    return out


def _expected_traces(step: _StepAcc, acc: _ScenarioAcc) -> int:
    """How many traces could have shown a step: those of the entries that make it (a journey's other entries
    never do), so a step is optional only when its own entry sometimes runs without it."""
    expected = sum(acc.signature_traces.get(entry, 0) for entry in step.entries)
    return expected or acc.traces


def _title_of(signatures: tuple[str, ...], elements: Mapping[str, ElementSeen]) -> str:
    if not signatures:
        return "Unknown entry"
    service, _, operation = signatures[0].partition(" ")
    element = elements.get(service)
    return f"{element.name if element else service}: {operation}" if operation else (
        element.name if element else service)


def _majority(counter: Counter) -> str:
    if not counter:
        return ""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[0][0]


def _final_elements(elements: Mapping[str, ElementSeen], times: Mapping[str, tuple[int, int]], used: set[str],
                    persons: Mapping[str, Element], config: Config,
                    scenarios: list[Scenario]) -> tuple[Element, ...]:
    callers: dict[str, set[str]] = {}
    for scenario in scenarios:
        for step in scenario.steps:
            callers.setdefault(step.target, set()).add(step.source)
            callers.setdefault(step.source, set()).add(step.target)
    container_systems: dict[str, str] = {}
    for element in elements.values():
        if not element.virtual:
            container_systems[element.id] = element.system_hint
    out: dict[str, Element] = {}
    container_names = {e.name.lower() for e in elements.values() if not e.virtual}
    virtual_names = Counter(elements[i].name.lower() for i in used if i in elements and elements[i].virtual)
    for element_id in sorted(used):
        if element_id in persons:
            out[element_id] = persons[element_id]
            continue
        seen = elements.get(element_id)
        if seen is None:
            if element_id == "scheduler":
                out[element_id] = Element(id="scheduler", name="Scheduler", kind="external", technology="cron",
                                          virtual=True,
                                          why_virtual="runs recur at a regular cadence with no producer span")
            continue
        system: str | None = seen.system_hint or None
        if seen.virtual and seen.kind in ("database", "queue"):
            neighbour_systems = {container_systems.get(n, "") for n in callers.get(element_id, set())
                                 if n in container_systems}
            system = neighbour_systems.pop() if len(neighbour_systems) == 1 else None
            system = system or None
        if seen.virtual and seen.kind in ("external", "person"):
            system = None
        name = seen.name
        clash = name.lower() in container_names or virtual_names[name.lower()] > 1
        if seen.virtual and clash and seen.technology:
            name = f"{name} ({seen.technology})"
        first, last = times.get(element_id, (0, 0))
        configured = _configured_service(seen, config)
        out[element_id] = Element(
            id=element_id, name=name, kind=seen.kind, system=system, technology=seen.technology,
            description=configured.description if configured else "",
            aliases=tuple(sorted(set(seen.aliases) | set(seen.service_names) | set(seen.hosts))),
            virtual=seen.virtual, why_virtual=seen.why_virtual if seen.virtual else "",
            first_seen_ns=first, last_seen_ns=last)
    for declared in config.elements:
        out[declared.id] = Element(id=declared.id, name=declared.name, kind=declared.kind,
                                   system=declared.system or None, technology=declared.technology,
                                   description=declared.description, declared=True)
    return tuple(out[key] for key in sorted(out))


def _configured_service(seen: ElementSeen, config: Config) -> ServiceConfig | None:
    for name in seen.service_names:
        body = config.services.get(name)
        if body is not None and body.description:
            return body
    return None


def _final_systems(elements: tuple[Element, ...], config: Config) -> tuple[System, ...]:
    systems: list[System] = [System(id=sid, name=body["name"], description=body["description"])
                             for sid, body in config.systems.items()]
    known = {s.id for s in systems}
    for element in elements:
        if element.system and element.system not in known:
            known.add(element.system)
            systems.append(System(id=element.system, name=element.system))
    configured = [s for s in systems if s.id in config.systems]
    others = sorted((s for s in systems if s.id not in config.systems), key=lambda s: s.id)
    return tuple(configured + others)


def _apply_wording(scenarios: list[Scenario], elements: tuple[Element, ...], config: Config) -> list[Scenario]:
    by_id = {e.id: e for e in elements}
    out = []
    for scenario in scenarios:
        if scenario.mode_wording:
            out.append(scenario)
            continue
        if scenario.mode != "mixed":
            wording = _WORDING[scenario.mode]
        else:
            systems = {by_id[e].system for s in scenario.steps for e in (s.source, s.target)
                       if e in by_id and by_id[e].kind == "container" and by_id[e].system}
            wording = "cross-service, mixed" if len(systems) >= 2 else "synchronous + async"
        out.append(replace(scenario, mode_wording=wording))
    return out


def _scenario_sources(scenario_id: str, steps: Iterable[_StepAcc], acc: _ScenarioAcc,
                      cadences: Mapping[str, str], elements: Mapping[str, ElementSeen]) -> list[Source]:
    """ETL rows of one scenario: what its scheduled, worker or continuation entries read, per entry.

    A row is a (source, entry) pair: the element a sync step reads from (an HTTP GET, an RPC Get/List, a scrape or
    feed) and the entry (task) whose runs make that step. Transport and brittleness come from the client spans'
    hints; cadence from the entry's run times; the source of truth from the task's module.
    """
    rows: dict[tuple[str, str], Source] = {}
    for step in steps:
        target = elements.get(step.target)
        if step.is_async or target is None or target.kind in ("database", "queue", "person"):
            continue
        if not _reads(step.label, step.hints):
            continue  # a send (an e-mail, a webhook, a PUT to a converter) is not an ingestion source
        for signature in sorted(step.entries):
            trigger = _majority(acc.signature_triggers.get(signature, Counter()))
            if trigger not in ("scheduled", "unknown", "continuation"):
                continue
            service, _, operation = signature.partition(" ")
            if target.id == service:
                continue
            task = operation if "." in operation and "/" not in operation and " " not in operation else ""
            transports = sorted(h.split(":", 1)[1] for h in step.hints if h.startswith("transport:"))
            transport = _transport_name(transports, step.technology)
            brittle = sorted(h.split(":", 1)[1] for h in step.hints if h.startswith("brittle:"))
            key = (target.id, signature)
            known = rows.get(key)
            if known is not None:
                transport = ", ".join(sorted(set(known.transport.split(", ")) | {transport}))
                brittle = sorted(set(filter(None, known.why.split("; "))) | set(brittle))
            rows[key] = Source(
                source=target.id, consumer=service, transport=transport,
                cadence=cadences.get(signature) or ("on demand" if trigger != "scheduled" else "scheduled"),
                data="", source_of_truth=_task_file(task), brittle=bool(brittle), why="; ".join(brittle),
                inferred=True, scenario=scenario_id, task=task)
    return [rows[key] for key in sorted(rows)]


def _named_sources(rows: list[Source], elements: tuple[Element, ...]) -> list[Source]:
    """Rows carry element ids as source/consumer until the final display names are known."""
    names = {e.id: e.name for e in elements}
    return [replace(r, source=names.get(r.source, r.source), consumer=names.get(r.consumer, r.consumer))
            for r in rows]


def _annotate_sources(rows: list[Source], config: Config) -> tuple[Source, ...]:
    """Config annotations first (they win field by field), then what traces told; annotated rows not inferred."""
    out = list(rows)
    for annotation in config.sources:
        matched = [i for i, row in enumerate(out) if _annotation_matches(annotation, row)]
        if not matched and annotation.source:
            out.append(Source(
                source=annotation.source, consumer="", transport=annotation.transport, cadence=annotation.cadence,
                data=annotation.data, source_of_truth=annotation.source_of_truth, brittle=bool(annotation.brittle),
                why=annotation.why, inferred=False, scenario=annotation.scenario, task=annotation.task))
        for i in matched:
            row = out[i]
            out[i] = replace(
                row, source=annotation.source or row.source, transport=annotation.transport or row.transport,
                cadence=annotation.cadence or row.cadence, data=annotation.data or row.data,
                source_of_truth=annotation.source_of_truth or row.source_of_truth,
                brittle=row.brittle if annotation.brittle is None else annotation.brittle,
                why=annotation.why or row.why, inferred=False)
    return tuple(sorted(out, key=lambda r: (r.inferred, r.scenario, r.source, r.task)))


def _annotation_matches(annotation: Any, row: Source) -> bool:
    if annotation.scenario and annotation.scenario != row.scenario:
        return False
    if annotation.task and not (row.task == annotation.task or row.task.endswith("." + annotation.task)):
        return False
    if not annotation.task and not annotation.scenario:
        return annotation.source == row.source
    return True


def _reads(label: str, hints: set[str]) -> bool:
    """Whether a step reads data: an HTTP GET, an RPC Get/List/Query, or a scrape/feed/GraphQL/SOAP exchange."""
    verb = label.split(" ", 1)[0]
    if verb in ("GET", "HEAD") or verb.startswith(("Get", "List", "Query", "Scan", "Describe", "Select")):
        return True
    return any(h in hints for h in ("transport:HTML scrape", "transport:feed", "transport:GraphQL",
                                    "transport:SOAP"))


def _transport_name(transports: list[str], technology: str) -> str:
    if transports:
        return ", ".join(transports)
    if technology in ("HTTP", "HTTPS"):
        return "REST"
    return technology or "unknown"


def _task_file(task: str) -> str:
    """``courses.tasks.sync_courseruns_data`` → ``courses/tasks.py`` (the module that defines the task)."""
    if not task or "." not in task:
        return ""
    module = task.rsplit(".", 1)[0]
    return module.replace(".", "/") + ".py"
