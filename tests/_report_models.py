"""Report-test models: the shared xPRO model (``tests/_models.py``) plus what only the report shows.

``report_model()`` adds a scheduled scenario (beat → queue → worker → an external API and an HTML scrape), the
"Ingestion sources (ETL)" rows (one annotated, one inferred and brittle), diagnostics for the "Instrumentation
gaps" section, and optionally a hostile scenario title to prove the page escapes trace text.
"""

from __future__ import annotations

from dataclasses import replace

from tests._models import step, xpro_model
from tracegen.model import Diagnostics, Element, FlowModel, Scenario, Source

__all__ = ["HOSTILE", "report_model"]

HOSTILE = "<script>alert(1)</script> & \"quotes\""


def _scheduled() -> Scenario:
    steps = (
        step("1", "xpro-beat", "celery.xpro", "sync_courseruns_data", "Celery", is_async=True),
        step("2", "celery.xpro", "mitxpro.web", "sync_courseruns_data", "Celery", is_async=True),
        step("3", "mitxpro.web", "lms", "GET /api/courses/v1/courses/", "HTTPS"),
        step("4", "mitxpro.web", "catalog-page", "GET /catalog.html", "HTTPS", optional=True),
    )
    return Scenario("daily-course-run-sync", "Daily course-run sync", "mixed", "cross-service, mixed", 30, steps,
                    trigger="scheduled", cadence="daily at 00:00 UTC")


def report_model(*, hostile: bool = False) -> FlowModel:
    """The xPRO model with a scheduled scenario, ETL sources and diagnostics; ``hostile`` puts markup in a title."""
    base = xpro_model()
    elements = base.elements + (
        Element("xpro-beat", "xPRO beat", "container", "mitxpro", "Celery beat"),
        Element("celery.xpro", "xpro celery", "queue", "mitxpro", "Redis", virtual=True,
                why_virtual="named from the producer's messaging.destination; the broker sends no spans"),
        Element("catalog-page", "partner catalog", "external", None, "HTML", virtual=True),
    )
    scenarios = base.scenarios + (_scheduled(),)
    if hostile:
        first = scenarios[0]
        scenarios = (replace(first, title=HOSTILE, description=""),) + scenarios[1:]
    sources = (
        Source("MITx Pro (grades/course-run API consumer)", "mitxpro.web", "REST (edx-api-client)", "daily cron",
               "grades + course-run data", "courses/tasks.py", inferred=False, scenario="daily-course-run-sync"),
        Source("partner catalog", "mitxpro.web", "HTML scrape", "daily at 00:00 UTC", "course catalogue",
               "courses/sync_external_course_runs.py", brittle=True,
               why="HTML scrape (response content type text/html): breaks when the page layout changes",
               scenario="daily-course-run-sync"),
    )
    diagnostics = Diagnostics(spans=1234, traces=50, orphan_spans=3, unresolved_links=2,
                              consumers_without_producer=("Studio: update_search_index",),
                              dropped={"health checks (GET /heartbeat)": 12, "exports to the collector": 40},
                              notes=("sampling at 25 % in MIT Learn",))
    return replace(base, elements=elements, scenarios=scenarios, sources=sources, diagnostics=diagnostics)
