"""Every OTLP file form gives the same spans: protobuf, length-prefixed, JSON (both id dialects), JSON lines,
gzip and zstd, from files, directories and stdin."""

from __future__ import annotations

import io
import random
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._spans import (
    ALL_FORMS,
    MULTI_REQUEST_FORMS,
    SINGLE_REQUEST_FORMS,
    build_sdk_spans,
    chunks_as,
    json_bytes,
    length_prefixed,
    to_json_hex,
    to_json_pb,
    to_proto,
)
from tracegen.ingest.files import IngestReport, read_spans
from tracegen.ingest.otlp_json import decode_otlp_json, normalise_id
from tracegen.ingest.otlp_proto import decode_otlp_proto, iter_length_prefixed
from tracegen.inspect import inspect_spans
from tracegen.spans import SpanKind

SDK_SPANS = build_sdk_spans()
BASELINE = sorted(decode_otlp_proto(to_proto(SDK_SPANS), "baseline"), key=lambda s: (s.trace_id, s.span_id))
BASELINE_SUMMARY = inspect_spans(BASELINE)


def _sorted(spans):
    return sorted(spans, key=lambda s: (s.trace_id, s.span_id))


def _write(directory: Path, name: str, form: str, chunks) -> Path:
    suffix, data = chunks_as(form, chunks)
    path = directory / f"{name}{suffix}"
    path.write_bytes(data)
    return path


def test_protobuf_decoding_normalises_every_field():
    """The protobuf decoder gives lowercase hex ids, proto kinds, kept attributes only, and the flags' remote bit."""
    spans = {s.name: s for s in BASELINE if s.trace_id.endswith("4701")}
    server = spans["GET /courses/{course_id}"]
    assert server.parent_span_id == ""
    assert server.kind is SpanKind.SERVER
    assert server.service == "lms"
    assert server.scope == "opentelemetry.instrumentation.django"
    assert server.resource == {
        "service.name": "lms",
        "service.namespace": "openedx",
        "service.instance.id": "lms-1",
        "deployment.environment.name": "prod",
        "telemetry.sdk.language": "python",
    }
    assert "custom.ignored" not in server.attributes
    assert server.attributes["http.request.header.accept"] == ("text/html", "application/json")
    assert server.attributes["http.response.status_code"] == 200
    api = spans["GET /api/items"]
    assert api.parent_is_remote is True and api.parent_span_id == spans["GET"].span_id
    assert spans["SELECT items"].parent_is_remote is False
    assert len(server.trace_id) == 32 and len(server.span_id) == 16 and server.trace_id == server.trace_id.lower()


def test_consumer_link_attributes_and_error_status_survive():
    """Links keep their ids and attributes; an ERROR status sets ``error`` and keeps the message."""
    consumers = [s for s in BASELINE if s.kind is SpanKind.CONSUMER]
    assert len(consumers) == 4
    producer_ids = {s.span_id for s in BASELINE if s.kind is SpanKind.PRODUCER}
    for consumer in consumers:
        (link,) = consumer.links
        assert link.span_id in producer_ids and link.trace_id != consumer.trace_id
        assert link.attributes == {"messaging.operation": "receive"}
        assert consumer.attributes["ratio"] == 0.5 if "ratio" in consumer.attributes else True
    failed = [c for c in consumers if c.error]
    assert len(failed) == 1 and failed[0].status_message == "upstream timeout"


@pytest.mark.parametrize(
    "doc",
    [to_json_pb(SDK_SPANS), to_json_pb(SDK_SPANS, snake_case=True), to_json_hex(SDK_SPANS)],
    ids=["protobuf-json-base64", "snake-case", "spec-hex"],
)
def test_json_dialects_decode_to_the_protobuf_spans(doc):
    """OTLP/JSON with base64 or hex ids, enum names or integers, camelCase or snake_case equals the protobuf path."""
    assert _sorted(decode_otlp_json(doc, "x")) == BASELINE
    assert _sorted(decode_otlp_json(json_bytes(doc), "x")) == BASELINE


def test_tempo_batches_and_deprecated_instrumentation_library_spans():
    """Tempo's ``batches`` top key and the old ``instrumentationLibrarySpans`` are read like ``resourceSpans``."""
    doc = to_json_pb(SDK_SPANS)
    for rs in doc["resourceSpans"]:
        rs["instrumentationLibrarySpans"] = rs.pop("scopeSpans")
        for ils in rs["instrumentationLibrarySpans"]:
            ils["instrumentationLibrary"] = ils.pop("scope")
    tempo = {"batches": doc["resourceSpans"], "unknownTopField": 1}
    assert _sorted(decode_otlp_json(tempo, "x")) == BASELINE


