#!/usr/bin/env python3
"""Generate tracegen's example traces of the xPRO Open edX deployment with the real OpenTelemetry SDK.

What it writes
--------------
* ``examples/traces/idealized/`` — every library named in the instrumentation reference is instrumented
  (Django, Celery, PyMongo, mysqlclient, psycopg2/psycopg, redis, requests, botocore, Elasticsearch; Ruby
  Rack/Sinatra/Mongo/Faraday for the legacy comments service), so each data flow of the reference page shows
  up as spans.  Several traces per scenario, with optional steps, loops of database calls, a slow call and
  failed calls (status ERROR).
* ``examples/realistic/traces/`` — what MIT instruments today (reference §0.7): edxapp has only Django SERVER,
  Celery PRODUCER/CONSUMER, mysqlclient CLIENT and ``edx_django_utils`` INTERNAL spans; its outbound HTTP calls
  carry no ``traceparent``, so the services it calls start new root traces; the Notes API is not instrumented
  at all.  This is the honest input for the report's "instrumentation gaps".  It lives outside
  ``examples/traces/`` on purpose: ``tracegen convert examples/traces`` reads folders recursively and the two
  sets use the same service names.

Both sets come from the *same* scenario functions: each ``Proc`` (one instrumented process) lists the
instrumentation libraries it has, and a span whose library is missing is simply not emitted.  A missing
in-process span is transparent (its children attach to the grandparent); a missing CLIENT span means no
``traceparent`` header, so the callee's SERVER span becomes the root of a new trace — exactly the trace breaks
of reference §0.7.

Sources (``/work/shared/reference/openedx-instrumentation.md``, "ref"; the page ``data-flows-page.txt``)
-------------------------------------------------------------------------------------------------------
* Span names, kinds and attributes: ref §1.1 Django, §1.2 Celery, §1.3 requests, §1.5 PyMongo, §1.6 dbapi,
  §1.7 redis, §1.8 botocore, §1.9 Elasticsearch (old contrib CLIENT ``Elasticsearch/<url>`` and native
  INTERNAL ``bulk``; both appear), §1.10 Ruby.  Old semantic conventions everywhere except ``edx-notes-api``
  (Django + dbapi with ``OTEL_SEMCONV_STABILITY_OPT_IN=http,database``) and ``learn-webapp`` (requests and
  psycopg new names, ``deployment.environment.name``), so that tracegen's normalisation is exercised.
* Services, hosts, queues, routes and task names: ref §2.1–§2.6, §3, §4.1, §6.
* Scenario blueprints: ref §5.  Where ref and page disagree, the page wins (ref header):
  - "Learner takes a course" (page: synchronous) — traces 1a (unit load), 1b (problem submit, *without* the
    grade-recalculation Celery task so the scenario stays synchronous), 1c (discussion through the legacy
    ``cs-comments-service`` in idealized mode, forum v2 in-process in realistic mode, ref §0.5) and the Notes
    tab (LMS → Notes API server-side; the page says the LMS stores annotations in the Notes API).
  - "Course authoring & publish" (sync + async) — 2a publish with the signal-handler Celery tasks and their
    consumers as children of the producers (Celery's default), 2b asset upload to S3 (the page; ref §0.4
    says GridFS), 2c export through ``export_olx`` to S3, plus the export status polls.
  - "xPRO SSO & user provisioning" (synchronous) — 3a registration with the LMS registration call and the
    ``create_edx_auth_token`` redirect chains (one CLIENT span with several SERVER children), without the
    HubSpot task; 3b the LMS social-auth completion calling xPRO's ``oauth2/token/`` and ``api/users/me``.
  - "xPRO enrollment, grade & run sync" (cross-service, mixed) — 4a order fulfillment (CyberSource webhook),
    4b ``retry_failed_edx_enrollments`` every 30 min, 4c ``repair_faulty_courseware_users`` every 30 min offset
    15, 4d ``sync_courseruns_data`` and 4e ``generate_course_certificates`` daily at 00:00 UTC; beat PRODUCER
    roots in ``mitxpro`` with worker CONSUMER children.
  - "Ingestion sources (ETL)" — MIT Learn (``learn-webapp``, namespace ``learn``) pulls: ``get_xpro_data``
    daily 05:00, ``import_all_xpro_files`` → ``get_content_files`` daily 08:00, ``get_mitpe_data`` daily 21:00
    (paged JSON feed), ``get_sloan_exec_webinars`` every 3 h (HTML + token scrape, brittle), and xPRO's 4f
    external course sync (``api_key`` in ``http.url``, brittle).  In idealized mode MIT Learn runs Celery with
    ``use_span_links=True`` (ref §1.2): its consumers start new traces with a *link* to the producer.
    ``get_mitpe_data``, ``get_sloan_exec_webinars`` and 4f have no producer span at all (root CONSUMER, as
    ref §5 4f lists it), so tracegen must infer "scheduled" from the regular run times.
  - Noise tracegen should drop: LMS ``GET heartbeat`` probes and the OTLP exporter's own ``POST`` to
    ``http://otel-collector:4318/v1/traces``.

Reproducibility
---------------
Ids come from a seeded ``IdGenerator`` (re-seeded per scenario, so editing one scenario leaves the others'
ids alone), timestamps from a fixed base (2026-11-02T00:00:00Z, a Monday) with seeded jitter, the resource
attributes (including ``telemetry.sdk.*``) are written out rather than detected, and sampler and span limits
are explicit so ``OTEL_*`` environment variables change nothing.  ``--check`` regenerates into a temporary
directory and compares bytes.  The protobuf encoding comes from the installed
``opentelemetry-exporter-otlp-proto-common``; a different version may set span ``flags`` differently.

Output forms
------------
``*.jsonl`` — the Collector file exporter's JSON lines: one OTLP/JSON ``ExportTraceServiceRequest`` per line
and batch (hex ids, integer enums, lowerCamelCase, 64-bit integers as strings); spans are batched by end time
the way a BatchSpanProcessor + Collector pipeline delivers them, so a trace is often split across batches and,
where a scenario routes a process elsewhere, across files.  ``*.binpb`` — one serialized
``ExportTraceServiceRequest`` per file.

Usage: ``python examples/generate_traces.py [--out DIR] [--realistic-out DIR] [--check]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "traces"
DEFAULT_REALISTIC_OUT = HERE / "realistic" / "traces"

MS = 1_000_000  # nanoseconds
SEC = 1000 * MS
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
BASE = int(datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()) * SEC  # Monday 2026-11-02 00:00 UTC


def at(day: int, hms: str) -> int:
    """Unix nanoseconds of ``HH:MM[:SS]`` UTC on ``day`` days after the base date."""
    parts = [int(x) for x in hms.split(":")] + [0]
    return BASE + day * DAY + parts[0] * HOUR + parts[1] * MIN + parts[2] * SEC


# ---------------------------------------------------------------------------------------------------------
# Deployment facts (ref §2.1, §2.3–§2.6, §3, §4.1, §6)
# ---------------------------------------------------------------------------------------------------------

LMS_HOST = "courses.xpro.mit.edu"
CMS_HOST = "studio.xpro.mit.edu"
XPRO_HOST = "xpro.mit.edu"
NOTES_HOST = "xpro-notes.xpro.mit.edu"
FORUM_URL = "http://cs-comments-service:4567"
MYSQL_HOST = "xpro-production-edxapp-mariadb.c8tqkwhm3xzy.us-east-1.rds.amazonaws.com"
PG_HOST = "xpro-db-applications-production.c8tqkwhm3xzy.us-east-1.rds.amazonaws.com"
LEARN_PG_HOST = "mitlearn-db-production.c8tqkwhm3xzy.us-east-1.rds.amazonaws.com"
MONGO_HOSTS = tuple(f"xpro-production-shard-00-0{i}.r3kfm.mongodb.net" for i in range(3))
EDX_REDIS = "xpro-production-edxapp-redis.qf3ktn.ng.0001.use1.cache.amazonaws.com"
XPRO_REDIS = "redis-14021.c1.us-east-1-2.ec2.cloud.redislabs.com"
LEARN_REDIS = "mitlearn-production-redis.qf3ktn.ng.0001.use1.cache.amazonaws.com"
OPENSEARCH = "vpc-xpro-production-opensearch-4hq2m7xw.us-east-1.es.amazonaws.com"
S3_ENDPOINT = "s3.amazonaws.com"

COURSES = ("course-v1:xPRO+SysEngx1+R4", "course-v1:xPRO+LASERx1+R2", "course-v1:xPRO+SysEngxNAV+R10")

BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 "
    "Edg/130.0.2849.68",
)
REQUESTS_UA = "python-requests/2.32.3"
SOCIAL_AUTH_UA = "social-auth-4.5.4"

# Django route strings as ResolverMatch.route gives them (ref §1.1, §2.3, §2.4).
_CID = r"(?P<course_id>[^/+]+(/|\+)[^/+]+(/|\+)[^/?]+)"
_CK = r"(?P<course_key_string>[^/+]+(/|\+)[^/+]+(/|\+)[^/?]+)"
_UK = r"(?P<usage_key_string>(?:i4x://?[^/]+/[^/]+/[^/]+/[^@]+(?:@[^/]+)?)|(?:[^/]+))"
_UID = r"(?P<usage_id>(?:i4x://?[^/]+/[^/]+/[^/]+/[^@]+(?:@[^/]+)?)|(?:[^/]+))"
R_LMS_XBLOCK = f"^xblock/{_UK}$"
R_LMS_HANDLER = f"^courses/{_CID}/xblock/{_UID}/handler/(?P<handler>[^/]*)(?:/(?P<suffix>.*))?$"
R_LMS_EDXNOTES = f"^courses/{_CID}/edxnotes/$"
R_LMS_THREADS = "api/discussion/v1/threads/"
R_LMS_REGISTRATION = "^user_api/v1/account/registration/$"
R_LMS_ENROLLMENT = "api/enrollment/v1/enrollment$"
R_LMS_COURSES = "api/courses/v1/courses/$"
R_LMS_GRADES = f"api/grades/v1/courses/{_CID}/$"
R_LMS_OAUTH_AUTHORIZE = "oauth2/authorize/?$"
R_LMS_OAUTH_TOKEN = "oauth2/access_token/?$"
R_LMS_AUTH_LOGIN = "auth/login/<str:backend>/"
R_LMS_AUTH_COMPLETE = "auth/complete/<str:backend>/"
R_LMS_DASHBOARD = "^dashboard/?$"
R_CMS_XBLOCK = f"^xblock/{_UK}?$"
R_CMS_ASSETS = f"^assets/{_CK}/(?P<asset_key_string>(?:/?c4x(:/)?/[^/]+/[^/]+/[^/]+/[^/]+)|(?:[^/]+))?$"
R_CMS_EXPORT = f"^export/{_CK}$"
R_CMS_EXPORT_STATUS = f"^export_status/{_CK}$"
R_NOTES_ANNOTATIONS = "^api/v1/annotations/$"
R_XPRO_REGISTER = "api/register/details/"
R_XPRO_ORDER_FULFILLMENT = "api/order_fulfillment/"
R_XPRO_USERS_ME = "api/users/me"
R_XPRO_OAUTH_AUTHORIZE = "oauth2/authorize/"
R_XPRO_OAUTH_TOKEN = "oauth2/token/"
R_XPRO_PRIVATE_COMPLETE = "login/_private/complete"
R_XPRO_PROGRAMS = "api/programs/$"
R_XPRO_COURSES = "api/courses/$"

LMS_QUEUE = "edx.lms.core.default"
CMS_QUEUE = "edx.cms.core.default"
XPRO_QUEUE = "celery"

# ---------------------------------------------------------------------------------------------------------
# Processes and instrumentation scopes
# ---------------------------------------------------------------------------------------------------------

SCHEMA_OLD = "https://opentelemetry.io/schemas/1.11.0"
SCHEMA_NEW = "https://opentelemetry.io/schemas/1.21.0"

# library key -> (instrumentation scope name, version or None for "the process's contrib version")
LIBRARIES: dict[str, tuple[str, str | None]] = {
    "django": ("opentelemetry.instrumentation.django", None),
    "celery": ("opentelemetry.instrumentation.celery", None),
    "mysqlclient": ("opentelemetry.instrumentation.mysqlclient", None),
    "psycopg2": ("opentelemetry.instrumentation.psycopg2", None),
    "psycopg": ("opentelemetry.instrumentation.psycopg", None),
    "pymongo": ("opentelemetry.instrumentation.pymongo", None),
    "redis": ("opentelemetry.instrumentation.redis", None),
    "requests": ("opentelemetry.instrumentation.requests", None),
    "botocore": ("opentelemetry.instrumentation.botocore", None),
    "es-contrib": ("opentelemetry.instrumentation.elasticsearch", "0.48b0"),
    "es-native": ("elasticsearch-api", ""),
    "edx-monitoring": ("edx_django_utils.monitoring.internal.backends", "7.4.0"),
    "rack": ("OpenTelemetry::Instrumentation::Rack", "0.26.0"),
    "ruby-mongo": ("OpenTelemetry::Instrumentation::Mongo", "0.23.0"),
    "faraday": ("OpenTelemetry::Instrumentation::Faraday", "0.26.0"),
}

EDX_IDEAL_LIBS = frozenset(
    {"django", "celery", "mysqlclient", "pymongo", "redis", "requests", "botocore", "es-contrib", "es-native",
     "edx-monitoring"})
EDX_REAL_LIBS = frozenset({"django", "celery", "mysqlclient", "edx-monitoring"})  # ref §0.7 (lehrer manifest)
XPRO_LIBS = frozenset({"django", "celery", "psycopg2", "redis", "requests"})  # mitol-django-observability
LEARN_LIBS = frozenset({"django", "celery", "psycopg", "redis", "requests"})
NOTES_IDEAL_LIBS = frozenset({"django", "mysqlclient", "es-contrib"})
FORUM_IDEAL_LIBS = frozenset({"rack", "ruby-mongo", "faraday"})


@dataclass(frozen=True)
class Proc:
    """One instrumented process: its resource and the instrumentation libraries it has."""

    service: str
    namespace: str
    version: str
    pod: str
    libs: frozenset[str]
    contrib: str = "0.57b0"
    language: str = "python"
    sdk_version: str = "1.36.0"
    new_semconv: bool = False
    celery_links: bool = False  # CeleryInstrumentor().instrument(use_span_links=True)
    redis_host: str = EDX_REDIS
    redis_port: int = 6379
    redis_db: int = 1
    result_backend: bool = False  # Redis result backend writes inside CONSUMER spans

    def has(self, lib: str) -> bool:
        return lib in self.libs

    def resource(self) -> Resource:
        env_key = "deployment.environment.name" if self.new_semconv else "deployment.environment"
        return Resource(
            {
                "service.name": self.service,
                "service.namespace": self.namespace,
                "service.version": self.version,
                env_key: "production",
                "k8s.namespace.name": self.namespace if self.namespace != "openedx" else "xpro-production",
                "k8s.pod.name": self.pod,
                "telemetry.sdk.language": self.language,
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.version": self.sdk_version,
            }
        )


@dataclass(frozen=True)
class Procs:
    """Every process that appears in the examples, for one mode."""

    lms: Proc
    cms: Proc
    lms_worker: Proc
    cms_worker: Proc
    lms_beat: Proc
    notes: Proc
    forum: Proc
    xpro_web: Proc
    xpro_worker: Proc
    xpro_beat: Proc
    learn_worker: Proc
    learn_content_worker: Proc
    learn_beat: Proc


def make_procs(idealized: bool) -> Procs:
    """The processes of the idealized or the realistic-MIT mode (ref §0.7, §2.1, §3.1, §4.1)."""
    edx = EDX_IDEAL_LIBS if idealized else EDX_REAL_LIBS
    ver = "ulmo.1-20261027"

    def edxapp(suffix: str, pod: str) -> Proc:
        return Proc(f"xpro-production-edxapp-{suffix}", "openedx", ver, pod, edx)

    def xpro(pod: str, worker: bool = False) -> Proc:
        return Proc("mitxpro", "mitxpro", "0.197.2", pod, XPRO_LIBS, contrib="0.60b0", sdk_version="1.39.1",
                    redis_host=XPRO_REDIS, redis_port=14021, redis_db=0, result_backend=worker)

    def learn(pod: str, worker: bool = False) -> Proc:
        return Proc("learn-webapp", "learn", "0.46.8", pod, LEARN_LIBS, contrib="0.60b0", sdk_version="1.39.1",
                    new_semconv=True, celery_links=idealized, redis_host=LEARN_REDIS, redis_db=0,
                    result_backend=worker)

    return Procs(
        lms=edxapp("lms", "xpro-production-edxapp-lms-6f7c9d8b4-k2x9q"),
        cms=edxapp("cms", "xpro-production-edxapp-cms-5d8b7c6f9-p7m3z"),
        lms_worker=edxapp("lms-celery", "xpro-production-edxapp-lms-celery-7b9d6c5f8-w4n2h"),
        cms_worker=edxapp("cms-celery", "xpro-production-edxapp-cms-celery-6c8f7d9b5-t5r8k"),
        lms_beat=edxapp("lms-beat", "xpro-production-edxapp-lms-beat-0"),
        notes=Proc("edx-notes-api", "openedx", "2.4.0", "edx-notes-api-5c7d9b8f6-m4n6p",
                   NOTES_IDEAL_LIBS if idealized else frozenset(), new_semconv=True),
        forum=Proc("cs-comments-service", "openedx", "d0a8fd73", "cs-comments-service-7f8d6c9b5-r2t4y",
                   FORUM_IDEAL_LIBS if idealized else frozenset(), language="ruby", sdk_version="1.5.0"),
        xpro_web=xpro("mitxpro-web-7d9f8c6b5-h3k2m"),
        xpro_worker=xpro("mitxpro-celery-5f7d8c9b6-q8w4e", worker=True),
        xpro_beat=xpro("mitxpro-beat-6b8c7d5f9-z1x2c"),
        learn_worker=learn("learn-webapp-celery-default-8d6f7c5b9-c3v5b", worker=True),
        learn_content_worker=learn("learn-webapp-celery-edx-content-7c5d8f6b9-n8m1k", worker=True),
        learn_beat=learn("learn-webapp-celery-beat-5b7c9d6f8-x7y9u"),
    )


# ---------------------------------------------------------------------------------------------------------
# The SDK side: seeded ids, one TracerProvider per process, an in-memory exporter
# ---------------------------------------------------------------------------------------------------------


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from a ``random.Random`` that is re-seeded per scenario."""

    def __init__(self) -> None:
        self._rng = random.Random(0)

    def reseed(self, label: str) -> None:
        self._rng = random.Random(f"ids:{label}")

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


