"""The pending-trace store: idle expiry on an injected clock, bounds, evictions, backpressure, and the sidecar's caches."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tracegen.config import Config
from tracegen.model import Element, FlowModel, Scenario, Step
from tracegen.receiver.pending import PendingStore
from tracegen.receiver.sidecar import Sidecar, SidecarOptions, apply_window
from tracegen.spans import Span, SpanKind

from tests._receiver import FakeClock, comparable, convert_model, mixed_traces
from tests._world import Kind, World


def _span(trace: int, span: int, parent: int = 0) -> Span:
    return Span(trace_id=f"{trace:032x}", span_id=f"{span:016x}", parent_span_id=f"{parent:016x}" if parent else "",
                name="op", kind=SpanKind.INTERNAL, service="svc", start_ns=span, end_ns=span + 1)


def test_traces_complete_only_after_being_idle() -> None:
    """A trace stays open while spans keep arriving and completes idle_seconds after its last span."""
    clock = FakeClock()
    store = PendingStore(idle_seconds=5, clock=clock)
    store.add([_span(1, 1)])
    clock.advance(4)
    store.add([_span(1, 2, 1)])
    clock.advance(4)
    assert store.expire() == []
    clock.advance(1)
    [trace] = store.expire()
    assert [s.span_id for s in trace.spans] == [f"{1:016x}", f"{2:016x}"]
    assert store.spans_in_flight == 0 and store.stats.traces_completed == 1


def test_duplicates_collapse_like_convert() -> None:
    """The same span received twice is kept once and counted, as assemble_traces does in a batch run."""
    clock = FakeClock()
    store = PendingStore(idle_seconds=1, clock=clock)
    store.add([_span(1, 1)])
    store.add([_span(1, 1)])
    [trace] = store.drain()
    assert len(trace.spans) == 1 and store.stats.duplicate_spans == 1


def test_full_store_refuses_whole_batches_and_oversized_batches_are_cut() -> None:
    """A batch that does not fit is refused whole (retry); one bigger than the budget is cut and the rest refused."""
    clock = FakeClock()
    store = PendingStore(idle_seconds=1, max_spans=4, clock=clock)
    assert store.add([_span(1, i) for i in range(1, 4)]).accepted == 3
    busy = store.add([_span(2, 10), _span(2, 11)])
    assert busy.full and busy.rejected == 2 and store.spans_in_flight == 3
    store.drain()
    cut = store.add([_span(3, i) for i in range(1, 7)])
    assert (cut.accepted, cut.rejected, cut.reason) == (4, 2, "too_large")
    assert store.stats.spans_rejected == 4 and store.stats.batches_rejected == 2


def test_oldest_open_trace_is_evicted_early_and_counted() -> None:
    """Beyond max_traces the least recently touched trace is completed early (not lost) and counted."""
    clock = FakeClock()
    store = PendingStore(idle_seconds=60, max_traces=2, clock=clock)
    store.add([_span(1, 1)])
    clock.advance(1)
    store.add([_span(2, 2)])
    clock.advance(1)
    store.add([_span(1, 3)])  # touching trace 1 makes trace 2 the oldest
    store.add([_span(3, 4)])
    assert store.stats.traces_evicted == 1
    [evicted] = store.expire()
    assert evicted.trace_id == f"{2:032x}"
    assert {t.trace_id for t in store.drain()} == {f"{1:032x}", f"{3:032x}"}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 5), st.floats(0, 3)), max_size=40),
       st.integers(1, 4), st.integers(1, 12))
def test_store_never_exceeds_its_bounds_and_loses_nothing_accepted(batches: list[tuple[int, int, float]],
                                                                  max_traces: int, max_spans: int) -> None:
    """Whatever arrives, spans held stay within max_spans, and every accepted span comes out exactly once."""
    clock = FakeClock()
    store = PendingStore(idle_seconds=2, max_traces=max_traces, max_spans=max_spans, clock=clock)
    accepted: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    next_id = 1
    for trace, size, wait in batches:
        spans = []
        for _ in range(size):
            spans.append(_span(trace + 1, next_id))
            next_id += 1
        result = store.add(spans)
        accepted |= {(s.trace_id, s.span_id) for s in spans[:result.accepted]}
        assert store.spans_in_flight <= max_spans
        assert len(store._open) <= max_traces
        clock.advance(wait)
        out += [(s.trace_id, s.span_id) for t in store.expire() for s in t.spans]
    out += [(s.trace_id, s.span_id) for t in store.drain() for s in t.spans]
    assert sorted(out) == sorted(accepted)


def _sidecar(out: Path, clock: FakeClock, **changes: object) -> Sidecar:
    options = SidecarOptions(out_dir=out, grpc=None, http=None, idle_seconds=5, **changes)  # type: ignore[arg-type]
    side = Sidecar(Config(), options, clock=clock, wall=lambda: 1_800_000_000.0, environ={"SOURCE_DATE_EPOCH": "1800000000"})
    side.accepting = True
    return side


def _producer_and_consumer(w: World) -> tuple[list[Span], list[Span]]:
    """One request that enqueues a Celery task, and the task run hours later as its own trace."""
    celery = "opentelemetry.instrumentation.celery"
    root = w.span("lms", "GET /grades", Kind.SERVER, 0, 80, attributes={"http.method": "GET",
                                                                       "http.route": "/grades"})
    producer = w.span("lms", "apply_async/grades.recalc", Kind.PRODUCER, 50, 52, parent=root, scope=celery,
                      attributes={"celery.action": "apply_async", "celery.task_name": "grades.recalc"})
    w.span("worker", "run/grades.recalc", Kind.CONSUMER, 3_600_000, 3_600_090, links=[producer], scope=celery,
           attributes={"celery.action": "run", "celery.task_name": "grades.recalc"})
    spans = w.spans()
    consumer_trace = [s for s in spans if s.service == "worker"][0].trace_id
    return ([s for s in spans if s.trace_id != consumer_trace], [s for s in spans if s.trace_id == consumer_trace])


def test_late_continuation_joins_its_scenario_within_the_producer_ttl(tmp_path: Path) -> None:
    """A consumer arriving an hour after its producer's trace was classified still joins the producer's scenario."""
    clock = FakeClock()
    world = World()
    producer_spans, consumer_spans = _producer_and_consumer(world)
    side = _sidecar(tmp_path, clock)
    side.submit(producer_spans)
    clock.advance(10)
    side.process()
    clock.advance(3600)
    side.submit(consumer_spans)
    clock.advance(10)
    side.process()
    assert comparable(side.model()) == convert_model(world)
    assert len(side.model().scenarios) == 1 and side.counters.producers_evicted == 0


def test_producer_cache_is_bounded_by_ttl_and_counts_evictions(tmp_path: Path) -> None:
    """Past the producer TTL the index entry is evicted (counted) and the late consumer stands alone."""
    clock = FakeClock()
    world = World()
    producer_spans, consumer_spans = _producer_and_consumer(world)
    side = _sidecar(tmp_path, clock, producer_ttl=600.0)
    side.submit(producer_spans)
    clock.advance(10)
    side.process()
    clock.advance(3600)
    side.process()
    assert side.counters.producers_evicted == 1 and not side.acc.producers
    side.submit(consumer_spans)
    clock.advance(10)
    side.process()
    assert len(side.model().scenarios) == 2
    assert "tracegen_producers_evicted_total 1" in side.metrics_text()


def test_restart_resumes_the_persisted_model(tmp_path: Path) -> None:
    """Stop after half the traces, start again on the same folder, send the rest: the model is convert's of all."""
    clock = FakeClock()
    first, second, whole = World(), World(), World()
    whole.ids = first.ids = second.ids  # one id space, so traces from both halves are distinct and identical
    mixed_traces(first, runs=2)
    mixed_traces(second, runs=2, base_ms=100_000_000)
    side = _sidecar(tmp_path, clock)
    side.submit(first.spans())
    side.shutdown()
    assert (tmp_path / "model.json").is_file()
    again = _sidecar(tmp_path, clock)
    assert again.acc.counters["traces"] == side.acc.counters["traces"]
    again.submit(second.spans())
    again.shutdown()
    assert comparable(again.model()) == comparable(_model_of(first.spans() + second.spans()))


def _model_of(spans: list[Span]) -> FlowModel:
    from tests._world import model_of

    return model_of(spans)


def test_window_drops_what_was_not_seen_recently() -> None:
    """Steps last seen before the window go, then scenarios without steps and elements no step touches."""
    now = 10_000 * 10**9
    old = Step(index="1", source="a", target="b", label="old", technology="", is_async=False, count=1,
               traces=1, optional=False, last_seen_ns=now - 7200 * 10**9)
    new = Step(index="2", source="a", target="c", label="new", technology="", is_async=False, count=1,
               traces=1, optional=False, last_seen_ns=now - 60 * 10**9)
    model = FlowModel(systems=(), elements=tuple(Element(id=i, name=i, kind="container") for i in "abcd"),
                      scenarios=(Scenario(id="s", title="s", mode="sync", mode_wording="", traces=1,
                                          steps=(old, new)),
                                 Scenario(id="gone", title="gone", mode="sync", mode_wording="", traces=1,
                                          steps=(old,))))
    windowed = apply_window(model, now, 3600)
    assert [s.id for s in windowed.scenarios] == ["s"]
    assert [s.label for s in windowed.scenarios[0].steps] == ["new"]
    assert [e.id for e in windowed.elements] == ["a", "c"]
