"""Batch-conversion benchmark: tracegen's pipeline against bare OTLP decoding of the same data, in one run.

Run by hand (not in the test suite): ``.venv/bin/python bench/bench_convert.py [--spans N]``.

DESIGN.md's targets are ratios, so machine speed cancels out:
- batch conversion >= 0.6 x (bare protobuf decode + span-field extraction + attribute walk) of the same bytes;
- memory flat: peak <= 128 MiB + <= 400 B per span of still-open traces, whatever the input size.

The data is a synthetic but realistic mix built once with the real SDK and encoder (web request → DB calls →
downstream HTTP service → Celery task), written as OTLP protobuf files of ~1000 spans each, like a Collector's
file exporter. The baseline parses the same files with the upb-backed classes and touches every span's ids,
name, kind, times and every attribute (the floor DESIGN.md measures); tracegen then runs read → assemble →
infer → accumulate → build_model on them.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest as PB2ExportTraceServiceRequest,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._world import BROWSER, Kind, World  # noqa: E402
from tracegen.config import Config  # noqa: E402
from tracegen.flows import build_model  # noqa: E402
from tracegen.ingest.files import read_spans  # noqa: E402
from tracegen.pipeline import accumulate_spans  # noqa: E402


def _batch(offset_ms: float, traces: int) -> bytes:
    """One export request of ``traces`` request traces (about 11 spans each)."""
    w = World()
    w.ids.trace += int(offset_ms * 1000)
    for i in range(traces):
        t = offset_ms + i * 50
        root = w.span("lms", "GET /courses", Kind.SERVER, t, t + 40,
                      attributes={"http.method": "GET", "http.route": "^courses/(?P<course_id>[^/]+)/$",
                                  "http.target": f"/courses/c{i}", "http.user_agent": BROWSER,
                                  "http.status_code": 200, "net.host.name": "lms"})
        for q in range(5):
            w.span("lms", "SELECT", Kind.CLIENT, t + 1 + q, t + 1.5 + q, parent=root,
                   attributes={"db.system": "mysql", "db.name": "edxapp", "net.peer.name": "db",
                               "db.statement": f"SELECT * FROM t{q} WHERE id = %s"})
        client = w.span("lms", "GET", Kind.CLIENT, t + 10, t + 30, parent=root,
                        attributes={"http.method": "GET", "http.url": f"https://forum/api/v1/threads/{i}"})
        server = w.span("forum", "GET /threads/:id", Kind.SERVER, t + 11, t + 29, parent=client,
                        attributes={"http.method": "GET", "http.route": "/api/v1/threads/:id"})
        w.span("forum", "find", Kind.CLIENT, t + 12, t + 20, parent=server,
               attributes={"db.system": "mongodb", "db.name": "forum", "db.operation": "find"})
        producer = w.span("lms", "apply_async/grades.recalc", Kind.PRODUCER, t + 31, t + 32, parent=root,
                          attributes={"celery.action": "apply_async", "celery.task_name": "grades.recalc",
                                      "messaging.destination": "edx.lms.core.default"})
        w.span("lms-worker", "run/grades.recalc", Kind.CONSUMER, t + 35, t + 45, parent=producer,
               attributes={"celery.action": "run", "celery.task_name": "grades.recalc", "celery.state": "SUCCESS",
                           "messaging.destination": "edx.lms.core.default"})
    return encode_spans(w.exporter.get_finished_spans()).SerializeToString()


def _baseline(files: list[Path]) -> int:
    """Bare decode + field extraction + attribute walk: DESIGN.md's floor."""
    spans = 0
    sink = 0
    for path in files:
        request = PB2ExportTraceServiceRequest()
        request.ParseFromString(path.read_bytes())
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                sink += len(attribute.key)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans += 1
                    sink += len(span.trace_id.hex()) + len(span.span_id.hex()) + len(span.parent_span_id.hex())
                    sink += len(span.name) + span.kind + (span.end_time_unix_nano - span.start_time_unix_nano > 0)
                    for attribute in span.attributes:
                        value = attribute.value
                        sink += len(attribute.key) + (len(value.string_value) if value.HasField("string_value")
                                                      else 1)
    return spans + 0 * sink


def _tracegen(files: list[Path], max_open_spans: int) -> tuple[int, int]:
    acc, stats = accumulate_spans(read_spans([str(p) for p in files]), Config(), max_open_spans=max_open_spans)
    model = build_model(acc)
    return stats.spans_in, len(model.scenarios)


def _best_of(runs: int, func, *args):  # type: ignore[no-untyped-def]
    best = float("inf")
    result = None
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def _generate(folder: Path, spans: int) -> None:
    """Write ~``spans`` spans as OTLP protobuf files of 990 spans each."""
    for n in range(max(1, spans // 990)):
        (folder / f"batch-{n:05d}.binpb").write_bytes(_batch(n * 10_000, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000, help="approximate number of spans (default 200k)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-open-spans", type=int, default=200_000,
                        help="assembly budget; set below --spans to exercise the disk spill")
    parser.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(Path(args.generate), args.spans)
        return
    with tempfile.TemporaryDirectory(prefix="tracegen-bench-") as scratch:
        # Generate in a child so this process stays small: a child forked from a large parent inherits its
        # resident size, which would spoil the memory figure of the conversion measured next.
        subprocess.run([sys.executable, __file__, "--generate", scratch, "--spans", str(args.spans)], check=True)
        files = sorted(Path(scratch).glob("*.binpb"))
        total_bytes = sum(p.stat().st_size for p in files)
        measure = ("import resource\nfrom tracegen.cli import cli\ntry:\n"
                   f"    cli(['-q', 'convert', {scratch!r}, '--out', {str(Path(scratch) / 'out')!r}, "
                   "'--renderer', 'none'])\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
                   "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        peak_kib = subprocess.run([sys.executable, "-c", measure], check=True, capture_output=True,
                                  text=True).stdout.split()[-1]
        peak_mib = int(peak_kib) / 1024
        base_s, spans = _best_of(args.runs, _baseline, files)
        run_s, (spans_in, scenarios) = _best_of(args.runs, _tracegen, files, args.max_open_spans)
        print(f"input: {len(files)} files, {total_bytes / 1e6:.1f} MB, {spans:,} spans")
        print(f"baseline decode+extract+attributes: {spans / base_s:,.0f} spans/s")
        print(f"tracegen read→assemble→infer→model:  {spans_in / run_s:,.0f} spans/s ({scenarios} scenarios)")
        ratio = (spans_in / run_s) / (spans / base_s)
        print(f"ratio: {ratio:.2f} (target >= 0.60)  {'OK' if ratio >= 0.6 else 'BELOW TARGET'}")
        budget = 128 + spans * 400 / 2**20
        print(f"peak RSS of `tracegen convert`: {peak_mib:.0f} MiB "
              f"(target <= {budget:.0f} MiB = 128 MiB + 400 B x {spans:,} open spans)")


if __name__ == "__main__":
    main()
