"""The sidecar behind ``tracegen serve``: receivers → pending store → inference → accumulator → outputs.

It is the batch pipeline run online, not a second implementation: completed traces go through
:func:`~tracegen.infer.infer_steps` into the same :class:`~tracegen.flows.FlowAccumulator` ``convert`` uses, so the
same spans give the same model (the accumulator is commutative; traces only have to be complete when classified).

Rules:
- **assembly**: spans wait in a :class:`~tracegen.receiver.pending.PendingStore` until their trace is idle for
  ``idle_seconds``; the store is bounded (spans and traces in flight), refuses work when full (receivers answer
  "busy, retry") and evicts the oldest open trace beyond ``max_traces``, counting every eviction;
- **late continuations**: the accumulator's producer index (producer span id → scenario) lets a consumer trace that
  arrives minutes or hours later join its scenario. Here it is bounded by a TTL (``producer_ttl``, default 6 h) and
  a size cap (``max_producers``), oldest first, each eviction counted; continuations still waiting for their
  producer are capped by ``max_continuations`` (the oldest by start time evicted, counted). A consumer whose
  producer was evicted becomes a scenario of its own, as in a batch run that never saw the producer;
- **output**: every ``write_interval`` seconds, and on shutdown, the model is rebuilt and the artifacts rewritten
  atomically (:func:`~tracegen.outputs.write_outputs`) — only when a trace was added since the last write;
- **persistence**: ``OUT/model.json`` carries the accumulator state; on start it is loaded, so a restart continues
  where it stopped. A model.json that is not a tracegen model stops the start (it is never overwritten);
- **window**: with ``window`` seconds set, steps (and then scenarios and elements) last seen longer ago than that
  are left out of the *rendered* model, so removed calls disappear; the persisted state keeps everything;
- **shutdown** (:meth:`Sidecar.shutdown`): stop accepting (later requests get "unavailable, retry"), stop the
  receivers, drain the store, classify every trace, write. Every span a receiver acknowledged is in the output;
- clocks are injected: ``clock`` (monotonic seconds) drives idleness and TTLs, ``wall`` (epoch seconds) the
  timestamps and the window; tests advance them instead of sleeping.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tracegen.config import Config, parse_config, read_config_table
from tracegen.errors import ConfigError
from tracegen.flows import FlowAccumulator
from tracegen.infer import infer_steps
from tracegen.model import FlowModel
from tracegen.modeljson import load_model_dict
from tracegen.outputs import OutputOptions, render_artifacts, write_outputs
from tracegen.pipeline import finish_model, generated_at
from tracegen.receiver._wire import DEFAULT_MAX_MESSAGE_BYTES
from tracegen.receiver.pending import AddResult, PendingStore
from tracegen.spans import Span
from tracegen.traces import Trace

__all__ = ["Sidecar", "SidecarOptions", "apply_window", "load_serve_config", "SERVE_KEYS"]

logger = logging.getLogger(__name__)

SERVE_KEYS = {"grpc", "http", "idle", "write_interval", "max_spans", "max_traces", "max_message_bytes",
              "producer_ttl", "max_producers", "max_continuations", "window", "token", "tls_cert", "tls_key",
              "retry_after", "renderer"}


@dataclass(frozen=True, slots=True)
class SidecarOptions:
    """Everything ``tracegen serve`` can set (flags or ``[serve]`` in ``tracegen.toml``); ``None`` disables."""

    out_dir: Path
    grpc: str | None = "127.0.0.1:4317"
    http: str | None = "127.0.0.1:4318"
    idle_seconds: float = 5.0
    write_interval: float = 30.0
    max_spans: int = 500_000
    max_traces: int = 50_000
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    producer_ttl: float = 6 * 3600.0
    max_producers: int = 1_000_000
    max_continuations: int = 10_000
    window: float = 0.0
    retry_after: float = 1.0
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    output: OutputOptions = field(default_factory=lambda: OutputOptions(renderer="none"))


@dataclass(slots=True)
class _Counters:
    spans_refused: int = 0
    producers_evicted: int = 0
    continuations_evicted: int = 0
    writes: int = 0
    last_write: float = 0.0
    scenarios: int = 0


class Sidecar:
    """The running sidecar; :meth:`start`, then :meth:`run` (or :meth:`process`/:meth:`write`), then shutdown."""

    def __init__(self, config: Config, options: SidecarOptions, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.options = options
        self._clock = clock
        self._wall = wall
        self._environ = os.environ if environ is None else environ
        self.store = PendingStore(idle_seconds=options.idle_seconds, max_traces=options.max_traces,
                                  max_spans=options.max_spans, clock=clock)
        self.acc = self._load_state()
        self._producer_stamps: OrderedDict[str, float] = OrderedDict((span_id, clock()) for span_id in
                                                                     sorted(self.acc.producers))
        self.counters = _Counters(scenarios=len(self.acc.scenarios))
        self.accepting = False
        self.retry_after = options.retry_after
        self.rejected_event = threading.Event()  # set whenever a batch is refused as "full" (tests wait on it)
        self._submit_lock = threading.Lock()
        self._work_lock = threading.RLock()
        self._changed = False
        self._dup_seen = (0, 0)
        self._last_write_attempt = clock()
        self.grpc_receiver: Any = None
        self.http_receiver: Any = None

    # -- state -------------------------------------------------------------------------------------------------
    def _load_state(self) -> FlowAccumulator:
        path = self.options.out_dir / "model.json"
        if not path.is_file():
            return FlowAccumulator(self.config)
        doc = load_model_dict(path.read_text(encoding="utf-8"), str(path))
        state = doc.get("state")
        if not isinstance(state, dict):
            logger.warning("event=resume_skipped path=%s reason=no_state", path)
            return FlowAccumulator(self.config)
        if doc.get("config_hash", "") != self.config.digest:
            logger.warning("event=resume_config_changed path=%s was=%s now=%s", path, doc.get("config_hash"),
                           self.config.digest)
        acc = FlowAccumulator.from_state(state, self.config)
        logger.info("event=resumed path=%s traces=%d scenarios=%d", path, acc.counters.get("traces", 0),
                    len(acc.scenarios))
        return acc

    # -- receiving (called from receiver threads) ---------------------------------------------------------------
    def submit(self, spans: list[Span]) -> AddResult:
        """Buffer a decoded batch; refused as ``closed`` once shutdown began, as ``full`` when the store is."""
        with self._submit_lock:
            if not self.accepting:
                return AddResult(0, len(spans), "closed")
            result = self.store.add(spans)
        if result.full:
            self.rejected_event.set()
            logger.info("event=busy spans=%d in_flight=%d max_spans=%d", len(spans), self.store.spans_in_flight,
                        self.store.max_spans)
        return result

    def count_refused(self, spans: int) -> None:
        """Count spans refused for good by a receiver (malformed), reported as partial success."""
        self.counters.spans_refused += spans

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the receivers (addresses from the options; port 0 picks a free port) and accept spans."""
        opts = self.options
        if opts.grpc:
            from tracegen.receiver.otlp_grpc import GrpcReceiver

            tls = None
            if opts.tls_cert and opts.tls_key:
                tls = (Path(opts.tls_cert).read_bytes(), Path(opts.tls_key).read_bytes())
            self.grpc_receiver = GrpcReceiver(self, opts.grpc, max_message_bytes=opts.max_message_bytes,
                                              token=opts.token, tls=tls)
        if opts.http:
            from tracegen.receiver.otlp_http import HttpReceiver

            tls_paths = (opts.tls_cert, opts.tls_key) if opts.tls_cert and opts.tls_key else None
            self.http_receiver = HttpReceiver(self, opts.http, metrics=self.metrics_text,
                                              max_message_bytes=opts.max_message_bytes, token=opts.token,
                                              tls=tls_paths)  # type: ignore[arg-type]
        self.accepting = True
        if self.grpc_receiver is not None:
            self.grpc_receiver.start()
        if self.http_receiver is not None:
            self.http_receiver.start()
        logger.info("event=started grpc=%s http=%s out=%s", self.grpc_receiver and self.grpc_receiver.address,
                    self.http_receiver and self.http_receiver.url, opts.out_dir)

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        """Until ``stop`` is set: classify idle traces every ``tick`` s, write every ``write_interval`` s."""
        while not stop.wait(tick):
            self.tick()
        self.shutdown()

    def tick(self) -> None:
        """One round of the loop: expire idle traces; write when the interval has passed."""
        self.process()
        if self._clock() - self._last_write_attempt >= self.options.write_interval:
            self.write()

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting, stop the receivers, drain the store, classify everything and write if anything changed."""
        with self._submit_lock:
            self.accepting = False
        if self.grpc_receiver is not None:
            self.grpc_receiver.stop(grace)
        if self.http_receiver is not None:
            self.http_receiver.stop()
        with self._work_lock:
            self._accumulate(self.store.drain())
            self.write()
        logger.info("event=stopped traces=%d", self.acc.counters.get("traces", 0))

    # -- work ---------------------------------------------------------------------------------------------------
    def process(self, now: float | None = None) -> int:
        """Classify the traces idle at ``now`` (default: the clock) and prune the link caches; traces done."""
        with self._work_lock:
            traces = self.store.expire(now)
            self._accumulate(traces)
            self._prune(self._clock() if now is None else now)
            return len(traces)

    def _accumulate(self, traces: Iterable[Trace]) -> None:
        acc = self.acc
        now = self._clock()
        added = 0
        for trace in traces:
            acc.counters["spans"] += len(trace.spans)
            flow = infer_steps(trace.spans, trace.trace_id, self.config)
            acc.add_flow(flow)
            for span_id, _rank in flow.producers:  # a continuation's producers are indexed once it resolves
                self._producer_stamps[span_id] = now
                self._producer_stamps.move_to_end(span_id)
            added += 1
        stats = self.store.stats
        dup = (stats.duplicate_spans, stats.conflicting_duplicates)
        acc.counters["duplicate_spans"] += dup[0] - self._dup_seen[0]
        acc.counters["conflicting_duplicates"] += dup[1] - self._dup_seen[1]
        self._dup_seen = dup
        if added:
            self._changed = True

    def _prune(self, now: float) -> None:
        stamps = self._producer_stamps
        cutoff = now - self.options.producer_ttl
        while stamps:
            span_id, stamp = next(iter(stamps.items()))
            if stamp > cutoff and len(stamps) <= self.options.max_producers:
                break
            del stamps[span_id]
            if self.acc.forget_producer(span_id):
                self.counters.producers_evicted += 1
        pending = self.acc.pending
        extra = len(pending) - self.options.max_continuations
        if extra > 0:
            for trace_id in heapq.nsmallest(extra, pending, key=lambda t: (pending[t].start_ns, t)):
                if self.acc.evict_pending(trace_id):
                    self.counters.continuations_evicted += 1
            self._changed = True

    def model(self) -> FlowModel:
        """The current model as it would be written (window applied)."""
        moment = datetime.fromtimestamp(self._wall(), tz=timezone.utc)
        model = finish_model(self.acc, generated_at(self._environ, moment))
        if self.options.window > 0:
            model = apply_window(model, int(self._wall() * 1e9), self.options.window)
        return model

    def write(self, force: bool = False) -> bool:
        """Rewrite the outputs atomically when something changed since the last write (or ``force``)."""
        with self._work_lock:
            self._last_write_attempt = self._clock()
            if not (self._changed or force):
                return False
            model = self.model()
            out_dir = self.options.out_dir
            files = render_artifacts(model, self.acc.to_state(), out_dir, self.options.output)
            result = write_outputs(files, out_dir)
            self._changed = False
            self.counters.writes += 1
            self.counters.last_write = self._wall()
            self.counters.scenarios = len(model.scenarios)
            logger.info("event=wrote out=%s written=%d unchanged=%d removed=%d scenarios=%d traces=%d", out_dir,
                        len(result.written), len(result.unchanged), len(result.removed), len(model.scenarios),
                        model.diagnostics.traces)
            return True

    # -- metrics ------------------------------------------------------------------------------------------------
    def metrics_text(self) -> str:
        """Prometheus text exposition (format 0.0.4) of the sidecar's counters and gauges."""
        s = self.store.stats
        c = self.counters
        rows = [
            ("tracegen_spans_received_total", "counter", "Spans accepted by the receivers.", s.spans_received),
            ("tracegen_spans_rejected_total", "counter",
             "Spans refused (buffer full, over budget, or malformed).", s.spans_rejected + c.spans_refused),
            ("tracegen_batches_rejected_total", "counter", "Export requests refused or cut short by the buffer.",
             s.batches_rejected),
            ("tracegen_traces_completed_total", "counter", "Traces classified after going idle or being evicted.",
             s.traces_completed),
            ("tracegen_traces_evicted_total", "counter", "Open traces completed early beyond max_traces.",
             s.traces_evicted),
            ("tracegen_producers_evicted_total", "counter", "Producer-index entries dropped by TTL or size cap.",
             c.producers_evicted),
            ("tracegen_continuations_evicted_total", "counter",
             "Continuations waiting for a producer dropped by the cap.", c.continuations_evicted),
            ("tracegen_spans_in_flight", "gauge", "Spans buffered, not yet classified.", self.store.spans_in_flight),
            ("tracegen_traces_in_flight", "gauge", "Traces buffered, not yet classified.",
             self.store.traces_in_flight),
            ("tracegen_producers_cached", "gauge", "Producer spans remembered for late continuations.",
             len(self.acc.producers)),
            ("tracegen_scenarios", "gauge", "Scenarios in the last written model.", c.scenarios),
            ("tracegen_writes_total", "counter", "Times the outputs were rewritten.", c.writes),
            ("tracegen_last_write_timestamp_seconds", "gauge", "Unix time of the last write (0: none yet).",
             c.last_write),
        ]
        lines: list[str] = []
        for name, kind, help_text, value in rows:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {_number(value)}"]
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def apply_window(model: FlowModel, now_ns: int, window_s: float) -> FlowModel:
    """``model`` without what was last seen more than ``window_s`` before ``now_ns`` (declared items stay).

    A step goes when its last sighting is older than the window; a scenario goes when no step is left (unless it
    is declared); an element goes when no remaining step touches it and it is not declared.
    """
    cutoff = now_ns - int(window_s * 1e9)
    scenarios = []
    for scenario in model.scenarios:
        steps = tuple(s for s in scenario.steps if s.declared or not s.last_seen_ns or s.last_seen_ns >= cutoff)
        if steps or scenario.declared:
            scenarios.append(replace(scenario, steps=steps))
    used = {e for s in scenarios for step in s.steps for e in (step.source, step.target)}
    elements = tuple(e for e in model.elements if e.declared or e.id in used)
    systems_used = {e.system for e in elements if e.system}
    systems = tuple(s for s in model.systems if s.id in systems_used)
    kept = {s.id for s in scenarios}
    sources = tuple(r for r in model.sources if not r.scenario or r.scenario in kept)
    return replace(model, scenarios=tuple(scenarios), elements=elements, systems=systems, sources=sources)


def load_serve_config(path: Path | None) -> tuple[Config, dict[str, Any]]:
    """The tracegen config and the ``[serve]`` settings of a config file (``[tool.tracegen.serve]`` in pyproject).

    :func:`~tracegen.config.parse_config` leaves ``serve`` out of the config hash, so the model's hash is the same
    as ``convert``'s on the same file. Unknown ``serve`` keys are errors, like everywhere in the config.
    """
    if path is None:
        return Config(), {}
    data = read_config_table(path)
    serve = data.get("serve", {})
    if not isinstance(serve, dict):
        raise ConfigError(f"{path}: serve: expected a table")
    unknown = sorted(set(serve) - SERVE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: serve: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(SERVE_KEYS))})")
    return parse_config(data, source=str(path)), serve
