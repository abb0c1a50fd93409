"""Infer the steps of one trace: calls, virtual peers, messages, and how the trace was triggered.

The rules (DESIGN.md, "Inference rules"; the README's "How it works" says the same in prose):

Calls
- A parent → child pair that crosses a process boundary (different service, or the child's parent marked remote
  in the span flags) is a **sync** call from the parent's element to the child's. CLIENT → SERVER is the common
  case; SERVER → SERVER (a proxy without a client span), INTERNAL → SERVER and unset kinds count too. One CLIENT
  with several SERVER children (a redirect chain) gives several steps. The label comes from the server side
  (``http.route``, ``rpc.service/rpc.method``), else the client side.
- A CLIENT span with no child in another process is a sync step to a **virtual** element named by the configured
  order (peer.service, db.namespace/db.name, server.address, URL host, peer address, db.system, else
  ``unknown``). Kind ``database`` when a ``db.*`` attribute says so (INTERNAL spans with ``db.system`` too, e.g.
  the native Elasticsearch client; S3 via ``rpc.service``), ``external`` otherwise. The model later moves the step
  to a known service when the name is that service's name or one of its host names.
- Repeated identical calls collapse into one step with a count; INTERNAL spans inside one service are transparent.
Messages
- PRODUCER → CONSUMER is **async** and drawn through a ``queue`` element: producer → queue, queue → consumer.
  They are joined as parent/child, by a span link within the trace, or by destination and task name. Celery is
  recognised by ``celery.action``/``celery.task_name`` (it sets no ``messaging.system``); its queue is its routing
  key and its steps are labelled by task. Redis commands under a PRODUCER or CONSUMER (``LPUSH``, result-backend
  writes) fold into the queue. A consumer run in state ``RETRY`` is a retry of its step, not a new step.
Entries
- Root SERVER: the caller is a ``person`` (browser user agent) or an ``external`` program (named by its user
  agent); with neither, a person ``user`` as the servicegraph connector does.
- Root CONSUMER without a link: the trigger is not known yet (``@trigger``): the model decides from the run times
  whether it is scheduled (a ``Scheduler``) or an unknown external producer. Root PRODUCER: scheduled (a beat).
- Root CLIENT or INTERNAL: the entry is the service itself.
- A root with a link to a span in another trace is a **continuation**: its steps belong to the scenario of the
  producer it links to (resolved by the flow model, which may see the producer later).
Noise
- Health-check traces, the telemetry pipeline's own exports and DNS lookups are dropped by default; config may
  exclude services, routes, span names and environments. Every drop is counted by reason.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from tracegen.config import Config
from tracegen.naming import (
    celery_task,
    classify_user_agent,
    db_system,
    http_method,
    is_messaging,
    operation_of,
    short_task,
    slugify,
    technology_of_db,
    technology_of_scope,
    template_path,
    virtual_name,
)
from tracegen.spans import Span, SpanKind

__all__ = ["ElementSeen", "StepSeen", "TraceFlow", "TRIGGER", "infer_steps", "service_element_id"]

TRIGGER = "@trigger"  # placeholder source of a root consumer's first step, resolved by the flow model

_HEALTH = re.compile(r"(^|/)(heartbeat|health|healthz|healthcheck|health-check|readyz|livez|ping|"
                     r"selftest|status/health)/?$", re.IGNORECASE)
_TELEMETRY_PATH = re.compile(r"/v1/(traces|metrics|logs)$|/api/v2/spans$|/api/traces$|/loki/api/v1/push$")
_TELEMETRY_PORTS = {4317, 4318, 14250, 14268, 9411, 55680, 55681}


@dataclass(frozen=True, slots=True)
class ElementSeen:
    """One observation of an element in one trace; the flow model merges observations by id."""

    id: str
    name: str
    kind: str
    technology: str = ""
    tech_priority: int = 5000
    system_hint: str = ""
    aliases: tuple[str, ...] = ()
    virtual: bool = False
    why_virtual: str = ""
    service_names: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


@dataclass(slots=True)
class StepSeen:
    """One observation of a step in one trace (before the model merges and numbers steps).

    Mutable only while its trace is walked: :meth:`_Walker.assign_ranks` sets ``rank`` once every step is known.
    """

    source: str
    target: str
    label: str
    technology: str
    is_async: bool
    rank: int
    duration_ms: float
    error: bool
    retry: bool
    provenance: str
    start_ns: int
    hints: tuple[str, ...] = ()


@dataclass(slots=True)
class TraceFlow:
    """What one trace says: its entry signature, trigger, steps and the elements they touch."""

    trace_id: str
    entry_service: str = ""
    entry_service_name: str = ""
    entry_operation: str = ""
    entry_span_name: str = ""
    entry_route: str = ""
    entry_attributes: Mapping[str, object] = field(default_factory=dict)
    trigger: str = ""
    start_ns: int = 0
    end_ns: int = 0
    steps: list[StepSeen] = field(default_factory=list)
    elements: dict[str, ElementSeen] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()
    producers: tuple[tuple[str, int], ...] = ()
    declared_scenario: str = ""
    unknown_producer: ElementSeen | None = None
    orphan_spans: int = 0
    orphan_callers: int = 0
    consumers_without_producer: tuple[str, ...] = ()
    dropped: dict[str, int] = field(default_factory=dict)
    environment: str = ""
    task: str = ""

    @property
    def is_continuation(self) -> bool:
        """A root that links to spans in other traces continues the producer's scenario."""
        return bool(self.links)

    @property
    def signature(self) -> str:
        """The entry signature: entry element and templated operation."""
        return f"{self.entry_service} {self.entry_operation}".strip()


