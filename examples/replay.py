#!/usr/bin/env python3
"""Replay the example traces live into a running ``tracegen serve`` through the official OTLP exporters.

Usage::

    tracegen serve --out /tmp/live --renderer none &
    python examples/replay.py examples/traces            # OTLP/gRPC to 127.0.0.1:4317
    python examples/replay.py --protocol http --endpoint http://127.0.0.1:4318/v1/traces examples/traces
    kill -TERM %1                                       # drains, writes /tmp/live/model.json, exits 0

Why not SDK spans: the example files are OTLP requests already (OTLP/JSON lines and protobuf), and re-creating
``ReadableSpan`` objects from them would lose ids and timestamps the example scenarios depend on. So the script
sends the decoded ``ExportTraceServiceRequest`` messages *through the official exporter classes*:
- gRPC: a subclass of ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter`` whose
  ``_translate_data`` passes a ready request through, so the official channel, headers, compression, retry and
  ``RetryInfo`` back-off handle every message;
- HTTP: the official ``opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter``'s own client
  (its session, gzip, retries and ``Retry-After`` handling) posts the serialized request.
``--speed`` keeps the original gaps between messages (scaled) so the sidecar sees traces go idle as in life.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult


class RequestExporter(GrpcSpanExporter):
    """The official gRPC exporter, fed ready ``ExportTraceServiceRequest`` messages instead of SDK spans."""

    def _translate_data(self, data: Any) -> ExportTraceServiceRequest:  # type: ignore[override]
        return data

    def _count_data(self, data: Any) -> int:  # type: ignore[override]
        return sum(len(ss.spans) for rs in data.resource_spans for ss in rs.scope_spans)


def _hex_ids_to_base64(doc: Any) -> Any:
    """OTLP/JSON writes ids as hex; the protobuf JSON mapping ``ParseDict`` follows wants base64."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id") and \
                    isinstance(value, str) and value and len(value) in (16, 32):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    pass
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(doc, list):
        return [_hex_ids_to_base64(item) for item in doc]
    return doc


def read_requests(root: Path) -> Iterator[ExportTraceServiceRequest]:
    """Every request in the example files under ``root`` (``*.jsonl``/``*.json`` OTLP/JSON, ``*.binpb`` protobuf)."""
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        if path.suffix in (".jsonl", ".json"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    yield ParseDict(_hex_ids_to_base64(json.loads(line)), ExportTraceServiceRequest(),
                                    ignore_unknown_fields=True)
        elif path.suffix in (".binpb", ".pb"):
            data = path.read_bytes()
            request = ExportTraceServiceRequest()
            try:
                request.ParseFromString(data)
                yield request
            except DecodeError:  # the Collector file exporter's length-prefixed stream
                from tracegen.ingest.otlp_proto import iter_length_prefixed

                for _offset, message in iter_length_prefixed(data, str(path)):
                    yield ExportTraceServiceRequest.FromString(message)


def _first_start(request: ExportTraceServiceRequest) -> int:
    starts = [s.start_time_unix_nano for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    return min(starts) if starts else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=[str(Path(__file__).parent / "traces")])
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--endpoint", default=None, help="127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318/v1/traces")
    parser.add_argument("--token", default=None, help="bearer token, when tracegen serve has --token")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="replay the original gaps divided by this factor (0: as fast as possible)")
    args = parser.parse_args(argv)
    headers = {"authorization": f"Bearer {args.token}"} if args.token else None
    requests = sorted((r for p in args.paths for r in read_requests(Path(p))), key=_first_start)
    if args.protocol == "grpc":
        grpc_exporter = RequestExporter(endpoint=args.endpoint or "127.0.0.1:4317", insecure=True, headers=headers)
        send = grpc_exporter.export
        close = grpc_exporter.shutdown
    else:
        http_exporter = HttpSpanExporter(endpoint=args.endpoint or "http://127.0.0.1:4318/v1/traces",
                                         headers=headers, compression=Compression.Gzip)

        def send(request: ExportTraceServiceRequest) -> SpanExportResult:
            result = http_exporter._client.export(request.SerializeToString())  # the official client, retries too
            return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE

        close = http_exporter.shutdown
    sent = failed = 0
    previous = None
    for request in requests:
        start = _first_start(request)
        if args.speed > 0 and previous is not None and start > previous:
            time.sleep(min(10.0, (start - previous) / 1e9 / args.speed))
        previous = start
        spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        if send(request) == SpanExportResult.SUCCESS:  # type: ignore[arg-type]
            sent += spans
        else:
            failed += spans
    close()
    print(f"replay: {len(requests)} requests, {sent} spans sent, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
