"""Trace sets for the drift-check tests: a baseline architecture and the changes a pull request can make.

Built with the real SDK (:mod:`tests._world`) and written as OTLP protobuf files, so ``tracegen check`` reads them
exactly as it reads a CI job's traces. Each variant keeps the same ids and times as the baseline except where it
changes the architecture, so a test's expected drift is the change and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

from tests._world import BROWSER, Kind, World

__all__ = ["VARIANTS", "build", "write_pb"]

VARIANTS = ("baseline", "new-call", "celery-task", "no-database", "renamed-route", "late-database")
CELERY = "opentelemetry.instrumentation.celery"
DBAPI = "opentelemetry.instrumentation.dbapi"
REQUESTS = "opentelemetry.instrumentation.requests"
TASK = "ecommerce.tasks.create_basket"


def _learner(w: World, base_ms: float, variant: str) -> None:
    """One learner loading a unit: LMS reads MySQL and asks ecommerce for a basket."""
    route = "learn/<str:course_id>/" if variant == "renamed-route" else "courses/<str:course_id>/"
    root = w.span("lms", "GET", Kind.SERVER, base_ms, base_ms + 80,
                  attributes={"http.method": "GET", "http.route": route, "http.user_agent": BROWSER})
    if variant != "no-database":
        db_ms = base_ms + (65 if variant == "late-database" else 2)
        w.span("lms", "SELECT", Kind.CLIENT, db_ms, db_ms + 4, parent=root, scope=DBAPI,
               attributes={"db.system": "mysql", "db.name": "edxapp", "net.peer.name": "mysql.internal",
                           "db.statement": "SELECT * FROM courseware_studentmodule"})
    if variant == "celery-task":
        producer = w.span("lms", f"apply_async/{TASK}", Kind.PRODUCER, base_ms + 10, base_ms + 12, parent=root,
                          scope=CELERY, attributes={"celery.action": "apply_async", "celery.task_name": TASK,
                                                    "messaging.destination": "ecommerce.default"})
        w.span("ecommerce", f"run/{TASK}", Kind.CONSUMER, base_ms + 20, base_ms + 60, parent=producer,
               scope=CELERY, attributes={"celery.action": "run", "celery.task_name": TASK,
                                         "celery.state": "SUCCESS", "messaging.destination": "ecommerce.default"})
    else:
        client = w.span("lms", "POST", Kind.CLIENT, base_ms + 10, base_ms + 60, parent=root, scope=REQUESTS,
                        attributes={"http.method": "POST", "http.url": "https://ecommerce.internal/api/baskets/"})
        w.span("ecommerce", "POST api/baskets/", Kind.SERVER, base_ms + 12, base_ms + 58, parent=client,
               attributes={"http.method": "POST", "http.route": "api/baskets/"})
    if variant == "new-call":
        client = w.span("lms", "GET", Kind.CLIENT, base_ms + 62, base_ms + 75, parent=root, scope=REQUESTS,
                        attributes={"http.method": "GET", "http.url": "https://discovery.internal/api/v1/courses/"})
        w.span("discovery", "GET api/v1/courses/", Kind.SERVER, base_ms + 63, base_ms + 74, parent=client,
               attributes={"http.method": "GET", "http.route": "api/v1/courses/"})


def _publish(w: World, base_ms: float) -> None:
    """An author publishing in Studio: CMS queues a search-index update that a worker runs."""
    task = "cms.djangoapps.contentstore.tasks.update_search_index"
    root = w.span("cms", "POST", Kind.SERVER, base_ms, base_ms + 100,
                  attributes={"http.method": "POST", "http.route": "publish/", "http.user_agent": BROWSER})
    producer = w.span("cms", f"apply_async/{task}", Kind.PRODUCER, base_ms + 50, base_ms + 55, parent=root,
                      scope=CELERY, attributes={"celery.action": "apply_async", "celery.task_name": task,
                                                "messaging.destination": "edx.cms.core.default"})
    w.span("cms-worker", f"run/{task}", Kind.CONSUMER, base_ms + 300, base_ms + 900, parent=producer, scope=CELERY,
           attributes={"celery.action": "run", "celery.task_name": task, "celery.state": "SUCCESS",
                       "messaging.destination": "edx.cms.core.default"})


def build(*runs: str, publish: bool = True) -> list[ReadableSpan]:
    """The finished SDK spans of one learner trace per entry of ``runs`` (its variant; default three baseline
    runs), each followed by a publish trace unless ``publish`` is False. One world, so trace ids never repeat."""
    variants = runs or ("baseline",) * 3
    w = World()
    for run, variant in enumerate(variants):
        assert variant in VARIANTS, variant
        _learner(w, run * 10_000.0, variant)
        if publish:
            _publish(w, run * 10_000.0 + 5_000.0)
    return list(w.exporter.get_finished_spans())


def write_pb(path: Path, spans: Sequence[ReadableSpan]) -> Path:
    """Write spans as one OTLP ExportTraceServiceRequest (protobuf), the way a file exporter would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_spans(list(spans)).SerializeToString())
    return path