@functools.lru_cache(maxsize=4096)
def _final_service(service: str, config: Config) -> str:
    """The service name after following config merges and renames (a cycle stops where it closes)."""
    seen: set[str] = set()
    name = service
    while name not in seen:
        seen.add(name)
        target = config.service(name).merge_into or config.service(name).rename
        if not target:
            break
        name = target
    return name


def service_element_id(service: str, config: Config) -> str:
    """The element id of a service after config merges and renames (a slug of the final service name)."""
    return slugify(_final_service(service, config))


def _element_name(service: str, config: Config) -> str:
    final = _final_service(service, config)
    return config.service(final).name or final


@functools.lru_cache(maxsize=16384)
def _service_element(service: str, scope: str, language: str, namespace: str, hosts: tuple[str, ...],
                     config: Config) -> ElementSeen:
    """The element observation of a service span (memoised: every span of a service gives the same one)."""
    configured = config.service(service)
    priority, tech = technology_of_scope(scope, language)
    if configured.technology:
        priority, tech = -1, configured.technology
    return ElementSeen(
        id=service_element_id(service, config), name=_element_name(service, config),
        kind=configured.kind or "container", technology=tech, tech_priority=priority,
        system_hint=configured.system or (slugify(namespace) if namespace else ""),
        service_names=(service,), hosts=hosts + tuple(configured.hosts))


@functools.lru_cache(maxsize=16384)
def _virtual_element(system: str, name: str, key: str, aliases: tuple[str, ...]) -> ElementSeen:
    """The element a named peer is (memoised: one object per peer, so repeated observations are free)."""
    if system:
        kind = "database"
        technology = technology_of_db(system)
        # The system is part of the id: MySQL "edxapp" and MongoDB "edxapp" are two stores.
        prefix = "db-" if slugify(system) == slugify(name) else f"db-{slugify(system)}-"
    else:
        kind = "external"
        technology = ""
        prefix = "ext-"
    why = f"no spans of its own: named from {key}" if key else "no spans of its own and no attribute names it"
    return ElementSeen(id=prefix + slugify(name), name=name, kind=kind, technology=technology,
                       tech_priority=0 if technology else 5000, aliases=aliases + (name,), virtual=True,
                       why_virtual=why)


@dataclass(frozen=True, slots=True)
class _LeafStep:
    """What an unanswered client span's step is, apart from where and when: peer, label, technology, hints."""

    element: ElementSeen
    label: str
    technology: str
    provenance: str
    hints: tuple[str, ...]


def _leaf_label(span: Span, system: str) -> tuple[str, str, str, tuple[str, ...]]:
    """(label, technology, provenance, hints) of an unanswered client span."""
    if system:
        return (_db_label(span), technology_of_db(system), "database: client span with db.* attributes", ())
    return (_client_label(span), _scheme_technology(span), "virtual: client span with no server span",
            _transport_hints(span))


@functools.lru_cache(maxsize=65536)
def _leaf_step(kind: SpanKind, name: str, system: str, items: tuple, config: Config) -> _LeafStep | None:
    """The leaf step of a span with these values (memoised: the same database call repeats thousands of
    times). None when the span names no peer, since then its children decide (not a function of its values)."""
    span = Span("", "", "", name, kind, "", 0, 0, attributes=dict(items))
    peer, key, aliases = virtual_name(span, config.virtual_order)
    if not key:
        return None
    return _LeafStep(_virtual_element(system, peer, key, aliases), *_leaf_label(span, system))