class World:
    """The TracerProviders of every process, sharing one id generator and one exporter."""

    def __init__(self) -> None:
        self.ids = SeededIdGenerator()
        self.exporter = InMemorySpanExporter()
        self._providers: dict[Proc, TracerProvider] = {}
        self._tracers: dict[tuple[Proc, str], Tracer] = {}
        self.proc_of: dict[Resource, Proc] = {}

    def tracer(self, proc: Proc, lib: str) -> Tracer:
        key = (proc, lib)
        if key not in self._tracers:
            self._tracers[key] = self._provider(proc).get_tracer(*_scope(proc, lib))
        return self._tracers[key]

    def _provider(self, proc: Proc) -> TracerProvider:
        if proc not in self._providers:
            # Every limit explicit, so no OTEL_*_LIMIT variable can change the output.
            limits = SpanLimits(max_attributes=128, max_span_attributes=128, max_events=128, max_links=128,
                                max_event_attributes=128, max_link_attributes=128,
                                max_attribute_length=SpanLimits.UNSET, max_span_attribute_length=SpanLimits.UNSET)
            provider = TracerProvider(sampler=ALWAYS_ON, resource=proc.resource(), id_generator=self.ids,
                                      span_limits=limits, shutdown_on_exit=False)
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self._providers[proc] = provider
            self.proc_of[provider.resource] = proc
        return self._providers[proc]

    def drain(self) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        self.exporter.clear()
        return spans


def _scope(proc: Proc, lib: str) -> tuple[str, str | None, str | None]:
    name, version = LIBRARIES[lib]
    if version == "":
        return name, None, None
    if version is None:  # a python-contrib instrumentation
        schema = SCHEMA_NEW if proc.new_semconv and lib in {"django", "requests", "psycopg", "mysqlclient"} \
            else SCHEMA_OLD
        return name, proc.contrib, schema
    return name, version, None


# ---------------------------------------------------------------------------------------------------------
# Building spans with a simulated clock
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Node:
    """A span being built, or a placeholder for a span the process's instrumentation would not emit.

    ``local`` is the parent for in-process children; ``remote`` is what a callee receives through headers or
    message properties (``None`` when nothing is propagated).  ``cursor`` is the simulated time inside it.
    """

    span: Span | None
    proc: Proc | None
    start: int
    cursor: int
    local: SpanContext | None
    remote: SpanContext | None
    sync: bool
    end: int = 0
    msg_id: str | None = None  # the Celery task id of a PRODUCER


@dataclass(frozen=True)
class Failure:
    """How a span failed: its status description and, optionally, the recorded exception."""

    description: str | None = None
    exc_type: str | None = None
    exc_message: str = ""
    frame: str = ('  File "/opt/venv/lib/python3.11/site-packages/celery/app/trace.py", line 453, in trace_task\n'
                  "    R = retval = fun(*args, **kwargs)\n")


Attrs = dict[str, Any]
Range = tuple[float, float]


class Sim:
    """Creates spans through the SDK with explicit parents, kinds and timestamps."""

    def __init__(self, world: World, procs: Procs, label: str, idealized: bool) -> None:
        self.world = world
        self.p = procs
        self.idealized = idealized
        self.rng = random.Random(f"jitter:{label}")
        world.ids.reseed(f"{'idealized' if idealized else 'realistic'}:{label}")  # no id shared by the two sets

    # -- randomness ------------------------------------------------------------------------------------
    def ms(self, r: Range) -> int:
        return int(round(self.rng.uniform(*r) * MS))

    def n(self, idealized: int, realistic: int) -> int:
        return idealized if self.idealized else realistic

    def hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.rng.randrange(len(seq))]

    # -- spans -----------------------------------------------------------------------------------------
    def open(self, parent: Node | None, proc: Proc, lib: str, name: str, kind: SpanKind, attrs: Attrs, *,
             at: int | None = None, gap: Range = (0.2, 1.5), links: Sequence[Node] = ()) -> Node:
        """Start a span (or a placeholder when ``proc`` lacks ``lib``) at ``at`` or after ``gap``."""
        if at is None:
            assert parent is not None, "a root span needs an explicit start time"
            start = parent.cursor + self.ms(gap)
        else:
            start = at
        extracted = kind in (SpanKind.SERVER, SpanKind.CONSUMER)
        parent_ctx = None if parent is None else (parent.remote if extracted else parent.local)
        if not proc.has(lib):
            return Node(None, proc, start, start, parent_ctx, None, at is None)
        context = Context()
        if parent_ctx is not None:
            context = set_span_in_context(NonRecordingSpan(SpanContext(
                parent_ctx.trace_id, parent_ctx.span_id, is_remote=extracted,
                trace_flags=TraceFlags(TraceFlags.SAMPLED))))
        link_objs = [Link(n.remote) for n in links if n.remote is not None]
        span = self.world.tracer(proc, lib).start_span(
            name, context=context, kind=kind, attributes=attrs, links=link_objs, start_time=start)
        ctx = span.get_span_context()
        return Node(span, proc, start, start, ctx, ctx, at is None)

    def close(self, node: Node, parent: Node | None, *, tail: Range = (0.05, 0.8), attrs: Attrs | None = None,
              failure: Failure | None = None) -> None:
        """End a span after its children plus ``tail``; a synchronous child moves its parent's clock."""
        end = node.cursor + self.ms(tail)
        if node.span is not None:
            if attrs:
                node.span.set_attributes(attrs)
            if failure is not None:
                if failure.exc_type:
                    node.span.add_event("exception", {
                        "exception.type": failure.exc_type,
                        "exception.message": failure.exc_message,
                        "exception.stacktrace": _stacktrace(failure),
                        "exception.escaped": "False",
                    }, timestamp=end - 30_000)
                node.span.set_status(Status(StatusCode.ERROR, failure.description))
            node.span.end(end_time=end)
        node.end = end
        if parent is not None and node.sync:
            parent.cursor = max(parent.cursor, end)

    @contextmanager
    def span(self, parent: Node | None, proc: Proc, lib: str, name: str, kind: SpanKind, attrs: Attrs, *,
             at: int | None = None, gap: Range = (0.2, 1.5), tail: Range = (0.05, 0.8), end_attrs: Attrs | None = None,
             failure: Failure | None = None, links: Sequence[Node] = ()) -> Iterator[Node]:
        node = self.open(parent, proc, lib, name, kind, attrs, at=at, gap=gap, links=links)
        yield node
        self.close(node, parent, tail=tail, attrs=end_attrs, failure=failure)

    def leaf(self, parent: Node, proc: Proc, lib: str, name: str, kind: SpanKind, attrs: Attrs, dur: Range, *,
             end_attrs: Attrs | None = None, failure: Failure | None = None, gap: Range = (0.1, 0.8)) -> Node:
        node = self.open(parent, proc, lib, name, kind, attrs, gap=gap)
        node.cursor += self.ms(dur)
        self.close(node, parent, tail=(0, 0), attrs=end_attrs, failure=failure)
        return node

    def work(self, node: Node, r: Range) -> None:
        """Time a span spends in its own code between children."""
        node.cursor += self.ms(r)


def _stacktrace(failure: Failure) -> str:
    return f"Traceback (most recent call last):\n{failure.frame}{failure.exc_type}: {failure.exc_message}\n"


DJANGO_FRAME = ('  File "/openedx/venv/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, '
                "in _get_response\n    response = wrapped_callback(request, *callback_args, **callback_kwargs)\n")
DBAPI_FRAME = ('  File "/openedx/venv/lib/python3.11/site-packages/MySQLdb/cursors.py", line 179, in execute\n'
               "    res = self._query(mogrified_query)\n")


# ---------------------------------------------------------------------------------------------------------
# Instrumentation shapes (ref §1)
# ---------------------------------------------------------------------------------------------------------


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query


@contextmanager
def django(sim: Sim, parent: Node | None, proc: Proc, method: str, route: str, target: str, status: int, *,
           host: str, ua: str, at: int | None = None, custom: Attrs | None = None,
           failure: Failure | None = None, gap: Range = (0.3, 2.5)) -> Iterator[Node]:
    """A Django SERVER span named ``"{METHOD} {route}"`` (ref §1.1); new names if the process opted in."""
    peer_ip = f"10.21.{sim.rng.randrange(0, 64)}.{sim.rng.randrange(2, 250)}"
    peer_port = sim.rng.randrange(32768, 60999)
    if proc.new_semconv:
        path, query = _split_target(target)
        attrs: Attrs = {"http.request.method": method, "url.scheme": "http", "server.address": host,
                        "server.port": 8000, "url.path": path}
        if query:
            attrs["url.query"] = query
        attrs.update({"client.address": peer_ip, "client.port": peer_port, "user_agent.original": ua,
                      "network.protocol.version": "1.1", "http.route": route})
        end: Attrs = {"http.response.status_code": status}
        if status >= 500:
            end["error.type"] = str(status)
    else:
        attrs = {"http.method": method, "http.server_name": "0.0.0.0", "http.scheme": "http",
                 "net.host.port": 8000, "http.host": host, "http.target": target, "net.peer.ip": peer_ip,
                 "net.peer.port": peer_port, "http.user_agent": ua, "http.flavor": "1.1", "http.route": route}
        end = {"http.status_code": status}
    if custom:
        attrs.update(custom)
    if status >= 500 and failure is None:
        failure = Failure()
    with sim.span(parent, proc, "django", f"{method} {route}", SpanKind.SERVER, attrs, at=at, gap=gap,
                  tail=(0.5, 4.0), end_attrs=end, failure=failure) as node:
        sim.work(node, (1.5, 9.0))  # middleware, session, auth
        yield node


@contextmanager
def sinatra(sim: Sim, parent: Node, proc: Proc, method: str, route: str, target: str, status: int) -> Iterator[Node]:
    """A Rack SERVER span renamed by Sinatra to ``"{METHOD} {route}"`` (ref §1.10)."""
    attrs = {"http.method": method, "http.host": "cs-comments-service:4567", "http.scheme": "http",
             "http.target": target, "http.user_agent": REQUESTS_UA, "http.route": route}
    with sim.span(parent, proc, "rack", f"{method} {route}", SpanKind.SERVER, attrs, gap=(0.4, 1.5),
                  end_attrs={"http.status_code": status}) as node:
        yield node


@contextmanager
def http_client(sim: Sim, parent: Node, proc: Proc, method: str, url: str, status: int, *,
                ua: str = REQUESTS_UA, failure: Failure | None = None, gap: Range = (0.2, 1.5),
                response_headers: Attrs | None = None) -> Iterator[Node]:
    """A requests CLIENT span named by the method (ref §1.3); one span covers a whole redirect chain."""
    if proc.new_semconv:
        host, port = _host_port(url)
        attrs: Attrs = {"http.request.method": method, "url.full": url, "server.address": host, "server.port": port,
                        "user_agent.original": ua}
        end: Attrs = {"http.response.status_code": status, "network.protocol.version": "1.1"}
        if status >= 400:
            end["error.type"] = str(status)
    else:
        attrs = {"http.method": method, "http.url": url, "user_agent.original": ua}
        end = {"http.status_code": status}
    if response_headers:
        end.update(response_headers)
    if status >= 400 and failure is None:
        failure = Failure()
    with sim.span(parent, proc, "requests", method, SpanKind.CLIENT, attrs, gap=gap, tail=(0.2, 1.2),
                  end_attrs=end, failure=failure) as node:
        sim.work(node, (1.0, 4.0))  # connection + TLS when the callee does not show up
        yield node


