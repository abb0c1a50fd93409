"""Batch conversion across processes (``convert --jobs N``), exact because partial models merge commutatively.

Each of N worker processes reads every input but keeps only the spans whose trace id falls in its partition
(:func:`tracegen.traces.partition_key`, the same hash the assembly spill uses), so every trace is assembled whole
by exactly one worker. A worker returns its accumulator's JSON-able state; the parent merges the states in
partition order. Links from a consumer in one partition to a producer in another stitch during the merge, as
they do for sidecar shards. Reading is repeated per worker (decoding is the cheaper part of the pipeline);
inference, the expensive part, is divided.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any, Sequence

from tracegen.config import Config
from tracegen.flows import FlowAccumulator
from tracegen.ingest.files import IngestReport, read_spans
from tracegen.pipeline import accumulate_spans
from tracegen.traces import partition_key

__all__ = ["accumulate_in_parallel"]


def _worker(inputs: Sequence[str], config: Config, skip_invalid: bool, part: int,
            parts: int) -> tuple[dict[str, Any], IngestReport | None]:
    report = IngestReport()
    spans = (span for span in read_spans(inputs, skip_invalid=skip_invalid, report=report)
             if partition_key(span.trace_id, parts) == part)
    acc, _stats = accumulate_spans(spans, config)
    return acc.to_state(), (report if part == 0 else None)


def accumulate_in_parallel(inputs: Sequence[str], config: Config, *, jobs: int,
                           skip_invalid: bool = False) -> tuple[FlowAccumulator, IngestReport]:
    """The accumulator of ``inputs`` built by ``jobs`` processes; the ingest report is worker 0's (all read
    the same files). Input errors raised in a worker are raised here."""
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_worker, list(inputs), config, skip_invalid, part, jobs) for part in range(jobs)]
        results = [future.result() for future in futures]
    merged = FlowAccumulator(config)
    for state, _report in results:
        merged.merge(FlowAccumulator.from_state(state, config))
    report = results[0][1]
    assert report is not None
    return merged, report