def _scheme_technology(span: Span) -> str:
    if span.attr("rpc.system") == "grpc" or span.attr("rpc.grpc.status_code") is not None:
        return "gRPC"
    if span.attr("rpc.system") == "aws-api":
        return "AWS API"
    scheme = span.attr("url.scheme", "http.scheme")
    if not scheme:
        url = span.attr("url.full", "http.url")
        if url:
            scheme = urlsplit(str(url)).scheme
    if scheme:
        return str(scheme).upper()
    if http_method(span):
        return "HTTP"
    if span.attr("rpc.system"):
        return str(span.attr("rpc.system"))
    return ""


def _messaging_technology(span: Span) -> str:
    system = span.attr("messaging.system")
    if system:
        pretty = {"rabbitmq": "RabbitMQ", "kafka": "Kafka", "aws_sqs": "SQS", "aws.sqs": "SQS", "gcp_pubsub":
                  "Pub/Sub", "servicebus": "Service Bus", "activemq": "ActiveMQ", "redis": "Redis",
                  "nats": "NATS", "pulsar": "Pulsar", "rocketmq": "RocketMQ", "jms": "JMS"}
        return pretty.get(str(system).lower(), str(system))
    if celery_task(span):
        return "Celery"
    return "messaging"


def _destination(span: Span) -> str:
    value = span.attr("messaging.destination.name", "messaging.destination", "messaging.rabbitmq.routing_key",
                      "messaging.kafka.destination", "messaging.destination.template")
    return str(value) if value is not None else ""


def _queue_element(span: Span) -> ElementSeen:
    destination = _destination(span)
    technology = _messaging_technology(span)
    system = span.attr("messaging.system")
    name = destination or (str(system) if system else technology)
    aliases = tuple(sorted({value for value in (destination, str(system or "")) if value}))
    return ElementSeen(id="queue-" + slugify(name), name=name, kind="queue", technology=technology,
                       tech_priority=0, aliases=aliases, virtual=True,
                       why_virtual="a message destination: seen only through its producers and consumers")


def _message_label(span: Span) -> str:
    task = celery_task(span)
    if task:
        return short_task(task)
    destination = _destination(span)
    if destination:
        return destination
    return span.name


