"""Test helpers: realistic spans made by the real OpenTelemetry SDK, and every file form tracegen reads.

The spans come from ``TracerProvider`` + ``InMemorySpanExporter`` with a deterministic id generator and explicit
timestamps, so re-running gives the same bytes. They are encoded with the SDK exporter's public ``encode_spans``
(protobuf), and turned into OTLP/JSON in both dialects: the protobuf JSON mapping (base64 ids, enum names,
int64 strings; what ``MessageToJson`` and Tempo write) and the OTLP spec form (hex ids, integer enums).
``google.protobuf.json_format`` is fine here: it only *writes* the test input; tracegen never uses it.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any, Sequence

import zstandard
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z, in ns
MS = 1_000_000


class SequentialIds(IdGenerator):
    """Deterministic ids so the generated files are reproducible."""

    def __init__(self) -> None:
        self._trace = 0x4BF92F3577B34DA6A3CE929D0E0E4700
        self._span = 0x00F067AA0BA90200

    def generate_trace_id(self) -> int:
        self._trace += 1
        return self._trace

    def generate_span_id(self) -> int:
        self._span += 1
        return self._span


def build_sdk_spans(n_traces: int = 4) -> list[ReadableSpan]:
    """SDK spans of ``n_traces`` request traces across lms -> catalog (+ MySQL) with a Celery hand-off to a worker.

    Odd traces use old semantic conventions, even ones the new; one worker run fails; the worker's consumer span
    starts a new trace linked to the producer (an async continuation).
    """
    exporter = InMemorySpanExporter()
    ids = SequentialIds()

    def provider(service: str, **extra: str) -> trace_api.Tracer:
        resource = Resource.create(
            {"service.name": service, "service.namespace": "openedx", "service.instance.id": f"{service}-1", **extra}
        )
        tp = TracerProvider(resource=resource, id_generator=ids)
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        return tp.get_tracer("opentelemetry.instrumentation.django", "0.50b0")

    lms = provider("lms", **{"deployment.environment.name": "prod"})
    catalog = provider("catalog")
    worker = provider("lms-worker")

    for i in range(n_traces):
        t = T0 + i * 1000 * MS
        old = i % 2 == 1
        http = (
            {"http.method": "GET", "http.status_code": 200, "http.target": f"/courses/c{i}"}
            if old
            else {"http.request.method": "GET", "http.response.status_code": 200, "url.path": f"/courses/c{i}"}
        )
        server = lms.start_span(
            "GET /courses/{course_id}",
            kind=SpanKind.SERVER,
            start_time=t,
            attributes={
                **http,
                "http.route": "/courses/{course_id}",
                "user_agent.original": "Mozilla/5.0",
                "custom.ignored": "dropped at ingest",
                "http.request.header.accept": ("text/html", "application/json"),
            },
        )
        ctx = trace_api.set_span_in_context(server)
        client = lms.start_span(
            "GET",
            context=ctx,
            kind=SpanKind.CLIENT,
            start_time=t + 2 * MS,
            attributes={"net.peer.name" if old else "server.address": "catalog", "url.full": "http://catalog/api/items"},
        )
        # The callee sees its parent through propagation: a remote parent (span flags bits 8 and 9).
        sc = client.get_span_context()
        remote = SpanContext(sc.trace_id, sc.span_id, is_remote=True, trace_flags=TraceFlags(1))
        api = catalog.start_span(
            "GET /api/items",
            context=trace_api.set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            start_time=t + 3 * MS,
            attributes={"http.route": "/api/items", "http.request.method": "GET"},
        )
        db = catalog.start_span(
            "SELECT items",
            context=trace_api.set_span_in_context(api),
            kind=SpanKind.CLIENT,
            start_time=t + 4 * MS,
            attributes={"db.system": "mysql", "db.name" if old else "db.namespace": "catalog", "db.rows": 3},
        )
        db.end(end_time=t + 6 * MS)
        api.end(end_time=t + 8 * MS)
        client.end(end_time=t + 9 * MS)
        producer = lms.start_span(
            "apply_async/sync_course",
            context=ctx,
            kind=SpanKind.PRODUCER,
            start_time=t + 10 * MS,
            attributes={"celery.task_name": "sync_course", "messaging.destination.name": "celery", "retries": 0},
        )
        producer.end(end_time=t + 11 * MS)
        server.end(end_time=t + 12 * MS)

        consumer = worker.start_span(
            "run/sync_course",
            context=trace_api.set_span_in_context(trace_api.INVALID_SPAN),
            kind=SpanKind.CONSUMER,
            start_time=t + 20 * MS,
            links=[Link(producer.get_span_context(), {"messaging.operation": "receive"})],
            attributes={"celery.action": "run", "celery.task_name": "sync_course", "ratio": 0.5, "ok": True},
        )
        if i == 2:
            consumer.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        consumer.end(end_time=t + 40 * MS)
    return list(exporter.get_finished_spans())


# --------------------------------------------------------------------------------------------------- encodings


def to_proto(spans: Sequence[ReadableSpan]) -> bytes:
    """One serialized ``ExportTraceServiceRequest``."""
    return encode_spans(spans).SerializeToString()


def to_json_pb(spans: Sequence[ReadableSpan], *, snake_case: bool = False) -> dict[str, Any]:
    """The protobuf JSON mapping: base64 ids, enum names, int64 as strings (what Tempo and ``MessageToJson`` write)."""
    return MessageToDict(encode_spans(spans), preserving_proto_field_name=snake_case)


def to_json_hex(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: hex ids and integer enums (the Collector's file exporter)."""
    doc = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", []):
                    link["traceId"] = base64.b64decode(link["traceId"]).hex()
                    link["spanId"] = base64.b64decode(link["spanId"]).hex()
    return doc


