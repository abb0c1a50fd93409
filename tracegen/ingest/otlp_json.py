"""OTLP/JSON decoding: one ``ExportTraceServiceRequest`` as JSON, parsed by ``orjson``, into :class:`Span` records.

Why a hand-written walker: ``google.protobuf.json_format`` decodes OTLP's hex ids as base64 (the OTLP/JSON spec
deviates from the protobuf JSON mapping there) and is ~20x slower. Real producers write several dialects, all read:

- ids as hex (the OTLP spec: 32 chars for a trace id, 16 for a span id) or as base64 (the protobuf JSON mapping,
  as Tempo and ``MessageToJson`` write it: 24 chars / 12 chars, padding optional); told apart by length, which is
  unambiguous (16 bytes are 32 hex chars but 24 base64 chars);
- enums as integers (``2``) or as their names (``"SPAN_KIND_SERVER"``, ``"STATUS_CODE_ERROR"``);
- int64 values as JSON numbers or strings (the protobuf mapping writes ``"1485467191639875000"``);
- camelCase or snake_case keys (``resourceSpans``/``resource_spans``), the deprecated
  ``instrumentationLibrarySpans``, and Tempo's ``batches`` top key; unknown fields are ignored.

Rules: the decoder does no I/O; a value of the wrong type or a span without ids raises :class:`InputError` whose
message names the field path (``resourceSpans[0].scopeSpans[0].spans[3]: span has no spanId``). Jaeger and Zipkin
JSON are recognised and refused with :class:`UnsupportedFormatError` (see :func:`foreign_json_format`).
Attribute values are flattened like the protobuf decoder does (see ``otlp_proto``): scalars stay scalars, arrays
become tuples of scalars, bytes become hex, key-value lists are skipped.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Mapping

import orjson

from tracegen.errors import InputError, UnsupportedFormatError
from tracegen.spans import KEPT_RESOURCE_KEYS, AttrValue, Link, Span, SpanKind, keep_attribute

__all__ = ["decode_otlp_json", "foreign_json_format", "normalise_id"]

_KIND_NAMES: dict[str, SpanKind] = {f"SPAN_KIND_{k.name}": k for k in SpanKind}
_KIND_BY_INT: dict[int, SpanKind] = {int(k): k for k in SpanKind}
_STATUS_ERROR_NAMES = frozenset({"STATUS_CODE_ERROR"})
_STATUS_NAMES = frozenset({"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"})
_HEX = frozenset("0123456789abcdefABCDEF")

_JAEGER_HINT = (
    "not supported yet (convert it to OTLP with the OpenTelemetry Collector's jaeger receiver and file exporter, "
    "or export OTLP from the tracing backend)"
)
_ZIPKIN_HINT = (
    "not supported yet (convert it to OTLP with the OpenTelemetry Collector's zipkin receiver and file exporter)"
)


def decode_otlp_json(obj_or_bytes: Any, source: str, line: int | None = None) -> list[Span]:
    """Decode one OTLP/JSON request (bytes/str to parse, or an already parsed dict) into spans.

    ``line`` is the JSON-lines line number, carried into every error so a person can find the record.
    """
    if isinstance(obj_or_bytes, (bytes, bytearray, memoryview, str)):
        try:
            obj = orjson.loads(obj_or_bytes)
        except orjson.JSONDecodeError as exc:
            raise InputError(source, f"invalid JSON: {exc}", line=line) from None
    else:
        obj = obj_or_bytes
    if not isinstance(obj, dict):
        foreign = foreign_json_format(obj)
        if foreign is not None:
            raise UnsupportedFormatError(source, _refusal(foreign), line=line)
        raise InputError(
            source, f"not an OTLP/JSON request: top level is a JSON {_type_name(obj)}, expected an object", line=line
        )
    top_key, resource_spans = _top_level(obj)
    if top_key is None:
        foreign = foreign_json_format(obj)
        if foreign is not None:
            raise UnsupportedFormatError(source, _refusal(foreign), line=line)
        if obj:
            keys = ", ".join(sorted(map(str, obj))[:5])
            raise InputError(source, f"not an OTLP/JSON request: no resourceSpans (top-level keys: {keys})", line=line)
        return []
    decoder = _Decoder(source, line)
    return decoder.request(top_key, resource_spans)


def foreign_json_format(obj: Any) -> str | None:
    """Name the non-OTLP trace format a parsed JSON value is in (Jaeger or Zipkin flavours), else ``None``.

    Why here: both the file reader and a future HTTP receiver must refuse these with the same clear message
    instead of a confusing "no resourceSpans".
    """
    if isinstance(obj, list):
        first = next((item for item in obj if isinstance(item, dict)), None)
        if first is None:
            return None
        if "traceID" in first and "spanID" in first:
            return "Jaeger JSON (a list of domain spans)"
        if "traceId" in first and "id" in first:
            return _zipkin_flavour(first)
        return None
    if not isinstance(obj, dict):
        return None
    data = obj.get("data")
    if isinstance(data, list) and any(isinstance(t, dict) and "spans" in t for t in data):
        return "Jaeger JSON (query API response)"
    if isinstance(data, dict) and "spans" in data:
        return "Jaeger JSON (query API response)"
    if "spans" in obj and ("processes" in obj or "processMap" in obj or "traceID" in obj):
        return "Jaeger JSON (one trace)"
    batch = obj.get("batch")
    if isinstance(batch, dict) and "spans" in batch:
        return "Jaeger JSON (api_v2 PostSpansRequest)"
    if "traceID" in obj and "spanID" in obj:
        return "Jaeger JSON (one domain span)"
    if "traceId" in obj and "id" in obj:
        return _zipkin_flavour(obj)
    return None


def normalise_id(value: Any, size: int) -> str | None:
    """A trace (``size`` 16) or span (``size`` 8) id as lowercase hex, from hex or base64; ``None`` if not one.

    The empty string and ``None`` give ``""``. An all-zero id is returned as is (callers decide what it means).
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        return None
    hex_len = size * 2
    if len(value) == hex_len and _HEX.issuperset(value):
        return value.lower()
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size:
        return None
    return raw.hex()


