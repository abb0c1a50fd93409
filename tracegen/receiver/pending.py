"""The pending-trace store: live spans buffered per trace until the trace has been idle long enough to classify.

A receiver cannot know when a trace is complete, so it does what the Collector's servicegraph store does: a trace is
*complete* once no span of it has arrived for ``idle_seconds``. Unlike the Go store, the clock is injected (a
callable returning seconds), so tests advance time instead of sleeping.

Rules:
- :meth:`PendingStore.add` is all or nothing for capacity: a batch that fits under ``max_spans`` (spans buffered
  plus spans of completed traces not yet taken) is accepted whole; otherwise it is rejected whole (``full``), so
  the receiver answers "busy, retry" and the exporter resends it — nothing acknowledged is ever dropped. A batch
  larger than the whole budget could never fit: as much of it as fits into the free space is accepted and the rest
  is refused for good (``too_large``), which the receiver reports as OTLP ``partial_success``;
- ``max_traces`` bounds the number of open traces: beyond it, the oldest open trace (least recently touched) is
  *evicted* — completed early, handed out by the next :meth:`expire` like any other — and counted. An evicted
  trace loses nothing, but spans of it that arrive later form a second, partial trace;
- :meth:`expire` returns the traces idle for ``idle_seconds`` or evicted, oldest first; :meth:`drain` returns
  every trace still held (shutdown). Completed traces are built by :func:`~tracegen.traces.assemble_traces`, so
  duplicates collapse and spans sort exactly as in a batch ``convert``;
- every counter only grows; the store is thread-safe (receivers call :meth:`add` from their worker threads).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

from tracegen.spans import Span
from tracegen.traces import AssemblyStats, Trace, assemble_traces

__all__ = ["AddResult", "PendingStore", "StoreStats"]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class AddResult:
    """What :meth:`PendingStore.add` did: spans accepted, spans refused, and why (``""``, ``full``, ``too_large``)."""

    accepted: int
    rejected: int = 0
    reason: str = ""

    @property
    def full(self) -> bool:
        """The store is busy: the whole batch was refused and should be retried later."""
        return self.reason == "full"


@dataclass(slots=True)
class StoreStats:
    """Monotonic counters of the store (exposed on ``/metrics``)."""

    spans_received: int = 0
    spans_rejected: int = 0
    batches_rejected: int = 0
    traces_completed: int = 0
    traces_evicted: int = 0
    duplicate_spans: int = 0
    conflicting_duplicates: int = 0


class _Open:
    __slots__ = ("spans", "last_seen")

    def __init__(self, now: float) -> None:
        self.spans: list[Span] = []
        self.last_seen = now


class PendingStore:
    """Spans per trace id until idle; bounded by ``max_traces`` and ``max_spans``; clock injected."""

    def __init__(self, *, idle_seconds: float = 5.0, max_traces: int = 50_000, max_spans: int = 500_000,
                 clock: Clock) -> None:
        if idle_seconds < 0 or max_traces < 1 or max_spans < 1:
            raise ValueError("idle_seconds must be >= 0, max_traces and max_spans >= 1")
        self.idle_seconds = idle_seconds
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._clock = clock
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Open] = OrderedDict()  # least recently touched first
        self._ready: list[tuple[str, list[Span]]] = []  # evicted early, not yet taken by expire()
        self._spans = 0  # spans held: open + ready
        self.stats = StoreStats()

    # -- introspection ---------------------------------------------------------------------------------------
    @property
    def spans_in_flight(self) -> int:
        """Spans held (open traces and completed ones not yet taken)."""
        return self._spans

    @property
    def traces_in_flight(self) -> int:
        """Open traces plus completed ones not yet taken."""
        return len(self._open) + len(self._ready)

    # -- adding -----------------------------------------------------------------------------------------------
    def add(self, spans: Sequence[Span]) -> AddResult:
        """Buffer a batch (see the module rules for when it is accepted, refused as ``full`` or cut short)."""
        if not spans:
            return AddResult(0)
        with self._lock:
            free = self.max_spans - self._spans
            take = len(spans)
            reason = ""
            if take > free:
                if take <= self.max_spans:
                    self.stats.spans_rejected += take
                    self.stats.batches_rejected += 1
                    return AddResult(0, take, "full")
                take, reason = max(0, free), "too_large"
            now = self._clock()
            for span in spans[:take]:
                entry = self._open.get(span.trace_id)
                if entry is None:
                    entry = self._open[span.trace_id] = _Open(now)
                    if len(self._open) > self.max_traces:
                        self._evict_oldest()
                else:
                    entry.last_seen = now
                    self._open.move_to_end(span.trace_id)
                entry.spans.append(span)
            self._spans += take
            self.stats.spans_received += take
            refused = len(spans) - take
            if refused:
                self.stats.spans_rejected += refused
                self.stats.batches_rejected += 1
            return AddResult(take, refused, reason)

    def _evict_oldest(self) -> None:
        trace_id, entry = self._open.popitem(last=False)
        self._ready.append((trace_id, entry.spans))
        self.stats.traces_evicted += 1
        logger.debug("evicted open trace %s (%d spans) early: more than %d open traces", trace_id,
                     len(entry.spans), self.max_traces)

    # -- taking -----------------------------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> list[Trace]:
        """Traces idle for ``idle_seconds`` at ``now`` (default: the clock), plus evicted ones, oldest first."""
        moment = self._clock() if now is None else now
        with self._lock:
            taken = self._ready
            self._ready = []
            while self._open:
                trace_id, entry = next(iter(self._open.items()))
                if moment - entry.last_seen < self.idle_seconds:
                    break  # ordered by last touch: everything after is younger
                del self._open[trace_id]
                taken.append((trace_id, entry.spans))
            self._spans -= sum(len(spans) for _, spans in taken)
        return self._finish(taken)

    def drain(self) -> list[Trace]:
        """Every trace held, complete or not (shutdown: nothing acknowledged may be lost)."""
        with self._lock:
            taken = self._ready + [(trace_id, entry.spans) for trace_id, entry in self._open.items()]
            self._ready = []
            self._open.clear()
            self._spans = 0
        return self._finish(taken)

    def _finish(self, taken: list[tuple[str, list[Span]]]) -> list[Trace]:
        out: list[Trace] = []
        for _trace_id, spans in taken:
            stats = AssemblyStats()
            out.extend(assemble_traces(spans, stats=stats, max_open_spans=max(1, len(spans))))
            with self._lock:
                self.stats.traces_completed += stats.traces
                self.stats.duplicate_spans += stats.duplicate_spans
                self.stats.conflicting_duplicates += stats.conflicting_spans
        return out