def json_bytes(doc: Any, *, indent: bool = False) -> bytes:
    """A JSON document as bytes, pretty-printed or compact (JSON lines need compact)."""
    if indent:
        return json.dumps(doc, indent=2).encode()
    return json.dumps(doc, separators=(",", ":")).encode()


def length_prefixed(messages: Sequence[bytes]) -> bytes:
    """The Collector file exporter's proto form: each message behind a 4-byte big-endian length."""
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


def zstd(data: bytes) -> bytes:
    """One zstd frame (with content size, as the file exporter writes it)."""
    return zstandard.ZstdCompressor().compress(data)


def gz(data: bytes) -> bytes:
    """gzip with a fixed mtime so the bytes are reproducible."""
    return gzip.compress(data, mtime=0)


def chunks_as(form: str, chunks: Sequence[Sequence[ReadableSpan]]) -> tuple[str, bytes]:
    """``chunks`` (each one export request) written as one file in ``form``: (file suffix, content)."""
    if form == "pb":
        assert len(chunks) == 1
        return ".pb", to_proto(chunks[0])
    if form == "lp":
        return ".otlp", length_prefixed([to_proto(c) for c in chunks])
    if form == "lp-zstd":
        return ".otlp", length_prefixed([zstd(to_proto(c)) for c in chunks])
    if form == "lp-zstd-json":
        return ".otlp", length_prefixed([zstd(json_bytes(to_json_hex(c))) for c in chunks])
    if form == "json":
        assert len(chunks) == 1
        return ".json", json_bytes(to_json_pb(chunks[0]), indent=True)
    if form == "json-hex":
        assert len(chunks) == 1
        return ".json", json_bytes(to_json_hex(chunks[0]), indent=True)
    if form == "jsonl":
        return ".jsonl", b"".join(json_bytes(to_json_hex(c)) + b"\n" for c in chunks)
    if form == "jsonl-b64":
        return ".ndjson", b"".join(json_bytes(to_json_pb(c)) + b"\n" for c in chunks)
    if form == "jsonl.gz":
        return ".jsonl.gz", gz(b"".join(json_bytes(to_json_hex(c)) + b"\n" for c in chunks))
    if form == "pb.gz":
        assert len(chunks) == 1
        return ".pb.gz", gz(to_proto(chunks[0]))
    if form == "json.zst":
        assert len(chunks) == 1
        return ".json.zst", zstd(json_bytes(to_json_pb(chunks[0])))
    if form == "lp.zst":
        return ".otlp.zst", zstd(length_prefixed([to_proto(c) for c in chunks]))
    raise ValueError(form)


SINGLE_REQUEST_FORMS = ("pb", "json", "json-hex", "pb.gz", "json.zst")
MULTI_REQUEST_FORMS = ("lp", "lp-zstd", "lp-zstd-json", "jsonl", "jsonl-b64", "jsonl.gz", "lp.zst")
ALL_FORMS = SINGLE_REQUEST_FORMS + MULTI_REQUEST_FORMS