class _Walker:
    """Walks one trace depth first, emitting steps and element observations (private to :func:`infer_steps`)."""

    def __init__(self, trace_id: str, spans: list[Span], config: Config) -> None:
        self.config = config
        self.flow = TraceFlow(trace_id=trace_id)
        self.by_id = {span.span_id: span for span in spans}
        self.children: dict[str, list[Span]] = defaultdict(list)
        for span in spans:
            if span.parent_span_id and span.parent_span_id in self.by_id:
                self.children[span.parent_span_id].append(span)
        for kids in self.children.values():
            kids.sort(key=lambda s: (s.start_ns, s.span_id))
        self.events: list[tuple[int, int, str, int, StepSeen]] = []
        self.depth: dict[str, int] = {}
        self.producers_by_key: dict[tuple[str, str], Span] = {}
        for span in spans:
            if span.kind == SpanKind.PRODUCER:
                self.producers_by_key.setdefault((_destination(span), celery_task(span)), span)

    # -- elements ---------------------------------------------------------------------------------------------
    def service(self, span: Span) -> str:
        hosts: tuple[str, ...] = ()
        if span.kind == SpanKind.SERVER:
            hosts = tuple(sorted({str(v).split(":")[0] for v in (
                span.attr("http.host"), span.attr("server.address"), span.attr("net.host.name"))
                if v}))
        element = _service_element(span.service, span.scope, str(span.resource.get("telemetry.sdk.language", "")),
                                   str(span.resource.get("service.namespace") or ""), hosts, self.config)
        self._observe(element)
        return element.id

    def _observe(self, element: ElementSeen) -> None:
        known = self.flow.elements.get(element.id)
        if known is None:
            self.flow.elements[element.id] = element
            return
        if known is element or known == element:
            return
        better_tech = element.tech_priority < known.tech_priority
        self.flow.elements[element.id] = ElementSeen(
            id=known.id, name=known.name, kind=known.kind,
            technology=element.technology if better_tech else known.technology,
            tech_priority=min(element.tech_priority, known.tech_priority),
            system_hint=known.system_hint or element.system_hint,
            aliases=tuple(sorted(set(known.aliases) | set(element.aliases))),
            virtual=known.virtual, why_virtual=known.why_virtual,
            service_names=tuple(sorted(set(known.service_names) | set(element.service_names))),
            hosts=tuple(sorted(set(known.hosts) | set(element.hosts))))

    def virtual(self, span: Span, system: str) -> tuple[str, str]:
        """The virtual element a CLIENT span with no server child talks to; returns (element id, technology).

        A client span that names no peer borrows the name from its own connection-level descendants in the same
        service (``tcp.connect`` with ``net.peer.name``, a nested HTTP client span): they describe the same peer.
        """
        name, key, aliases = virtual_name(span, self.config.virtual_order)
        if not key:
            for inner in self._same_service_descendants(span):
                inner_name, inner_key, inner_aliases = virtual_name(inner, self.config.virtual_order)
                if inner_key:
                    name, key, aliases = inner_name, f"{inner_key} of its {inner.name!r} span", inner_aliases
                    break
        element = _virtual_element(system, name, key, aliases)
        self._observe(element)
        return element.id, element.technology

    def _same_service_descendants(self, span: Span) -> list[Span]:
        """Descendants of ``span`` in its own process, breadth first (bounded by the trace)."""
        found: list[Span] = []
        queue = list(self.children.get(span.span_id, ()))
        while queue:
            child = queue.pop(0)
            if child.service == span.service:
                found.append(child)
                queue.extend(self.children.get(child.span_id, ()))
        return found

    # -- steps ------------------------------------------------------------------------------------------------
    def emit(self, span: Span, group: str, source: str, target: str, label: str, technology: str,
             is_async: bool, provenance: str, *, duration_span: Span | None = None, retry: bool = False,
             before: bool = False, hints: tuple[str, ...] = ()) -> None:
        timed = duration_span or span
        start = span.start_ns - 1 if before else span.start_ns
        step = StepSeen(source=source, target=target, label=label, technology=technology, is_async=is_async,
                        rank=0, duration_ms=timed.duration_ns / 1e6, error=timed.error, retry=retry,
                        provenance=provenance, start_ns=start, hints=hints)
        self.events.append((start, self.depth.get(span.span_id, 0), group, span.end_ns, step))

    def run(self, spans: list[Span]) -> TraceFlow:
        roots = [span for span in spans if not span.parent_span_id or span.parent_span_id not in self.by_id]
        roots.sort(key=lambda s: (bool(s.parent_span_id), s.start_ns, s.span_id))
        flow = self.flow
        flow.orphan_spans = sum(1 for span in roots if span.parent_span_id)
        if roots:
            flow.start_ns = min(span.start_ns for span in spans)
            flow.end_ns = max(span.end_ns for span in spans)
        for index, root in enumerate(roots):
            self.depth[root.span_id] = 0
            if self.dropped(root):
                continue
            if index == 0:
                self.entry(root)
            elif root.kind == SpanKind.SERVER and root.parent_span_id:
                flow.orphan_callers += 1
            self.visit_root(root, first=index == 0)
            self.walk(root)
        self.assign_ranks()
        return flow

    def entry(self, root: Span) -> None:
        flow = self.flow
        element = self.service(root)
        flow.entry_service = element
        flow.entry_service_name = root.service
        flow.entry_operation = operation_of(root)
        flow.entry_span_name = root.name
        route = root.attr("http.route")
        flow.entry_route = str(route) if route else ""
        flow.entry_attributes = dict(root.attributes)
        flow.task = celery_task(root)
        env = root.resource.get("deployment.environment.name", root.resource.get("deployment.environment"))
        flow.environment = str(env) if env else ""
        other_trace_links = tuple(sorted({(link.trace_id, link.span_id) for link in root.links
                                          if link.trace_id != flow.trace_id and link.span_id}))
        if other_trace_links and not root.parent_span_id:
            flow.links = other_trace_links
            flow.trigger = "continuation"
            return
        if root.attr("faas.trigger") == "timer":
            # A function run by a timer: scheduled like a root consumer (cadence decides Scheduler vs unknown).
            flow.trigger = "unknown"
            flow.unknown_producer = ElementSeen(
                id="ext-timer", name="timer", kind="external", aliases=("timer",), virtual=True,
                why_virtual="a timer trigger whose runs do not recur regularly")
            self.emit(root, "", TRIGGER, element, operation_of(root), "timer", True,
                      "entry: function triggered by a timer (faas.trigger)", before=True)
            return
        if root.kind == SpanKind.SERVER or (root.kind == SpanKind.UNSPECIFIED and root.attr("http.route")):
            user_agent = str(root.attr("user_agent.original", "http.user_agent") or "")
            kind, product = classify_user_agent(user_agent)
            if kind == "program":
                caller = ElementSeen(id="ext-" + slugify(product), name=product, kind="external",
                                     aliases=tuple(sorted({product, str(root.attr("client.address") or "")} -
                                                          {""})),
                                     virtual=True, why_virtual="a program calling in: named by its user agent")
                flow.trigger = "program"
            else:
                caller = ElementSeen(id="user", name="User", kind="person", aliases=("user",), virtual=True,
                                     why_virtual="the caller of a root server span")
                flow.trigger = "person"
            self._observe(caller)
            self.emit(root, "", caller.id, element, operation_of(root), _scheme_technology(root), False,
                      "entry: root SERVER span")
        elif root.kind == SpanKind.CONSUMER or (is_messaging(root) and root.kind != SpanKind.PRODUCER):
            flow.trigger = "unknown"
            queue = _queue_element(root)
            peer = root.attr("peer.service", "service.peer.name")
            system = root.attr("messaging.system")
            producer_name = str(peer) if peer else (
                f"{system} producer" if system else f"{queue.name} producer")
            flow.unknown_producer = ElementSeen(
                id="ext-" + slugify(producer_name), name=producer_name, kind="external",
                aliases=tuple(sorted({producer_name, str(peer or "")} - {""})), virtual=True,
                why_virtual="the producer of a consumer with no producer span or link")
        elif root.kind == SpanKind.PRODUCER:
            flow.trigger = "scheduled"
        else:
            flow.trigger = "service"

    def visit_root(self, root: Span, *, first: bool) -> None:
        """Messaging roots: a beat's PRODUCER publishes; a root CONSUMER receives from its queue."""
        if root.kind == SpanKind.PRODUCER or (is_messaging(root) and root.kind == SpanKind.CLIENT and
                                              not _receives(root)):
            self.publish(root)
        elif root.kind == SpanKind.CONSUMER or (is_messaging(root) and _receives(root)):
            if first and self.flow.trigger == "unknown" and not (_destination(root) or
                                                                 root.attr("messaging.system")):
                self.emit(root, "", TRIGGER, self.service(root), _message_label(root),
                          _messaging_technology(root), True, "entry: root CONSUMER with no producer, link or "
                          "destination")
                return
            if first and self.flow.trigger == "unknown":
                queue = _queue_element(root)
                self._observe(queue)
                self.emit(root, "", TRIGGER, queue.id, _message_label(root), queue.technology, True,
                          "entry: root CONSUMER with no producer span or link", before=True)
            self.consume(root, None)

    def walk(self, span: Span) -> None:
        for child in self.children.get(span.span_id, ()):
            self.depth[child.span_id] = self.depth.get(span.span_id, 0) + 1
            if self.dropped(child):
                continue
            self.visit(child, span)
            self.walk(child)
        self.visit_leaf(span)

    def dropped(self, span: Span) -> bool:
        """Telemetry exports, DNS lookups and configured exclusions leave the picture (counted)."""
        noise = self.config.noise
        reason = ""
        if noise.telemetry_traffic and span.kind == SpanKind.CLIENT:
            reason = _telemetry_reason(span)
        if not reason and noise.exclude_services and any(fnmatchcase(span.service, p)
                                                         for p in noise.exclude_services):
            reason = "excluded service"
        if not reason and noise.exclude_spans and any(fnmatchcase(span.name, p) for p in noise.exclude_spans):
            reason = "excluded span name"
        if reason:
            self.flow.dropped[reason] = self.flow.dropped.get(reason, 0) + 1
            return True
        return False

    def visit(self, span: Span, parent: Span) -> None:
        """The step (if any) made by ``span`` given its ``parent``: one dispatch on the child's kind."""
        crosses = span.service != parent.service or bool(span.parent_is_remote) or (
            parent.kind == SpanKind.CLIENT and span.kind == SpanKind.SERVER)
        if span.kind == SpanKind.CONSUMER or (is_messaging(span) and span.kind == SpanKind.CLIENT and
                                              _receives(span)):
            self.consume(span, parent)
        elif span.kind == SpanKind.PRODUCER or (is_messaging(span) and span.kind == SpanKind.CLIENT):
            self.publish(span)
        elif crosses and parent.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER) and db_system(span) == "redis":
            return
        elif crosses and _receives_call(span, parent):
            caller = self.service(parent)
            callee = self.service(span)
            siblings = [s for s in self.children.get(parent.span_id, ()) if s.service != parent.service]
            timed = parent if parent.kind == SpanKind.CLIENT and len(siblings) == 1 else span
            label = operation_of(span) if (http_method(span) or span.attr("rpc.method")) else operation_of(
                parent) if parent.kind == SpanKind.CLIENT else operation_of(span)
            kind_pair = f"{parent.kind.name}→{span.kind.name}"
            technology = (_scheme_technology(parent) if parent.kind == SpanKind.CLIENT else "") or \
                _scheme_technology(span)
            self.emit(span, parent.span_id, caller, callee, label, technology, False,
                      f"call: {kind_pair} across services", duration_span=timed,
                      hints=_transport_hints(parent) if parent.kind == SpanKind.CLIENT else ())

    def visit_leaf(self, span: Span) -> None:
        """A CLIENT (or INTERNAL database) span nobody answered: a step to a virtual element."""
        if span.kind not in (SpanKind.CLIENT, SpanKind.INTERNAL):
            return
        system = db_system(span)
        if span.kind == SpanKind.INTERNAL and not system:
            return
        if is_messaging(span):
            return
        if any(child.service != span.service for child in self.children.get(span.span_id, ())):
            return
        parent = self.by_id.get(span.parent_span_id)
        if parent is not None and parent.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER) and \
                system == "redis" and str(span.attr("db.statement", "db.query.text") or
                                                    span.name).split(" ")[0].upper() in _BROKER_COMMANDS:
            return  # broker commands fold into the queue
        if span.kind == SpanKind.INTERNAL and parent is not None and parent.service == span.service and \
                parent.kind == SpanKind.CLIENT and db_system(parent):
            return  # a helper span inside a traced database call (helpers.bulk → bulk)
        if span.kind == SpanKind.INTERNAL and any(db_system(c) for c in self.children.get(span.span_id, ())):
            return  # a wrapper (helpers.bulk) whose inner database span makes the step
        caller = self.service(span)
        leaf = _leaf_step(span.kind, span.name, system, tuple(span.attributes.items()), self.config)
        if leaf is None:  # the span names no peer: its connection spans may (see :meth:`virtual`)
            target, _ = self.virtual(span, system)
            label, technology, provenance, hints = _leaf_label(span, system)
        else:
            self._observe(leaf.element)
            target, label, technology, provenance, hints = (leaf.element.id, leaf.label, leaf.technology,
                                                            leaf.provenance, leaf.hints)
        self.emit(span, span.parent_span_id, caller, target, label, technology, False, provenance, hints=hints)

    def publish(self, span: Span) -> None:
        producer = self.service(span)
        queue = _queue_element(span)
        self._observe(queue)
        self.emit(span, span.parent_span_id, producer, queue.id, _message_label(span), queue.technology, True,
                  "message: PRODUCER span publishes to its destination")
        if not any(child.kind == SpanKind.CONSUMER for child in self.children.get(span.span_id, ())):
            self.flow.producers = self.flow.producers + ((span.span_id, 0),)

    def consume(self, span: Span, parent: Span | None) -> None:
        consumer = self.service(span)
        producer = parent if parent is not None and (parent.kind == SpanKind.PRODUCER or is_messaging(parent)
                                                     and parent.kind != SpanKind.CONSUMER) else None
        provenance = "message: CONSUMER child of its PRODUCER"
        if producer is None:
            for link in span.links:
                linked = self.by_id.get(link.span_id)
                if linked is not None and linked.kind == SpanKind.PRODUCER:
                    producer, provenance = linked, "message: CONSUMER linked to a PRODUCER in the same trace"
                    break
        if producer is None:
            match = self.producers_by_key.get((_destination(span), celery_task(span)))
            if match is not None and match.span_id != span.span_id:
                producer, provenance = match, "message: CONSUMER matched to a PRODUCER by destination and task"
        if producer is None and not self.flow.links:
            provenance = "message: CONSUMER without a producer span"
            self.flow.consumers_without_producer = self.flow.consumers_without_producer + (
                f"{span.service}: {span.name}",)
        elif producer is None:
            provenance = "message: CONSUMER linked to a PRODUCER in another trace"
        queue = _queue_element(producer if producer is not None and _destination(producer) else span)
        self._observe(queue)
        retry = str(span.attr("celery.state") or "").upper() == "RETRY"
        self.emit(span, (producer.span_id if producer else span.parent_span_id), queue.id, consumer,
                  _message_label(span), queue.technology, True, provenance, retry=retry)

    def assign_ranks(self) -> None:
        """Order steps by start time, depth first; overlapping siblings share a rank (they run in parallel)."""
        self.events.sort(key=lambda e: (e[0], e[1], e[4].label, e[4].target))
        rank = 0
        last_group: str | None = None
        last_end = -1
        steps: list[StepSeen] = []
        for start, _depth, group, end, step in self.events:
            parallel = last_group is not None and group == last_group and group != "" and start < last_end
            if not parallel:
                rank += 1
                last_end = end
            else:
                last_end = max(last_end, end)
            last_group = group
            step.rank = rank
            steps.append(step)
        self.flow.steps = steps
        if self.flow.producers:
            producer_ranks: dict[int, int] = {}
            for step in steps:
                producer_ranks.setdefault(step.start_ns, step.rank)
            by_span = {span_id: self.by_id[span_id].start_ns for span_id, _ in self.flow.producers}
            self.flow.producers = tuple((span_id, producer_ranks.get(by_span[span_id], 0))
                                        for span_id, _ in self.flow.producers)


