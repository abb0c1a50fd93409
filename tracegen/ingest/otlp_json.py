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
import re
from typing import Any, Mapping

import orjson

from tracegen.errors import InputError, UnsupportedFormatError
from tracegen.spans import KEPT_RESOURCE_KEYS, AttrValue, Link, Span, SpanKind, keep_attribute

__all__ = [
    "decode_otlp_json", "foreign_json_format", "json_error", "normalise_id"]

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


def json_error(source: str, exc: orjson.JSONDecodeError, line: int | None = None) -> InputError:
    """The error for text that is not JSON, naming the file (and the line of a JSON-lines record).

    In a JSON-lines record the parser's own "line 2 column 1" only means "past the end of this line": the file
    line is already in the message, so the position is given as a character within the record.
    """
    detail = f"{exc.msg} at character {exc.pos} of the line" if line is not None else str(exc)
    return InputError(source, f"invalid JSON: {detail}", line=line)


def decode_otlp_json(obj_or_bytes: Any, source: str, line: int | None = None) -> list[Span]:
    """Decode one OTLP/JSON request (bytes/str to parse, or an already parsed dict) into spans.

    ``line`` is the JSON-lines line number, carried into every error so a person can find the record.
    """
    if isinstance(obj_or_bytes, (bytes, bytearray, memoryview, str)):
        try:
            obj = orjson.loads(obj_or_bytes)
        except orjson.JSONDecodeError as exc:
            raise json_error(source, exc, line) from None
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
    try:
        return _request(top_key, resource_spans)
    except _FieldError as exc:
        raise InputError(source, f"{exc.path}: {exc.message}", line=line) from None


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