def http_leaf(sim: Sim, parent: Node, proc: Proc, method: str, url: str, status: int, dur: Range, **kw: Any) -> Node:
    """A CLIENT call to a host with no instrumentation (a virtual element for tracegen)."""
    with http_client(sim, parent, proc, method, url, status, **kw) as node:
        sim.work(node, dur)
    return node


def _host_port(url: str) -> tuple[str, int]:
    scheme, _, rest = url.partition("://")
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.partition(":")
    return host, int(port) if port else (443 if scheme == "https" else 80)


def sql(sim: Sim, parent: Node, proc: Proc, statement: str, *, db: str | None = None, dur: Range = (0.3, 2.5),
        failure: Failure | None = None) -> Node:
    """A dbapi CLIENT span named by the first SQL keyword (ref §1.6); the database follows the service."""
    if proc.service == "mitxpro":
        lib, system, host, port, user, default = "psycopg2", "postgresql", PG_HOST, 5432, "mitxpro", "xpro"
    elif proc.service == "learn-webapp":
        lib, system, host, port, user, default = "psycopg", "postgresql", LEARN_PG_HOST, 5432, "mitlearn", "mitlearn"
    elif proc.service == "edx-notes-api":
        lib, system, host, port, user, default = "mysqlclient", "mysql", MYSQL_HOST, 3306, "notes001", "edx_notes_api"
    else:
        lib, system, host, port, user, default = "mysqlclient", "mysql", MYSQL_HOST, 3306, "edxapp001", "edxapp"
    db = db or default
    if proc.new_semconv:
        attrs: Attrs = {"db.system.name": system, "db.namespace": db, "db.query.text": statement,
                        "server.address": host, "server.port": port}
    else:
        attrs = {"db.system": system, "db.name": db, "db.statement": statement, "db.user": user,
                 "net.peer.name": host, "net.peer.port": port}
    return sim.leaf(parent, proc, lib, statement.split(None, 1)[0], SpanKind.CLIENT, attrs, dur, failure=failure)


def sql_loop(sim: Sim, parent: Node, proc: Proc, statement: str, count: int, **kw: Any) -> None:
    for _ in range(count):
        sql(sim, parent, proc, statement, **kw)


def mongo(sim: Sim, parent: Node, proc: Proc, collection: str | None, command: str, *, db: str = "edxapp",
          dur: Range = (0.4, 3.0)) -> Node:
    """A PyMongo CLIENT span ``"{db}.{command}"`` (ref §1.5); database commands have no collection."""
    attrs: Attrs = {"db.system": "mongodb", "db.name": db, "db.statement": command}
    if collection:
        attrs["db.mongodb.collection"] = collection
    attrs.update({"net.peer.name": sim.pick(MONGO_HOSTS), "net.peer.port": 27017})
    return sim.leaf(parent, proc, "pymongo", f"{db}.{command}", SpanKind.CLIENT, attrs, dur)


def ruby_mongo(sim: Sim, parent: Node, proc: Proc, collection: str, operation: str, statement: str) -> Node:
    """A Ruby Mongo CLIENT span ``"{collection}.{command}"`` on the legacy forum database (ref §1.10)."""
    attrs = {"db.system": "mongodb", "db.name": "forum", "db.operation": operation,
             "db.mongodb.collection": collection, "db.statement": statement,
             "net.peer.name": sim.pick(MONGO_HOSTS), "net.peer.port": 27017}
    return sim.leaf(parent, proc, "ruby-mongo", f"{collection}.{operation}", SpanKind.CLIENT, attrs, (0.6, 4.0))


def redis(sim: Sim, parent: Node, proc: Proc, name: str, statement: str, *, pipeline: int = 0) -> Node:
    """A redis CLIENT span named by the command, or the joined commands of a pipeline (ref §1.7)."""
    attrs: Attrs = {"db.system": "redis", "db.statement": statement}
    attrs["db.redis.pipeline_length" if pipeline else "db.redis.args_length"] = pipeline or \
        len(statement.split())
    attrs.update({"db.redis.database_index": proc.redis_db, "net.peer.name": proc.redis_host,
                  "net.peer.port": proc.redis_port, "net.transport": "ip_tcp"})
    return sim.leaf(parent, proc, "redis", name, SpanKind.CLIENT, attrs, (0.2, 1.2))


def s3(sim: Sim, parent: Node, proc: Proc, operation: str, *, dur: Range = (20, 90), status: int = 200,
       retries: int = 0, failure: Failure | None = None) -> Node:
    """A botocore CLIENT span ``S3.<Operation>``; no bucket attribute in Python (ref §1.8)."""
    attrs = {"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": operation, "cloud.region": "us-east-1",
             "server.address": S3_ENDPOINT, "server.port": 443}
    end = {"aws.request_id": sim.hex(16).upper(), "retry_attempts": retries, "http.status_code": status}
    return sim.leaf(parent, proc, "botocore", f"S3.{operation}", SpanKind.CLIENT, attrs, dur, end_attrs=end,
                    failure=failure)


def es_contrib(sim: Sim, parent: Node, proc: Proc, method: str, url: str, name_url: str, *,
               took: int | None = None, dur: Range = (8, 60)) -> Node:
    """The old contrib Elasticsearch CLIENT span ``Elasticsearch/<url>`` (ref §1.9)."""
    attrs: Attrs = {"db.system": "elasticsearch", "elasticsearch.url": url, "elasticsearch.method": method,
                    "elasticsearch.params": "{}"}
    end = {"elasticsearch.took": took} if took is not None else None
    return sim.leaf(parent, proc, "es-contrib", f"Elasticsearch/{name_url}", SpanKind.CLIENT, attrs, dur,
                    end_attrs=end)


def es_native(sim: Sim, parent: Node, proc: Proc, endpoint: str, method: str, index: str, path: str,
              dur: Range) -> Node:
    """An elasticsearch-py 8.13+ native span: INTERNAL, named by the endpoint id, with ``db.system``
    (ref §1.9)."""
    attrs = {"http.request.method": method, "db.system": "elasticsearch", "db.operation": endpoint,
             "db.system.name": "elasticsearch", "db.operation.name": endpoint,
             "db.elasticsearch.path_parts.index": index, "url.full": f"https://{OPENSEARCH}:443/{index}{path}",
             "server.address": OPENSEARCH, "server.port": 443}
    return sim.leaf(parent, proc, "es-native", endpoint, SpanKind.INTERNAL, attrs, dur)


def es_native_bulk(sim: Sim, parent: Node, proc: Proc, index: str, batches: int) -> None:
    """``helpers.bulk`` wrapping one native INTERNAL ``bulk`` span per chunk (ref §1.9)."""
    with sim.span(parent, proc, "es-native", "helpers.bulk", SpanKind.INTERNAL, {}) as helper:
        for _ in range(batches):
            es_native(sim, helper, proc, "bulk", "PUT", index, "/_bulk", (15, 80))


def faraday(sim: Sim, parent: Node, proc: Proc, method: str, url: str, status: int) -> Node:
    """A Faraday CLIENT span (the Ruby ES client of cs_comments_service, ref §1.10)."""
    attrs = {"http.method": method, "http.url": url, "net.peer.name": OPENSEARCH}
    return sim.leaf(parent, proc, "faraday", f"HTTP {method}", SpanKind.CLIENT, attrs, (6, 30),
                    end_attrs={"http.status_code": status})


@contextmanager
def function_trace(sim: Sim, parent: Node, proc: Proc, name: str) -> Iterator[Node]:
    """An ``edx_django_utils`` ``function_trace`` INTERNAL span (ref §1.1)."""
    with sim.span(parent, proc, "edx-monitoring", name, SpanKind.INTERNAL, {}) as node:
        yield node


def publish(sim: Sim, parent: Node, proc: Proc, task: str, queue: str, *, declare: bool = True) -> Node:
    """A Celery PRODUCER span ``apply_async/<task>`` (+ the broker LPUSH when redis is instrumented)."""
    attrs: Attrs = {"celery.action": "apply_async", "messaging.message.id": sim.uuid(), "celery.task_name": task,
                    "messaging.destination": queue}
    if declare:
        attrs["messaging.destination_kind"] = "queue"
    with sim.span(parent, proc, "celery", f"apply_async/{task}", SpanKind.PRODUCER, attrs, gap=(0.2, 1.0),
                  tail=(0.1, 0.4)) as node:
        node.msg_id = attrs["messaging.message.id"]
        sim.work(node, (0.3, 1.2))
        redis(sim, node, proc, "LPUSH", "LPUSH ? ?")
    return node


def beat(sim: Sim, proc: Proc, task: str, queue: str, when: int) -> Node:
    """A celery beat send: a root PRODUCER span exactly at the schedule tick (ref §1.2 "Beat/cron tasks")."""
    attrs: Attrs = {"celery.action": "apply_async", "messaging.message.id": sim.uuid(), "celery.task_name": task,
                    "messaging.destination": queue}
    with sim.span(None, proc, "celery", f"apply_async/{task}", SpanKind.PRODUCER, attrs, at=when,
                  tail=(0.1, 0.4)) as node:
        node.msg_id = attrs["messaging.message.id"]
        sim.work(node, (0.4, 1.5))
        redis(sim, node, proc, "LPUSH", "LPUSH ? ?")
    return node


@contextmanager
def run(sim: Sim, producer: Node | None, proc: Proc, task: str, queue: str, when: int, *,
        state: str = "SUCCESS", failure: Failure | None = None, retries: int = 0, eta: str | None = None,
        retry_reason: str | None = None) -> Iterator[Node]:
    """A Celery CONSUMER span ``run/<task>``: the producer's child, or a new trace linked to it
    (``use_span_links=True``), or a root when there is no producer span (ref §1.2).  FAILURE records the
    exception with status ERROR; RETRY only adds ``celery.retry.reason``."""
    msg_id = producer.msg_id if producer is not None and producer.msg_id else sim.uuid()
    delivery = f"{{'exchange': '', 'routing_key': '{queue}', 'priority': 0, 'redelivered': False}}"
    attrs: Attrs = {"celery.action": "run", "messaging.conversation_id": msg_id, "celery.delivery_info": delivery,
                    "messaging.destination": queue, "celery.hostname": _celery_hostname(proc, queue),
                    "messaging.message.id": msg_id}
    if retries:
        attrs["celery.retries"] = retries
    if eta:
        attrs["celery.eta"] = eta
    attrs["celery.task_name"] = task
    linked = producer is not None and proc.celery_links
    parent = None if linked else producer
    links = [producer] if linked and producer is not None else []
    end: Attrs = {"celery.state": state}
    if retry_reason:
        end["celery.retry.reason"] = retry_reason
    with sim.span(parent, proc, "celery", f"run/{task}", SpanKind.CONSUMER, attrs, at=when, links=links,
                  tail=(0.3, 1.5), end_attrs=end, failure=failure) as node:
        sim.work(node, (0.5, 3.0))
        yield node
        if proc.result_backend and proc.has("redis"):
            redis(sim, node, proc, "SETEX PUBLISH", "SETEX ? ? ?\nPUBLISH ? ?", pipeline=2)


def _celery_hostname(proc: Proc, queue: str) -> str:
    """edxapp workers run with ``-n edx.lms.core.default.%h`` (ref §2.1); xPRO and MIT Learn keep Celery's default."""
    return f"celery@{queue}.{proc.pod}" if queue.startswith("edx.") else f"celery@{proc.pod}"


def after(node: Node, sim: Sim, delay: Range) -> int:
    """When an async consumer starts: ``delay`` milliseconds after its producer ended."""
    return node.end + sim.ms(delay)


# ---------------------------------------------------------------------------------------------------------
# SQL text (Django ORM style; %s placeholders as dbapi records them)
# ---------------------------------------------------------------------------------------------------------


def my_select(table: str, cols: str, where: str, limit: str = "") -> str:
    c = ", ".join(f"`{table}`.`{x}`" for x in cols.split(","))
    return f"SELECT {c} FROM `{table}` WHERE {where}{limit}"


def pg_select(table: str, cols: str, where: str, suffix: str = "") -> str:
    c = ", ".join(f'"{table}"."{x}"' for x in cols.split(","))
    return f'SELECT {c} FROM "{table}" WHERE {where}{suffix}'


SQL_ENROLLMENT = my_select("student_courseenrollment", "id,user_id,course_id,created,is_active,mode",
                           "(`student_courseenrollment`.`course_id` = %s AND "
                           "`student_courseenrollment`.`user_id` = %s)",
                           " LIMIT 21")
SQL_OVERVIEW = my_select("course_overviews_courseoverview", "id,display_name,start,end,has_any_active_web_certificate",
                         "`course_overviews_courseoverview`.`id` = %s", " LIMIT 21")
SQL_STUDENTMODULE = my_select("courseware_studentmodule", "id,module_type,module_id,student_id,state,grade",
                              "(`courseware_studentmodule`.`course_id` = %s AND `courseware_studentmodule`.`module_id` "
                              "IN (%s, %s, %s) AND `courseware_studentmodule`.`student_id` = %s)")
SQL_COMPLETION = my_select("completion_blockcompletion", "id,user_id,context_key,block_key,completion",
                           "(`completion_blockcompletion`.`context_key` = %s AND "
                           "`completion_blockcompletion`.`user_id` = %s)")
SQL_ACCESSROLE = my_select("student_courseaccessrole", "id,user_id,org,course_id,role",
                           "`student_courseaccessrole`.`user_id` = %s")
SQL_SESSION = my_select("django_session", "session_key,session_data,expire_date",
                        "(`django_session`.`expire_date` > %s AND `django_session`.`session_key` = %s)", " LIMIT 21")
SQL_USER = my_select("auth_user", "id,password,last_login,is_superuser,username,email,is_active",
                     "`auth_user`.`id` = %s", " LIMIT 21")
PG_SESSION = pg_select("django_session", "session_key,session_data,expire_date",
                       '("django_session"."expire_date" > %s AND "django_session"."session_key" = %s)', " LIMIT 21")
PG_USER = pg_select("users_user", "id,password,last_login,username,email,name,is_active",
                    '"users_user"."id" = %s', " LIMIT 21")
PG_ACCESS_TOKEN = pg_select("oauth2_provider_accesstoken", "id,user_id,token,application_id,expires,scope",
                            '"oauth2_provider_accesstoken"."token" = %s', " LIMIT 21")


# ---------------------------------------------------------------------------------------------------------
# Shared cross-service calls
# ---------------------------------------------------------------------------------------------------------