# --------------------------------------------------------------------------------------------------- internals


def _zipkin_flavour(obj: Mapping[str, Any]) -> str:
    if "binaryAnnotations" in obj or ("annotations" in obj and "localEndpoint" not in obj and "kind" not in obj):
        return "Zipkin v1 JSON"
    return "Zipkin v2 JSON"


def _refusal(fmt: str) -> str:
    hint = _ZIPKIN_HINT if fmt.startswith("Zipkin") else _JAEGER_HINT
    return f"is {fmt}; {hint}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _top_level(obj: Mapping[str, Any]) -> tuple[str | None, Any]:
    for key in ("resourceSpans", "resource_spans", "batches"):
        if key in obj:
            return key, obj[key]
    trace = obj.get("trace")  # Tempo's v2 trace-by-id response wraps the request
    if isinstance(trace, dict):
        for key in ("resourceSpans", "resource_spans", "batches"):
            if key in trace:
                return f"trace.{key}", trace[key]
    return None, None


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake)
    return value


class _Decoder:
    """One request's decoding state: the source and line for error messages."""

    __slots__ = ("source", "line")

    def __init__(self, source: str, line: int | None) -> None:
        self.source = source
        self.line = line

    def fail(self, path: str, message: str) -> InputError:
        return InputError(self.source, f"{path}: {message}", line=self.line)

    def list_at(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected an array, got a JSON {_type_name(value)}")
        return value

    def dict_at(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got a JSON {_type_name(value)}")
        return value

    def request(self, top_key: str, resource_spans: Any) -> list[Span]:
        out: list[Span] = []
        for i, rs in enumerate(self.list_at(resource_spans, top_key)):
            rs_path = f"{top_key}[{i}]"
            rs = self.dict_at(rs, rs_path)
            resource = self.resource(rs.get("resource"), f"{rs_path}.resource")
            service = resource.get("service.name")
            service = service if isinstance(service, str) and service else "unknown_service"
            for scope_key in ("scopeSpans", "scope_spans", "instrumentationLibrarySpans", "instrumentation_library_spans"):
                scope_list = rs.get(scope_key)
                if scope_list is None:
                    continue
                for j, ss in enumerate(self.list_at(scope_list, f"{rs_path}.{scope_key}")):
                    ss_path = f"{rs_path}.{scope_key}[{j}]"
                    ss = self.dict_at(ss, ss_path)
                    scope_name = self.scope_name(ss, ss_path)
                    spans = ss.get("spans")
                    for k, span in enumerate(self.list_at(spans, f"{ss_path}.spans")):
                        out.append(self.span(span, f"{ss_path}.spans[{k}]", service, resource, scope_name))
        return out

    def resource(self, value: Any, path: str) -> dict[str, AttrValue]:
        if value is None:
            return {}
        value = self.dict_at(value, path)
        attrs = value.get("attributes")
        if not attrs:
            return {}
        kept: dict[str, AttrValue] = {}
        for n, kv in enumerate(self.list_at(attrs, f"{path}.attributes")):
            if not isinstance(kv, dict):
                raise self.fail(f"{path}.attributes[{n}]", f"expected an object, got a JSON {_type_name(kv)}")
            key = kv.get("key")
            if key in KEPT_RESOURCE_KEYS:
                flat = self.any_value(kv.get("value"), f"{path}.attributes[{n}].value")
                if flat is not None:
                    kept[key] = flat
        return kept

    def scope_name(self, ss: Mapping[str, Any], path: str) -> str:
        scope = ss.get("scope")
        if scope is None:
            scope = _get(ss, "instrumentationLibrary", "instrumentation_library")
        if scope is None:
            return ""
        scope = self.dict_at(scope, f"{path}.scope")
        name = scope.get("name", "")
        if not isinstance(name, str):
            raise self.fail(f"{path}.scope.name", f"expected a string, got a JSON {_type_name(name)}")
        return name

    def attributes(self, attrs: Any, path: str, *, keep_all: bool = False) -> dict[str, AttrValue]:
        if not attrs:
            return {}
        if not isinstance(attrs, list):
            raise self.fail(path, f"expected an array, got a JSON {_type_name(attrs)}")
        kept: dict[str, AttrValue] = {}
        for n, kv in enumerate(attrs):
            if not isinstance(kv, dict):
                raise self.fail(f"{path}[{n}]", f"expected an object, got a JSON {_type_name(kv)}")
            key = kv.get("key")
            if not isinstance(key, str):
                raise self.fail(f"{path}[{n}].key", f"expected a string, got a JSON {_type_name(key)}")
            if keep_all or keep_attribute(key):
                flat = self.any_value(kv.get("value"), f"{path}[{n}].value")
                if flat is not None:
                    kept[key] = flat
        return kept

    def any_value(self, value: Any, path: str) -> AttrValue | None:
        """Flatten an AnyValue: scalars as is, arrays as tuples of scalars, bytes as hex; kvlists and empties skipped."""
        if value is None:
            return None
        if not isinstance(value, dict):
            # YAML goldens and some hand-written files put the bare scalar there.
            if isinstance(value, (str, bool, int, float)):
                return value
            raise self.fail(path, f"expected an AnyValue object, got a JSON {_type_name(value)}")
        for key, inner in value.items():
            if key in ("stringValue", "string_value"):
                if not isinstance(inner, str):
                    raise self.fail(f"{path}.{key}", f"expected a string, got a JSON {_type_name(inner)}")
                return inner
            if key in ("intValue", "int_value"):
                return self.int64(inner, f"{path}.{key}")
            if key in ("boolValue", "bool_value"):
                if not isinstance(inner, bool):
                    raise self.fail(f"{path}.{key}", f"expected a boolean, got a JSON {_type_name(inner)}")
                return inner
            if key in ("doubleValue", "double_value"):
                return self.double(inner, f"{path}.{key}")
            if key in ("arrayValue", "array_value"):
                inner = self.dict_at(inner, f"{path}.{key}") if inner is not None else {}
                items = []
                for n, item in enumerate(self.list_at(inner.get("values"), f"{path}.{key}.values")):
                    flat = self.any_value(item, f"{path}.{key}.values[{n}]")
                    if flat is not None and not isinstance(flat, tuple):
                        items.append(flat)
                return tuple(items)
            if key in ("bytesValue", "bytes_value"):
                if not isinstance(inner, str):
                    raise self.fail(f"{path}.{key}", f"expected a base64 string, got a JSON {_type_name(inner)}")
                try:
                    return base64.b64decode(inner + "=" * (-len(inner) % 4)).hex()
                except (binascii.Error, ValueError):
                    raise self.fail(f"{path}.{key}", "not valid base64") from None
            if key in ("kvlistValue", "kvlist_value"):
                return None
        return None

    def int64(self, value: Any, path: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise self.fail(path, f"expected an integer (number or decimal string), got {value!r}")

    def double(self, value: Any, path: str) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                result = float(value)  # the protobuf mapping writes "NaN", "Infinity"
            except ValueError:
                pass
            else:
                if not math.isnan(result) or value == "NaN":
                    return result
        raise self.fail(path, f"expected a number, got {value!r}")

    def span_id(self, value: Any, path: str, size: int) -> str:
        result = normalise_id(value, size)
        if result is None:
            what = "trace id" if size == 16 else "span id"
            raise self.fail(path, f"not a {what} (expected {size * 2} hex or base64 of {size} bytes): {value!r}")
        return result

    def span(
        self, span: Any, path: str, service: str, resource: dict[str, AttrValue], scope: str
    ) -> Span:
        span = self.dict_at(span, path)
        raw_trace = _get(span, "traceId", "trace_id")
        raw_span = _get(span, "spanId", "span_id")
        if raw_trace is None or raw_trace == "":
            raise self.fail(path, "span has no traceId")
        if raw_span is None or raw_span == "":
            raise self.fail(path, "span has no spanId")
        trace_id = self.span_id(raw_trace, f"{path}.traceId", 16)
        span_id = self.span_id(raw_span, f"{path}.spanId", 8)
        if trace_id.strip("0") == "":
            raise self.fail(f"{path}.traceId", "the all-zero trace id is invalid")
        if span_id.strip("0") == "":
            raise self.fail(f"{path}.spanId", "the all-zero span id is invalid")
        parent = self.span_id(_get(span, "parentSpanId", "parent_span_id"), f"{path}.parentSpanId", 8)
        if parent and parent.strip("0") == "":
            parent = ""  # some producers write zeros for "no parent"

        name = span.get("name", "")
        if not isinstance(name, str):
            raise self.fail(f"{path}.name", f"expected a string, got a JSON {_type_name(name)}")
        kind = self.kind(span.get("kind"), f"{path}.kind")

        start = _get(span, "startTimeUnixNano", "start_time_unix_nano")
        end = _get(span, "endTimeUnixNano", "end_time_unix_nano")
        start_ns = 0 if start is None else self.int64(start, f"{path}.startTimeUnixNano")
        end_ns = 0 if end is None else self.int64(end, f"{path}.endTimeUnixNano")

        error = False
        status_message = ""
        status = span.get("status")
        if status:
            status = self.dict_at(status, f"{path}.status")
            code = status.get("code")
            if code is not None:
                if isinstance(code, str):
                    if code not in _STATUS_NAMES:
                        raise self.fail(f"{path}.status.code", f"not a status code: {code!r}")
                    error = code in _STATUS_ERROR_NAMES
                elif isinstance(code, int) and not isinstance(code, bool):
                    error = code == 2
                else:
                    raise self.fail(f"{path}.status.code", f"expected an integer or a name, got {code!r}")
            message = status.get("message", "")
            if message:
                if not isinstance(message, str):
                    raise self.fail(f"{path}.status.message", f"expected a string, got {message!r}")
                status_message = message

        parent_is_remote: bool | None = None
        flags = span.get("flags")
        if flags:
            flags = self.int64(flags, f"{path}.flags")
            if flags & 0x100:
                parent_is_remote = bool(flags & 0x200)

        links: tuple[Link, ...] = ()
        raw_links = span.get("links")
        if raw_links:
            links = tuple(
                self.link(link, f"{path}.links[{n}]")
                for n, link in enumerate(self.list_at(raw_links, f"{path}.links"))
            )

        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            kind=kind,
            service=service,
            start_ns=start_ns,
            end_ns=end_ns,
            error=error,
            attributes=self.attributes(span.get("attributes"), f"{path}.attributes"),
            resource=resource,
            scope=scope,
            links=links,
            parent_is_remote=parent_is_remote,
            status_message=status_message,
        )

    def kind(self, value: Any, path: str) -> SpanKind:
        if value is None:
            return SpanKind.UNSPECIFIED
        if isinstance(value, str):
            kind = _KIND_NAMES.get(value)
            if kind is None:
                raise self.fail(path, f"not a span kind: {value!r}")
            return kind
        if isinstance(value, int) and not isinstance(value, bool):
            return _KIND_BY_INT.get(value, SpanKind.UNSPECIFIED)  # proto3 enums are open
        raise self.fail(path, f"expected an integer or a SPAN_KIND_* name, got {value!r}")

    def link(self, link: Any, path: str) -> Link:
        link = self.dict_at(link, path)
        raw_trace = _get(link, "traceId", "trace_id")
        raw_span = _get(link, "spanId", "span_id")
        if not raw_trace or not raw_span:
            raise self.fail(path, "link has no traceId or spanId")
        return Link(
            trace_id=self.span_id(raw_trace, f"{path}.traceId", 16),
            span_id=self.span_id(raw_span, f"{path}.spanId", 8),
            attributes=self.attributes(link.get("attributes"), f"{path}.attributes", keep_all=True),
        )
