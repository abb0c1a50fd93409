"""Assembly: spans from any number of files and batches into complete traces, in an order that never depends on input.

Rules:
- spans are grouped by trace id across every input; a trace's spans are sorted by ``(start_ns, span_id)``;
- an exact duplicate (same trace id, span id and content: the same batch exported twice, overlapping files) is
  collapsed and counted; a *conflicting* duplicate (same ids, different content) is counted too, and the variant
  with the smallest content key is kept, so the choice does not depend on arrival order. The counts are
  order-independent as well: ``duplicate_spans`` = copies - distinct variants, ``conflicting_spans`` = distinct
  variants - 1, per span id;
- orphans (a parent id not in the trace: a span lost on the way, a sampler's gap) are kept; later stages treat
  them like roots. A span in a parent cycle (corrupt data) is made reachable the same way: the earliest span of
  each cycle counts as an orphan, so every span is reachable from ``roots`` + ``orphans``;
- traces come out sorted by trace id.

Why the spill: input order is arbitrary, so a batch run cannot know that a trace is complete until every input has
been read. Holding every span would make memory grow with the input. So when the open spans exceed
``max_open_spans``, spans are partitioned by a hash of their trace id (:func:`partition_key`) into temporary
files, and the partitions are finished one at a time (recursively, with a salted hash, if one partition is still
too big). Each finished partition is written back as sorted traces and the partitions are merged by trace id, so
the output is the same whether or not the run spilled. This temp-file spill is the one exception to "stage modules
do no I/O": it is private scratch space, deleted when the iteration ends, and never visible in the output.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import os
import pickle
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, Iterable, Iterator

from tracegen.spans import Span

__all__ = ["AssemblyStats", "Trace", "assemble_traces", "partition_key", "span_content_key"]

logger = logging.getLogger(__name__)

_SPILL_PARTITIONS = 16
_MAX_SPILL_DEPTH = 3
_MAX_CONFLICT_EXAMPLES = 20
_PICKLE_BATCH = 2048


@dataclass(frozen=True)
class Trace:
    """The spans of one trace id, sorted by ``(start_ns, span_id)``, with cached tree helpers."""

    trace_id: str
    spans: tuple[Span, ...]

    def __getstate__(self) -> tuple[str, tuple[Span, ...]]:
        """Pickle only the fields (the spill writes traces), not the cached helpers."""
        return (self.trace_id, self.spans)

    def __setstate__(self, state: tuple[str, tuple[Span, ...]]) -> None:
        object.__setattr__(self, "trace_id", state[0])
        object.__setattr__(self, "spans", state[1])

    @cached_property
    def by_id(self) -> dict[str, Span]:
        """Span id -> span (ids are unique within an assembled trace)."""
        return {span.span_id: span for span in self.spans}

    @cached_property
    def _children(self) -> dict[str, tuple[Span, ...]]:
        children: dict[str, list[Span]] = {}
        for span in self.spans:  # already sorted, so each child list is sorted by start
            if span.parent_span_id:
                children.setdefault(span.parent_span_id, []).append(span)
        return {parent: tuple(kids) for parent, kids in children.items()}

    def children(self, span_id: str) -> tuple[Span, ...]:
        """The direct children of ``span_id``, sorted by ``(start_ns, span_id)``."""
        return self._children.get(span_id, ())

    @cached_property
    def roots(self) -> tuple[Span, ...]:
        """Spans without a parent id."""
        return tuple(span for span in self.spans if not span.parent_span_id)

    @cached_property
    def orphans(self) -> tuple[Span, ...]:
        """Spans whose parent is not in the trace (plus the earliest span of any parent cycle), sorted."""
        by_id = self.by_id
        missing = [s for s in self.spans if s.parent_span_id and s.parent_span_id not in by_id]
        reached = self._reach([*self.roots, *missing])
        if len(reached) == len(self.spans):
            return tuple(missing)
        extra: list[Span] = []
        for span in self.spans:  # sorted, so the earliest member of each cycle breaks it
            if span.span_id not in reached:
                extra.append(span)
                reached |= self._reach([span])
        return tuple(sorted([*missing, *extra], key=_span_order))

    @property
    def entries(self) -> tuple[Span, ...]:
        """Roots and orphans together, sorted: every span of the trace is reachable from these."""
        return tuple(sorted([*self.roots, *self.orphans], key=_span_order))

    def _reach(self, starts: list[Span]) -> set[str]:
        seen: set[str] = set()
        stack = [s.span_id for s in starts]
        while stack:
            span_id = stack.pop()
            if span_id in seen:
                continue
            seen.add(span_id)
            stack.extend(child.span_id for child in self.children(span_id))
        return seen


@dataclass
class AssemblyStats:
    """What assembly saw; filled while :func:`assemble_traces` is iterated, complete once it is exhausted."""

    spans_in: int = 0
    spans_out: int = 0
    traces: int = 0
    duplicate_spans: int = 0
    conflicting_spans: int = 0
    conflict_examples: list[tuple[str, str]] = field(default_factory=list)
    orphan_spans: int = 0
    spilled: bool = False
    spilled_spans: int = 0


def partition_key(trace_id: str, n: int, salt: int = 0) -> int:
    """The partition (``0 <= key < n``) of a trace id: a stable hash, the same in every process and run."""
    data = trace_id.encode("ascii") if not salt else f"{salt}:{trace_id}".encode("ascii")
    return zlib.crc32(data) % n


def span_content_key(span: Span) -> str:
    """A total, deterministic order over span contents, used to pick among conflicting duplicates."""
    return repr(
        (
            span.name,
            int(span.kind),
            span.service,
            span.start_ns,
            span.end_ns,
            span.parent_span_id,
            span.error,
            span.status_message,
            sorted(span.attributes.items()),
            sorted(span.resource.items()),
            span.scope,
            [(link.trace_id, link.span_id, sorted(link.attributes.items())) for link in span.links],
            span.parent_is_remote,
        )
    )


def assemble_traces(
    spans: Iterable[Span],
    *,
    stats: AssemblyStats | None = None,
    max_open_spans: int = 200_000,
    tmp_dir: str | None = None,
) -> Iterator[Trace]:
    """Group ``spans`` into traces sorted by trace id, collapsing duplicates, spilling to disk beyond the budget."""
    stats = stats if stats is not None else AssemblyStats()
    if max_open_spans < 1:
        raise ValueError("max_open_spans must be at least 1")
    records = ((span, 1) for span in _counted(spans, stats))
    yield from _assemble(records, stats, max_open_spans, tmp_dir, depth=0)


# --------------------------------------------------------------------------------------------------- internals


def _span_order(span: Span) -> tuple[int, str]:
    return (span.start_ns, span.span_id)


def _counted(spans: Iterable[Span], stats: AssemblyStats) -> Iterator[Span]:
    for span in spans:
        stats.spans_in += 1
        yield span


class _Slot:
    """Every copy seen of one (trace id, span id): the kept span, how many copies, the distinct variants."""

    __slots__ = ("kept", "copies", "variants")

    def __init__(self, span: Span, copies: int) -> None:
        self.kept = span
        self.copies = copies
        self.variants: dict[str, Span] | None = None

    def add(self, span: Span, copies: int) -> None:
        self.copies += copies
        if self.variants is None:
            if span == self.kept:
                return
            self.variants = {span_content_key(self.kept): self.kept}
        key = span_content_key(span)
        if key not in self.variants:
            self.variants[key] = span
            self.kept = self.variants[min(self.variants)]

    def records(self) -> Iterator[tuple[Span, int]]:
        """The slot as spill records that rebuild it exactly: each variant once, the extra copies on the first."""
        if self.variants is None:
            yield self.kept, self.copies
            return
        variants = [self.variants[k] for k in sorted(self.variants)]
        yield variants[0], self.copies - len(variants) + 1
        for span in variants[1:]:
            yield span, 1


def _assemble(
    records: Iterable[tuple[Span, int]], stats: AssemblyStats, budget: int, tmp_dir: str | None, depth: int
) -> Iterator[Trace]:
    groups: dict[str, dict[str, _Slot]] = {}
    open_spans = 0
    iterator = iter(records)
    for span, copies in iterator:
        group = groups.get(span.trace_id)
        if group is None:
            group = groups[span.trace_id] = {}
        slot = group.get(span.span_id)
        if slot is None:
            group[span.span_id] = _Slot(span, copies)
            open_spans += 1
            if open_spans > budget and depth < _MAX_SPILL_DEPTH:
                yield from _spill(groups, iterator, stats, budget, tmp_dir, depth)
                return
        else:
            slot.add(span, copies)
    if open_spans > budget:
        logger.warning("%d spans in one partition exceed the budget of %d; finishing in memory", open_spans, budget)
    for trace_id in sorted(groups):
        yield _finish(trace_id, groups.pop(trace_id), stats)


def _finish(trace_id: str, group: dict[str, _Slot], stats: AssemblyStats) -> Trace:
    spans = []
    for slot in group.values():
        distinct = 1 if slot.variants is None else len(slot.variants)
        stats.duplicate_spans += slot.copies - distinct
        if distinct > 1:
            stats.conflicting_spans += distinct - 1
            example = (trace_id, slot.kept.span_id)
            examples = stats.conflict_examples
            if len(examples) < _MAX_CONFLICT_EXAMPLES or example < examples[-1]:
                bisect.insort(examples, example)
                del examples[_MAX_CONFLICT_EXAMPLES:]
        spans.append(slot.kept)
    spans.sort(key=_span_order)
    trace = Trace(trace_id, tuple(spans))
    stats.traces += 1
    stats.spans_out += len(spans)
    stats.orphan_spans += len(trace.orphans)
    return trace


class _Partitions:
    """Temporary files, one per partition, holding pickled batches of spill records."""

    def __init__(self, n: int, salt: int, tmp_dir: str | None) -> None:
        self.n = n
        self.salt = salt
        self.dir = tempfile.mkdtemp(prefix="tracegen-spill-", dir=tmp_dir)
        self.paths = [os.path.join(self.dir, f"part-{i:03d}.pickle") for i in range(n)]
        self.files: list[IO[bytes]] = [open(path, "wb") for path in self.paths]
        self.buffers: list[list[tuple[Span, int]]] = [[] for _ in range(n)]

    def add(self, span: Span, copies: int) -> None:
        index = partition_key(span.trace_id, self.n, self.salt)
        buffer = self.buffers[index]
        buffer.append((span, copies))
        if len(buffer) >= _PICKLE_BATCH:
            pickle.dump(buffer, self.files[index], protocol=pickle.HIGHEST_PROTOCOL)
            buffer.clear()

    def close_writing(self) -> None:
        for index, buffer in enumerate(self.buffers):
            if buffer:
                pickle.dump(buffer, self.files[index], protocol=pickle.HIGHEST_PROTOCOL)
                buffer.clear()
            self.files[index].close()

    def cleanup(self) -> None:
        for handle in self.files:
            handle.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_pickles(path: str) -> Iterator:  # type: ignore[type-arg]
    with open(path, "rb") as handle:
        while True:
            try:
                batch = pickle.load(handle)
            except EOFError:
                return
            yield from batch


def _spill(
    groups: dict[str, dict[str, _Slot]],
    rest: Iterator[tuple[Span, int]],
    stats: AssemblyStats,
    budget: int,
    tmp_dir: str | None,
    depth: int,
) -> Iterator[Trace]:
    stats.spilled = True
    parts = _Partitions(_SPILL_PARTITIONS, depth, tmp_dir)
    logger.info("open spans exceed %d: spilling to %d partitions in %s", budget, parts.n, parts.dir)
    try:
        for group in groups.values():
            for slot in group.values():
                for span, copies in slot.records():
                    parts.add(span, copies)
                    stats.spilled_spans += 1
        groups.clear()
        for span, copies in rest:
            parts.add(span, copies)
            stats.spilled_spans += 1
        parts.close_writing()
        # Finish each partition into a file of sorted traces, then merge them by trace id.
        finished: list[str] = []
        for index, path in enumerate(parts.paths):
            out_path = os.path.join(parts.dir, f"traces-{index:03d}.pickle")
            with open(out_path, "wb") as out:
                batch: list[Trace] = []
                batch_spans = 0
                for trace in _assemble(_read_pickles(path), stats, budget, parts.dir, depth + 1):
                    batch.append(trace)
                    batch_spans += len(trace.spans)
                    if batch_spans >= _PICKLE_BATCH:  # the merge holds one batch per partition in memory
                        pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
                        batch, batch_spans = [], 0
                if batch:
                    pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.remove(path)
            finished.append(out_path)
        yield from heapq.merge(*(_read_pickles(path) for path in finished), key=lambda t: t.trace_id)
    finally:
        parts.cleanup()
