"""The generated one-paragraph narrative of a scenario's steps."""

from __future__ import annotations

from dataclasses import replace

from tests._models import step
from tests._report_models import report_model
from tracegen.model import Element, Scenario
from tracegen.render.narrative import describe_scenario


def test_sync_scenario_reads_as_calls_and_database_reads() -> None:
    """A learner's request, then the service's database reads and (optional) writes, in order."""
    model = report_model()
    text = describe_scenario(model.scenarios[0], model)
    assert text == ("A learner calls the LMS (GET /courses/{course_id}/courseware). The LMS reads MySQL and in some "
                    "runs writes MySQL.")


def test_queue_hop_reads_as_one_clause_and_the_consumer_continues() -> None:
    """Producer → queue → consumer is "queues X on Q, which C runs"; the consumer's steps follow with "then"."""
    model = report_model()
    text = describe_scenario(replace(model.scenarios[1], description=""), model)
    assert text == ("xPRO calls the LMS (POST /api/enrollment/v1/enrollment). The LMS writes MySQL, then queues "
                    "update_course_in_cache on the edx.lms.core.default queue, which Studio runs. Studio then in "
                    "some runs calls S3 (PUT /course-export/{id}.tar.gz) and reads MySQL.")


def test_scheduled_scenario_opens_with_its_cadence() -> None:
    """A scheduled scenario starts "On a schedule (<cadence>), …"."""
    model = report_model()
    text = describe_scenario(model.scenarios[2], model)
    assert text.startswith("On a schedule (daily at 00:00 UTC), the xPRO beat queues sync_courseruns_data on the "
                           "xpro celery queue, which xPRO runs.")


def test_consecutive_reads_merge_and_long_scenarios_are_cut() -> None:
    """Reads of several databases merge into one clause; after six sentences the rest is counted."""
    model = report_model()
    mongo = Element("mongo", "modulestore", "database", "openedx", "MongoDB")
    steps = (step("1", "learner", "lms", "GET /x", "HTTPS"), step("2", "lms", "mysql", "SELECT a", "MySQL"),
             step("3", "lms", "mongo", "find", "MongoDB"))
    hops = tuple(step(str(4 + n), a, b, f"GET /{n}", "HTTPS")
                 for n, (a, b) in enumerate([("lms", "edx-cms"), ("edx-cms", "lms")] * 5))
    scenario = Scenario("long", "Long", "sync", "synchronous", 1, steps + hops)
    model = replace(model, elements=model.elements + (mongo,), scenarios=(scenario,))
    text = describe_scenario(scenario, model)
    assert text.startswith("A learner calls the LMS (GET /x). The LMS reads MySQL and MongoDB (modulestore) and "
                           "calls Studio (GET /0). Studio calls the LMS (GET /1).")
    assert text.endswith("Then 5 more steps: see the table below.")
    assert describe_scenario(scenario, model) == text


def test_no_steps_no_narrative() -> None:
    """A scenario without steps has nothing to tell."""
    model = report_model()
    assert describe_scenario(replace(model.scenarios[0], steps=()), model) == ""