def test_ids_accept_hex_and_base64_of_the_right_size():
    """Ids are told apart by length: 32 hex or 24 base64 chars for a trace, 16 hex or 12 base64 for a span."""
    assert normalise_id("5B8EFFF798038103D269B633813FC60C", 16) == "5b8efff798038103d269b633813fc60c"
    assert normalise_id("MUkZX/sL7AU0e0jv6OzBsA==", 16) == "3149195ffb0bec05347b48efe8ecc1b0"
    assert normalise_id("MUkZX/sL7AU0e0jv6OzBsA", 16) == "3149195ffb0bec05347b48efe8ecc1b0"
    assert normalise_id("XvKykq4aueg=", 8) == "5ef2b292ae1ab9e8"
    assert normalise_id("", 8) == ""
    assert normalise_id("xyz", 8) is None
    assert normalise_id(12, 8) is None


def test_length_prefixed_splitter_yields_frames_and_flags_a_cut_tail():
    """``iter_length_prefixed`` yields each frame and raises a truncation error only after the complete ones."""
    data = length_prefixed([b"\x0aabc", b"\x0ade"])
    assert list(iter_length_prefixed(data, "f")) == [(0, b"\x0aabc"), (8, b"\x0ade")]
    frames = []
    with pytest.raises(Exception, match="truncated last record"):
        for frame in iter_length_prefixed(data + b"\x00\x00\x00\x09abc", "f"):
            frames.append(frame)
    assert len(frames) == 2


@pytest.mark.parametrize("form", ALL_FORMS)
def test_every_file_form_reads_the_same_spans(tmp_path, form):
    """Each file form, sniffed from content, gives exactly the protobuf spans and names its format in the report."""
    chunks = [SDK_SPANS] if form in SINGLE_REQUEST_FORMS else [SDK_SPANS[:7], SDK_SPANS[7:8], SDK_SPANS[8:]]
    path = _write(tmp_path, "traces", form, chunks)
    report = IngestReport()
    assert _sorted(read_spans([str(path)], report=report)) == BASELINE
    assert report.spans_per_file == {str(path): len(BASELINE)}
    assert report.format_per_file[str(path)].startswith(("otlp-", "otlp-proto"))
    assert not report.warnings and not report.skipped


def test_format_is_sniffed_from_content_not_the_name(tmp_path):
    """A JSON-lines file named ``.pb`` and a protobuf named ``.json`` are still read correctly."""
    (tmp_path / "a.pb").write_bytes(chunks_as("jsonl", [SDK_SPANS[:10], SDK_SPANS[10:]])[1])
    (tmp_path / "b.json").write_bytes(to_proto(SDK_SPANS))
    for name, fmt in (("a.pb", "otlp-jsonl"), ("b.json", "otlp-proto")):
        report = IngestReport()
        assert _sorted(read_spans([str(tmp_path / name)], report=report)) == BASELINE
        assert report.format_per_file[str(tmp_path / name)] == fmt