class _FieldError(Exception):
    """A bad value deep in a span; carries the path relative to where it is caught, formatted only on failure.

    Why: building a path string for every field of every span cost more than decoding it. Raising this and
    prefixing the path while it propagates keeps the happy path free of string formatting.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    def under(self, prefix: str) -> _FieldError:
        self.path = prefix + self.path
        return self


def _expect_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise _FieldError(path, f"expected an array, got a JSON {_type_name(value)}")
    return value


def _expect_dict(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _FieldError(path, f"expected an object, got a JSON {_type_name(value)}")
    return value


def _expect_str(value: Any, path: str) -> str:
    if type(value) is not str:
        raise _FieldError(path, f"expected a string, got a JSON {_type_name(value)}")
    return value


def _int64(value: Any, path: str) -> int:
    kind = type(value)
    if kind is str:
        try:
            return int(value)
        except ValueError:
            pass
    elif kind is int:
        return value
    elif kind is float and value.is_integer():
        return int(value)
    raise _FieldError(path, f"expected an integer (number or decimal string), got {value!r}")


def _double(value: Any, path: str) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if kind is str:
        try:
            result = float(value)  # the protobuf mapping writes "NaN", "Infinity"
        except ValueError:
            pass
        else:
            if not math.isnan(result) or value == "NaN":
                return result
    raise _FieldError(path, f"expected a number, got {value!r}")


def _id(value: Any, path: str, size: int) -> str:
    if type(value) is str and len(value) == 2 * size and _is_hex(value):
        return value.lower()
    result = normalise_id(value, size)
    if result is None:
        what = "trace id" if size == 16 else "span id"
        raise _FieldError(path, f"not a {what} (expected {size * 2} hex chars or base64 of {size} bytes): {value!r}")
    return result


_is_hex = re.compile(r"[0-9a-fA-F]+").fullmatch
_KEEP_CACHE: dict[str, bool] = {}  # attribute key -> keep_attribute(key); keys are few, bounded anyway
_KEEP_CACHE_MAX = 50_000


def _any_value(value: Any) -> AttrValue | None:
    """Flatten an AnyValue: scalars as is, arrays as tuples of scalars, bytes as hex; kvlists and empties skipped."""
    if type(value) is not dict:
        if value is None:
            return None
        # YAML goldens and some hand-written files put the bare scalar there.
        if isinstance(value, (str, bool, int, float)):
            return value
        raise _FieldError("", f"expected an AnyValue object, got a JSON {_type_name(value)}")
    for key, inner in value.items():
        if key == "stringValue" or key == "string_value":
            return _expect_str(inner, "." + key)
        if key == "intValue" or key == "int_value":
            return _int64(inner, "." + key)
        if key == "boolValue" or key == "bool_value":
            if type(inner) is not bool:
                raise _FieldError("." + key, f"expected a boolean, got a JSON {_type_name(inner)}")
            return inner
        if key == "doubleValue" or key == "double_value":
            return _double(inner, "." + key)
        if key == "arrayValue" or key == "array_value":
            inner = _expect_dict(inner, "." + key) if inner is not None else {}
            items = []
            for n, item in enumerate(_expect_list(inner.get("values"), f".{key}.values")):
                try:
                    flat = _any_value(item)
                except _FieldError as exc:
                    raise exc.under(f".{key}.values[{n}]") from None
                if flat is not None and type(flat) is not tuple:
                    items.append(flat)
            return tuple(items)
        if key == "bytesValue" or key == "bytes_value":
            text = _expect_str(inner, "." + key)
            try:
                return base64.b64decode(text + "=" * (-len(text) % 4)).hex()
            except (binascii.Error, ValueError):
                raise _FieldError("." + key, "not valid base64") from None
        if key == "kvlistValue" or key == "kvlist_value":
            return None
    return None


def _attributes(attrs: Any, *, keep_all: bool = False, resource: bool = False) -> dict[str, AttrValue]:
    if not attrs:
        return {}
    if type(attrs) is not list:
        raise _FieldError("", f"expected an array, got a JSON {_type_name(attrs)}")
    kept: dict[str, AttrValue] = {}
    keep = _KEEP_CACHE
    for n, kv in enumerate(attrs):
        if type(kv) is not dict:
            raise _FieldError(f"[{n}]", f"expected an object, got a JSON {_type_name(kv)}")
        key = kv.get("key")
        if type(key) is not str:
            raise _FieldError(f"[{n}].key", f"expected a string, got a JSON {_type_name(key)}")
        if resource:
            wanted = key in KEPT_RESOURCE_KEYS
        elif keep_all:
            wanted = True
        else:
            wanted = keep.get(key)
            if wanted is None:
                wanted = keep_attribute(key)
                if len(keep) < _KEEP_CACHE_MAX:
                    keep[key] = wanted
        if wanted:
            try:
                flat = _any_value(kv.get("value"))
            except _FieldError as exc:
                raise exc.under(f"[{n}].value") from None
            if flat is not None:
                kept[key] = flat
    return kept


def _kind(value: Any) -> SpanKind:
    if value is None:
        return SpanKind.UNSPECIFIED
    kind_type = type(value)
    if kind_type is int:
        return _KIND_BY_INT.get(value, SpanKind.UNSPECIFIED)  # proto3 enums are open
    if kind_type is str:
        kind = _KIND_NAMES.get(value)
        if kind is None:
            raise _FieldError(".kind", f"not a span kind: {value!r}")
        return kind
    raise _FieldError(".kind", f"expected an integer or a SPAN_KIND_* name, got {value!r}")


def _status(status: Any) -> tuple[bool, str]:
    status = _expect_dict(status, ".status")
    error = False
    code = status.get("code")
    if code is not None:
        code_type = type(code)
        if code_type is int:
            error = code == 2
        elif code_type is str:
            if code not in _STATUS_NAMES:
                raise _FieldError(".status.code", f"not a status code: {code!r}")
            error = code in _STATUS_ERROR_NAMES
        else:
            raise _FieldError(".status.code", f"expected an integer or a name, got {code!r}")
    message = status.get("message") or ""
    return error, _expect_str(message, ".status.message")


def _link(link: Any) -> Link:
    link = _expect_dict(link, "")
    raw_trace = link.get("traceId") or link.get("trace_id")
    raw_span = link.get("spanId") or link.get("span_id")
    if not raw_trace or not raw_span:
        raise _FieldError("", "link has no traceId or spanId")
    try:
        attributes = _attributes(link.get("attributes"), keep_all=True)
    except _FieldError as exc:
        raise exc.under(".attributes") from None
    return Link(
        trace_id=_id(raw_trace, ".traceId", 16),
        span_id=_id(raw_span, ".spanId", 8),
        attributes=attributes,
    )


def _span(span: Any, service: str, resource: dict[str, AttrValue], scope: str) -> Span:
    """One span; a bad field raises :class:`_FieldError` with its path relative to the span."""
    if type(span) is not dict:
        raise _FieldError("", f"expected an object, got a JSON {_type_name(span)}")
    get = span.get
    raw_trace = get("traceId")
    if raw_trace is None:
        raw_trace = get("trace_id")
    raw_span = get("spanId")
    if raw_span is None:
        raw_span = get("span_id")
    if raw_trace is None or raw_trace == "":
        raise _FieldError("", "span has no traceId")
    if raw_span is None or raw_span == "":
        raise _FieldError("", "span has no spanId")
    trace_id = _id(raw_trace, ".traceId", 16)
    span_id = _id(raw_span, ".spanId", 8)
    if trace_id == _ZERO_TRACE:
        raise _FieldError(".traceId", "the all-zero trace id is invalid")
    if span_id == _ZERO_SPAN:
        raise _FieldError(".spanId", "the all-zero span id is invalid")
    raw_parent = get("parentSpanId")
    if raw_parent is None:
        raw_parent = get("parent_span_id")
    parent = _id(raw_parent, ".parentSpanId", 8) if raw_parent else ""
    if parent == _ZERO_SPAN:
        parent = ""  # some producers write zeros for "no parent"

    name = get("name", "")
    if type(name) is not str:
        raise _FieldError(".name", f"expected a string, got a JSON {_type_name(name)}")

    start = get("startTimeUnixNano")
    if start is None:
        start = get("start_time_unix_nano")
    end = get("endTimeUnixNano")
    if end is None:
        end = get("end_time_unix_nano")

    status = get("status")
    error, status_message = _status(status) if status else (False, "")

    parent_is_remote: bool | None = None
    flags = get("flags")
    if flags:
        flags = _int64(flags, ".flags")
        if flags & 0x100:
            parent_is_remote = bool(flags & 0x200)

    try:
        attributes = _attributes(get("attributes"))
    except _FieldError as exc:
        raise exc.under(".attributes") from None

    links: tuple[Link, ...] = ()
    raw_links = get("links")
    if raw_links:
        collected = []
        for n, link in enumerate(_expect_list(raw_links, ".links")):
            try:
                collected.append(_link(link))
            except _FieldError as exc:
                raise exc.under(f".links[{n}]") from None
        links = tuple(collected)

    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=_kind(get("kind")),
        service=service,
        start_ns=0 if start is None else _int64(start, ".startTimeUnixNano"),
        end_ns=0 if end is None else _int64(end, ".endTimeUnixNano"),
        error=error,
        attributes=attributes,
        resource=resource,
        scope=scope,
        links=links,
        parent_is_remote=parent_is_remote,
        status_message=status_message,
    )


_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_SCOPE_LIST_KEYS = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans", "instrumentation_library_spans")


def _request(top_key: str, resource_spans: Any) -> list[Span]:
    """All spans of a request; a bad field raises :class:`_FieldError` with its full path."""
    out: list[Span] = []
    append = out.append
    for i, rs in enumerate(_expect_list(resource_spans, top_key)):
        rs_path = f"{top_key}[{i}]"
        rs = _expect_dict(rs, rs_path)
        resource: dict[str, AttrValue] = {}
        raw_resource = rs.get("resource")
        if raw_resource is not None:
            raw_resource = _expect_dict(raw_resource, f"{rs_path}.resource")
            try:
                resource = _attributes(raw_resource.get("attributes"), resource=True)
            except _FieldError as exc:
                raise exc.under(f"{rs_path}.resource.attributes") from None
        service = resource.get("service.name")
        if type(service) is not str or not service:
            service = "unknown_service"
        for scope_key in _SCOPE_LIST_KEYS:
            scope_list = rs.get(scope_key)
            if scope_list is None:
                continue
            for j, ss in enumerate(_expect_list(scope_list, f"{rs_path}.{scope_key}")):
                ss_path = f"{rs_path}.{scope_key}[{j}]"
                ss = _expect_dict(ss, ss_path)
                scope = ss.get("scope")
                if scope is None:
                    scope = ss.get("instrumentationLibrary") or ss.get("instrumentation_library")
                scope_name = ""
                if scope is not None:
                    scope = _expect_dict(scope, f"{ss_path}.scope")
                    scope_name = _expect_str(scope.get("name", ""), f"{ss_path}.scope.name")
                spans = ss.get("spans")
                if type(spans) is not list:
                    _expect_list(spans, f"{ss_path}.spans")
                    continue
                for k, span in enumerate(spans):
                    try:
                        append(_span(span, service, resource, scope_name))
                    except _FieldError as exc:
                        raise exc.under(f"{ss_path}.spans[{k}]") from None
    return out
