"""The batch pipeline in one place: spans → traces → flows → accumulator → model. No I/O.

``convert``, ``check``, ``merge`` and the sidecar all go through these functions, so there is one implementation
of inference. The clock is injected: :func:`generated_at` turns ``SOURCE_DATE_EPOCH`` or a given time into the
model's timestamp; nothing deeper reads the clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Mapping

from tracegen.__about__ import __version__
from tracegen.config import Config
from tracegen.flows import FlowAccumulator, build_model
from tracegen.infer import infer_steps
from tracegen.model import FlowModel
from tracegen.spans import Span
from tracegen.traces import AssemblyStats, Trace, assemble_traces

__all__ = ["GENERATOR", "accumulate_traces", "accumulate_spans", "finish_model", "generated_at"]

GENERATOR = f"tracegen {__version__}"


def generated_at(environ: Mapping[str, str], now: datetime) -> str:
    """The model's ``generated_at``: ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else ``now``."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch.isdigit() else now
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def accumulate_traces(traces: Iterable[Trace], config: Config,
                      accumulator: FlowAccumulator | None = None) -> FlowAccumulator:
    """Infer each trace's flow and add it to an accumulator (a new one unless given)."""
    acc = accumulator if accumulator is not None else FlowAccumulator(config)
    for trace in traces:
        acc.counters["spans"] += len(trace.spans)
        acc.add_flow(infer_steps(trace.spans, trace.trace_id, config))
    return acc


def accumulate_spans(spans: Iterable[Span], config: Config, *, max_open_spans: int = 200_000,
                     tmp_dir: str | None = None) -> tuple[FlowAccumulator, AssemblyStats]:
    """Assemble spans into traces (bounded memory) and accumulate their flows."""
    stats = AssemblyStats()
    acc = accumulate_traces(assemble_traces(spans, stats=stats, max_open_spans=max_open_spans, tmp_dir=tmp_dir),
                            config)
    acc.counters["duplicate_spans"] += stats.duplicate_spans
    acc.counters["conflicting_duplicates"] += stats.conflicting_spans
    return acc, stats


def finish_model(acc: FlowAccumulator, stamp: str) -> FlowModel:
    """The model of an accumulator, stamped with ``stamp`` and this tracegen's version."""
    return build_model(acc, generator=GENERATOR, generated_at=stamp)
