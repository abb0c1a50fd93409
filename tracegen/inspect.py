"""``inspect``: what is in a pile of trace files, as a summary dict and as a table for people.

Useful on its own when a diagram looks wrong: are the spans there, which services, which span kinds, old or new
semantic conventions, orphans, duplicates, links, the time range.

Rules:
- the summary depends only on the spans, never on how they were stored: the same spans as protobuf or JSON,
  split across any number of files, in any order, give the identical dict (the acceptance test of issue 2). So
  per-file facts (file names, formats) stay out of it; :func:`format_inspect_table` can show them from the
  :class:`IngestReport` separately. Problems (skipped records, warnings) are included, sorted;
- counts are after assembly: duplicates collapsed (and counted under ``duplicates``), orphans kept;
- semantic-convention flavour comes from which attribute keys appear (``http.method`` is old,
  ``http.request.method`` new): ``old``, ``new``, ``mixed`` (both) or ``none``;
- no I/O: the caller prints the table or the JSON.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from tracegen.ingest.files import IngestReport
from tracegen.spans import Span, SpanKind
from tracegen.traces import AssemblyStats, assemble_traces

__all__ = ["SEMCONV_PAIRS", "inspect_spans", "format_inspect_table"]

# old key -> new key (OpenTelemetry semantic conventions before/after the HTTP, DB and messaging stabilisation).
SEMCONV_PAIRS: dict[str, str] = {
    "http.method": "http.request.method",
    "http.status_code": "http.response.status_code",
    "http.url": "url.full",
    "http.target": "url.path",
    "http.scheme": "url.scheme",
    "http.user_agent": "user_agent.original",
    "http.client_ip": "client.address",
    "net.peer.name": "server.address",
    "net.peer.port": "server.port",
    "net.sock.peer.addr": "network.peer.address",
    "net.sock.peer.port": "network.peer.port",
    "net.host.name": "server.address",
    "net.host.port": "server.port",
    "db.name": "db.namespace",
    "db.system": "db.system.name",
    "db.statement": "db.query.text",
    "db.operation": "db.operation.name",
    "messaging.destination": "messaging.destination.name",
    "messaging.operation": "messaging.operation.type",
}
_OLD_KEYS = frozenset(SEMCONV_PAIRS)
_NEW_KEYS = frozenset(SEMCONV_PAIRS.values())
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def inspect_spans(spans: Iterable[Span], report: IngestReport | None = None) -> dict[str, Any]:
    """Summarise ``spans`` (assembled into traces on the way); ``report`` adds the skipped records and warnings.

    ``report`` is read after the spans are consumed, so pass the one given to ``read_spans``.
    """
    stats = AssemblyStats()
    services: Counter[str] = Counter()
    kinds: Counter[str] = Counter({kind.name.lower(): 0 for kind in SpanKind})
    old_keys: Counter[str] = Counter()
    new_keys: Counter[str] = Counter()
    links = cross_trace_links = spans_with_links = errors = roots = 0
    start = end = None
    for trace in assemble_traces(spans, stats=stats):
        roots += len(trace.roots)
        for span in trace.spans:
            services[span.service] += 1
            kinds[span.kind.name.lower()] += 1
            for key in span.attributes:
                if key in _OLD_KEYS:
                    old_keys[key] += 1
                if key in _NEW_KEYS:
                    new_keys[key] += 1
            if span.links:
                spans_with_links += 1
                links += len(span.links)
                cross_trace_links += sum(1 for link in span.links if link.trace_id != span.trace_id)
            if span.error:
                errors += 1
            if start is None or span.start_ns < start:
                start = span.start_ns
            if end is None or span.end_ns > end:
                end = span.end_ns

    flavour = "mixed" if old_keys and new_keys else "old" if old_keys else "new" if new_keys else "none"
    summary: dict[str, Any] = {
        "spans": stats.spans_out,
        "traces": stats.traces,
        "services": [{"name": name, "spans": services[name]} for name in sorted(services)],
        "span_kinds": dict(kinds),
        "semantic_conventions": {
            "flavour": flavour,
            "old": dict(sorted(old_keys.items())),
            "new": dict(sorted(new_keys.items())),
        },
        "roots": roots,
        "orphans": stats.orphan_spans,
        "errors": errors,
        "duplicates": {
            "exact": stats.duplicate_spans,
            "conflicting": stats.conflicting_spans,
            "examples": [{"trace_id": t, "span_id": s} for t, s in stats.conflict_examples],
        },
        "links": {"total": links, "spans_with_links": spans_with_links, "cross_trace": cross_trace_links},
        "time_range": None if start is None else {
            "start": _iso(start),
            "end": _iso(end if end is not None else start),
            "start_unix_nano": start,
            "end_unix_nano": end,
        },
        "skipped": [],
        "warnings": [],
    }
    if report is not None:
        summary["skipped"] = sorted(
            ({"source": r.source, "line": r.line, "message": r.message} for r in report.skipped),
            key=lambda r: (r["source"], r["line"] or 0, r["message"]),
        )
        summary["warnings"] = sorted(report.warnings)
    return summary


def format_inspect_table(summary: dict[str, Any], report: IngestReport | None = None) -> str:
    """The summary as aligned plain text for a terminal; with ``report``, the files read and their formats too."""
    lines: list[str] = []

    def row(label: str, value: object) -> None:
        lines.append(f"{label:<22} {value}")

    if report is not None and report.files:
        lines.append("Files")
        width = max(len(name) for name in report.files)
        for name in report.files:
            fmt = report.format_per_file.get(name, "?")
            lines.append(f"  {name:<{width}}  {fmt:<18} {report.spans_per_file.get(name, 0):>8} spans")
        lines.append("")
    row("Spans", summary["spans"])
    row("Traces", summary["traces"])
    row("Roots", summary["roots"])
    row("Orphans", summary["orphans"])
    row("Spans with error", summary["errors"])
    dup = summary["duplicates"]
    row("Duplicates", f"{dup['exact']} exact, {dup['conflicting']} conflicting")
    lk = summary["links"]
    row("Links", f"{lk['total']} on {lk['spans_with_links']} spans ({lk['cross_trace']} to other traces)")
    tr = summary["time_range"]
    row("Time range", "-" if tr is None else f"{tr['start']} .. {tr['end']}")
    sc = summary["semantic_conventions"]
    row("Semantic conventions", sc["flavour"])
    if sc["old"]:
        row("  old keys", ", ".join(f"{k} ({n})" for k, n in sc["old"].items()))
    if sc["new"]:
        row("  new keys", ", ".join(f"{k} ({n})" for k, n in sc["new"].items()))
    lines.append("")
    lines.append("Span kinds")
    for kind, count in summary["span_kinds"].items():
        if count:
            lines.append(f"  {kind:<20} {count:>8}")
    lines.append("")
    lines.append("Services")
    if summary["services"]:
        width = max(len(s["name"]) for s in summary["services"])
        for service in summary["services"]:
            lines.append(f"  {service['name']:<{width}}  {service['spans']:>8} spans")
    else:
        lines.append("  (none)")
    if summary["skipped"]:
        lines.append("")
        lines.append(f"Skipped ({len(summary['skipped'])})")
        for item in summary["skipped"]:
            where = item["source"] if item["line"] is None else f"{item['source']}:{item['line']}"
            lines.append(f"  {where}: {item['message']}")
    if summary["warnings"]:
        lines.append("")
        lines.append(f"Warnings ({len(summary['warnings'])})")
        lines.extend(f"  {warning}" for warning in summary["warnings"])
    return "\n".join(lines) + "\n"


def _iso(ns: int) -> str:
    """A Unix-nanosecond time as ISO 8601 UTC with microseconds; out-of-range values as the raw number."""
    try:
        moment = _EPOCH + timedelta(microseconds=ns // 1000)
    except OverflowError:
        return str(ns)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
