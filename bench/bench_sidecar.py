"""Sidecar benchmark: request decoding + pending store + classification + aggregation, against bare decoding.

Run by hand: ``.venv/bin/python bench/bench_sidecar.py [--spans N]``.

DESIGN.md's target: the sidecar sustains >= 50 k spans/s per core with full aggregation (five times the
Collector's per-core sizing). Sockets are left out on purpose — the receivers are thin transports — so this
measures what a core spends per span once a request body is in memory: ``decode_request`` (the receivers' own
decoder), ``Sidecar.submit`` into the pending store, and ``Sidecar.process`` expiring the traces and folding them
into the flow model. The baseline, measured in the same run on the same bodies, is the bare protobuf parse.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest as PB2ExportTraceServiceRequest,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_convert import _batch  # noqa: E402
from tracegen.config import Config  # noqa: E402
from tracegen.receiver._wire import decode_request  # noqa: E402
from tracegen.receiver.sidecar import Sidecar, SidecarOptions  # noqa: E402


class _Clock:
    """A clock the benchmark moves by hand, so expiry happens exactly when asked (no sleeping)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    args = parser.parse_args()
    bodies = [_batch(n * 10_000, 90) for n in range(max(1, args.spans // 990))]
    start = time.perf_counter()
    spans = 0
    for body in bodies:
        request = PB2ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    base = spans / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as out:
        clock = _Clock()
        sidecar = Sidecar(Config(), SidecarOptions(out_dir=Path(out), grpc=None, http=None,
                                                   max_spans=10 * args.spans, max_traces=10 * args.spans),
                          clock=clock)
        sidecar.accepting = True
        start = time.perf_counter()
        for body in bodies:
            sidecar.submit(decode_request(body, "proto", "bench").spans)
        clock.now += 3600
        sidecar.process()
        rate = spans / (time.perf_counter() - start)
    print(f"{len(bodies)} requests, {spans:,} spans")
    print(f"baseline protobuf parse:                       {base:,.0f} spans/s")
    print(f"sidecar decode + store + classify + aggregate:  {rate:,.0f} spans/s (target >= 50,000 per core)")
    print(f"ratio to bare parse: {rate / base:.3f}")


if __name__ == "__main__":
    main()
