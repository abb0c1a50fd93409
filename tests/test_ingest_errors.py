"""Malformed input gives one clear error naming the file (and the line for JSON lines) and what is wrong;
``skip_invalid`` records it and goes on."""

from __future__ import annotations

import json

import pytest

from tests._spans import build_sdk_spans, json_bytes, length_prefixed, to_json_hex, to_proto
from tracegen.errors import InputError, UnsupportedFormatError
from tracegen.ingest.files import IngestReport, SkippedRecord, read_spans
from tracegen.ingest.otlp_json import decode_otlp_json
from tracegen.ingest.otlp_proto import decode_otlp_proto

SDK_SPANS = build_sdk_spans(2)
GOOD_LINE = json_bytes(to_json_hex(SDK_SPANS)) + b"\n"


def _doc_with(mutate) -> dict:
    doc = to_json_hex(SDK_SPANS)
    mutate(doc["resourceSpans"][0]["scopeSpans"][0]["spans"])
    return doc


def test_truncated_protobuf_names_the_file(tmp_path):
    """A protobuf request cut short is an InputError naming the file and saying it is truncated or corrupt."""
    data = to_proto(SDK_SPANS)
    path = tmp_path / "cut.pb"
    path.write_bytes(data[: len(data) - 7])
    with pytest.raises(InputError) as info:
        list(read_spans([str(path)]))
    assert str(info.value).startswith(f"{path}: ")
    assert "truncated or corrupt" in str(info.value)
    assert info.value.exit_code == 1


def test_truncated_protobuf_in_a_frame_names_the_record(tmp_path):
    """A corrupt frame in the middle of a length-prefixed file names the file and the record."""
    bad = to_proto(SDK_SPANS)[:-5]
    path = tmp_path / "bad.otlp"
    path.write_bytes(length_prefixed([to_proto(SDK_SPANS), bad, to_proto(SDK_SPANS)]))
    with pytest.raises(InputError, match=r"bad\.otlp: record 2 at byte \d+: not a valid OTLP protobuf"):
        list(read_spans([str(path)]))


def test_decode_otlp_proto_rejects_garbage():
    """The protobuf decoder itself raises InputError with the source for bytes that are not a request."""
    with pytest.raises(InputError, match="^req.bin: not a valid OTLP protobuf request"):
        decode_otlp_proto(b"\x0a\xff\xff\xff", "req.bin")


def test_invalid_json_document_names_the_file(tmp_path):
    """A pretty-printed JSON file with a syntax error is an InputError naming the file and the JSON problem."""
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceSpans": [\n    {"resource": }\n  ]\n}\n')
    with pytest.raises(InputError) as info:
        list(read_spans([str(path)]))
    assert str(info.value).startswith(f"{path}: invalid JSON")
    assert info.value.line is None


def test_invalid_json_line_names_file_and_line(tmp_path):
    """A bad line in the middle of a JSON-lines file is reported with its line number."""
    path = tmp_path / "export.jsonl"
    path.write_bytes(GOOD_LINE + b'{"resourceSpans": [\n' + GOOD_LINE)
    with pytest.raises(InputError) as info:
        list(read_spans([str(path)]))
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: invalid JSON")


def test_bad_first_json_line_is_still_reported_by_line(tmp_path):
    """JSON lines whose first line is bad are recognised as JSON lines and the error names line 1."""
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"{oops\n" + GOOD_LINE + GOOD_LINE)
    with pytest.raises(InputError) as info:
        list(read_spans([str(path)]))
    assert info.value.line == 1 and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda spans: spans[1].pop("spanId"), "resourceSpans[0].scopeSpans[0].spans[1]: span has no spanId"),
        (lambda spans: spans[0].pop("traceId"), "resourceSpans[0].scopeSpans[0].spans[0]: span has no traceId"),
        (lambda spans: spans[0].update(spanId=""), "spans[0]: span has no spanId"),
        (lambda spans: spans[0].update(traceId="zz"), "spans[0].traceId: not a trace id"),
    ],
    ids=["no-span-id", "no-trace-id", "empty-span-id", "bad-trace-id"],
)
def test_span_without_ids_names_file_line_and_span(tmp_path, mutate, message):
    """A span without (valid) ids in a JSON line names the file, the line and the span's path."""
    path = tmp_path / "ids.jsonl"
    path.write_bytes(GOOD_LINE + json_bytes(_doc_with(mutate)) + b"\n")
    with pytest.raises(InputError) as info:
        list(read_spans([str(path)]))
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda spans: spans[0].update(startTimeUnixNano="yesterday"), "spans[0].startTimeUnixNano: expected an integer"),
        (lambda spans: spans[0].update(kind="SPAN_KIND_SIDEWAYS"), "spans[0].kind: not a span kind"),
        (lambda spans: spans[0].update(kind=[2]), "spans[0].kind: expected an integer or a SPAN_KIND_* name"),
        (lambda spans: spans[0].update(name=42), "spans[0].name: expected a string"),
        (lambda spans: spans[0].update(attributes={"a": 1}), "spans[0].attributes: expected an array"),
        (lambda spans: spans[0].update(status={"code": True}), "spans[0].status.code"),
        (lambda spans: spans.append("not a span"), "spans[4]: expected an object, got a JSON string"),
    ],
    ids=["time", "kind-name", "kind-type", "name", "attributes", "status", "span-type"],
)
def test_wrong_types_name_the_field(tmp_path, mutate, message):
    """A value of the wrong type is an InputError naming the file and the field's path."""
    path = tmp_path / "types.json"
    path.write_text(json.dumps(_doc_with(mutate)))
    with pytest.raises(InputError) as info:
        list(read_spans([str(path)]))
    assert str(info.value).startswith(f"{path}: resourceSpans[0].scopeSpans[0].")
    assert message in str(info.value)