def _receives(span: Span) -> bool:
    operation = str(span.attr("messaging.operation.type", "messaging.operation") or "")
    return span.kind == SpanKind.CONSUMER or operation in ("receive", "process", "deliver")


def _telemetry_reason(span: Span) -> str:
    """Why a CLIENT span is the telemetry pipeline's own traffic ("" when it is not)."""
    attrs = span.attributes
    if "db.system" in attrs or "db.system.name" in attrs:
        return ""  # a database call is never an export (and is the most common client span)
    url = str(span.attr("url.full", "http.url", "url.path", "http.target") or "")
    port = span.attr("server.port", "net.peer.port")
    rpc = str(attrs.get("rpc.service") or "")
    if _TELEMETRY_PATH.search(urlsplit(url).path if "://" in url else url) or \
            rpc.startswith("opentelemetry.proto.collector") or port in _TELEMETRY_PORTS:
        return "telemetry export"
    if span.name[:4].lower() in ("dns.", "dns ") or "dns.question.name" in attrs:
        return "DNS lookup"
    return ""


def _receives_call(span: Span, parent: Span) -> bool:
    """Whether a cross-process child is the receiving side of a call from its parent.

    SERVER and unset kinds receive; an INTERNAL child receives only from a CLIENT parent (a server side that was
    not marked SERVER). A CLIENT or PRODUCER child initiates work of its own: a parent in another service means
    context leaked across processes, which is not a call (Tempo's servicegraph does not count it either).
    """
    if span.kind in (SpanKind.SERVER, SpanKind.UNSPECIFIED):
        return True
    return span.kind == SpanKind.INTERNAL and parent.kind == SpanKind.CLIENT


