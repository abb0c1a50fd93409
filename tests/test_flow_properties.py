"""Properties of the flow model: order and split never matter, halves merge into the whole, nothing is lost."""

from __future__ import annotations

import json
import random

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegen.flows import FlowAccumulator, build_model
from tracegen.modeljson import dump_model, model_from_dict, model_to_dict, schema
from tracegen.spans import Span

from tests._world import BROWSER, Kind, World, accumulator_of, model_of


def _mixed_world() -> list[Span]:
    """A handful of traces covering calls, databases, Celery, a cross-trace link and a scheduled consumer."""
    w = World()
    celery = "opentelemetry.instrumentation.celery"
    for i in range(3):
        base = i * 10_000
        root = w.span("lms", "GET /courses", Kind.SERVER, base, base + 80,
                      attributes={"http.method": "GET", "http.route": "^courses/(?P<course_id>[^/]+)/$",
                                  "http.user_agent": BROWSER}, resource={"service.namespace": "openedx"})
        w.span("lms", "SELECT", Kind.CLIENT, base + 2, base + 9, parent=root,
               attributes={"db.system": "mysql", "db.name": "edxapp", "db.statement": "SELECT 1"},
               resource={"service.namespace": "openedx"})
        if i != 1:
            client = w.span("lms", "GET", Kind.CLIENT, base + 10, base + 40, parent=root,
                            attributes={"http.method": "GET", "http.url": f"https://forum/api/v1/threads/{i}"},
                            resource={"service.namespace": "openedx"})
            w.span("forum", "GET /api/v1/threads/:id", Kind.SERVER, base + 12, base + 38, parent=client,
                   attributes={"http.method": "GET", "http.route": "/api/v1/threads/:thread_id"},
                   resource={"service.namespace": "forum"})
        producer = w.span("lms", "apply_async/grades.recalc", Kind.PRODUCER, base + 50, base + 52, parent=root,
                          scope=celery, attributes={"celery.action": "apply_async", "celery.task_name":
                                                    "grades.recalc", "messaging.destination": "edx.lms.core"},
                          resource={"service.namespace": "openedx"})
        w.span("lms-worker", "run/grades.recalc", Kind.CONSUMER, base + 900, base + 990, links=[producer],
               scope=celery, attributes={"celery.action": "run", "celery.task_name": "grades.recalc",
                                         "messaging.destination": "edx.lms.core"},
               resource={"service.namespace": "openedx"})
    for run in range(3):
        w.span("xpro", "run/sync", Kind.CONSUMER, run * 3_600_000, run * 3_600_000 + 100, scope=celery,
               attributes={"celery.action": "run", "celery.task_name": "courses.tasks.sync"})
    return w.spans()


SPANS = _mixed_world()
WHOLE = dump_model(model_of(SPANS), accumulator_of(SPANS).to_state())


@settings(max_examples=15, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffled_input_gives_identical_bytes(rnd: random.Random) -> None:
    """The same spans in any order give a byte-identical model.json (state included)."""
    spans = list(SPANS)
    rnd.shuffle(spans)
    assert dump_model(model_of(spans), accumulator_of(spans).to_state()) == WHOLE


@settings(max_examples=15, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=2, max_value=4))
def test_merging_shards_equals_the_whole(rnd: random.Random, shards: int) -> None:
    """Spans split into shards by trace id, accumulated apart and merged, give the model of the whole."""
    traces = sorted({span.trace_id for span in SPANS})
    owner = {trace_id: rnd.randrange(shards) for trace_id in traces}
    parts = [[s for s in SPANS if owner[s.trace_id] == k] for k in range(shards)]
    accs = [accumulator_of(part) for part in parts]
    rnd.shuffle(accs)
    merged = FlowAccumulator()
    for acc in accs:
        merged.merge(FlowAccumulator.from_state(json.loads(json.dumps(acc.to_state()))))
    model = build_model(merged, generator="tracegen test", generated_at="2026-11-28T00:00:00Z")
    assert dump_model(model, merged.to_state()) == WHOLE


def test_same_batch_twice_counts_twice_but_keeps_the_same_shape() -> None:
    """Adding the same traces twice doubles counts and keeps every scenario, step and element."""
    once = model_of(SPANS)
    acc = accumulator_of(SPANS)
    acc.merge(accumulator_of(SPANS))
    twice = build_model(acc, generator="tracegen test", generated_at="2026-11-28T00:00:00Z")
    assert [s.id for s in twice.scenarios] == [s.id for s in once.scenarios]
    for a, b in zip(once.scenarios, twice.scenarios):
        assert [(s.key, s.index) for s in a.steps] == [(s.key, s.index) for s in b.steps]
        assert [2 * s.count for s in a.steps] == [s.count for s in b.steps]
    assert once.elements == twice.elements


def test_every_trace_is_the_entry_of_one_scenario_or_a_continuation() -> None:
    """Scenario trace counts plus continuations account for every trace exactly once."""
    acc = accumulator_of(SPANS)
    model = build_model(acc)
    entries = sum(s.traces for s in model.scenarios)
    assert entries + acc.counters["continuations"] == len({s.trace_id for s in SPANS})
    assert acc.counters["continuations"] == 3


def test_model_json_validates_against_the_shipped_schema_and_round_trips() -> None:
    """model.json matches the JSON Schema shipped in the package, and parses back to the same model."""
    model = model_of(SPANS)
    document = json.loads(dump_model(model))
    jsonschema.validate(document, schema())
    again = model_from_dict(document)
    assert model_to_dict(again) == model_to_dict(model)
