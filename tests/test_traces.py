"""Assembly: traces joined across inputs, duplicates collapsed, conflicts counted, orphans kept, order irrelevant,
memory bounded by spilling partitions to disk."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._spans import build_sdk_spans, to_proto
from tracegen.ingest.otlp_proto import decode_otlp_proto
from tracegen.spans import Span, SpanKind
from tracegen.traces import AssemblyStats, Trace, assemble_traces, partition_key

SPANS = decode_otlp_proto(to_proto(build_sdk_spans(6)), "sdk")


def _span(trace: str, span: str, parent: str = "", start: int = 0, **extra) -> Span:
    return Span(
        trace_id=trace.rjust(32, "0"),
        span_id=span.rjust(16, "0"),
        parent_span_id=parent.rjust(16, "0") if parent else "",
        name=extra.pop("name", f"op-{span}"),
        kind=extra.pop("kind", SpanKind.INTERNAL),
        service=extra.pop("service", "svc"),
        start_ns=start,
        end_ns=start + 10,
        **extra,
    )


def test_spans_group_into_sorted_traces():
    """Spans of many traces come out as one Trace per id, traces sorted by id, spans by (start, span id)."""
    traces = list(assemble_traces(reversed(SPANS)))
    assert [t.trace_id for t in traces] == sorted({s.trace_id for s in SPANS})
    assert sum(len(t.spans) for t in traces) == len(SPANS)
    for trace in traces:
        assert list(trace.spans) == sorted(trace.spans, key=lambda s: (s.start_ns, s.span_id))
        assert all(s.trace_id == trace.trace_id for s in trace.spans)


def test_tree_helpers():
    """``by_id``, ``children``, ``roots`` and ``entries`` describe the tree of an SDK-made request trace."""
    trace = next(t for t in assemble_traces(SPANS) if len(t.spans) == 5)
    (root,) = trace.roots
    assert root.kind is SpanKind.SERVER and trace.orphans == ()
    kids = trace.children(root.span_id)
    assert [k.kind for k in kids] == [SpanKind.CLIENT, SpanKind.PRODUCER]
    assert trace.by_id[kids[0].span_id] is kids[0]
    assert trace.children("ffffffffffffffff") == ()
    assert trace.entries == (root,)


def test_exact_duplicates_collapse_and_are_counted():
    """The same span exported twice (or in two files) is kept once and counted as a duplicate."""
    stats = AssemblyStats()
    traces = list(assemble_traces(SPANS + SPANS[:5] + SPANS[:2], stats=stats))
    assert sum(len(t.spans) for t in traces) == len(SPANS)
    assert (stats.spans_in, stats.spans_out, stats.duplicate_spans, stats.conflicting_spans) == (
        len(SPANS) + 7,
        len(SPANS),
        7,
        0,
    )


@pytest.mark.parametrize("order", [[0, 1, 2, 0], [1, 0, 2, 1], [2, 2, 1, 0], [0, 0, 0, 1, 2]])
def test_conflicting_duplicates_pick_the_same_span_in_any_order(order):
    """Same ids, different content: one deterministic variant is kept, counts do not depend on order."""
    variants = [_span("a", "1", name=name, start=5) for name in ("zeta", "alpha", "mid")]
    stats = AssemblyStats()
    (trace,) = assemble_traces([variants[i] for i in order], stats=stats)
    assert trace.spans[0].name == "alpha"
    assert stats.conflicting_spans == 2
    assert stats.duplicate_spans == len(order) - 3
    assert stats.conflict_examples == [("0" * 31 + "a", "0" * 15 + "1")]


def test_orphans_are_kept_and_treated_as_entries():
    """A span whose parent never arrived stays in the trace, listed under ``orphans`` and ``entries``."""
    spans = [_span("b", "1"), _span("b", "2", parent="1", start=1), _span("b", "3", parent="9", start=2)]
    stats = AssemblyStats()
    (trace,) = assemble_traces(spans, stats=stats)
    assert [s.span_id[-1] for s in trace.orphans] == ["3"]
    assert [s.span_id[-1] for s in trace.entries] == ["1", "3"]
    assert stats.orphan_spans == 1


def test_parent_cycles_are_broken_at_the_earliest_span():
    """Corrupt parent cycles (self-parent, A->B->A) still leave every span reachable from the entries."""
    spans = [_span("c", "1", parent="1"), _span("c", "2", parent="3", start=5), _span("c", "3", parent="2", start=6)]
    (trace,) = assemble_traces(spans)
    assert trace.roots == ()
    assert [s.span_id[-1] for s in trace.orphans] == ["1", "2"]


def test_trace_is_frozen():
    """Traces are immutable values."""
    (trace,) = assemble_traces([_span("d", "1")])
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.trace_id = "x"  # type: ignore[misc]


def test_partition_key_is_stable_and_in_range():
    """``partition_key`` is a pure function of the id (same in every run and process) and within ``range(n)``."""
    ids = sorted({s.trace_id for s in SPANS})
    keys = [partition_key(t, 4) for t in ids]
    assert keys == [partition_key(t, 4) for t in ids]
    assert all(0 <= k < 4 for k in keys)
    assert partition_key("4bf92f3577b34da6a3ce929d0e0e4736", 16) == partition_key("4bf92f3577b34da6a3ce929d0e0e4736", 16)


def test_spill_gives_the_same_traces_and_stats_as_memory(tmp_path):
    """Beyond ``max_open_spans`` spans go to partition files; the output and counts equal the in-memory run."""
    spans = SPANS + SPANS[:9] + [SPANS[3]._replace(name="conflict")]
    random.Random(7).shuffle(spans)
    memory_stats, spill_stats = AssemblyStats(), AssemblyStats()
    in_memory = list(assemble_traces(spans, stats=memory_stats))
    spilled = list(assemble_traces(spans, stats=spill_stats, max_open_spans=4, tmp_dir=str(tmp_path)))
    assert spilled == in_memory
    assert spill_stats.spilled and not memory_stats.spilled
    for name in ("spans_in", "spans_out", "traces", "duplicate_spans", "conflicting_spans", "orphan_spans"):
        assert getattr(spill_stats, name) == getattr(memory_stats, name), name
    assert spill_stats.conflict_examples == memory_stats.conflict_examples
    assert os.listdir(tmp_path) == []  # scratch files are removed


def test_spill_recurses_when_a_partition_is_still_too_big(tmp_path):
    """With a budget of one span, partitions re-spill with a salted hash and still give the in-memory result."""
    spans = SPANS[:40]
    assert list(assemble_traces(spans, max_open_spans=1, tmp_dir=str(tmp_path))) == list(assemble_traces(spans))
    assert os.listdir(tmp_path) == []


def test_helpers_work_after_a_spill(tmp_path):
    """Traces read back from spill files have working cached helpers (pickling keeps only the fields)."""
    (trace, *_rest) = assemble_traces(SPANS, max_open_spans=3, tmp_dir=str(tmp_path))
    assert isinstance(trace, Trace)
    assert trace.roots and trace.by_id


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    repeats=st.lists(st.integers(min_value=0, max_value=len(SPANS) - 1), max_size=10),
    budget=st.sampled_from([2, 7, 1000]),
)
def test_property_order_duplicates_and_budget_do_not_change_the_traces(seed, repeats, budget):
    """Shuffled input with extra duplicates, under any memory budget, assembles to the same traces."""
    spans = SPANS + [SPANS[i] for i in repeats]
    random.Random(seed).shuffle(spans)
    stats = AssemblyStats()
    assert list(assemble_traces(spans, stats=stats, max_open_spans=budget)) == list(assemble_traces(SPANS))
    assert stats.duplicate_spans == len(repeats)
