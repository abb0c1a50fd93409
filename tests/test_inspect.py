"""``inspect_spans`` and ``format_inspect_table``: a summary that depends only on the spans, and a readable table."""

from __future__ import annotations

import json
import random

from tests._spans import build_sdk_spans, to_proto
from tracegen.ingest.files import IngestReport, SkippedRecord, read_spans
from tracegen.ingest.otlp_proto import decode_otlp_proto
from tracegen.inspect import format_inspect_table, inspect_spans
from tracegen.spans import Span, SpanKind

SPANS = decode_otlp_proto(to_proto(build_sdk_spans(4)), "sdk")


def _span(span_id: str, **attributes) -> Span:
    return Span(
        trace_id="1" * 32,
        span_id=span_id.rjust(16, "0"),
        parent_span_id="",
        name="x",
        kind=SpanKind.CLIENT,
        service="svc",
        start_ns=0,
        end_ns=1,
        attributes=attributes,
    )


def test_summary_counts_what_is_in_the_spans():
    """Spans, traces, services with counts, kinds, errors, links and the time range are summarised."""
    summary = inspect_spans(SPANS)
    assert summary["spans"] == 24 and summary["traces"] == 8
    assert summary["services"] == [
        {"name": "catalog", "spans": 8},
        {"name": "lms", "spans": 12},
        {"name": "lms-worker", "spans": 4},
    ]
    assert summary["span_kinds"] == {
        "unspecified": 0, "internal": 0, "server": 8, "client": 8, "producer": 4, "consumer": 4,
    }
    assert summary["roots"] == 8 and summary["orphans"] == 0 and summary["errors"] == 1
    assert summary["links"] == {"total": 4, "spans_with_links": 4, "cross_trace": 4}
    assert summary["time_range"]["start"] == "2025-11-24T16:00:00.000000Z"
    assert summary["time_range"]["end"] == "2025-11-24T16:00:03.040000Z"
    assert summary["duplicates"] == {"exact": 0, "conflicting": 0, "examples": []}
    json.dumps(summary)  # the --json output is plain JSON


def test_semantic_convention_flavour():
    """Old keys only give "old", new only "new", both "mixed", neither "none"."""
    assert inspect_spans([_span("1", **{"http.method": "GET", "net.peer.name": "x"})])["semantic_conventions"] == {
        "flavour": "old", "old": {"http.method": 1, "net.peer.name": 1}, "new": {},
    }
    assert inspect_spans([_span("1", **{"db.namespace": "x"})])["semantic_conventions"]["flavour"] == "new"
    assert inspect_spans([_span("1", **{"db.name": "x"}), _span("2", **{"db.system.name": "y"})])[
        "semantic_conventions"
    ]["flavour"] == "mixed"
    assert inspect_spans([_span("1", **{"http.route": "/"})])["semantic_conventions"]["flavour"] == "none"
    assert inspect_spans(SPANS)["semantic_conventions"]["flavour"] == "mixed"


def test_summary_does_not_depend_on_order_or_duplicates_placement():
    """The same spans in any order give the identical dict; duplicates only change the duplicate counts."""
    baseline = inspect_spans(SPANS)
    shuffled = list(SPANS)
    random.Random(3).shuffle(shuffled)
    assert inspect_spans(shuffled) == baseline
    with_dups = inspect_spans(shuffled + SPANS[:3])
    assert with_dups["duplicates"]["exact"] == 3
    assert with_dups["spans"] == baseline["spans"]


def test_empty_input():
    """No spans give a summary of zeros and no time range."""
    summary = inspect_spans([])
    assert summary["spans"] == 0 and summary["time_range"] is None and summary["services"] == []
    assert "Spans" in format_inspect_table(summary)


def test_report_problems_are_included_sorted():
    """Skipped records and warnings from the IngestReport appear in the summary, sorted, and in the table."""
    report = IngestReport(
        skipped=[SkippedRecord("b.jsonl", 4, "invalid JSON"), SkippedRecord("a.pb", None, "truncated")],
        warnings=["z.jsonl: line 9: truncated last record skipped"],
    )
    summary = inspect_spans(SPANS, report)
    assert [s["source"] for s in summary["skipped"]] == ["a.pb", "b.jsonl"]
    table = format_inspect_table(summary, report)
    assert "b.jsonl:4: invalid JSON" in table and "Warnings (1)" in table


def test_table_lists_services_kinds_and_files(tmp_path):
    """The human table shows files with formats, totals, span kinds and services."""
    path = tmp_path / "t.pb"
    path.write_bytes(to_proto(build_sdk_spans(4)))
    report = IngestReport()
    summary = inspect_spans(read_spans([str(path)], report=report), report)
    table = format_inspect_table(summary, report)
    assert f"{path}  otlp-proto" in table
    assert "Spans                  24" in table
    assert "Semantic conventions   mixed" in table
    assert "  lms-worker         4 spans" in table
    assert "  consumer                    4" in table