def lms_enroll(sim: Sim, parent: Node, course: str, *, status: int = 200, ua: str = REQUESTS_UA) -> None:
    """xPRO → LMS ``POST /api/enrollment/v1/enrollment`` (edx-api-client; ref §5 4a steps 4–6)."""
    p = sim.p
    url = f"https://{LMS_HOST}/api/enrollment/v1/enrollment"
    with http_client(sim, parent, p.xpro_web if parent.proc == p.xpro_web else p.xpro_worker, "POST", url,
                     status) as call:
        failure = Failure(None, "django.db.utils.OperationalError",
                          "(2013, 'Lost connection to MySQL server during query')", DJANGO_FRAME) \
            if status >= 500 else None
        with django(sim, call, p.lms, "POST", R_LMS_ENROLLMENT, "/api/enrollment/v1/enrollment", status,
                    host=LMS_HOST, ua=ua, custom={"course_id": course}, failure=failure) as srv:
            sql(sim, srv, p.lms, SQL_LMS_TOKEN)
            if status == 400:  # the stored token was rejected
                return
            sql(sim, srv, p.lms, my_select("course_modes_coursemode", "id,course_id,mode_slug,min_price",
                                           "`course_modes_coursemode`.`course_id` = %s"))
            if status >= 500:
                sql(sim, srv, p.lms, SQL_ENROLLMENT, dur=(9000, 11000),
                    failure=Failure("OperationalError: (2013, 'Lost connection to MySQL server during query')",
                                    "MySQLdb.OperationalError",
                                    "(2013, 'Lost connection to MySQL server during query')", DBAPI_FRAME))
                return
            sql(sim, srv, p.lms, SQL_ENROLLMENT)
            sql(sim, srv, p.lms, "INSERT INTO `student_courseenrollment` (`user_id`, `course_id`, `created`, "
                                 "`is_active`, `mode`) VALUES (%s, %s, %s, %s, %s)")
            sql(sim, srv, p.lms, "INSERT INTO `student_courseenrollment_history` (`id`, `created`, `is_active`, "
                                 "`mode`, `history_date`, `history_type`, `user_id`, `course_id`) VALUES "
                                 "(%s, %s, %s, %s, %s, %s, %s, %s)")


SQL_LMS_TOKEN = my_select("oauth2_provider_accesstoken", "id,user_id,token,application_id,expires,scope",
                                "`oauth2_provider_accesstoken`.`token` = %s", " LIMIT 21")


def lms_social_auth_complete(sim: Sim, parent: Node | None, *, at: int | None = None, ua: str,
                             status: int = 302) -> None:
    """LMS ``GET auth/complete/ol-oauth2/``: the LMS social-auth client calls xPRO's token and userinfo
    endpoints (ref §0.1, §5 3a steps 14–16).  Without LMS requests instrumentation those are new traces."""
    p = sim.p
    code = sim.hex(30)
    target = f"/auth/complete/ol-oauth2/?redirect_state={sim.hex(32)}&code={code}&state={sim.hex(32)}"
    with django(sim, parent, p.lms, "GET", R_LMS_AUTH_COMPLETE, target, status, host=LMS_HOST, ua=ua, at=at) as srv:
        sql(sim, srv, p.lms, SQL_SESSION)
        with http_client(sim, srv, p.lms, "POST", f"https://{XPRO_HOST}/oauth2/token/", 200, ua=SOCIAL_AUTH_UA) as c:
            with django(sim, c, p.xpro_web, "POST", R_XPRO_OAUTH_TOKEN, "/oauth2/token/", 200, host=XPRO_HOST,
                        ua=SOCIAL_AUTH_UA) as x:
                sql(sim, x, p.xpro_web, pg_select("oauth2_provider_application", "id,client_id,name,client_type",
                                                  '"oauth2_provider_application"."client_id" = %s', " LIMIT 21"))
                sql(sim, x, p.xpro_web, pg_select("oauth2_provider_grant", "id,user_id,code,application_id,expires",
                                                  '"oauth2_provider_grant"."code" = %s', " LIMIT 21"))
                sql(sim, x, p.xpro_web, 'INSERT INTO "oauth2_provider_accesstoken" ("user_id", '
                                        '"source_refresh_token_id", '
                                        '"token", "id_token_id", "application_id", "expires", "scope", "created", '
                                        '"updated") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING '
                                        '"oauth2_provider_accesstoken"."id"')
                sql(sim, x, p.xpro_web, 'DELETE FROM "oauth2_provider_grant" WHERE '
                                        '"oauth2_provider_grant"."id" IN (%s)')
        users_me(sim, srv, p.lms, SOCIAL_AUTH_UA)
        sql(sim, srv, p.lms, my_select("social_auth_usersocialauth", "id,user_id,provider,uid,extra_data",
                                       "(`social_auth_usersocialauth`.`provider` = %s AND "
                                       "`social_auth_usersocialauth`.`uid` = %s)", " LIMIT 21"))
        sql(sim, srv, p.lms, "UPDATE `social_auth_usersocialauth` SET `extra_data` = %s, `modified` = %s "
                             "WHERE `social_auth_usersocialauth`.`id` = %s")
        sql(sim, srv, p.lms, "UPDATE `auth_user` SET `last_login` = %s WHERE `auth_user`.`id` = %s")


def users_me(sim: Sim, parent: Node, proc: Proc, ua: str) -> None:
    """A caller → xPRO ``GET api/users/me`` (the ol-oauth2 userinfo endpoint)."""
    p = sim.p
    with http_client(sim, parent, proc, "GET", f"https://{XPRO_HOST}/api/users/me", 200, ua=ua) as c:
        with django(sim, c, p.xpro_web, "GET", R_XPRO_USERS_ME, "/api/users/me", 200, host=XPRO_HOST, ua=ua) as x:
            sql(sim, x, p.xpro_web, PG_ACCESS_TOKEN)
            sql(sim, x, p.xpro_web, PG_USER)
            sql(sim, x, p.xpro_web, pg_select("users_legaladdress", "id,user_id,first_name,last_name,country",
                                              '"users_legaladdress"."user_id" = %s', " LIMIT 21"))


def lms_access_token(sim: Sim, parent: Node, proc: Proc, grant: str) -> None:
    """xPRO → LMS ``POST /oauth2/access_token`` (authorization_code or refresh_token grant)."""
    p = sim.p
    with http_client(sim, parent, proc, "POST", f"https://{LMS_HOST}/oauth2/access_token", 200) as c:
        with django(sim, c, p.lms, "POST", R_LMS_OAUTH_TOKEN, "/oauth2/access_token", 200, host=LMS_HOST,
                    ua=REQUESTS_UA, custom={"grant_type": grant}) as srv:
            sql(sim, srv, p.lms, my_select("oauth2_provider_application", "id,client_id,client_type,name",
                                           "`oauth2_provider_application`.`client_id` = %s", " LIMIT 21"))
            sql(sim, srv, p.lms, "INSERT INTO `oauth2_provider_accesstoken` (`user_id`, `token`, `application_id`, "
                                 "`expires`, `scope`, `created`, `updated`) VALUES (%s, %s, %s, %s, %s, %s, %s)")
            sql(sim, srv, p.lms, "INSERT INTO `oauth2_provider_refreshtoken` (`user_id`, `token`, `application_id`, "
                                 "`access_token_id`, `created`, `updated`, `revoked`) VALUES "
                                 "(%s, %s, %s, %s, %s, %s, %s)")


def lms_registration(sim: Sim, parent: Node, proc: Proc, status: int) -> None:
    """xPRO → LMS ``POST /user_api/v1/account/registration/`` (ref §3.3 ``create_edx_user``); the LMS
    validates the xPRO token against ``api/users/me`` (the ol-oauth2 backend)."""
    p = sim.p
    with http_client(sim, parent, proc, "POST", f"https://{LMS_HOST}/user_api/v1/account/registration/",
                     status) as c:
        with django(sim, c, p.lms, "POST", R_LMS_REGISTRATION, "/user_api/v1/account/registration/", status,
                    host=LMS_HOST, ua=REQUESTS_UA) as srv:
            sql(sim, srv, p.lms, my_select("auth_user", "id,username,email", "`auth_user`.`email` = %s", " LIMIT 21"))
            if status == 409:
                return
            users_me(sim, srv, p.lms, SOCIAL_AUTH_UA)
            for table, cols in (("auth_user", "`password`, `last_login`, `is_superuser`, `username`, `email`, "
                                               "`is_active`, `date_joined`"),
                                ("auth_userprofile", "`user_id`, `name`, `country`, `year_of_birth`, `meta`"),
                                ("student_registration", "`user_id`, `activation_key`"),
                                ("social_auth_usersocialauth", "`user_id`, `provider`, `uid`, `extra_data`")):
                sql(sim, srv, p.lms, f"INSERT INTO `{table}` ({cols}) VALUES (%s)")
    if status == 409:  # ref §3.3: on a non-200, look the account up by e-mail
        with http_client(sim, parent, proc, "GET", f"https://{LMS_HOST}/api/user/v1/accounts?email="
                                                   f"learner{sim.rng.randrange(1000, 9999)}%40example.com", 200) as c:
            with django(sim, c, p.lms, "GET", "api/user/v1/accounts$", "/api/user/v1/accounts", 200, host=LMS_HOST,
                        ua=REQUESTS_UA) as srv:
                sql(sim, srv, p.lms, SQL_USER)
                sql(sim, srv, p.lms, my_select("auth_userprofile", "id,user_id,name,country", "`auth_userprofile`."
                                                                                         "`user_id` = %s", " LIMIT 21"))


def create_edx_auth_token(sim: Sim, parent: Node, proc: Proc) -> None:
    """ref §3.3 ``create_edx_auth_token``: two redirect chains (one CLIENT span each, several SERVER children)
    and the authorization-code exchange (ref §5 3a steps 11–23)."""
    p = sim.p
    login = f"https://{LMS_HOST}/auth/login/ol-oauth2/?auth_entry=login"
    with http_client(sim, parent, proc, "GET", login, 200) as chain:
        with django(sim, chain, p.lms, "GET", R_LMS_AUTH_LOGIN, "/auth/login/ol-oauth2/?auth_entry=login", 302,
                    host=LMS_HOST, ua=REQUESTS_UA) as srv:
            sql(sim, srv, p.lms, SQL_SESSION)
        with django(sim, chain, p.xpro_web, "GET", R_XPRO_OAUTH_AUTHORIZE,
                    f"/oauth2/authorize/?client_id={sim.hex(20)}&redirect_uri=https%3A%2F%2F{LMS_HOST}%2Fauth%2F"
                    f"complete%2Fol-oauth2%2F&state={sim.hex(32)}&response_type=code&scope=user%3Aread", 302,
                    host=XPRO_HOST, ua=REQUESTS_UA) as x:
            sql(sim, x, p.xpro_web, PG_SESSION)
            sql(sim, x, p.xpro_web, 'INSERT INTO "oauth2_provider_grant" ("user_id", "code", "application_id", '
                                    '"expires", "redirect_uri", "scope", "created", "updated") VALUES '
                                    '(%s, %s, %s, %s, %s, %s, %s, %s) RETURNING "oauth2_provider_grant"."id"')
        lms_social_auth_complete(sim, chain, ua=REQUESTS_UA)
        with django(sim, chain, p.lms, "GET", R_LMS_DASHBOARD, "/dashboard", 200, host=LMS_HOST,
                    ua=REQUESTS_UA) as srv:
            sql(sim, srv, p.lms, SQL_SESSION)
            sql(sim, srv, p.lms, SQL_USER)
    authorize = (f"https://{LMS_HOST}/oauth2/authorize?client_id={sim.hex(20)}&scope=read+write&redirect_uri="
                 f"https://{XPRO_HOST}/login/_private/complete&response_type=code")
    with http_client(sim, parent, proc, "GET", authorize, 200) as chain:
        with django(sim, chain, p.lms, "GET", R_LMS_OAUTH_AUTHORIZE, "/oauth2/authorize", 302, host=LMS_HOST,
                    ua=REQUESTS_UA) as srv:
            sql(sim, srv, p.lms, SQL_SESSION)
            sql(sim, srv, p.lms, "INSERT INTO `oauth2_provider_grant` (`user_id`, `code`, `application_id`, "
                                 "`expires`, `redirect_uri`, `scope`, `created`, `updated`) VALUES "
                                 "(%s, %s, %s, %s, %s, %s, %s, %s)")
        with django(sim, chain, p.xpro_web, "GET", R_XPRO_PRIVATE_COMPLETE,
                    f"/login/_private/complete?code={sim.hex(30)}", 200, host=XPRO_HOST, ua=REQUESTS_UA) as x:
            sim.work(x, (0.5, 2))
    lms_access_token(sim, parent, proc, "authorization_code")
    sql(sim, parent, proc, 'UPDATE "courseware_openedxapiauth" SET "refresh_token" = %s, "access_token" = %s, '
                           '"access_token_expires_on" = %s WHERE "courseware_openedxapiauth"."id" = %s')


# ---------------------------------------------------------------------------------------------------------
# Scenario 1 — Learner takes a course (sync; ref §5 traces 1a–1d)
# ---------------------------------------------------------------------------------------------------------


def learner_takes_a_course(sim: Sim) -> None:
    """Unit loads, problem submits (without the grade task), discussion posts/reads and the Notes tab."""
    t0 = at(0, "13:02:11")
    for i in range(sim.n(5, 2)):
        _load_unit(sim, t0 + i * 9 * MIN + sim.ms((0, 40_000)), COURSES[i % 3], BROWSERS[i % 4], slow=(i == 3))
    t0 = at(0, "13:06:40")
    for i in range(sim.n(4, 1)):
        _submit_problem(sim, t0 + i * 11 * MIN + sim.ms((0, 30_000)), COURSES[(i + 1) % 3], BROWSERS[(i + 2) % 4],
                        python_graded=(i % 2 == 1), codejail_down=(i == 3))
    t0 = at(0, "14:10:05")
    for i in range(sim.n(3, 1)):
        _discussion(sim, t0 + i * 13 * MIN + sim.ms((0, 30_000)), COURSES[i % 3], BROWSERS[(i + 1) % 4],
                    post=(i != 1))
    t0 = at(0, "14:31:52")
    for i in range(sim.n(3, 1)):
        _notes_tab(sim, t0 + i * 17 * MIN + sim.ms((0, 30_000)), COURSES[(i + 2) % 3], BROWSERS[i % 4],
                   slow=(i == 2))


def _usage_key(course: str, block_type: str, block_hex: str) -> str:
    return f"block-v1:{course.split(':', 1)[1]}+type@{block_type}+block@{block_hex}"


