"""`tracegen merge`: shards made from any split of the traces merge into the model of one run over all of them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegen.cli import cli
from tracegen.config import Config
from tracegen.errors import BaselineError
from tracegen.merge import merge_models
from tracegen.modeljson import dump_model, model_to_dict
from tracegen.spans import Span

from tests._receiver import comparable, mixed_traces
from tests._world import World, accumulator_of, model_of


def _spans() -> list[Span]:
    world = World()
    mixed_traces(world, runs=3)
    return world.spans()


SPANS = _spans()
TRACES = sorted({s.trace_id for s in SPANS})
WHOLE = comparable(model_of(SPANS))


def _shard_doc(spans: list[Span]) -> dict:
    """The model.json document one shard (one sidecar, one run) writes."""
    return json.loads(dump_model(model_of(spans), accumulator_of(spans).to_state()))


def _split(rnd: random.Random, shards: int) -> list[list[Span]]:
    """Whole traces dealt to shards at random (the loadbalancing exporter keeps a trace on one instance)."""
    owner = {trace: rnd.randrange(shards) for trace in TRACES}
    return [[s for s in SPANS if owner[s.trace_id] == k] for k in range(shards)]


@settings(max_examples=12, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 4))
def test_merge_of_random_shards_equals_a_single_run(rnd: random.Random, shards: int) -> None:
    """Any random split into shards, merged in any order, gives the single run's model (links across shards too)."""
    docs = [_shard_doc(part) for part in _split(rnd, shards)]
    rnd.shuffle(docs)
    model, state = merge_models(docs, Config())
    assert comparable(model) == WHOLE
    assert state == accumulator_of(SPANS).to_state()


@settings(max_examples=8, deadline=None)
@given(st.randoms(use_true_random=False))
def test_merge_is_associative(rnd: random.Random) -> None:
    """merge(merge(a, b), c) and merge(a, merge(b, c)) give the same model and state."""
    a, b, c = (_shard_doc(part) for part in _split(rnd, 3))

    def doc_of(docs: list[dict]) -> dict:
        model, state = merge_models(docs, Config())
        return model_to_dict(model, state)

    left = doc_of([doc_of([a, b]), c])
    right = doc_of([a, doc_of([b, c])])
    assert left == right and comparable(left) == WHOLE


def test_link_from_a_consumer_shard_to_a_producer_shard_still_stitches() -> None:
    """Consumers on one shard and their producers on another: merged, the continuations join their scenario."""
    consumers = {s.trace_id for s in SPANS if s.service == "lms-worker"}
    producer_shard = [s for s in SPANS if s.trace_id not in consumers]
    consumer_shard = [s for s in SPANS if s.trace_id in consumers]
    alone = model_of(consumer_shard)
    assert alone.diagnostics.unresolved_links > 0
    model, _ = merge_models([_shard_doc(consumer_shard), _shard_doc(producer_shard)], Config())
    assert comparable(model) == WHOLE and model.diagnostics.unresolved_links == 0


def test_a_model_without_state_is_refused() -> None:
    """A model.json without accumulator state cannot be merged exactly, so it is refused with a clear message."""
    doc = _shard_doc(SPANS)
    del doc["state"]
    with pytest.raises(BaselineError, match="no 'state'"):
        merge_models([doc], Config())


def test_merge_command_writes_the_merged_outputs(tmp_path: Path) -> None:
    """`tracegen merge a/model.json b/model.json --out DIR` writes model.json equal to the single run's."""
    rnd = random.Random(7)
    paths = []
    for number, part in enumerate(_split(rnd, 2)):
        path = tmp_path / f"shard{number}" / "model.json"
        path.parent.mkdir()
        path.write_text(json.dumps(_shard_doc(part)), encoding="utf-8")
        paths.append(str(path))
    out = tmp_path / "merged"
    result = CliRunner().invoke(cli, ["merge", *paths, "--out", str(out), "--renderer", "none"],
                                env={"SOURCE_DATE_EPOCH": "1800000000"})
    assert result.exit_code == 0, result.output
    assert "merged 2 models" in result.output
    merged = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert comparable(merged) == WHOLE
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(cli, ["merge", str(bad), "--out", str(out), "--renderer", "none"])
    assert result.exit_code == 2 and "not a tracegen model.json" in result.output
