"""What both receivers share: request decoding with partial success, bounded decompression, bearer tokens.

Rules (the OTLP specification's, as the receivers answer them):
- a body that is not an OTLP request at all is *undecodable* (HTTP 400, gRPC ``INVALID_ARGUMENT``);
- a request that parses but holds spans tracegen refuses (no trace id, ids of the wrong size) is a *partial
  success*: the good spans are kept, the bad ones counted in ``rejected_spans`` with a message naming the first;
  the strict decoders raise on the first bad span, so this slower span-by-span pass runs only on that error path;
- a body over the message-size limit *after decompression* is refused (413 / ``RESOURCE_EXHAUSTED``); gzip and
  deflate are decompressed as a stream with a cap, so a small "gzip bomb" never expands in memory;
- the bearer token follows the Collector's ``bearertokenauth`` convention (``authorization: Bearer <token>``),
  compared in constant time.
"""

from __future__ import annotations

import hmac
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest as PB2ExportTraceServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse as PB2ExportTraceServiceResponse,
)

from tracegen.errors import InputError
from tracegen.ingest.otlp_json import decode_otlp_json
from tracegen.ingest.otlp_proto import decode_otlp_proto
from tracegen.spans import Span

__all__ = ["Decoded", "TooLargeError", "UnsupportedEncodingError", "decode_request", "decompress", "token_ok",
           "DEFAULT_MAX_MESSAGE_BYTES"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # OTLP's recommended limit (grpcio's default of 4 MiB is too small)
_CHUNK = 256 * 1024


class TooLargeError(Exception):
    """A body over the message-size limit (after decompression)."""


class UnsupportedEncodingError(Exception):
    """A ``Content-Encoding`` the receiver does not read."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """Spans decoded from one request, and how many spans of it were refused (with the first reason)."""

    spans: list[Span]
    rejected: int = 0
    message: str = ""


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded per ``Content-Encoding`` (gzip, deflate, identity), never growing beyond ``limit`` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity", "none"):
        if len(body) > limit:
            raise TooLargeError(f"body of {len(body)} bytes exceeds the limit of {limit} bytes")
        return body
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise UnsupportedEncodingError(f"Content-Encoding {encoding!r} is not supported (gzip, deflate, identity)")
    out = bytearray()
    data = body
    try:
        while data:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")
            data = inflater.unconsumed_tail
        out += inflater.flush()
    except zlib.error as exc:
        raise InputError("request body", f"not valid {encoding} data: {exc}") from None
    if len(out) > limit:
        raise TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise InputError("request body", f"truncated {encoding} data")
    return bytes(out)


def token_ok(header: str | None, token: str | None) -> bool:
    """Whether an ``authorization`` header carries the bearer token (always true when no token is configured)."""
    if not token:
        return True
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def decode_request(body: bytes, fmt: str, source: str) -> Decoded:
    """Decode an OTLP request body (``fmt`` ``proto`` or ``json``); undecodable bodies raise :class:`InputError`."""
    try:
        if fmt == "proto":
            return Decoded(decode_otlp_proto(body, source))
        return Decoded(decode_otlp_json(body, source))
    except InputError as first:
        lenient = _lenient_proto(body, source) if fmt == "proto" else _lenient_json(body, source)
        if lenient is None:
            raise
        spans, rejected, message = lenient
        return Decoded(spans, rejected, message or str(first))


def _lenient_proto(body: bytes, source: str) -> tuple[list[Span], int, str] | None:
    request = PB2ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        return None
    spans: list[Span] = []
    rejected = 0
    message = ""
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                one = PB2ExportTraceServiceRequest()
                part = one.resource_spans.add()
                part.resource.CopyFrom(rs.resource)
                scope = part.scope_spans.add()
                scope.scope.CopyFrom(ss.scope)
                scope.spans.add().CopyFrom(span)
                try:
                    spans.extend(decode_otlp_proto(one.SerializeToString(), source))
                except InputError as exc:
                    rejected += 1
                    message = message or exc.detail
    return spans, rejected, message


def _lenient_json(body: bytes, source: str) -> tuple[list[Span], int, str] | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    resource_spans = _first(doc, "resourceSpans", "resource_spans")
    if not isinstance(resource_spans, list):
        return None
    spans: list[Span] = []
    rejected = 0
    message = ""
    for rs in resource_spans:
        scopes = _first(rs, "scopeSpans", "scope_spans") if isinstance(rs, dict) else None
        if not isinstance(scopes, list):
            return None
        for ss in scopes:
            items = ss.get("spans") if isinstance(ss, dict) else None
            if not isinstance(items, list):
                return None
            for span in items:
                one = {"resourceSpans": [{"resource": rs.get("resource", {}),
                                          "scopeSpans": [{"scope": ss.get("scope", {}), "spans": [span]}]}]}
                try:
                    spans.extend(decode_otlp_json(one, source))
                except InputError as exc:
                    rejected += 1
                    message = message or exc.detail
    return spans, rejected, message


def _first(doc: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in doc:
            return doc[key]
    return None


def export_response(decoded: Decoded, over_budget: int) -> PB2ExportTraceServiceResponse:
    """The OTLP answer to an accepted request: full success, or ``partial_success`` with the number of spans
    refused (undecodable, or beyond one request's in-flight budget) and why, as the specification prescribes."""
    response = PB2ExportTraceServiceResponse()
    rejected = decoded.rejected + over_budget
    if rejected:
        response.partial_success.rejected_spans = rejected
        messages = [decoded.message] if decoded.rejected else []
        if over_budget:
            messages.append(f"{over_budget} span(s) beyond the in-flight budget of one request")
        response.partial_success.error_message = "; ".join(messages)
    return response