_BROKER_COMMANDS = {"LPUSH", "RPUSH", "BRPOP", "BLPOP", "PUBLISH", "SET", "SETEX", "GET", "EXPIRE", "MULTI",
                    "EXEC", "DEL", "SADD", "ZADD", "HSET"}


_SECRET_PARAMS = re.compile(r"(?:^|&)(api_?key|apikey|access_token|token|password|passwd|secret|key|auth|sig|"
                            r"signature|client_secret)=", re.IGNORECASE)


def _transport_hints(span: Span) -> tuple[str, ...]:
    """What a client span says about its transport and brittleness, for the ETL table.

    ``transport:`` HTML (an HTML response: a scrape), GraphQL, SOAP, RSS/feed, REST; ``brittle:`` credentials in
    the URL, an HTML scrape, a raw IP address instead of a host name.
    """
    if not http_method(span):
        return ()
    hints: list[str] = []
    url = str(span.attr("url.full", "http.url") or "")
    query = urlsplit(url).query if url else str(span.attr("url.query") or "")
    content_type = ""
    for key, value in span.attributes.items():
        if key.startswith("http.response.header.content") and key.endswith(("type", "content_type")):
            content_type = str(value[0] if isinstance(value, tuple) and value else value).lower()
    path = urlsplit(url).path.lower() if url else str(span.attr("url.path") or "").lower()
    if "html" in content_type:
        hints.append("transport:HTML scrape")
        hints.append("brittle:scrapes an HTML page: any change to the page's markup breaks the pull")
    elif "graphql" in path:
        hints.append("transport:GraphQL")
    elif "soap" in content_type or path.endswith((".wsdl", "/soap")):
        hints.append("transport:SOAP")
    elif "rss" in content_type or "atom" in content_type or "/feed" in path:
        hints.append("transport:feed")
    elif http_method(span):
        hints.append("transport:REST")
    secret = _SECRET_PARAMS.search(query)
    if secret:
        hints.append(f"brittle:credentials in the URL query string ({secret.group(1)})")
    host = urlsplit(url).hostname if url else ""
    if host and re.match(r"^\d+\.\d+\.\d+\.\d+$", host):
        hints.append("brittle:hard-coded IP address instead of a host name")
    return tuple(hints)


