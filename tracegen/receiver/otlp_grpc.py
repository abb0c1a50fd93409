"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``, a thin transport.

Rules (OTLP specification, "OTLP/gRPC"):
- full success: an empty ``ExportTraceServiceResponse``; spans refused for good (malformed ids, a batch larger than
  the whole in-flight budget): ``partial_success`` with ``rejected_spans`` and an ``error_message``;
- an undecodable request: ``INVALID_ARGUMENT``; a missing or wrong bearer token: ``UNAUTHENTICATED``;
- the pending buffer full: ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` twice — in the standard status
  details (``grpc-status-details-bin``, what grpc-status libraries read) and in the ``google.rpc.retryinfo-bin``
  trailer, which is what the Python OTLP exporter reads (opentelemetry-exporter-otlp-proto-grpc 1.45,
  ``OTLPExporterMixin._export``) — so real exporters back off and resend instead of dropping;
- shutting down: ``UNAVAILABLE`` (retryable too);
- a message over ``max_receive_message_length`` (default 64 MiB, OTLP's recommendation; grpcio's own 4 MiB default
  would refuse a Collector's 8192-span batches) is refused by grpcio with ``RESOURCE_EXHAUSTED``, not a crash.

Why a generic handler instead of ``add_TraceServiceServicer_to_server``: the generated registration parses the
request into protobuf objects, and tracegen's decoder parses bytes itself; passing the raw bytes through avoids
parsing every request twice. The servicer still subclasses the generated ``TraceServiceServicer``.
"""

from __future__ import annotations

import collections
import logging
from concurrent import futures
from typing import Protocol

import grpc
from google.protobuf.any_pb2 import Any as PB2Any
from google.protobuf.duration_pb2 import Duration as PB2Duration
from google.rpc.code_pb2 import RESOURCE_EXHAUSTED as PB2_RESOURCE_EXHAUSTED
from google.rpc.error_details_pb2 import RetryInfo as PB2RetryInfo
from google.rpc.status_pb2 import Status as PB2Status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse as PB2ExportTraceServiceResponse,
)

from tracegen.errors import InputError
from tracegen.receiver._wire import DEFAULT_MAX_MESSAGE_BYTES, decode_request, export_response, token_ok
from tracegen.receiver.pending import AddResult
from tracegen.spans import Span

__all__ = ["GrpcReceiver", "Sink"]

logger = logging.getLogger(__name__)

_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class Sink(Protocol):
    """Where receivers put spans (the sidecar): ``submit`` buffers a batch, the rest is for answers and metrics."""

    accepting: bool
    retry_after: float

    def submit(self, spans: list[Span]) -> AddResult: ...

    def count_refused(self, spans: int) -> None: ...


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    """A ``grpc.Status`` carrying trailers (what grpcio-status builds, without depending on it)."""


def _busy_status(retry_after: float, message: str) -> _Status:
    delay = PB2Duration(seconds=int(retry_after), nanos=int(round((retry_after % 1) * 1e9)))
    retry = PB2RetryInfo(retry_delay=delay)
    detail = PB2Any()
    detail.Pack(retry)
    status = PB2Status(code=PB2_RESOURCE_EXHAUSTED, message=message, details=[detail])
    return _Status(grpc.StatusCode.RESOURCE_EXHAUSTED, message, (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
    ))


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Sink, token: str | None) -> None:
        self._sink = sink
        self._token = token

    def Export(self, request: bytes, context: grpc.ServicerContext) -> PB2ExportTraceServiceResponse:  # noqa: N802
        """Decode, buffer and answer one export (see the module rules)."""
        if self._token:
            header = dict(context.invocation_metadata()).get("authorization")
            if not token_ok(header if isinstance(header, str) else None, self._token):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if not self._sink.accepting:
            context.abort(grpc.StatusCode.UNAVAILABLE, "tracegen is shutting down")
        try:
            decoded = decode_request(request, "proto", "grpc request")
        except InputError as error:
            logger.info("grpc: refused an undecodable request: %s", error.detail)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.detail)
        result = self._sink.submit(decoded.spans)
        if result.reason == "closed":
            context.abort(grpc.StatusCode.UNAVAILABLE, "tracegen is shutting down")
        if result.full:
            context.abort_with_status(_busy_status(self._sink.retry_after,
                                                   "tracegen's pending-trace buffer is full; retry later"))
        if decoded.rejected:
            self._sink.count_refused(decoded.rejected)
        response = export_response(decoded, result.rejected)
        return response


class GrpcReceiver:
    """A grpcio server for ``TraceService/Export`` on ``host:port`` (port 0: any free port, see :attr:`port`)."""

    def __init__(self, sink: Sink, address: str = "127.0.0.1:4317", *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, token: str | None = None,
                 tls: tuple[bytes, bytes] | None = None, workers: int = 4) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tracegen-grpc"),
            options=[("grpc.max_receive_message_length", max_message_bytes),
                     ("grpc.so_reuseport", 0)])
        servicer = _Servicer(sink, token)
        handler = grpc.method_handlers_generic_handler(_SERVICE, {
            "Export": grpc.unary_unary_rpc_method_handler(
                servicer.Export, request_deserializer=None,
                response_serializer=PB2ExportTraceServiceResponse.SerializeToString),
        })
        self._server.add_generic_rpc_handlers((handler,))
        if tls is not None:
            cert, key = tls
            self.port = self._server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen for OTLP/gRPC on {address}")
        self.host = address.rsplit(":", 1)[0]
        self.tls = tls is not None

    @property
    def address(self) -> str:
        """``host:port`` actually bound."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving (worker threads)."""
        self._server.start()

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; let running exports finish within ``grace`` seconds."""
        self._server.stop(grace).wait()
