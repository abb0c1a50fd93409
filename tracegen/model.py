"""The flow model: what tracegen learned from traces, as frozen dataclasses, and its mergeable statistics.

Why frozen and plain: the model is the contract between inference and everything downstream (diagrams, the report,
``check``, ``merge``, the sidecar). Nothing here imports OpenTelemetry, gRPC or click.

Mergeability (DESIGN.md): every statistic is a commutative merge — counts add, latency is a fixed-bucket histogram,
first/last seen are min/max, exemplars keep the smallest trace ids, and a step's position is the *mean of its
ranks* (rank sum and rank count add). So the same traces in any order or split give the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

__all__ = [
    "ELEMENT_KINDS",
    "SCHEMA",
    "Histogram",
    "System",
    "Element",
    "Step",
    "Scenario",
    "Source",
    "Diagnostics",
    "FlowModel",
]

SCHEMA = "tracegen.model/1"
ELEMENT_KINDS = ("person", "container", "database", "queue", "external")
MODES = ("sync", "async", "mixed")

# Latency buckets: geometric with ratio 2**(1/4) (~19 % wide) from 1 µs upwards. Bucket i covers
# (B**(i-1), B**i] microseconds; p50/p95 read back as the bucket's geometric middle, so the relative error is < 10 %.
_BUCKET_BASE = 2 ** 0.25


def _bucket_of(duration_ms: float) -> int:
    micros = duration_ms * 1000.0
    if micros <= 1.0:
        return 0
    return max(0, math.ceil(math.log(micros, _BUCKET_BASE) - 1e-9))


def _bucket_middle_ms(index: int) -> float:
    if index == 0:
        return 0.001
    return (_BUCKET_BASE ** (index - 0.5)) / 1000.0


@dataclass(frozen=True, slots=True)
class Histogram:
    """Sparse fixed-bucket latency histogram: ``buckets`` maps a bucket index to a count, sorted by index."""

    buckets: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def of(duration_ms: float) -> "Histogram":
        """A histogram holding one observation."""
        return Histogram(((_bucket_of(duration_ms), 1),))

    def merge(self, other: "Histogram") -> "Histogram":
        """The histogram of both observation sets (commutative, associative)."""
        merged: dict[int, int] = dict(self.buckets)
        for index, count in other.buckets:
            merged[index] = merged.get(index, 0) + count
        return Histogram(tuple(sorted(merged.items())))

    @property
    def total(self) -> int:
        return sum(count for _, count in self.buckets)

    def quantile(self, q: float) -> float | None:
        """The q-quantile in milliseconds (rounded to 0.1 ms), or None when empty."""
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index, count in self.buckets:
            seen += count
            if seen >= rank:
                return round(_bucket_middle_ms(index), 1)
        return round(_bucket_middle_ms(self.buckets[-1][0]), 1)


@dataclass(frozen=True, slots=True)
class System:
    """A boundary grouping containers: from config, else from ``service.namespace``."""

    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Element:
    """A box in the C4 model.

    ``virtual`` marks an element inferred from client spans only (no instrumentation of its own); ``declared`` one
    that config added because no instrumentation can show it. ``aliases`` are every naming value seen for it.
    """

    id: str
    name: str
    kind: str
    system: str | None = None
    technology: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    virtual: bool = False
    declared: bool = False
    why_virtual: str = ""
    first_seen_ns: int = 0
    last_seen_ns: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """One arrow of a dynamic diagram, merged over every trace of its scenario.

    ``index`` is a string because parallel steps share one ("3") and C4 numbering may be hierarchical.
    ``rank_sum``/``rank_count`` record the step's position in each trace that had it, so the merged order is
    their mean — a commutative statistic. ``traces`` counts the instances of the scenario that contained the step;
    ``count`` counts the calls (repeated identical calls collapse into one step with a count).
    """

    index: str
    source: str
    target: str
    label: str
    technology: str
    is_async: bool
    count: int
    traces: int
    optional: bool
    latency: Histogram = field(default_factory=Histogram)
    errors: int = 0
    retries: int = 0
    first_seen_ns: int = 0
    last_seen_ns: int = 0
    provenance: str = ""
    exemplars: tuple[str, ...] = ()
    rank_sum: int = 0
    rank_count: int = 0
    declared: bool = False

    @property
    def key(self) -> tuple[str, str, str, bool]:
        """What makes two steps the same step: from, to, label and sync/async."""
        return (self.source, self.target, self.label, self.is_async)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One user-facing interaction with its merged steps.

    ``entry`` is the entry signature (``service`` + templated operation) the scenario was inferred from, or the
    declared rule's id. ``trigger`` says how it starts: ``person``, ``program``, ``scheduled``, ``unknown``,
    ``service`` (a script or job) or ``declared``.
    """

    id: str
    title: str
    mode: str
    mode_wording: str
    traces: int
    steps: tuple[Step, ...]
    description: str = ""
    entries: tuple[str, ...] = ()
    trigger: str = ""
    cadence: str = ""
    declared: bool = False
    first_seen_ns: int = 0
    last_seen_ns: int = 0
    run_starts_ns: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """A row of the "Ingestion sources (ETL)" table. ``inferred`` is False when config annotated it."""

    source: str
    consumer: str
    transport: str
    cadence: str
    data: str = ""
    source_of_truth: str = ""
    brittle: bool = False
    why: str = ""
    inferred: bool = True
    scenario: str = ""
    task: str = ""


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """What the picture cannot show: counts of things tracegen saw but could not place, and what it dropped."""

    spans: int = 0
    traces: int = 0
    orphan_spans: int = 0
    duplicate_spans: int = 0
    conflicting_duplicates: int = 0
    unresolved_links: int = 0
    consumers_without_producer: tuple[str, ...] = ()
    dropped: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowModel:
    """Everything one run learned. Serialised as ``model.json`` by :mod:`tracegen.modeljson`."""

    systems: tuple[System, ...]
    elements: tuple[Element, ...]
    scenarios: tuple[Scenario, ...]
    sources: tuple[Source, ...] = ()
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    generator: str = ""
    generated_at: str = ""
    config_hash: str = ""
    title: str = ""
    pending: tuple[Mapping[str, object], ...] = ()

    def element(self, element_id: str) -> Element | None:
        """The element with that id, or None."""
        for element in self.elements:
            if element.id == element_id:
                return element
        return None

    def scenario(self, scenario_id: str) -> Scenario | None:
        """The scenario with that id, or None."""
        for scenario in self.scenarios:
            if scenario.id == scenario_id:
                return scenario
        return None