def test_wrong_top_level_type():
    """A top-level ``resourceSpans`` that is not an array names the key."""
    with pytest.raises(InputError, match=r"^f\.json: resourceSpans: expected an array, got a JSON object"):
        decode_otlp_json({"resourceSpans": {}}, "f.json")
    with pytest.raises(InputError, match="not an OTLP/JSON request"):
        decode_otlp_json(b'"hello"', "f.json")
    with pytest.raises(InputError, match=r"no resourceSpans \(top-level keys: name, version\)"):
        decode_otlp_json({"name": "x", "version": 1}, "package.json")


def test_jaeger_and_zipkin_json_are_refused_with_the_format_named(tmp_path):
    """Jaeger and Zipkin JSON get UnsupportedFormatError naming the file and the format, with a way forward."""
    jaeger = tmp_path / "jaeger.json"
    jaeger.write_text(json.dumps({"data": [{"traceID": "a", "spans": [], "processes": {}}]}))
    zipkin = tmp_path / "zipkin.json"
    zipkin.write_text(json.dumps([{"traceId": "a", "id": "b", "localEndpoint": {"serviceName": "x"}}]))
    with pytest.raises(UnsupportedFormatError, match=rf"^{jaeger}: is Jaeger JSON .*not supported yet.*jaeger receiver"):
        list(read_spans([str(jaeger)]))
    with pytest.raises(UnsupportedFormatError, match=rf"^{zipkin}: is Zipkin v2 JSON; not supported yet.*zipkin receiver"):
        list(read_spans([str(zipkin)]))


def test_missing_input_is_an_error():
    """A path that does not exist is an InputError naming it, whatever ``skip_invalid`` says."""
    with pytest.raises(InputError, match="no such file or directory"):
        list(read_spans(["/nonexistent/traces.json"], skip_invalid=True))


def test_skip_invalid_records_bad_records_and_goes_on(tmp_path):
    """With ``skip_invalid`` every bad record and refused file is recorded and the good records are still read."""
    (tmp_path / "a.jsonl").write_bytes(GOOD_LINE + b"{nope\n" + json_bytes(_doc_with(lambda s: s[0].pop("spanId"))) + b"\n" + GOOD_LINE)
    data = to_proto(SDK_SPANS)
    (tmp_path / "b.pb").write_bytes(data[:-3])
    (tmp_path / "c.json").write_text(json.dumps({"traceID": "x", "spans": [], "processes": {}}))
    report = IngestReport()
    spans = list(read_spans([str(tmp_path)], skip_invalid=True, report=report))
    assert len(spans) == 2 * len(SDK_SPANS)
    assert [(r.source, r.line) for r in report.skipped] == [
        (str(tmp_path / "a.jsonl"), 2),
        (str(tmp_path / "a.jsonl"), 3),
        (str(tmp_path / "b.pb"), None),
        (str(tmp_path / "c.json"), None),
    ]
    assert "span has no spanId" in report.skipped[1].message
    assert "Jaeger" in report.skipped[3].message
    assert isinstance(report.skipped[0], SkippedRecord)
    assert report.spans_per_file[str(tmp_path / "a.jsonl")] == 2 * len(SDK_SPANS)


def test_without_skip_invalid_the_first_bad_record_stops_reading(tmp_path):
    """By default reading stops at the first bad record: nothing after it is yielded."""
    path = tmp_path / "a.jsonl"
    path.write_bytes(GOOD_LINE + b"{nope\n" + GOOD_LINE)
    seen = []
    with pytest.raises(InputError):
        for span in read_spans([str(path)]):
            seen.append(span)
    assert len(seen) == len(SDK_SPANS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda spans: spans[0]["attributes"].append({"key": {"a": 1}}), "spans[0].attributes[3].key: expected a string"),
        (
            lambda spans: spans[0]["attributes"].append({"key": "http.x", "value": {"intValue": "x1"}}),
            "spans[0].attributes[3].value.intValue: expected an integer",
        ),
        (lambda spans: spans[0].update(links=[{"traceId": "ab"}]), "spans[0].links[0]: link has no traceId or spanId"),
    ],
    ids=["attribute-key", "attribute-value", "link"],
)
def test_nested_wrong_types_name_the_full_path(mutate, message):
    """Errors deep inside attributes and links carry the full path from the request's top."""
    with pytest.raises(InputError) as info:
        decode_otlp_json(_doc_with(mutate), "deep.json", line=7)
    assert str(info.value).startswith("deep.json:7: resourceSpans[0].scopeSpans[0].")
    assert message in str(info.value)
