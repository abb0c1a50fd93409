"""The normalised span record every ingest path produces and every later stage reads.

Why a record of our own: OTLP protobuf, OTLP/JSON in its several dialects and the live receiver all describe the
same span differently (hex or base64 ids, integer or string enums, camelCase or snake_case keys). Each decoder
turns its input into this one compact, immutable shape, so inference never sees a wire format.

Rules:
- ids are lowercase hex strings (trace 32 chars, span 16 chars); "no parent" is the empty string;
- ``kind`` is our own :class:`SpanKind` whose numbers equal OTLP's proto enum (the API enum is off by one);
- only the attributes inference needs are kept (:func:`keep_attribute`), flattened to scalars or tuples;
- resource attributes that matter (``service.namespace``, environment, SDK language) live in ``resource``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, NamedTuple, Union

__all__ = [
    "AttrValue",
    "Link",
    "Span",
    "SpanKind",
    "KEPT_ATTRIBUTE_PREFIXES",
    "KEPT_RESOURCE_KEYS",
    "keep_attribute",
]

AttrValue = Union[str, int, float, bool, tuple]
_EMPTY: Mapping[str, "AttrValue"] = MappingProxyType({})


class SpanKind(enum.IntEnum):
    """Span kind with OTLP's proto numbering (``SPAN_KIND_SERVER`` = 2 …)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


# Attribute namespaces inference, naming and the report read. Everything else is dropped at ingest: an attribute
# walk is the real cost floor (DESIGN.md, performance), and memory per open span is budgeted.
KEPT_ATTRIBUTE_PREFIXES: tuple[str, ...] = (
    "http.",
    "url.",
    "server.",
    "client.",
    "net.",
    "network.",
    "db.",
    "messaging.",
    "celery.",
    "rpc.",
    "peer.",
    "service.peer.",
    "user_agent.",
    "aws.",
    "tracegen.",
    "error.",
    "code.",
    "elasticsearch.",
    "graphql.",
    "faas.",
    "cloud.",
)
KEPT_ATTRIBUTE_KEYS: frozenset[str] = frozenset({"sql", "component", "span.kind", "peer.service"})

KEPT_RESOURCE_KEYS: frozenset[str] = frozenset(
    {
        "service.name",
        "service.namespace",
        "service.version",
        "service.instance.id",
        "deployment.environment",
        "deployment.environment.name",
        "telemetry.sdk.language",
        "tracegen.scenario",
        "k8s.deployment.name",
    }
)


def keep_attribute(key: str) -> bool:
    """Whether a span attribute is one inference may need (see ``KEPT_ATTRIBUTE_PREFIXES``)."""
    return key.startswith(KEPT_ATTRIBUTE_PREFIXES) or key in KEPT_ATTRIBUTE_KEYS


@dataclass(frozen=True, slots=True)
class Link:
    """A span link: the linked span's ids and the attributes that say why it links."""

    trace_id: str
    span_id: str
    attributes: Mapping[str, AttrValue] = field(default_factory=dict)


class Span(NamedTuple):
    """One span, normalised. ``parent_span_id`` is ``""`` for a root.

    A ``NamedTuple``, not a dataclass: every ingested span is one of these, and a tuple is built ~4x faster than
    a frozen dataclass and is smaller (DESIGN.md budgets ~350 B per open span), while staying immutable.

    ``parent_is_remote`` comes from the OTLP span flags (bits 8 and 9): ``True`` when the parent lives in another
    process, ``False`` when known local, ``None`` when the producer did not say.
    """

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: SpanKind
    service: str
    start_ns: int
    end_ns: int
    error: bool = False
    attributes: Mapping[str, AttrValue] = _EMPTY
    resource: Mapping[str, AttrValue] = _EMPTY
    scope: str = ""
    links: tuple[Link, ...] = ()
    parent_is_remote: bool | None = None
    status_message: str = ""

    @property
    def duration_ns(self) -> int:
        """Span duration, never negative (clock skew between hosts can make end < start)."""
        return max(0, self.end_ns - self.start_ns)

    def attr(self, *keys: str) -> AttrValue | None:
        """The first present, non-empty value among ``keys`` (old and new semantic conventions side by side)."""
        attrs = self.attributes
        for key in keys:
            value = attrs.get(key)
            if value is not None and value != "":
                return value
        return None