def _load_unit(sim: Sim, when: int, course: str, ua: str, slow: bool) -> None:
    """1a: the Learning MFE iframe loads a unit (``GET ^xblock/<usage key>$``)."""
    p = sim.p
    usage = _usage_key(course, "vertical", sim.hex(32))
    target = f"/xblock/{usage}?exam_access=&recheck_access=1&show_bookmark=0&show_title=0&view=student_view"
    custom = {"course_id": course, "code_owner_module": "lms.djangoapps.courseware.views.views"}
    with django(sim, None, p.lms, "GET", R_LMS_XBLOCK, target, 200, host=LMS_HOST, ua=ua, at=when,
                custom=custom) as srv:
        sql(sim, srv, p.lms, SQL_SESSION)
        sql(sim, srv, p.lms, SQL_USER)
        sql(sim, srv, p.lms, SQL_ENROLLMENT)
        with function_trace(sim, srv, p.lms, "get_course_and_user_info") as ft:
            sql(sim, ft, p.lms, SQL_OVERVIEW)
            mongo(sim, ft, p.lms, "modulestore.active_versions", "find")
            if slow or sim.rng.random() < 0.5:  # the structure is often served from the block-structure cache
                mongo(sim, ft, p.lms, "modulestore.structures", "find", dur=(1100, 1600) if slow else (2, 9))
            for _ in range(sim.rng.randrange(2, 6)):
                mongo(sim, ft, p.lms, "modulestore.definitions", "find")
        sql(sim, srv, p.lms, SQL_STUDENTMODULE)
        sql(sim, srv, p.lms, SQL_COMPLETION)
        sim.work(srv, (60, 400))  # template rendering


def _submit_problem(sim: Sim, when: int, course: str, ua: str, python_graded: bool, codejail_down: bool) -> None:
    """1b: ``problem_check`` through the XBlock handler; the grade-recalculation task is left out (the page
    calls this scenario synchronous)."""
    p = sim.p
    usage = _usage_key(course, "problem", sim.hex(32))
    target = f"/courses/{course}/xblock/{usage}/handler/xmodule_handler/problem_check"
    custom = {"course_id": course, "code_owner_module": "xmodule.capa_block"}
    with django(sim, None, p.lms, "POST", R_LMS_HANDLER, target, 200, host=LMS_HOST, ua=ua, at=when,
                custom=custom) as srv:
        sql(sim, srv, p.lms, SQL_SESSION)
        sql(sim, srv, p.lms, SQL_USER)
        mongo(sim, srv, p.lms, "modulestore.definitions", "find")
        sql(sim, srv, p.lms, my_select("courseware_studentmodule", "id,state,grade,max_grade",
                                       "(`courseware_studentmodule`.`course_id` = %s AND `courseware_studentmodule`."
                                       "`module_id` = %s AND `courseware_studentmodule`.`student_id` = %s)",
                                       " LIMIT 21 FOR UPDATE"))
        if python_graded:  # codejail REST call inside safe_exec; codejail has no OTel (ref §2.1)
            with function_trace(sim, srv, p.lms, "safe_exec.remote_exec") as ft:
                if codejail_down:
                    http_leaf(sim, ft, p.lms, "POST", "http://codejail:8000/api/v0/code-exec", 503, (5000, 5200))
                else:
                    http_leaf(sim, ft, p.lms, "POST", "http://codejail:8000/api/v0/code-exec", 200, (80, 350))
        sql(sim, srv, p.lms, "UPDATE `courseware_studentmodule` SET `state` = %s, `grade` = %s, `max_grade` = %s, "
                             "`modified` = %s WHERE `courseware_studentmodule`.`id` = %s")
        sql(sim, srv, p.lms, "INSERT INTO `courseware_studentmodulehistoryextended` (`version`, `created`, `state`, "
                             "`grade`, `max_grade`, `student_module_id`) VALUES (%s, %s, %s, %s, %s, %s)",
            db="edxapp_csmh")


def _discussion(sim: Sim, when: int, course: str, ua: str, post: bool) -> None:
    """1c: a discussion post or thread list.  Idealized: the legacy ``cs-comments-service`` (Sinatra +
    MongoDB ``forum`` + ES); realistic: forum v2 in-process, MySQL tables of app ``forum`` (ref §0.5)."""
    p = sim.p
    commentable = sim.hex(32)
    method = "POST" if post else "GET"
    target = "/api/discussion/v1/threads/" if post else f"/api/discussion/v1/threads/?course_id={course}&page=1"
    with django(sim, None, p.lms, method, R_LMS_THREADS, target, 200, host=LMS_HOST, ua=ua, at=when,
                custom={"course_id": course}) as srv:
        sql(sim, srv, p.lms, SQL_SESSION)
        sql(sim, srv, p.lms, SQL_ENROLLMENT)
        sql(sim, srv, p.lms, my_select("django_comment_client_role", "id,name,course_id",
                                       "`django_comment_client_role`.`course_id` = %s"))
        if not sim.idealized:
            if post:
                sql(sim, srv, p.lms, "INSERT INTO `forum_commentthread` (`author_id`, `course_id`, `title`, `body`, "
                                     "`commentable_id`, `thread_type`, `created_at`, `updated_at`) VALUES "
                                     "(%s, %s, %s, %s, %s, %s, %s, %s)")
            else:
                sql(sim, srv, p.lms, my_select("forum_commentthread", "id,title,author_id,comment_count",
                                               "`forum_commentthread`.`course_id` = %s", " LIMIT 10"))
            return
        if post:
            url = f"{FORUM_URL}/api/v1/{commentable}/threads"
            with http_client(sim, srv, p.lms, "POST", url, 200) as c:
                with sinatra(sim, c, p.forum, "POST", "/api/v1/:commentable_id/threads",
                             f"/api/v1/{commentable}/threads", 200) as f:
                    ruby_mongo(sim, f, p.forum, "users", "find", '{"_id":"?"}')
                    ruby_mongo(sim, f, p.forum, "contents", "insert", '{"documents":["?"]}')
                    ruby_mongo(sim, f, p.forum, "subscriptions", "insert", '{"documents":["?"]}')
                    faraday(sim, f, p.forum, "POST", f"https://{OPENSEARCH}/comment_threads/_doc/{sim.hex(24)}", 201)
        else:
            url = f"{FORUM_URL}/api/v1/threads?course_id={course}&page=1&per_page=10&sort_key=activity"
            with http_client(sim, srv, p.lms, "GET", url, 200) as c:
                with sinatra(sim, c, p.forum, "GET", "/api/v1/threads", url[len(FORUM_URL):], 200) as f:
                    ruby_mongo(sim, f, p.forum, "contents", "find", '{"course_id":"?","_type":"?"}')
                    ruby_mongo(sim, f, p.forum, "users", "find", '{"_id":"?"}')


def _notes_tab(sim: Sim, when: int, course: str, ua: str, slow: bool) -> None:
    """The Notes tab: the LMS reads the learner's annotations from the Notes API server-side (ref §0.6)."""
    p = sim.p
    anon = sim.hex(32)
    with django(sim, None, p.lms, "GET", R_LMS_EDXNOTES, f"/courses/{course}/edxnotes/", 200, host=LMS_HOST, ua=ua,
                at=when, custom={"course_id": course}) as srv:
        sql(sim, srv, p.lms, SQL_SESSION)
        sql(sim, srv, p.lms, SQL_ENROLLMENT)
        mongo(sim, srv, p.lms, "modulestore.active_versions", "find")
        query = f"user={anon}&course_id={course.replace('+', '%2B').replace(':', '%3A')}&page=1&page_size=10"
        url = f"https://{NOTES_HOST}/api/v1/annotations/?{query}"
        with http_client(sim, srv, p.lms, "GET", url, 200) as c:
            with django(sim, c, p.notes, "GET", R_NOTES_ANNOTATIONS, f"/api/v1/annotations/?{query}", 200,
                        host=NOTES_HOST, ua=REQUESTS_UA) as n:
                sql(sim, n, p.notes, "SELECT COUNT(*) AS `__count` FROM `v1_note` WHERE (`v1_note`.`course_id` = %s "
                                     "AND `v1_note`.`user_id` = %s)", db="edx_notes_api")
                sql(sim, n, p.notes, "SELECT `v1_note`.`id`, `v1_note`.`user_id`, `v1_note`.`course_id`, "
                                     "`v1_note`.`usage_id`, `v1_note`.`quote`, `v1_note`.`text`, `v1_note`.`tags` "
                                     "FROM `v1_note` WHERE (`v1_note`.`course_id` = %s AND `v1_note`.`user_id` = %s) "
                                     "ORDER BY `v1_note`.`created` DESC LIMIT 10", db="edx_notes_api",
                    dur=(1400, 1900) if slow else (1, 6))
        for _ in range(sim.rng.randrange(1, 4)):
            mongo(sim, srv, p.lms, "modulestore.structures", "find")


# ---------------------------------------------------------------------------------------------------------
# Scenario 2 — Course authoring & publish (sync + async; ref §5 traces 2a–2c)
# ---------------------------------------------------------------------------------------------------------


def course_authoring_and_publish(sim: Sim) -> None:
    """Studio publishes (with their Celery fan-out), asset uploads to S3, exports to S3 and status polls."""
    for i in range(sim.n(4, 1)):
        _publish_unit(sim, at(0, "10:04:20") + i * 23 * MIN + sim.ms((0, 60_000)), COURSES[i % 3],
                      native_es=(i % 2 == 1), ua=BROWSERS[i % 2])
    for i in range(sim.n(3, 0)):
        _upload_asset(sim, at(0, "11:40:00") + i * 6 * MIN + sim.ms((0, 60_000)), COURSES[i % 3], multipart=(i == 2))
    for i in range(sim.n(2, 1)):
        _export_course(sim, at(0, "12:15:00") + i * 40 * MIN, COURSES[i], s3_fails=(i == 1))


def _cms_custom(course: str) -> Attrs:
    return {"course_id": course, "code_owner_module": "cms.djangoapps.contentstore.views.block"}


def _publish_unit(sim: Sim, when: int, course: str, native_es: bool, ua: str) -> None:
    """2a: ``POST ^xblock/<usage key>?$`` with ``publish=make_public`` and the course_published receivers."""
    p = sim.p
    usage = _usage_key(course, "vertical", sim.hex(32))
    with django(sim, None, p.cms, "POST", R_CMS_XBLOCK, f"/xblock/{usage}", 200, host=CMS_HOST, ua=ua,
                at=when, custom=_cms_custom(course)) as srv:
        sql(sim, srv, p.cms, SQL_SESSION)
        sql(sim, srv, p.cms, SQL_ACCESSROLE)
        mongo(sim, srv, p.cms, "modulestore.active_versions", "find")
        mongo(sim, srv, p.cms, "modulestore.structures", "find", dur=(4, 30))
        for _ in range(sim.rng.randrange(1, 4)):
            mongo(sim, srv, p.cms, "modulestore.definitions", "find")
        mongo(sim, srv, p.cms, "modulestore.structures", "insert", dur=(6, 40))
        mongo(sim, srv, p.cms, "modulestore.active_versions", "update")
        sql(sim, srv, p.cms, "UPDATE `course_overviews_courseoverview` SET `modified` = %s, `version` = %s, "
                             "`display_name` = %s, `start` = %s, `end` = %s WHERE "
                             "`course_overviews_courseoverview`.`id` = %s")
        exams = publish(sim, srv, p.cms, "cms.djangoapps.contentstore.tasks.update_special_exams_and_publish",
                        CMS_QUEUE)
        outline = publish(sim, srv, p.cms, "cms.djangoapps.contentstore.tasks.update_outline_from_modulestore_task",
                          CMS_QUEUE)
        search = publish(sim, srv, p.cms, "cms.djangoapps.contentstore.tasks.update_search_index", CMS_QUEUE)
        cache = publish(sim, srv, p.cms,
                        "openedx.core.djangoapps.content.block_structure.tasks.update_course_in_cache_v2", LMS_QUEUE)
        sim.work(srv, (350, 1800))  # rendering the updated outline (ref §5 2a: 0.5–3 s)
    with run(sim, exams, p.cms_worker, "cms.djangoapps.contentstore.tasks.update_special_exams_and_publish",
             CMS_QUEUE, after(exams, sim, (100, 2500))) as c:
        mongo(sim, c, p.cms_worker, "modulestore.active_versions", "find")
        sql(sim, c, p.cms_worker, my_select("edx_proctoring_proctoredexam", "id,course_id,content_id,exam_name",
                                            "`edx_proctoring_proctoredexam`.`course_id` = %s"))
    with run(sim, outline, p.cms_worker, "cms.djangoapps.contentstore.tasks.update_outline_from_modulestore_task",
             CMS_QUEUE, after(outline, sim, (200, 3000))) as c:
        mongo(sim, c, p.cms_worker, "modulestore.structures", "find")
        sql(sim, c, p.cms_worker, my_select("learning_sequences_learningcontext", "id,context_key,title,published_at",
                                            "`learning_sequences_learningcontext`.`context_key` = %s", " LIMIT 21"))
        sql_loop(sim, c, p.cms_worker, "UPDATE `learning_sequences_learningsequence` SET `title` = %s, "
                                       "`hide_from_toc` = %s WHERE `learning_sequences_learningsequence`.`id` = %s",
                 sim.rng.randrange(3, 8))
    with run(sim, search, p.cms_worker, "cms.djangoapps.contentstore.tasks.update_search_index", CMS_QUEUE,
             after(search, sim, (1000, 20_000))) as c:
        for _ in range(sim.rng.randrange(3, 7)):
            mongo(sim, c, p.cms_worker, "modulestore.structures" if sim.rng.random() < 0.3
                  else "modulestore.definitions", "find")
        if native_es:  # the 8.13+ client's own spans
            es_native_bulk(sim, c, p.cms_worker, "courseware_content", sim.rng.randrange(1, 3))
            es_native(sim, c, p.cms_worker, "index", "PUT", "course_info", f"/_doc/{course}", (5, 20))
        else:  # the old contrib instrumentation of the 7.x client
            es_contrib(sim, c, p.cms_worker, "POST", "/courseware_content/_bulk", "courseware_content/_bulk",
                       took=sim.rng.randrange(12, 80))
            es_contrib(sim, c, p.cms_worker, "PUT", f"/course_info/_doc/{course}", "course_info/_doc/:id",
                       dur=(5, 20))
    with run(sim, cache, p.lms_worker, "openedx.core.djangoapps.content.block_structure.tasks."
                                       "update_course_in_cache_v2", LMS_QUEUE, after(cache, sim, (30_000, 31_500)),
             eta=_iso(cache.end + 30 * SEC)) as c:
        for _ in range(sim.rng.randrange(2, 5)):
            mongo(sim, c, p.lms_worker, "modulestore.definitions", "find")
        s3(sim, c, p.lms_worker, "PutObject")
        sql(sim, c, p.lms_worker, "UPDATE `block_structure` SET `data_version` = %s, `data_edit_timestamp` = %s, "
                                  "`transformers_schema_version` = %s, `block_structure_schema_version` = %s, "
                                  "`modified` = %s WHERE `block_structure`.`id` = %s")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // SEC, tz=timezone.utc).isoformat()


