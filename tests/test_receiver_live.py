"""The receivers driven by the official OTLP exporters and raw HTTP: same model as convert, OTLP answers, backpressure."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracegen.modeljson import load_model_dict
from tracegen.receiver.sidecar import Sidecar

from tests._receiver import (
    FakeClock,
    LiveWorld,
    comparable,
    convert_model,
    get,
    json_body,
    make_sidecar,
    mixed_traces,
    post,
)
from tests._spans import to_json_hex
from tests._world import Kind, World


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def sidecar(tmp_path: Path, clock: FakeClock) -> Iterator[Sidecar]:
    side = make_sidecar(tmp_path / "out", clock)
    try:
        yield side
    finally:
        side.shutdown(grace=1)


def _finish(side: Sidecar, clock: FakeClock) -> dict:
    clock.advance(side.options.idle_seconds + 1)
    side.process()
    return comparable(side.model())


def test_official_grpc_exporter_gives_the_convert_model(sidecar: Sidecar, clock: FakeClock) -> None:
    """SDK → BatchSpanProcessor → official gRPC exporter → receiver gives exactly the model convert makes."""
    world = LiveWorld(lambda: GrpcExporter(endpoint=sidecar.grpc_receiver.address, insecure=True, timeout=10))
    try:
        mixed_traces(world)
        assert world.flush()
    finally:
        world.close()
    assert sidecar.store.stats.spans_received == len(world.spans())
    assert _finish(sidecar, clock) == convert_model(world)


def test_official_http_exporter_with_gzip_gives_the_convert_model(sidecar: Sidecar, clock: FakeClock) -> None:
    """SDK → official OTLP/HTTP exporter with gzip → receiver gives exactly the model convert makes."""
    world = LiveWorld(lambda: HttpExporter(endpoint=sidecar.http_receiver.url, compression=Compression.Gzip,
                                           timeout=10))
    try:
        mixed_traces(world)
        assert world.flush()
    finally:
        world.close()
    assert _finish(sidecar, clock) == convert_model(world)


def test_raw_json_posts_split_across_requests_give_the_convert_model(sidecar: Sidecar, clock: FakeClock) -> None:
    """OTLP/JSON posted by hand, one span per request in reverse order, still assembles into the convert model."""
    world = World()
    mixed_traces(world)
    finished = list(world.exporter.get_finished_spans())
    for span in reversed(finished):
        status, _, body = post(sidecar.http_receiver.url, json.dumps(to_json_hex([span])).encode())
        assert status == 200, body
        assert json_body(body) == {}
    assert _finish(sidecar, clock) == convert_model(world)


def test_model_is_written_atomically_only_when_changed(sidecar: Sidecar, clock: FakeClock) -> None:
    """A write after new traces rewrites model.json (with state); a write with nothing new touches nothing."""
    world = World()
    mixed_traces(world, runs=1)
    post(sidecar.http_receiver.url, encode_spans(world.exporter.get_finished_spans()).SerializeToString(),
         "application/x-protobuf")
    _finish(sidecar, clock)
    assert sidecar.write() is True
    path = sidecar.options.out_dir / "model.json"
    doc = load_model_dict(path.read_text(encoding="utf-8"), str(path))
    assert "state" in doc and doc["diagnostics"]["traces"] == sidecar.acc.counters["traces"]
    stamp = path.stat().st_mtime_ns
    assert sidecar.write() is False
    assert path.stat().st_mtime_ns == stamp


def test_gzip_json_body_is_accepted(sidecar: Sidecar) -> None:
    """A gzip-compressed OTLP/JSON body (Content-Encoding: gzip) is decoded."""
    world = World()
    mixed_traces(world, runs=1)
    body = gzip.compress(json.dumps(to_json_hex(world.exporter.get_finished_spans())).encode())
    status, _, _ = post(sidecar.http_receiver.url, body, headers={"Content-Encoding": "gzip"})
    assert status == 200
    assert sidecar.store.stats.spans_received == len(world.spans())


def test_wrong_content_type_is_415(sidecar: Sidecar) -> None:
    """A body that is neither protobuf nor JSON is refused with 415 Unsupported Media Type."""
    status, _, body = post(sidecar.http_receiver.url, b"hello", "text/plain")
    assert status == 415 and b"application/x-protobuf" in body


def test_garbage_is_400_and_the_receiver_keeps_serving(sidecar: Sidecar) -> None:
    """Undecodable protobuf and JSON bodies get 400 with a google.rpc.Status; the next good request succeeds."""
    status, _, body = post(sidecar.http_receiver.url, b"\xff\xfe garbage \x00", "application/x-protobuf")
    assert status == 400
    assert Status.FromString(body).message
    status, _, body = post(sidecar.http_receiver.url, b"{not json", "application/json")
    assert status == 400 and "message" in json_body(body)
    world = World()
    mixed_traces(world, runs=1)
    status, _, _ = post(sidecar.http_receiver.url, json.dumps(to_json_hex(world.exporter.get_finished_spans()))
                        .encode())
    assert status == 200
    assert get(sidecar.http_receiver.url.replace("/v1/traces", "/healthz"))[0] == 200


def test_malformed_spans_are_a_partial_success(sidecar: Sidecar) -> None:
    """A request with one span lacking its id keeps the others and answers partialSuccess.rejectedSpans = 1."""
    world = World()
    mixed_traces(world, runs=1)
    doc = to_json_hex(world.exporter.get_finished_spans())
    total = sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
    del doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]
    status, _, body = post(sidecar.http_receiver.url, json.dumps(doc).encode())
    assert status == 200
    answer = json_body(body)["partialSuccess"]
    assert int(answer["rejectedSpans"]) == 1 and "spanId" in answer["errorMessage"]
    assert sidecar.store.stats.spans_received == total - 1


def test_gzip_bomb_is_413_without_expanding(tmp_path: Path, clock: FakeClock) -> None:
    """A small gzip body that inflates past the limit is refused with 413, and so is an oversized raw body."""
    side = make_sidecar(tmp_path / "out", clock, max_message_bytes=1 << 20)
    try:
        bomb = gzip.compress(b"\x00" * (64 << 20))
        assert len(bomb) < 100_000
        status, _, _ = post(side.http_receiver.url, bomb, "application/x-protobuf", {"Content-Encoding": "gzip"})
        assert status == 413
        status, _, _ = post(side.http_receiver.url, b"x" * ((1 << 20) + 1), "application/x-protobuf")
        assert status == 413
        assert get(side.http_receiver.url.replace("/v1/traces", "/readyz"))[0] == 200
    finally:
        side.shutdown(grace=1)


def test_oversized_grpc_message_is_refused_cleanly(tmp_path: Path, clock: FakeClock) -> None:
    """A gRPC message over max_message_bytes gets RESOURCE_EXHAUSTED from grpcio; the server keeps serving."""
    side = make_sidecar(tmp_path / "out", clock, max_message_bytes=1024)
    try:
        world = World()
        mixed_traces(world)
        request = encode_spans(world.exporter.get_finished_spans())
        assert request.ByteSize() > 1024
        with grpc.insecure_channel(side.grpc_receiver.address) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                stub.Export(request, timeout=10)
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert stub.Export(ExportTraceServiceRequest(), timeout=10) == ExportTraceServiceResponse()
    finally:
        side.shutdown(grace=1)


def _fill(side: Sidecar) -> int:
    """Fill the store to its span budget with one posted trace; returns the spans posted."""
    world = World()
    budget = side.store.max_spans
    root = world.span("filler", "GET /x", Kind.SERVER, 0, 10, attributes={"http.method": "GET"})
    for i in range(budget - 1):
        world.span("filler", "SELECT", Kind.CLIENT, 1 + i * 0.001, 2, parent=root,
                   attributes={"db.system": "mysql", "db.name": "x"})
    body = encode_spans(world.exporter.get_finished_spans()).SerializeToString()
    status, _, _ = post(side.http_receiver.url, body, "application/x-protobuf")
    assert status == 200 and side.store.spans_in_flight == budget
    return budget


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_full_buffer_makes_the_official_exporter_retry_then_succeed(tmp_path: Path, clock: FakeClock,
                                                                    transport: str) -> None:
    """Full store → RESOURCE_EXHAUSTED+RetryInfo / 429+Retry-After; after an expiry frees space the retry lands."""
    side = make_sidecar(tmp_path / "out", clock, max_spans=8)
    try:
        _fill(side)
        if transport == "grpc":
            factory = lambda: GrpcExporter(endpoint=side.grpc_receiver.address, insecure=True, timeout=20)  # noqa: E731
        else:
            factory = lambda: HttpExporter(endpoint=side.http_receiver.url, timeout=20)  # noqa: E731
        world = LiveWorld(factory)
        root = world.span("shop", "GET /cart", Kind.SERVER, 0, 10, attributes={"http.method": "GET",
                                                                                "http.route": "/cart"})
        world.span("shop", "SELECT", Kind.CLIENT, 1, 2, parent=root, attributes={"db.system": "postgresql",
                                                                                 "db.name": "shop"})
        result: list[bool] = []
        flusher = threading.Thread(target=lambda: result.append(world.flush(30_000)))
        flusher.start()
        assert side.rejected_event.wait(20), "the exporter's first attempt was not refused"
        clock.advance(10)
        assert side.process() == 1  # the filler trace goes; space is free for the retry
        flusher.join(30)
        world.close()
        assert result == [True]
        rejected = side.store.stats.batches_rejected
        assert rejected >= 1
        assert side.store.stats.spans_received == 8 + 2
        assert _finish(side, clock)["diagnostics"]["spans"] == 10
        metrics = get(side.http_receiver.url.replace("/v1/traces", "/metrics"))[1].decode()
        assert f"tracegen_batches_rejected_total {rejected}" in metrics
    finally:
        side.shutdown(grace=1)


def test_busy_answers_carry_retry_info_both_ways(tmp_path: Path, clock: FakeClock) -> None:
    """Busy gRPC answers carry RetryInfo in grpc-status-details-bin and google.rpc.retryinfo-bin; HTTP 429 Retry-After."""
    side = make_sidecar(tmp_path / "out", clock, max_spans=8, retry_after=2.5)
    try:
        _fill(side)
        world = World()
        world.span("shop", "GET /cart", Kind.SERVER, 0, 10, attributes={"http.method": "GET"})
        request = encode_spans(world.exporter.get_finished_spans())
        with grpc.insecure_channel(side.grpc_receiver.address) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                stub.Export(request, timeout=10)
        error = raised.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(error.trailing_metadata())
        retry = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (2, 500_000_000)
        status = Status.FromString(trailers["grpc-status-details-bin"])
        assert status.code == 8 and status.details[0].Is(RetryInfo.DESCRIPTOR)
        code, headers, _ = post(side.http_receiver.url, request.SerializeToString(), "application/x-protobuf")
        assert code == 429 and headers["Retry-After"] == "3"
    finally:
        side.shutdown(grace=1)


def test_bearer_token_is_required_on_both_receivers(tmp_path: Path, clock: FakeClock) -> None:
    """With a token, requests without it are refused (401 / UNAUTHENTICATED) and the official exporters with it pass."""
    side = make_sidecar(tmp_path / "out", clock, token="s3cret")
    try:
        world = World()
        mixed_traces(world, runs=1)
        body = encode_spans(world.exporter.get_finished_spans()).SerializeToString()
        code, headers, _ = post(side.http_receiver.url, body, "application/x-protobuf")
        assert code == 401 and headers["WWW-Authenticate"] == "Bearer"
        code, _, _ = post(side.http_receiver.url, body, "application/x-protobuf", {"Authorization": "Bearer nope"})
        assert code == 401
        with grpc.insecure_channel(side.grpc_receiver.address) as channel:
            with pytest.raises(grpc.RpcError) as raised:
                trace_service_pb2_grpc.TraceServiceStub(channel).Export(ExportTraceServiceRequest(), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert side.store.stats.spans_received == 0
        auth = {"authorization": "Bearer s3cret"}
        for factory in (lambda: GrpcExporter(endpoint=side.grpc_receiver.address, insecure=True, headers=auth),
                        lambda: HttpExporter(endpoint=side.http_receiver.url, headers=auth)):
            live = LiveWorld(factory)
            live.span("shop", "GET /cart", Kind.SERVER, 0, 10, attributes={"http.method": "GET"})
            assert live.flush()
            live.close()
        assert side.store.stats.spans_received == 2
    finally:
        side.shutdown(grace=1)


def test_metrics_health_and_readiness(sidecar: Sidecar) -> None:
    """/metrics speaks Prometheus text with the documented series; /readyz turns 503 once shutdown begins."""
    base = sidecar.http_receiver.url.replace("/v1/traces", "")
    status, text = get(base + "/metrics")
    assert status == 200
    for name in ("tracegen_spans_received_total", "tracegen_spans_rejected_total", "tracegen_traces_completed_total",
                 "tracegen_traces_evicted_total", "tracegen_scenarios", "tracegen_last_write_timestamp_seconds"):
        assert f"# TYPE {name} " in text.decode()
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/readyz")[0] == 200
    assert get(base + "/nope")[0] == 404
    sidecar.accepting = False
    assert get(base + "/readyz")[0] == 503
    sidecar.accepting = True