def test_all_forms_give_identical_inspect_output(tmp_path):
    """The same spans as protobuf, length-prefixed, JSON, JSON lines, gzip and zstd give the same inspect summary."""
    for form in ALL_FORMS:
        chunks = [SDK_SPANS] if form in SINGLE_REQUEST_FORMS else [SDK_SPANS[::2], SDK_SPANS[1::2]]
        path = _write(tmp_path, form, form, chunks)
        assert inspect_spans(read_spans([str(path)])) == BASELINE_SUMMARY, form
    assert inspect_spans(read_spans([str(tmp_path)])) != BASELINE_SUMMARY  # 12 copies: duplicates counted
    summary = inspect_spans(read_spans([str(tmp_path)]))
    assert summary["duplicates"]["exact"] == len(BASELINE) * (len(ALL_FORMS) - 1)
    assert {k: v for k, v in summary.items() if k != "duplicates"} == {
        k: v for k, v in BASELINE_SUMMARY.items() if k != "duplicates"
    }


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    cuts=st.lists(st.integers(min_value=1, max_value=len(SDK_SPANS) - 1), max_size=6, unique=True),
    forms=st.lists(st.sampled_from(ALL_FORMS), min_size=7, max_size=7),
)
def test_property_any_split_order_and_form_gives_the_same_summary(seed, cuts, forms):
    """Shuffled spans cut into random files of random forms always give the baseline inspect summary."""
    spans = list(SDK_SPANS)
    random.Random(seed).shuffle(spans)
    bounds = [0, *sorted(cuts), len(spans)]
    parts = [spans[a:b] for a, b in zip(bounds, bounds[1:])]
    with tempfile.TemporaryDirectory() as tmp:
        for index, (part, form) in enumerate(zip(parts, forms)):
            if form in MULTI_REQUEST_FORMS and len(part) > 1:
                chunks = [part[: len(part) // 2], part[len(part) // 2 :]]
            else:
                chunks = [part]
            _write(Path(tmp), f"part-{index:02d}", form, chunks)
        report = IngestReport()
        assert inspect_spans(read_spans([tmp], report=report), report) == BASELINE_SUMMARY
        assert len(report.files) == len(parts)


def test_directory_walk_is_recursive_sorted_and_skips_non_trace_files(tmp_path):
    """Directories are walked recursively in sorted order; Markdown, configs and hidden files are ignored."""
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "b", "z", "jsonl", [SDK_SPANS[:5]])
    _write(tmp_path, "a", "pb", [SDK_SPANS[5:]])
    (tmp_path / "README.md").write_text("# not traces {")
    (tmp_path / "config.yaml").write_text("a: b")
    (tmp_path / ".git" / "x.json").write_text("{broken")
    report = IngestReport()
    assert _sorted(read_spans([str(tmp_path)], report=report)) == BASELINE
    assert report.files == [str(tmp_path / "a.pb"), str(tmp_path / "b" / "z.jsonl")]
    assert str(tmp_path / "README.md") in report.ignored_files


def test_a_file_named_explicitly_is_read_whatever_its_extension(tmp_path):
    """A rotated file with no known extension is read when named on the command line."""
    path = tmp_path / "traces-2025-11-24T16"
    path.write_bytes(chunks_as("lp", [SDK_SPANS])[1])
    assert _sorted(read_spans([str(path)])) == BASELINE


def test_stdin_is_read_and_sniffed(monkeypatch):
    """``-`` reads standard input, sniffing compression and format like a file."""
    data = chunks_as("jsonl.gz", [SDK_SPANS[:3], SDK_SPANS[3:]])[1]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    report = IngestReport()
    assert _sorted(read_spans(["-"], report=report)) == BASELINE
    assert report.format_per_file == {"<stdin>": "otlp-jsonl+gzip"}


def test_empty_and_blank_files_have_no_spans(tmp_path):
    """An empty file (a fresh rotation) or one of blank lines is read as zero spans, not an error."""
    (tmp_path / "a.json").write_bytes(b"")
    (tmp_path / "b.jsonl").write_bytes(b"\n\n  \n")
    (tmp_path / "c.json").write_bytes(b"{}")
    report = IngestReport()
    assert list(read_spans([str(tmp_path)], report=report)) == []
    assert report.format_per_file[str(tmp_path / "a.json")] == "empty"


def test_truncated_last_json_line_is_a_warning_not_an_error(tmp_path):
    """A JSON-lines file still being written (last line cut, no newline) gives its complete records and a warning."""
    good = json_bytes(to_json_hex(SDK_SPANS)) + b"\n"
    path = tmp_path / "live.jsonl"
    path.write_bytes(good + good[: len(good) // 2])
    report = IngestReport()
    assert _sorted(read_spans([str(path)], report=report)) == BASELINE
    assert len(report.warnings) == 1 and "line 2: truncated last record" in report.warnings[0]
    assert str(path) in report.warnings[0]


def test_truncated_last_frame_is_a_warning_not_an_error(tmp_path):
    """A length-prefixed file whose last frame is cut gives its complete frames and a warning."""
    data = length_prefixed([to_proto(SDK_SPANS), to_proto(SDK_SPANS[:3])])
    path = tmp_path / "live.otlp"
    path.write_bytes(data[:-10])
    report = IngestReport()
    assert _sorted(read_spans([str(path)], report=report)) == BASELINE
    assert len(report.warnings) == 1 and "truncated last record" in report.warnings[0]


def test_truncated_gzip_stream_keeps_complete_records(tmp_path):
    """A gzip'd JSON-lines file cut mid-stream keeps the records before the cut and warns about the rest."""
    line = json_bytes(to_json_hex(SDK_SPANS)) + b"\n"
    data = chunks_as("jsonl.gz", [SDK_SPANS] * 3)[1]
    assert len(data) > 200
    path = tmp_path / "live.jsonl.gz"
    path.write_bytes(data[: len(data) - 40])
    report = IngestReport()
    spans = list(read_spans([str(path)], report=report))
    assert len(spans) % len(BASELINE) == 0 and len(spans) >= len(BASELINE)
    assert len(report.warnings) == 1
    assert line  # the records kept are whole requests
