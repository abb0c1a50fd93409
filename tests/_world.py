"""A tiny world of services for inference tests: real OpenTelemetry SDK spans, read back through tracegen's decoder.

Each test builds its traces with :class:`World` — one ``TracerProvider`` per service, explicit start/end times,
parents passed as context (a remote context when the parent lives in another service, as propagation gives) —
then :meth:`World.spans` encodes them with the SDK exporter's ``encode_spans`` and decodes them with
``decode_otlp_proto``, so the tests exercise the same path real files take.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tracegen.config import Config
from tracegen.flows import FlowAccumulator, build_model
from tracegen.ingest.otlp_proto import decode_otlp_proto
from tracegen.model import FlowModel
from tracegen.pipeline import accumulate_spans
from tracegen.spans import Span

__all__ = ["World", "MS", "T0", "BROWSER", "model_of", "accumulator_of", "mixed_traces", "Kind"]

T0 = 1_793_577_600_000_000_000  # 2026-11-02T00:00:00Z
MS = 1_000_000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
Kind = SpanKind


class _Ids(IdGenerator):
    def __init__(self) -> None:
        self.trace = 0x5A000000000000000000000000000000
        self.span = 0x1000

    def generate_trace_id(self) -> int:
        self.trace += 1
        return self.trace

    def generate_span_id(self) -> int:
        self.span += 1
        return self.span


class World:
    """Services that emit spans into one in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.ids = _Ids()
        self.tracers: dict[str, trace_api.Tracer] = {}
        self.owner: dict[int, str] = {}

    def tracer(self, service: str, scope: str = "opentelemetry.instrumentation.django",
               **resource: str) -> trace_api.Tracer:
        key = f"{service}|{scope}|{sorted(resource.items())}"
        if key not in self.tracers:
            provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}),
                                      id_generator=self.ids)
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self.tracers[key] = provider.get_tracer(scope)
        return self.tracers[key]

    def span(self, service: str, name: str, kind: SpanKind, start_ms: float, end_ms: float, *,
             parent: Any = None, attributes: Mapping[str, Any] | None = None, links: Sequence[Any] = (),
             error: bool = False, scope: str = "opentelemetry.instrumentation.django", base_ns: int = T0,
             resource: Mapping[str, str] | None = None) -> Any:
        """Start and end one span; ``parent`` is a span made by this world (remote when in another service)."""
        tracer = self.tracer(service, scope, **(resource or {}))
        context = None
        if parent is not None:
            parent_ctx = parent.get_span_context()
            remote = self.owner.get(parent_ctx.span_id) != service
            ctx = SpanContext(parent_ctx.trace_id, parent_ctx.span_id, is_remote=remote,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED))
            context = trace_api.set_span_in_context(NonRecordingSpan(ctx))
        span_links = [Link(link.get_span_context()) for link in links]
        span = tracer.start_span(name, context=context, kind=kind, attributes=dict(attributes or {}),
                                 links=span_links, start_time=int(base_ns + start_ms * MS))
        if error:
            span.set_status(Status(StatusCode.ERROR, "failed"))
        span.end(end_time=int(base_ns + end_ms * MS))
        self.owner[span.get_span_context().span_id] = service
        return span

    def spans(self) -> list[Span]:
        """Every finished span, through the real OTLP protobuf encoding and tracegen's decoder."""
        request = encode_spans(self.exporter.get_finished_spans())
        return decode_otlp_proto(request.SerializeToString(), "world.pb")


def model_of(spans: Sequence[Span], config: Config | None = None) -> FlowModel:
    """The flow model tracegen builds from ``spans``."""
    acc, _ = accumulate_spans(spans, config or Config())
    return build_model(acc, generator="tracegen test", generated_at="2026-11-28T00:00:00Z")


def accumulator_of(spans: Sequence[Span], config: Config | None = None) -> FlowAccumulator:
    """The accumulator (mergeable state) for ``spans``."""
    acc, _ = accumulate_spans(spans, config or Config())
    return acc


def mixed_traces(w: World, runs: int = 2, base_ms: float = 0.0) -> None:
    """Calls, a database, an external API, a Celery producer with its linked consumer, and a scheduled task."""
    celery = "opentelemetry.instrumentation.celery"
    for i in range(runs):
        base = base_ms + i * 10_000
        root = w.span("lms", "GET /courses", Kind.SERVER, base, base + 80,
                      attributes={"http.method": "GET", "http.route": "^courses/(?P<course_id>[^/]+)/$",
                                  "http.user_agent": BROWSER}, resource={"service.namespace": "openedx"})
        w.span("lms", "SELECT", Kind.CLIENT, base + 2, base + 9, parent=root,
               attributes={"db.system": "mysql", "db.name": "edxapp", "db.statement": "SELECT 1"},
               resource={"service.namespace": "openedx"})
        if i % 2 == 0:  # the forum call is optional: odd runs skip it
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
        at = base_ms + run * 3_600_000
        w.span("xpro", "run/sync", Kind.CONSUMER, at, at + 100, scope=celery,
               attributes={"celery.action": "run", "celery.task_name": "courses.tasks.sync"})