def _upload_asset(sim: Sim, when: int, course: str, multipart: bool) -> None:
    """2b: an asset upload stored in S3 (the page; ref §0.4 notes MIT's config uses GridFS)."""
    p = sim.p
    filename = sim.pick(("syllabus.pdf", "lecture-3-slides.pdf", "lab-dataset.zip", "figure-2.png"))
    target = f"/assets/{course}/"
    with django(sim, None, p.cms, "POST", R_CMS_ASSETS, target, 200, host=CMS_HOST, ua=BROWSERS[0], at=when,
                custom={"course_id": course, "asset_filename": filename}) as srv:
        sql(sim, srv, p.cms, SQL_SESSION)
        sql(sim, srv, p.cms, SQL_ACCESSROLE)
        if multipart:
            s3(sim, srv, p.cms, "CreateMultipartUpload", dur=(15, 40))
            for _ in range(3):
                s3(sim, srv, p.cms, "UploadPart", dur=(400, 1200))
            s3(sim, srv, p.cms, "CompleteMultipartUpload", dur=(30, 90))
        else:
            s3(sim, srv, p.cms, "PutObject", dur=(60, 400))
        mongo(sim, srv, p.cms, "modulestore.active_versions", "find")


def _export_course(sim: Sim, when: int, course: str, s3_fails: bool) -> None:
    """2c: ``POST ^export/<course>$`` → ``export_olx`` task → tarball to S3; then the status polls."""
    p = sim.p
    with django(sim, None, p.cms, "POST", R_CMS_EXPORT, f"/export/{course}", 200, host=CMS_HOST, ua=BROWSERS[1],
                at=when, custom={"course_id": course}) as srv:
        sql(sim, srv, p.cms, SQL_SESSION)
        sql(sim, srv, p.cms, SQL_ACCESSROLE)
        sql(sim, srv, p.cms, "INSERT INTO `user_tasks_usertaskstatus` (`uuid`, `user_id`, `task_id`, `is_container`, "
                             "`task_class`, `name`, `total_steps`, `completed_steps`, `attempts`, `state`, `created`, "
                             "`modified`) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        task = publish(sim, srv, p.cms, "cms.djangoapps.contentstore.tasks.export_olx", CMS_QUEUE)
    failure = Failure("ClientError: An error occurred (SlowDown) when calling the PutObject operation",
                      "botocore.exceptions.ClientError",
                      "An error occurred (SlowDown) when calling the PutObject operation (reached max retries: 4): "
                      "Please reduce your request rate.") if s3_fails else None
    with run(sim, task, p.cms_worker, "cms.djangoapps.contentstore.tasks.export_olx", CMS_QUEUE,
             after(task, sim, (300, 4000)), state="FAILURE" if s3_fails else "SUCCESS", failure=failure) as c:
        sql(sim, c, p.cms_worker, "UPDATE `user_tasks_usertaskstatus` SET `state` = %s, `modified` = %s "
                                  "WHERE `user_tasks_usertaskstatus`.`id` = %s")
        for _ in range(sim.rng.randrange(6, 12)):
            mongo(sim, c, p.cms_worker, "modulestore.definitions", "find")
        sim.work(c, (800, 2500))  # writing and compressing the OLX tarball
        if s3_fails:
            s3(sim, c, p.cms_worker, "PutObject", dur=(6000, 8000), status=503, retries=4, failure=Failure())
            sql(sim, c, p.cms_worker, "UPDATE `user_tasks_usertaskstatus` SET `state` = %s, `modified` = %s "
                                      "WHERE `user_tasks_usertaskstatus`.`id` = %s")
        else:
            s3(sim, c, p.cms_worker, "PutObject", dur=(300, 1500))
            sql(sim, c, p.cms_worker, "INSERT INTO `user_tasks_usertaskartifact` (`uuid`, `status_id`, `name`, "
                                      "`file`, `url`, `text`, `created`, `modified`) VALUES "
                                      "(%s, %s, %s, %s, %s, %s, %s, %s)")
            sql(sim, c, p.cms_worker, "UPDATE `user_tasks_usertaskstatus` SET `state` = %s, `completed_steps` = %s, "
                                      "`modified` = %s WHERE `user_tasks_usertaskstatus`.`id` = %s")
    for k in range(2):  # the page polls export_status while the task runs (separate root traces)
        with django(sim, None, p.cms, "GET", R_CMS_EXPORT_STATUS, f"/export_status/{course}", 200, host=CMS_HOST,
                    ua=BROWSERS[1], at=when + (k + 1) * 2 * SEC + sim.ms((0, 400))) as srv:
            sql(sim, srv, p.cms, SQL_SESSION)
            sql(sim, srv, p.cms, my_select("user_tasks_usertaskstatus", "id,state,completed_steps,total_steps",
                                           "`user_tasks_usertaskstatus`.`name` = %s", " LIMIT 1"))


# ---------------------------------------------------------------------------------------------------------
# Scenario 3 — xPRO SSO & user provisioning (sync; ref §5 traces 3a, 3b; §3.3)
# ---------------------------------------------------------------------------------------------------------


def xpro_sso_and_user_provisioning(sim: Sim) -> None:
    """New-learner registrations on xPRO (3a) and returning learners' LMS social-auth completion (3b)."""
    for i in range(sim.n(3, 1)):
        _register(sim, at(0, "14:12:30") + i * 37 * MIN + sim.ms((0, 90_000)), BROWSERS[(i + 1) % 4],
                  lms_conflict=(i == 2))
    for i in range(sim.n(3, 1)):
        lms_social_auth_complete(sim, None, at=at(0, "15:20:00") + i * 29 * MIN + sim.ms((0, 60_000)),
                                 ua=BROWSERS[i % 4])


def _register(sim: Sim, when: int, ua: str, lms_conflict: bool) -> None:
    """3a: ``POST api/register/details/`` — Postgres, CyberSource export check (SOAP over requests), the LMS
    account, then the LMS OAuth token for later API calls.  The HubSpot task is left out (sync scenario)."""
    p = sim.p
    with django(sim, None, p.xpro_web, "POST", R_XPRO_REGISTER, "/api/register/details/", 200, host=XPRO_HOST,
                ua=ua, at=when) as srv:
        sql(sim, srv, p.xpro_web, PG_SESSION)
        sql(sim, srv, p.xpro_web, 'INSERT INTO "users_user" ("password", "last_login", "is_superuser", "username", '
                                  '"email", "name", "is_staff", "is_active", "created_on", "updated_on") VALUES '
                                  '(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING "users_user"."id"')
        sql(sim, srv, p.xpro_web, 'INSERT INTO "users_legaladdress" ("user_id", "first_name", "last_name", '
                                  '"country", "state_or_territory") VALUES (%s, %s, %s, %s, %s) RETURNING '
                                  '"users_legaladdress"."id"')
        http_leaf(sim, srv, p.xpro_web, "POST", "https://ics2wsa.ic3.com/commerce/1.x/transactionProcessor", 200,
                  (250, 900))
        sql(sim, srv, p.xpro_web, 'INSERT INTO "users_profile" ("user_id", "gender", "birth_year", "company", '
                                  '"job_title", "industry") VALUES (%s, %s, %s, %s, %s, %s) RETURNING '
                                  '"users_profile"."id"')
        sql(sim, srv, p.xpro_web, pg_select("oauth2_provider_application", "id,client_id,name",
                                            '"oauth2_provider_application"."name" = %s', " LIMIT 21"))
        sql(sim, srv, p.xpro_web, 'INSERT INTO "oauth2_provider_accesstoken" ("user_id", "token", "application_id", '
                                  '"expires", "scope", "created", "updated") VALUES (%s, %s, %s, %s, %s, %s, %s) '
                                  'RETURNING "oauth2_provider_accesstoken"."id"')
        sql(sim, srv, p.xpro_web, pg_select("courseware_coursewareuser", "id,user_id,platform,has_been_synced",
                                            '"courseware_coursewareuser"."user_id" = %s', " FOR UPDATE"))
        sql(sim, srv, p.xpro_web, 'INSERT INTO "courseware_coursewareuser" ("user_id", "platform", "has_been_synced",'
                                  ' "created_on", "updated_on") VALUES (%s, %s, %s, %s, %s) RETURNING '
                                  '"courseware_coursewareuser"."id"')
        lms_registration(sim, srv, p.xpro_web, 409 if lms_conflict else 200)
        create_edx_auth_token(sim, srv, p.xpro_web)
        sql(sim, srv, p.xpro_web, 'UPDATE "django_session" SET "session_data" = %s, "expire_date" = %s WHERE '
                                  '"django_session"."session_key" = %s')


# ---------------------------------------------------------------------------------------------------------
# Scenario 4 — xPRO enrollment, grade & run sync (cross-service, mixed; ref §5 traces 4a–4e)
# ---------------------------------------------------------------------------------------------------------


def xpro_enrollment_grade_and_run_sync(sim: Sim) -> None:
    """Order fulfillment webhooks, and the beat tasks that retry, repair and sync against the LMS."""
    for i in range(sim.n(3, 1)):
        courses = COURSES[:2] if i == 1 else (COURSES[(i + 2) % 3],)
        _order_fulfillment(sim, at(0, "15:41:07") + i * 47 * MIN + sim.ms((0, 60_000)), courses,
                           lms_fails=(i == 0 and sim.idealized), hubspot_retry=(i == 2))
    for k in range(sim.n(4, 2)):  # 4b: every 1800 s (ref §0.2, §3.2)
        _retry_failed_enrollments(sim, at(0, "16:00") + k * 30 * MIN, pending=(1 if k == 0 else 0),
                                  refresh=(k == 2))
    for k in range(sim.n(2, 0)):  # 4c: every 1800 s, offset 900 s
        _repair_faulty_users(sim, at(0, "16:15") + k * 30 * MIN, repair=(k == 1))
    for day in range(1, 1 + sim.n(3, 2)):  # 4d, 4e: daily crontab 00:00 UTC
        _sync_courseruns_data(sim, at(day, "00:00"), pages=2 if day == 2 else 1)
        _generate_course_certificates(sim, at(day, "00:00"), runs=0 if day == 3 else (2 if day == 1 else 1))


def _order_fulfillment(sim: Sim, when: int, courses: Sequence[str], lms_fails: bool, hubspot_retry: bool) -> None:
    """4a: CyberSource's webhook (a program, not a browser) → receipt, HubSpot deal task, LMS enrollment(s),
    Mailgun receipt e-mail."""
    p = sim.p
    with django(sim, None, p.xpro_web, "POST", R_XPRO_ORDER_FULFILLMENT, "/api/order_fulfillment/", 200,
                host=XPRO_HOST, ua="CyberSource-Webhook/1.0", at=when) as srv:
        sql(sim, srv, p.xpro_web, pg_select("ecommerce_order", "id,purchaser_id,status,total_price_paid",
                                            '"ecommerce_order"."id" = %s', " LIMIT 21 FOR UPDATE"))
        sql(sim, srv, p.xpro_web, 'INSERT INTO "ecommerce_receipt" ("created_on", "updated_on", "order_id", "data") '
                                  'VALUES (%s, %s, %s, %s) RETURNING "ecommerce_receipt"."id"')
        sql(sim, srv, p.xpro_web, 'UPDATE "ecommerce_order" SET "status" = %s, "updated_on" = %s WHERE '
                                  '"ecommerce_order"."id" = %s')
        deal = publish(sim, srv, p.xpro_web, "hubspot_xpro.tasks.sync_deal_with_hubspot", XPRO_QUEUE, declare=False)
        for course in courses:
            lms_enroll(sim, srv, course, status=500 if lms_fails else 200)
            sql(sim, srv, p.xpro_web, 'INSERT INTO "courses_courserunenrollment" ("created_on", "updated_on", '
                                      '"user_id", "run_id", "order_id", "company_id", "change_status", "active", '
                                      '"edx_enrolled", "edx_emails_subscription", "enrollment_mode") VALUES '
                                      '(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING '
                                      '"courses_courserunenrollment"."id"')
            sql(sim, srv, p.xpro_web, 'INSERT INTO "courses_courserunenrollmentaudit" ("created_on", "updated_on", '
                                      '"acting_user_id", "data_before", "data_after", "enrollment_id") VALUES '
                                      '(%s, %s, %s, %s, %s, %s) RETURNING "courses_courserunenrollmentaudit"."id"')
        http_leaf(sim, srv, p.xpro_web, "POST", "https://api.mailgun.net/v3/xpro.mit.edu/messages", 200, (120, 450))
    # HubSpot itself is called through urllib3 and is not traced (ref §0.7).
    if hubspot_retry:
        reason = "429 Client Error: Too Many Requests for url: https://api.hubapi.com/crm/v3/objects/deals"
        with run(sim, deal, p.xpro_worker, "hubspot_xpro.tasks.sync_deal_with_hubspot", XPRO_QUEUE,
                 after(deal, sim, (50, 400)), state="RETRY",
                 retry_reason=f"Retry in 10s: HTTPError('{reason}')") as c:
            sql(sim, c, p.xpro_worker, pg_select("ecommerce_order", "id,purchaser_id,status", '"ecommerce_order"."id"'
                                                                                             ' = %s', " LIMIT 21"))
            sim.work(c, (300, 900))
            again = publish(sim, c, p.xpro_worker, "hubspot_xpro.tasks.sync_deal_with_hubspot", XPRO_QUEUE,
                            declare=False)
        deal = again
        delay: Range = (10_000, 10_300)
        retries = 1
    else:
        delay, retries = (50, 400), 0
    with run(sim, deal, p.xpro_worker, "hubspot_xpro.tasks.sync_deal_with_hubspot", XPRO_QUEUE,
             after(deal, sim, delay), retries=retries) as c:
        sql(sim, c, p.xpro_worker, pg_select("ecommerce_order", "id,purchaser_id,status", '"ecommerce_order"."id" = %s',
                                             " LIMIT 21"))
        sql(sim, c, p.xpro_worker, pg_select("ecommerce_line", "id,order_id,product_version_id,quantity",
                                             '"ecommerce_line"."order_id" = %s'))
        sim.work(c, (400, 1500))  # HubSpot CRM calls (untraced urllib3)


def _retry_failed_enrollments(sim: Sim, when: int, pending: int, refresh: bool) -> None:
    """4b: beat → worker; enroll every ``edx_enrolled = false`` row through the LMS enrollment API."""
    p = sim.p
    task = "courseware.tasks.retry_failed_edx_enrollments"
    producer = beat(sim, p.xpro_beat, task, XPRO_QUEUE, when)
    with run(sim, producer, p.xpro_worker, task, XPRO_QUEUE, after(producer, sim, (4, 60))) as c:
        sql(sim, c, p.xpro_worker, 'SELECT "courses_courserunenrollment"."id", "courses_courserunenrollment"."user_id",'
                                   ' "courses_courserunenrollment"."run_id" FROM "courses_courserunenrollment" INNER '
                                   'JOIN "users_user" ON ("courses_courserunenrollment"."user_id" = "users_user"."id") '
                                   'INNER JOIN "courses_courserun" ON ("courses_courserunenrollment"."run_id" = '
                                   '"courses_courserun"."id") WHERE (NOT "courses_courserunenrollment"."edx_enrolled" '
                                   'AND "courses_courserunenrollment"."created_on" < %s AND "courses_courserun".'
                                   '"live")')
        for _ in range(pending + (1 if refresh else 0)):
            sql(sim, c, p.xpro_worker, pg_select("courseware_openedxapiauth",
                                                 "id,user_id,access_token,access_token_expires_on",
                                                 '"courseware_openedxapiauth"."user_id" = %s', " LIMIT 21"))
            if refresh:  # the token expired: refresh, then read the enrollment with the user's token (§3.3)
                lms_enroll(sim, c, COURSES[2], status=400)
                lms_access_token(sim, c, p.xpro_worker, "refresh_token")
                _lms_get_enrollment(sim, c, COURSES[2])
            else:
                lms_enroll(sim, c, COURSES[0])
            sql(sim, c, p.xpro_worker, 'UPDATE "courses_courserunenrollment" SET "edx_enrolled" = %s, "updated_on" = %s'
                                       ' WHERE "courses_courserunenrollment"."id" = %s')
            sql(sim, c, p.xpro_worker, 'INSERT INTO "courses_courserunenrollmentaudit" ("created_on", "updated_on", '
                                       '"acting_user_id", "data_before", "data_after", "enrollment_id") VALUES '
                                       '(%s, %s, %s, %s, %s, %s) RETURNING "courses_courserunenrollmentaudit"."id"')


def _lms_get_enrollment(sim: Sim, parent: Node, course: str) -> None:
    p = sim.p
    with http_client(sim, parent, p.xpro_worker, "GET", f"https://{LMS_HOST}/api/enrollment/v1/enrollment", 200) as c:
        with django(sim, c, p.lms, "GET", R_LMS_ENROLLMENT, "/api/enrollment/v1/enrollment", 200, host=LMS_HOST,
                    ua=REQUESTS_UA, custom={"course_id": course}) as srv:
            sql(sim, srv, p.lms, SQL_LMS_TOKEN)
            sql(sim, srv, p.lms, SQL_ENROLLMENT)


def _repair_faulty_users(sim: Sim, when: int, repair: bool) -> None:
    """4c: beat → worker; users without an LMS account or token get ``create_edx_user`` and
    ``create_edx_auth_token`` again (ref §3.3)."""
    p = sim.p
    task = "courseware.tasks.repair_faulty_courseware_users"
    producer = beat(sim, p.xpro_beat, task, XPRO_QUEUE, when)
    with run(sim, producer, p.xpro_worker, task, XPRO_QUEUE, after(producer, sim, (4, 60))) as c:
        sql(sim, c, p.xpro_worker, 'SELECT "users_user"."id", "users_user"."username", "users_user"."email" FROM '
                                   '"users_user" LEFT OUTER JOIN "courseware_coursewareuser" ON ("users_user"."id" = '
                                   '"courseware_coursewareuser"."user_id") WHERE ("users_user"."is_active" AND '
                                   '"users_user"."created_on" < %s AND ("courseware_coursewareuser"."id" IS NULL OR '
                                   'NOT "courseware_coursewareuser"."has_been_synced"))')
        if repair:
            lms_registration(sim, c, p.xpro_worker, 200)
            create_edx_auth_token(sim, c, p.xpro_worker)


def _sync_courseruns_data(sim: Sim, when: int, pages: int) -> None:
    """4d: beat → worker; read course runs from the LMS course API and update titles and dates."""
    p = sim.p
    task = "courses.tasks.sync_courseruns_data"
    producer = beat(sim, p.xpro_beat, task, XPRO_QUEUE, when)
    with run(sim, producer, p.xpro_worker, task, XPRO_QUEUE, after(producer, sim, (4, 60))) as c:
        sql(sim, c, p.xpro_worker, pg_select("courses_courserun", "id,courseware_id,title,start_date,end_date",
                                             '("courses_courserun"."live" AND "courses_courserun"."courseware_id" IS '
                                             'NOT NULL)'))
        keys = ",".join(COURSES).replace(":", "%3A").replace("+", "%2B").replace(",", "%2C")
        for page in range(1, pages + 1):
            url = (f"https://{LMS_HOST}/api/courses/v1/courses/?course_keys={keys}&username=xpro-service-worker"
                   f"&page_size=100&page={page}")
            with http_client(sim, c, p.xpro_worker, "GET", url, 200) as call:
                with django(sim, call, p.lms, "GET", R_LMS_COURSES, url[len(f"https://{LMS_HOST}"):], 200,
                            host=LMS_HOST, ua=REQUESTS_UA) as srv:
                    sql(sim, srv, p.lms, SQL_USER)
                    sql(sim, srv, p.lms, my_select("course_overviews_courseoverview", "id,display_name,start,end,"
                                                   "enrollment_start,enrollment_end",
                                                   "`course_overviews_courseoverview`.`id` IN (%s, %s, %s)"),
                        dur=(3, 25))
        sql_loop(sim, c, p.xpro_worker, 'UPDATE "courses_courserun" SET "title" = %s, "start_date" = %s, '
                                        '"end_date" = %s, "enrollment_start" = %s, "enrollment_end" = %s WHERE '
                                        '"courses_courserun"."id" = %s', len(COURSES))


def _generate_course_certificates(sim: Sim, when: int, runs: int) -> None:
    """4e: beat → worker; for every run that ended > 48 h ago read grades from the LMS and create
    certificates."""
    p = sim.p
    task = "courses.tasks.generate_course_certificates"
    producer = beat(sim, p.xpro_beat, task, XPRO_QUEUE, when)
    with run(sim, producer, p.xpro_worker, task, XPRO_QUEUE, after(producer, sim, (4, 60))) as c:
        sql(sim, c, p.xpro_worker, pg_select("courses_courserun", "id,courseware_id,end_date",
                                             '("courses_courserun"."end_date" < %s AND "courses_courserun"."live" AND '
                                             'NOT "courses_courserun"."is_self_paced")'))
        for r in range(runs):
            course = COURSES[r]
            pages = 2 if r == 0 else 1
            for page in range(1, pages + 1):
                suffix = "" if page == 1 else f"?cursor={sim.hex(16)}"
                path = f"/api/grades/v1/courses/{course}/{suffix}"
                with http_client(sim, c, p.xpro_worker, "GET", f"https://{LMS_HOST}{path}", 200) as call:
                    with django(sim, call, p.lms, "GET", R_LMS_GRADES, path, 200, host=LMS_HOST, ua=REQUESTS_UA,
                                custom={"course_id": course}) as srv:
                        sql(sim, srv, p.lms, SQL_USER)
                        sql(sim, srv, p.lms, my_select("student_courseenrollment", "id,user_id,mode",
                                                       "(`student_courseenrollment`.`course_id` = %s AND "
                                                       "`student_courseenrollment`.`is_active`)", " LIMIT 101"))
                        sql(sim, srv, p.lms, my_select("grades_persistentcoursegrade", "id,user_id,percent_grade,"
                                                       "letter_grade,passed_timestamp",
                                                       "`grades_persistentcoursegrade`.`course_id` = %s"),
                            dur=(20, 140))
                for _ in range(sim.rng.randrange(2, 4)):
                    sql(sim, c, p.xpro_worker, pg_select("users_user", "id,username", '"users_user"."username" = %s',
                                                         " LIMIT 21"))
                    sql(sim, c, p.xpro_worker, 'INSERT INTO "courses_courserungrade" ("created_on", "updated_on", '
                                               '"user_id", "course_run_id", "grade", "letter_grade", "passed", '
                                               '"set_by_admin") VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT '
                                               'DO NOTHING RETURNING "courses_courserungrade"."id"')
                    sql(sim, c, p.xpro_worker, 'INSERT INTO "courses_courseruncertificate" ("created_on", '
                                               '"updated_on", "uuid", "user_id", "course_run_id", "is_revoked") '
                                               'VALUES (%s, %s, %s, %s, %s, %s) RETURNING '
                                               '"courses_courseruncertificate"."id"')


# ---------------------------------------------------------------------------------------------------------
# Ingestion sources (ETL) — MIT Learn pulls and xPRO's external course sync (ref §4.1, §4.2, §5 4f, 4g)
# ---------------------------------------------------------------------------------------------------------


def ingestion_sources_etl(sim: Sim) -> None:
    """MIT Learn's scheduled pulls (xPRO catalog, xPRO OLX files, MIT PE feed, Sloan webinars) and xPRO's
    external course-run sync."""
    for day in range(1, 1 + sim.n(3, 2)):
        _get_xpro_data(sim, at(day, "05:00"))
    for day in range(1, 1 + sim.n(2, 0)):
        _import_all_xpro_files(sim, at(day, "08:00"), files=2 + day)
    for day in range(sim.n(3, 0)):
        _get_mitpe_data(sim, at(day, "21:00") + sim.ms((150, 900)), pages=2 + day % 2)
    for k in range(sim.n(4, 0)):
        _get_sloan_exec_webinars(sim, at(1, "00:00") + k * 3 * HOUR + sim.ms((150, 900)), ok=(k != 2))
    for day in range(1, 1 + sim.n(3, 0)):
        _sync_external_course_runs(sim, at(day, "00:00") + sim.ms((150, 900)), polls=2 + day % 2)


def _learn_upsert(sim: Sim, parent: Node, table: str, count: int) -> None:
    sql_loop(sim, parent, parent.proc or sim.p.learn_worker,
             f'INSERT INTO "{table}" ("readable_id", "platform_id", "title", "etl_source", "updated_on") VALUES '
             f'(%s, %s, %s, %s, %s) ON CONFLICT ("readable_id", "platform_id") DO UPDATE SET "title" = '
             f'EXCLUDED."title", "updated_on" = EXCLUDED."updated_on" RETURNING "{table}"."id"', count,
             db="mitlearn")


def _get_xpro_data(sim: Sim, when: int) -> None:
    """4g: daily 05:00 — ``GET https://xpro.mit.edu/api/programs/`` and ``/api/courses/`` (unauthenticated REST)."""
    p = sim.p
    task = "learning_resources.tasks.get_xpro_data"
    producer = beat(sim, p.learn_beat, task, "default", when)
    with run(sim, producer, p.learn_worker, task, "default", after(producer, sim, (5, 80))) as c:
        for path, route, table in (("/api/programs/", R_XPRO_PROGRAMS, "courses_program"),
                                   ("/api/courses/", R_XPRO_COURSES, "courses_course")):
            with http_client(sim, c, p.learn_worker, "GET", f"https://{XPRO_HOST}{path}", 200) as call:
                with django(sim, call, p.xpro_web, "GET", route, path, 200, host=XPRO_HOST, ua=REQUESTS_UA) as x:
                    sql(sim, x, p.xpro_web, pg_select(table, "id,title,readable_id,live", f'"{table}"."live"'),
                        dur=(5, 40))
                    sql(sim, x, p.xpro_web, pg_select("wagtailcore_page", "id,path,title,live,url_path",
                                                      '"wagtailcore_page"."live"'), dur=(10, 60))
                    sql(sim, x, p.xpro_web, pg_select("courses_courserun", "id,course_id,courseware_id,start_date,"
                                                      "end_date", '"courses_courserun"."live"'), dur=(5, 30))
                    sim.work(x, (200, 900))  # serializing the catalog
        _learn_upsert(sim, c, "learning_resources_learningresource", sim.rng.randrange(3, 6))
        _learn_upsert(sim, c, "learning_resources_learningresourcerun", sim.rng.randrange(3, 6))


def _import_all_xpro_files(sim: Sim, when: int, files: int) -> None:
    """Daily 08:00 (edx_content): list the OLX archives on S3 (untraced boto3) and fan out
    ``get_content_files`` — with ``use_span_links=True`` each consumer is a new trace linked to its producer."""
    p = sim.p
    task = "learning_resources.tasks.import_all_xpro_files"
    producer = beat(sim, p.learn_beat, task, "edx_content", when)
    children: list[Node] = []
    with run(sim, producer, p.learn_content_worker, task, "edx_content", after(producer, sim, (5, 80))) as c:
        sql(sim, c, p.learn_content_worker, pg_select("learning_resources_learningresourcerun",
                                                      "id,run_id,learning_resource_id",
                                                      '"learning_resources_learningresourcerun"."published"'),
            db="mitlearn")
        sim.work(c, (400, 1200))  # S3 ListObjectsV2 via boto3: not instrumented in MIT Learn (ref §5 4g)
        for _ in range(files):
            children.append(publish(sim, c, p.learn_content_worker, "learning_resources.tasks.get_content_files",
                                    "edx_content", declare=False))
    for producer in children:
        with run(sim, producer, p.learn_content_worker, "learning_resources.tasks.get_content_files",
                 "edx_content", after(producer, sim, (200, 20_000))) as c:
            sim.work(c, (300, 900))  # S3 GetObject of the tarball (untraced)
            for _ in range(sim.rng.randrange(2, 4)):
                http_leaf(sim, c, p.learn_content_worker, "PUT", "https://tika-production.ol.mit.edu/tika", 200,
                          (150, 900))
            _learn_upsert(sim, c, "learning_resources_contentfile", sim.rng.randrange(2, 5))


def _get_mitpe_data(sim: Sim, when: int, pages: int) -> None:
    """Daily 21:00: the MIT Professional Education JSON feed, paged until an empty page.  No producer span
    (root CONSUMER): tracegen has to infer the schedule from the run times."""
    p = sim.p
    with run(sim, None, p.learn_worker, "learning_resources.tasks.get_mitpe_data", "default", when) as c:
        for page in range(pages + 1):
            http_leaf(sim, c, p.learn_worker, "GET", f"https://professional.mit.edu/feeds/courses/?page={page}",
                      200, (300, 1500) if page < pages else (80, 200))
        _learn_upsert(sim, c, "learning_resources_learningresource", sim.rng.randrange(4, 8))


def _get_sloan_exec_webinars(sim: Sim, when: int, ok: bool) -> None:
    """Every 3 h (news pipeline): scrape ``exec.mit.edu/s/webinars`` HTML for the Aura ``fwuid``/``appId``
    tokens, then POST to Salesforce Aura — brittle (ref §4.1).  One run fails when the token is stale."""
    p = sim.p
    failure = None if ok else Failure("KeyError: 'actions'", "KeyError", "'actions'")
    with run(sim, None, p.learn_worker, "news_events.tasks.get_sloan_exec_webinars", "default", when,
             state="SUCCESS" if ok else "FAILURE", failure=failure) as c:
        http_leaf(sim, c, p.learn_worker, "GET", "https://exec.mit.edu/s/webinars", 200, (400, 1600),
                  response_headers={"http.response.header.content_type": ("text/html; charset=utf-8",)})
        aura = ("https://exec.mit.edu/s/sfsites/aura?r=15&other.LWR_Webinars.getWebinars=1&aura.ApexAction.execute=1")
        http_leaf(sim, c, p.learn_worker, "POST", aura, 200, (300, 1200))
        if ok:
            _learn_upsert(sim, c, "news_events_feeditem", sim.rng.randrange(2, 6))


def _sync_external_course_runs(sim: Sim, when: int, polls: int) -> None:
    """4f: daily 00:00 — the Emeritus / Global Alumni Redash-style API with ``api_key`` in the query string
    (brittle: a credential in ``http.url``), Postgres upserts, a Mailgun stats e-mail.  Root CONSUMER as in
    ref §5 4f."""
    p = sim.p
    base = "https://mit-xpro.emeritus-analytics.io"
    key = "api_key=eyJrIjoiN2QxZTQ5M2E"  # a fixed fake key; the real one sits in the URL just like this
    with run(sim, None, p.xpro_worker, "courses.tasks.task_sync_external_course_runs", XPRO_QUEUE, when) as c:
        for report in ("Batch", "GA - Batch"):
            qid, job = sim.rng.randrange(100, 999), sim.uuid()
            http_leaf(sim, c, p.xpro_worker, "GET", f"{base}/api/queries?{key}", 200, (150, 600))
            http_leaf(sim, c, p.xpro_worker, "POST", f"{base}/api/queries/{qid}/results?{key}", 200, (100, 400))
            for _ in range(polls):
                sim.work(c, (2000, 2010))  # time.sleep(2) between polls
                http_leaf(sim, c, p.xpro_worker, "GET", f"{base}/api/jobs/{job}?{key}", 200, (60, 200))
            http_leaf(sim, c, p.xpro_worker, "GET", f"{base}/api/query_results/{qid * 7 + 3}?{key}", 200, (200, 900))
            sql_loop(sim, c, p.xpro_worker, 'INSERT INTO "courses_course" ("readable_id", "title", '
                                            '"external_course_id", "is_external", "live") VALUES '
                                            '(%s, %s, %s, %s, %s) ON CONFLICT '
                                            '("readable_id") DO UPDATE SET "title" = EXCLUDED."title"',
                     sim.rng.randrange(2, 5), db="xpro")
            sql_loop(sim, c, p.xpro_worker, 'INSERT INTO "courses_courserun" ("course_id", "courseware_id", '
                                            '"external_course_run_id", "start_date", "end_date", "live") VALUES '
                                            '(%s, %s, %s, %s, %s, %s) ON CONFLICT ("external_course_run_id") DO '
                                            'UPDATE SET "start_date" = EXCLUDED."start_date"',
                     sim.rng.randrange(2, 5), db="xpro")
        http_leaf(sim, c, p.xpro_worker, "POST", "https://api.mailgun.net/v3/xpro.mit.edu/messages", 200, (120, 450))


# ---------------------------------------------------------------------------------------------------------
# Noise tracegen should drop, and a realistic-only LMS beat task
# ---------------------------------------------------------------------------------------------------------


def noise(sim: Sim) -> None:
    """Kubernetes health probes on the LMS and the OTLP exporter's own HTTP calls to the collector."""
    p = sim.p
    for k in range(sim.n(6, 2)):
        with django(sim, None, p.lms, "GET", "heartbeat", "/heartbeat", 200, host="10.21.7.14:8000",
                    ua="kube-probe/1.31", at=at(0, "12:00:00") + k * 10 * SEC + sim.ms((0, 50))) as srv:
            sql(sim, srv, p.lms, "SELECT 1", dur=(0.2, 0.8))
            mongo(sim, srv, p.lms, None, "ping", db="admin", dur=(0.3, 1.0))
    for k in range(sim.n(3, 1)):
        with sim.span(None, p.xpro_web, "requests", "POST", SpanKind.CLIENT,
                      {"http.method": "POST", "http.url": "http://otel-collector:4318/v1/traces",
                       "user_agent.original": "OTel-OTLP-Exporter-Python/1.39.1"},
                      at=at(0, "12:00:05") + k * 5 * SEC, end_attrs={"http.status_code": 200}) as node:
            sim.work(node, (2, 9))


def lms_scheduled_token_cleanup(sim: Sim) -> None:
    """Realistic only: the LMS beat's ``ol_clear_expired_tokens`` (Mondays 09:00, ref §2.6)."""
    p = sim.p
    task = "ol_social_auth.tasks.ol_clear_expired_tokens"
    for week in range(2):
        producer = beat(sim, p.lms_beat, task, LMS_QUEUE, at(7 * week, "09:00"))
        with run(sim, producer, p.lms_worker, task, LMS_QUEUE, after(producer, sim, (10, 120))) as c:
            sql(sim, c, p.lms_worker, "DELETE FROM `oauth2_provider_refreshtoken` WHERE "
                                      "`oauth2_provider_refreshtoken`.`revoked` < %s", dur=(200, 900))
            sql(sim, c, p.lms_worker, "DELETE FROM `oauth2_provider_accesstoken` WHERE "
                                      "`oauth2_provider_accesstoken`.`expires` < %s", dur=(400, 1800))


# ---------------------------------------------------------------------------------------------------------
# Output plans: which scenario writes which files
# ---------------------------------------------------------------------------------------------------------

Scenario = Callable[[Sim], None]
Router = Callable[[Proc], str]


@dataclass(frozen=True)
class Part:
    """One scenario function and where its spans go (by process)."""

    scenario: Scenario
    route: Router


def _to(default: str, **by_service: str) -> Router:
    """Route a scenario's spans to ``default``, or elsewhere by service name (``-`` spelled ``_``)."""
    def route(proc: Proc) -> str:
        return by_service.get(proc.service.replace("-", "_"), default)
    return route


def _beat_to_protobuf(default: str) -> Router:
    """Beat PRODUCER spans go to a protobuf file of their own, away from the worker spans they parent."""
    def route(proc: Proc) -> str:
        return "idealized/beat.binpb" if proc.pod.startswith(("mitxpro-beat", "learn-webapp-celery-beat")) \
            else default
    return route


IDEALIZED: tuple[Part, ...] = (
    Part(learner_takes_a_course, _to("idealized/learner.jsonl")),
    Part(course_authoring_and_publish,
         _to("idealized/authoring.jsonl", xpro_production_edxapp_cms_celery="idealized/authoring-workers.binpb",
             xpro_production_edxapp_lms_celery="idealized/authoring-workers.binpb")),
    Part(xpro_sso_and_user_provisioning, _to("idealized/xpro-sso.jsonl")),
    Part(xpro_enrollment_grade_and_run_sync, _beat_to_protobuf("idealized/xpro-enrollment.jsonl")),
    Part(ingestion_sources_etl, _beat_to_protobuf("idealized/etl.jsonl")),
    Part(noise, _to("idealized/noise.jsonl")),
)


def _by_system(proc: Proc) -> str:
    return {"openedx": "openedx.jsonl", "mitxpro": "mitxpro.jsonl"}.get(proc.namespace, "learn.binpb")


REALISTIC: tuple[Part, ...] = (
    Part(learner_takes_a_course, _by_system),
    Part(course_authoring_and_publish, _by_system),
    Part(xpro_sso_and_user_provisioning, _by_system),
    Part(xpro_enrollment_grade_and_run_sync, _by_system),
    Part(ingestion_sources_etl, _by_system),
    Part(lms_scheduled_token_cleanup, _by_system),
    Part(noise, _by_system),
)


def simulate(parts: Sequence[Part], idealized: bool) -> dict[str, list[ReadableSpan]]:
    """Run the scenarios and group their finished spans by output file."""
    world = World()
    procs = make_procs(idealized)
    files: dict[str, list[ReadableSpan]] = {}
    for part in parts:
        part.scenario(Sim(world, procs, part.scenario.__name__, idealized))
        for span in world.drain():
            files.setdefault(part.route(world.proc_of[span.resource]), []).append(span)
    return files


# ---------------------------------------------------------------------------------------------------------
# Writing: Collector-like batches, OTLP/JSON (spec form) and protobuf
# ---------------------------------------------------------------------------------------------------------

BATCH_WINDOW = 5 * SEC  # BatchSpanProcessor's default schedule delay
BATCH_MAX = 48


def batches(spans: Sequence[ReadableSpan]) -> list[list[ReadableSpan]]:
    """Spans in export order (by end time), cut into batches by time window and size."""
    ordered = sorted(spans, key=lambda s: (s.end_time, s.start_time, s.context.trace_id, s.context.span_id))
    out: list[list[ReadableSpan]] = []
    for span in ordered:
        if out and len(out[-1]) < BATCH_MAX and span.end_time - out[-1][0].end_time < BATCH_WINDOW:
            out[-1].append(span)
        else:
            out.append([span])
    return out


def _any_value(v: common_pb2.AnyValue) -> dict[str, Any]:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": v.string_value}
    if kind == "bool_value":
        return {"boolValue": v.bool_value}
    if kind == "int_value":
        return {"intValue": str(v.int_value)}
    if kind == "double_value":
        return {"doubleValue": v.double_value}
    if kind == "array_value":
        return {"arrayValue": {"values": [_any_value(x) for x in v.array_value.values]}}
    if kind == "kvlist_value":
        return {"kvlistValue": {"values": _key_values(v.kvlist_value.values)}}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(v.bytes_value).decode("ascii")}
    return {}


