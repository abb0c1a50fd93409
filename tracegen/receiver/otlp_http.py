"""OTLP/HTTP receiver (``POST /v1/traces``) plus ``/healthz``, ``/readyz`` and ``/metrics``, on the stdlib server.

Rules (OTLP specification, "OTLP/HTTP"):
- ``Content-Type`` ``application/x-protobuf`` or ``application/json`` (parameters ignored); anything else is 415;
  the response uses the request's encoding: an ``ExportTraceServiceResponse`` (``partial_success`` with
  ``rejected_spans`` and a message when spans were refused for good), errors as a ``google.rpc.Status``;
- ``Content-Encoding`` gzip or deflate, decompressed as a stream with a cap: a body over the limit after
  decompression (default 64 MiB) is 413 and never fully expanded; an undecodable body is 400 and the server keeps
  serving; a body without ``Content-Length`` is 411;
- busy (the pending buffer full) is 429 with ``Retry-After`` (the Python HTTP exporter honours it), shutting down
  is 503 with ``Retry-After``; a missing or wrong bearer token is 401 with ``WWW-Authenticate: Bearer``;
- ``/healthz`` is 200 while the process runs, ``/readyz`` 200 only while accepting spans, ``/metrics`` the
  Prometheus text exposition format (0.0.4). The token guards ``/v1/traces`` only, like the Collector's
  extension guards receivers, not its health endpoint.

Why the stdlib ``ThreadingHTTPServer``: no new dependency, and request handling is dominated by decoding, not by
the HTTP layer. Every request is read fully before answering so keep-alive connections stay in sync.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from google.protobuf.json_format import MessageToDict
from google.rpc.status_pb2 import Status as PB2Status
import orjson

from tracegen.errors import InputError
from tracegen.receiver._wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    TooLargeError,
    UnsupportedEncodingError,
    decode_request,
    decompress,
    export_response,
    token_ok,
)
from tracegen.receiver.otlp_grpc import Sink

__all__ = ["HttpReceiver"]

logger = logging.getLogger(__name__)

_FORMATS = {"application/x-protobuf": "proto", "application/json": "json"}
_GRPC_CODES = {400: 3, 401: 16, 411: 3, 413: 8, 415: 3, 429: 8, 503: 14, 404: 5, 405: 12}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    sink: Sink
    token: str | None
    limit: int
    metrics: Callable[[], str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds an idle keep-alive connection may hold a thread
    server_version = "tracegen"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("http %s: " + format, self.client_address[0], *args)

    # -- GET: health, readiness, metrics ------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        """``/healthz``, ``/readyz`` and ``/metrics``."""
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            ready = self.server.sink.accepting
            self._send(200 if ready else 503, b"ready\n" if ready else b"not ready\n", "text/plain; charset=utf-8")
        elif path == "/metrics":
            self._send(200, self.server.metrics().encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    # -- POST /v1/traces ----------------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        """Receive one OTLP/HTTP export (see the module rules)."""
        path = self.path.split("?", 1)[0]
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        fmt = _FORMATS.get(content_type, "")
        length_header = self.headers.get("Content-Length")
        if path != "/v1/traces":
            self._drain(length_header)
            return self._error(404, f"no OTLP endpoint at {path} (traces go to /v1/traces)", fmt)
        if not token_ok(self.headers.get("Authorization"), self.server.token):
            self._drain(length_header)
            return self._error(401, "missing or wrong bearer token", fmt, {"WWW-Authenticate": "Bearer"})
        if not fmt:
            self._drain(length_header)
            return self._error(415, f"Content-Type {content_type or '(none)'!r} is not supported: use "
                               "application/x-protobuf or application/json", "")
        if length_header is None or not length_header.strip().isdigit():
            self.close_connection = True
            return self._error(411, "Content-Length required", fmt)
        length = int(length_header)
        limit = self.server.limit
        if length > limit:
            self._discard(length)
            return self._error(413, f"body of {length} bytes exceeds the limit of {limit} bytes", fmt)
        body = self.rfile.read(length)
        sink = self.server.sink
        if not sink.accepting:
            return self._error(503, "tracegen is shutting down", fmt, self._retry_after())
        try:
            data = decompress(body, self.headers.get("Content-Encoding", ""), limit)
            decoded = decode_request(data, fmt, "http request")
        except TooLargeError as error:
            return self._error(413, str(error), fmt)
        except UnsupportedEncodingError as error:
            return self._error(415, str(error), fmt)
        except InputError as error:
            logger.info("http: refused an undecodable request: %s", error.detail)
            return self._error(400, error.detail, fmt)
        result = sink.submit(decoded.spans)
        if result.reason == "closed":
            return self._error(503, "tracegen is shutting down", fmt, self._retry_after())
        if result.full:
            return self._error(429, "tracegen's pending-trace buffer is full; retry later", fmt,
                               self._retry_after())
        if decoded.rejected:
            sink.count_refused(decoded.rejected)
        response = export_response(decoded, result.rejected)
        if fmt == "json":
            self._send(200, orjson.dumps(MessageToDict(response)), "application/json")
        else:
            self._send(200, response.SerializeToString(), "application/x-protobuf")

    # -- helpers ------------------------------------------------------------------------------------------------
    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.server.sink.retry_after)))}

    def _drain(self, length_header: str | None) -> None:
        if length_header and length_header.strip().isdigit():
            self._discard(int(length_header))
        else:
            self.close_connection = True

    def _discard(self, length: int) -> None:
        """Read and drop a refused body in chunks (the client sees the answer, not a broken pipe); a body larger
        than twice the limit is not worth reading: the connection is closed instead."""
        if length > 2 * self.server.limit:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)

    def _error(self, code: int, message: str, fmt: str, headers: dict[str, str] | None = None) -> None:
        status = PB2Status(code=_GRPC_CODES.get(code, 2), message=message)
        if fmt == "proto":
            self._send(code, status.SerializeToString(), "application/x-protobuf", headers)
        elif fmt == "json":
            self._send(code, orjson.dumps(MessageToDict(status)), "application/json", headers)
        else:
            self._send(code, (message + "\n").encode("utf-8"), "text/plain; charset=utf-8", headers)

    def _send(self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code, HTTPStatus(code).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class HttpReceiver:
    """The HTTP server on ``host:port`` (port 0: any free port, see :attr:`port`), served from its own thread."""

    def __init__(self, sink: Sink, address: str = "127.0.0.1:4318", *, metrics: Callable[[], str],
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, token: str | None = None,
                 tls: tuple[str, str] | None = None) -> None:
        host, _, port = address.rpartition(":")
        self._server = _Server((host.strip("[]") or "127.0.0.1", int(port)), _Handler)
        self._server.sink = sink
        self._server.token = token
        self._server.limit = max_message_bytes
        self._server.metrics = metrics
        self.tls = tls is not None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile=tls[0], keyfile=tls[1])
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The traces endpoint URL."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/v1/traces"

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="tracegen-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close the socket (requests in progress finish on their threads)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