_SQL_VERB = re.compile(r"^\s*(\w+)")


def _db_label(span: Span) -> str:
    """A database step's label: the operation (``SELECT``, ``find``, ``PutObject``, ``bulk``)."""
    operation = span.attr("db.operation.name", "db.operation", "rpc.method")
    if operation:
        return str(operation)
    statement = span.attr("db.statement", "db.query.text", "sql")
    system = db_system(span)
    if statement and system not in ("mongodb", "elasticsearch"):
        match = _SQL_VERB.match(str(statement))
        if match:
            return match.group(1).upper()
    name = span.name
    if system == "mongodb" and "." in name:
        return name.rsplit(".", 1)[-1]
    if system == "elasticsearch" and name.startswith("Elasticsearch/"):
        tail = name.rsplit("/", 1)[-1]
        return tail.lstrip("_") or "request"
    return template_path(name) if name.startswith("/") else name.split(" ")[0]


def _client_label(span: Span) -> str:
    method = http_method(span)
    if method:
        url = span.attr("url.full", "http.url")
        path = str(span.attr("url.path") or "") or (urlsplit(str(url)).path if url else "") or str(
            span.attr("http.target") or "")
        if path:
            return f"{method} {template_path(path)}"
        return method
    return operation_of(span)


def infer_steps(spans: Iterable[Span], trace_id: str, config: Config) -> TraceFlow:
    """The flow of one trace: entry signature, trigger, ranked steps and the elements they touch.

    Environments: when config lists environments, spans of other environments are dropped (counted).
    Health-check traces yield a flow with no steps and ``dropped["health check"] = 1``.
    """
    kept: list[Span] = []
    dropped_env = 0
    environments = config.noise.environments
    for span in spans:
        if environments:
            env = span.resource.get("deployment.environment.name", span.resource.get("deployment.environment"))
            if env is not None and str(env) not in environments:
                dropped_env += 1
                continue
        kept.append(span)
    walker = _Walker(trace_id, kept, config)
    if not kept:
        flow = walker.flow
        flow.dropped["other environment"] = dropped_env
        return flow
    roots = sorted((s for s in kept if not s.parent_span_id or s.parent_span_id not in walker.by_id),
                   key=lambda s: (bool(s.parent_span_id), s.start_ns, s.span_id))
    root = roots[0]
    if _is_health_check(root, config) or _excluded_route(root, config):
        flow = walker.flow
        flow.dropped["health check" if _is_health_check(root, config) else "excluded route"] = 1
        return flow
    flow = walker.run(kept)
    if dropped_env:
        flow.dropped["other environment"] = dropped_env
    declared = root.attributes.get("tracegen.scenario") or root.resource.get("tracegen.scenario")
    if not declared:
        for span in kept:
            declared = span.attributes.get("tracegen.scenario") or span.resource.get("tracegen.scenario")
            if declared:
                break
    flow.declared_scenario = str(declared) if declared else ""
    return flow


def _is_health_check(root: Span, config: Config) -> bool:
    if not config.noise.health_checks or root.kind not in (SpanKind.SERVER, SpanKind.UNSPECIFIED):
        return False
    candidates = [root.attr("http.route"), root.attr("url.path"), root.attr("http.target"), root.name]
    for value in candidates:
        if value and _HEALTH.search(str(value).split("?")[0].split(" ")[-1].rstrip("$")):
            return True
    return False


def _excluded_route(root: Span, config: Config) -> bool:
    patterns = config.noise.exclude_routes
    if not patterns:
        return False
    operation = operation_of(root)
    route = str(root.attr("http.route") or "")
    return any(fnmatchcase(operation, p) or (route and fnmatchcase(route, p)) for p in patterns)