def _key_values(kvs: Sequence[common_pb2.KeyValue]) -> list[dict[str, Any]]:
    return [{"key": kv.key, "value": _any_value(kv.value)} for kv in kvs]


def _span_json(s: trace_pb2.Span) -> dict[str, Any]:
    d: dict[str, Any] = {"traceId": s.trace_id.hex(), "spanId": s.span_id.hex()}
    if s.trace_state:
        d["traceState"] = s.trace_state
    if s.parent_span_id:
        d["parentSpanId"] = s.parent_span_id.hex()
    if s.flags:
        d["flags"] = s.flags
    d.update({"name": s.name, "kind": int(s.kind), "startTimeUnixNano": str(s.start_time_unix_nano),
              "endTimeUnixNano": str(s.end_time_unix_nano)})
    if s.attributes:
        d["attributes"] = _key_values(s.attributes)
    if s.dropped_attributes_count:
        d["droppedAttributesCount"] = s.dropped_attributes_count
    if s.events:
        d["events"] = [{"timeUnixNano": str(e.time_unix_nano), "name": e.name, "attributes": _key_values(e.attributes)}
                       for e in s.events]
    if s.links:
        d["links"] = [_link_json(link) for link in s.links]
    status: dict[str, Any] = {}
    if s.status.message:
        status["message"] = s.status.message
    if s.status.code:
        status["code"] = int(s.status.code)
    d["status"] = status
    return d


