"""Hand-built flow models for rendering tests, so renderer tests do not depend on inference.

``xpro_model()`` is a small xPRO / Open edX picture: a learner, three containers in two systems, a MySQL database,
a Celery queue and S3 outside every system; one synchronous and one cross-service mixed scenario. Ids carry ``-``
and ``.`` on purpose (aliases must still be ``[a-z0-9_]``). ``many_scenarios(model, n)`` clones a scenario to reach
``n`` diagrams for the one-JVM test.
"""

from __future__ import annotations

from dataclasses import replace

from tracegen.model import Element, FlowModel, Histogram, Scenario, Step, System

__all__ = ["ELEMENT_IDS", "step", "xpro_model", "many_scenarios"]

ELEMENT_IDS = ("learner", "lms", "edx-cms", "mitxpro.web", "mysql", "celery.edx.lms.core.default",
               "s3.amazonaws.com")


def step(index: str, source: str, target: str, label: str, technology: str, *, is_async: bool = False,
         optional: bool = False, count: int = 10, traces: int = 10) -> Step:
    """A step with plausible statistics (which diagrams must ignore)."""
    return Step(index=index, source=source, target=target, label=label, technology=technology, is_async=is_async,
                count=count, traces=traces if not optional else traces // 2, optional=optional,
                latency=Histogram.of(12.5).merge(Histogram.of(40.0)), errors=0, provenance="test",
                exemplars=("0af7651916cd43dd8448eb211c80319c",))


def _systems() -> tuple[System, ...]:
    return (System("openedx", "Open edX", "The xPRO Open edX deployment"),
            System("mitxpro", "MIT xPRO", "The xPRO e-commerce site"))


def _elements() -> tuple[Element, ...]:
    return (
        Element("learner", "Learner", "person", description="A person taking a course"),
        Element("lms", "LMS", "container", "openedx", "Django", "Courseware and APIs"),
        Element("edx-cms", "Studio", "container", "openedx", "Django", "Course authoring"),
        Element("mitxpro.web", "xPRO", "container", "mitxpro", "Django", "Catalogue and orders"),
        Element("mysql", "MySQL", "database", "openedx", "MySQL", virtual=True, aliases=("edxapp",),
                why_virtual="client spans only"),
        Element("celery.edx.lms.core.default", "edx.lms.core.default", "queue", "openedx", "Celery", virtual=True),
        Element("s3.amazonaws.com", "S3", "external", None, "S3", "Course assets", virtual=True),
    )


def _sync_scenario() -> Scenario:
    steps = (
        step("1", "learner", "lms", "GET /courses/{course_id}/courseware", "HTTPS"),
        step("2", "lms", "mysql", "SELECT auth_user", "MySQL"),
        step("3", "lms", "mysql", "INSERT courseware_studentmodule", "MySQL", optional=True),
    )
    return Scenario("learner-takes-a-course", "Learner takes a course", "sync", "synchronous", 10, steps,
                    "A learner works through courseware in the LMS.")


def _mixed_scenario() -> Scenario:
    steps = (
        step("1", "mitxpro.web", "lms", "POST /api/enrollment/v1/enrollment", "HTTPS"),
        step("2", "lms", "mysql", "INSERT student_courseenrollment", "MySQL"),
        step("3", "lms", "celery.edx.lms.core.default", "update_course_in_cache", "Celery", is_async=True),
        step("4", "celery.edx.lms.core.default", "edx-cms", "update_course_in_cache", "Celery", is_async=True),
        step("5", "edx-cms", "s3.amazonaws.com", "PUT /course-export/{id}.tar.gz", "S3", optional=True),
        step("5", "edx-cms", "mysql", "SELECT course_overviews", "MySQL"),
    )
    return Scenario("xpro-enrollment-sync", "xPRO enrollment, grade & run sync", "mixed", "cross-service, mixed",
                    10, steps, "xPRO enrolls learners in the LMS.")


def xpro_model(**changes: object) -> FlowModel:
    """The xPRO-like model; keyword arguments replace FlowModel fields."""
    model = FlowModel(systems=_systems(), elements=_elements(), scenarios=(_sync_scenario(), _mixed_scenario()),
                      generator="tracegen 0.1.0", generated_at="2026-11-28T14:51:00Z", title="xPRO Open edX")
    return replace(model, **changes) if changes else model


def many_scenarios(model: FlowModel, total_diagrams: int) -> FlowModel:
    """``model`` with copies of its mixed scenario added until it renders ``total_diagrams`` diagrams."""
    fixed = 1 + len(model.systems)
    template = model.scenarios[-1]
    extra = tuple(replace(template, id=f"{template.id}-{n}", title=f"{template.title} #{n}")
                  for n in range(2, 2 + total_diagrams - fixed - len(model.scenarios)))
    return replace(model, scenarios=model.scenarios + extra)
