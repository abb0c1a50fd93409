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

from tests._world import World, accumulator_of, mixed_traces, model_of


def _mixed_world() -> list[Span]:
    """Calls, databases, Celery, cross-trace links, an optional step and a scheduled consumer (3 runs)."""
    w = World()
    mixed_traces(w, runs=3)
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