def _link_json(link: trace_pb2.Span.Link) -> dict[str, Any]:
    d: dict[str, Any] = {"traceId": link.trace_id.hex(), "spanId": link.span_id.hex()}
    if link.trace_state:
        d["traceState"] = link.trace_state
    if link.attributes:
        d["attributes"] = _key_values(link.attributes)
    if link.flags:
        d["flags"] = link.flags
    return d


def request_json(req: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON of a request as the spec writes it: hex ids, integer enums, int64 as strings."""
    resource_spans = []
    for rs in req.resource_spans:
        scope_spans = []
        for ss in rs.scope_spans:
            scope: dict[str, Any] = {"name": ss.scope.name}
            if ss.scope.version:
                scope["version"] = ss.scope.version
            entry: dict[str, Any] = {"scope": scope, "spans": [_span_json(s) for s in ss.spans]}
            if ss.schema_url:
                entry["schemaUrl"] = ss.schema_url
            scope_spans.append(entry)
        item: dict[str, Any] = {"resource": {"attributes": _key_values(rs.resource.attributes)},
                                "scopeSpans": scope_spans}
        if rs.schema_url:
            item["schemaUrl"] = rs.schema_url
        resource_spans.append(item)
    return {"resourceSpans": resource_spans}


def encode_file(name: str, spans: Sequence[ReadableSpan]) -> bytes:
    """The bytes of one output file: JSON lines (one request per batch) or one protobuf request."""
    if name.endswith(".binpb"):
        ordered = [s for batch in batches(spans) for s in batch]
        return encode_spans(ordered).SerializeToString(deterministic=True)
    lines = [json.dumps(request_json(encode_spans(batch)), separators=(",", ":"), ensure_ascii=False)
             for batch in batches(spans)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def render(parts: Sequence[Part], idealized: bool) -> dict[str, bytes]:
    return {name: encode_file(name, spans) for name, spans in sorted(simulate(parts, idealized).items())}


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def compare_tree(expected: dict[str, bytes], root: Path, owned: Sequence[str]) -> list[str]:
    """Differences between freshly generated files and what is on disk under ``root``."""
    problems = [f"{root / n}: missing" for n in expected if not (root / n).is_file()]
    problems += [f"{root / n}: differs" for n, data in expected.items()
                 if (root / n).is_file() and (root / n).read_bytes() != data]
    for sub in owned:
        for path in sorted((root / sub).rglob("*") if (root / sub).is_dir() else []):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and rel not in expected:
                problems.append(f"{path}: not produced by the generator")
    return problems


def summary(files: dict[str, bytes]) -> str:
    rows = []
    for name, data in files.items():
        req = ExportTraceServiceRequest()
        spans, traces, lines = 0, set(), 1
        chunks = [data] if name.endswith(".binpb") else data.splitlines()
        lines = len(chunks)
        for chunk in chunks:
            if name.endswith(".binpb"):
                req.ParseFromString(chunk)
                ids = [s.trace_id.hex() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
            else:
                obj = json.loads(chunk)
                ids = [s["traceId"] for rs in obj["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
            spans += len(ids)
            traces.update(ids)
        rows.append(f"  {name:40} {lines:4} batch(es) {spans:5} spans {len(traces):4} traces {len(data):8} bytes")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="idealized set root (default: %(default)s)")
    parser.add_argument("--realistic-out", type=Path, default=DEFAULT_REALISTIC_OUT,
                        help="realistic-MIT set root (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="regenerate in a temporary directory and compare bytes with the files on disk")
    args = parser.parse_args(argv)
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        parser.error("OTEL_SDK_DISABLED=true turns the SDK's tracers into no-ops; unset it to generate traces")
    idealized = render(IDEALIZED, idealized=True)
    realistic = render(REALISTIC, idealized=False)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:  # written out too, so the check covers the write path
            write_tree(Path(tmp) / "i", idealized)
            write_tree(Path(tmp) / "r", realistic)
            fresh_i = {n: (Path(tmp) / "i" / n).read_bytes() for n in idealized}
            fresh_r = {n: (Path(tmp) / "r" / n).read_bytes() for n in realistic}
        problems = compare_tree(fresh_i, args.out, ["idealized"]) + compare_tree(fresh_r, args.realistic_out, ["."])
        for problem in problems:
            print(problem, file=sys.stderr)
        print("example traces are up to date" if not problems else
              "example traces are stale: run python examples/generate_traces.py", file=sys.stderr)
        return 1 if problems else 0
    write_tree(args.out, idealized)
    write_tree(args.realistic_out, realistic)
    print(f"{args.out}:\n{summary(idealized)}\n{args.realistic_out}:\n{summary(realistic)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
