"""Inference rules (DESIGN.md, tracegen/infer.py), one test per rule, each built with the real SDK."""

from __future__ import annotations

from tracegen.config import parse_config
from tracegen.model import FlowModel, Scenario

from tests._world import BROWSER, Kind, World, model_of

DJANGO = {"http.method": "GET", "http.scheme": "https"}


def _only(model: FlowModel) -> Scenario:
    assert len(model.scenarios) == 1, [s.id for s in model.scenarios]
    return model.scenarios[0]


def _edges(scenario: Scenario) -> list[tuple[str, str, str, bool]]:
    return [(s.source, s.target, s.label, s.is_async) for s in scenario.steps]


def test_client_server_pair_is_one_sync_step_labelled_by_the_server_route() -> None:
    """A CLIENT in one service with a SERVER child in another is a sync call labelled by http.route."""
    w = World()
    root = w.span("web", "GET /home", Kind.SERVER, 0, 50, attributes={**DJANGO, "http.route": "home",
                                                                        "http.user_agent": BROWSER})
    client = w.span("web", "GET", Kind.CLIENT, 5, 40, parent=root, scope="opentelemetry.instrumentation.requests",
                    attributes={"http.method": "GET", "http.url": "https://catalog.internal/api/items/123"})
    w.span("catalog", "GET api/items/<int:pk>", Kind.SERVER, 10, 35, parent=client,
           attributes={"http.method": "GET", "http.route": "api/items/<int:pk>"})
    scenario = _only(model_of(w.spans()))
    assert _edges(scenario) == [("user", "web", "GET /home", False),
                                ("web", "catalog", "GET /api/items/{pk}", False)]
    assert scenario.steps[1].provenance == "call: CLIENT→SERVER across services"
    assert scenario.mode == "sync" and scenario.mode_wording == "synchronous"


def test_redirect_chain_with_several_server_children_gives_several_steps() -> None:
    """One CLIENT span covering a redirect chain yields one step per SERVER hop."""
    w = World()
    root = w.span("xpro", "GET /sync", Kind.SERVER, 0, 100, attributes={**DJANGO, "http.route": "sync"})
    client = w.span("xpro", "GET", Kind.CLIENT, 5, 90, parent=root,
                    attributes={"http.method": "GET", "http.url": "https://lms/auth/login/x"})
    w.span("lms", "GET auth/login", Kind.SERVER, 6, 20, parent=client,
           attributes={"http.method": "GET", "http.route": "auth/login/<str:backend>/"})
    w.span("xpro", "GET oauth2/authorize", Kind.SERVER, 25, 40, parent=client,
           attributes={"http.method": "GET", "http.route": "oauth2/authorize/"})
    w.span("lms", "GET auth/complete", Kind.SERVER, 45, 80, parent=client,
           attributes={"http.method": "GET", "http.route": "auth/complete/<str:backend>/"})
    labels = [label for _, _, label, _ in _edges(_only(model_of(w.spans())))]
    assert labels == ["GET /sync", "GET /auth/login/{backend}", "GET /oauth2/authorize",
                      "GET /auth/complete/{backend}"]


def test_unanswered_database_client_becomes_a_virtual_database_with_aliases() -> None:
    """A db CLIENT span with no server child is a sync step to a database named by db.name, aliases kept."""
    w = World()
    root = w.span("lms", "GET /x", Kind.SERVER, 0, 10, attributes={**DJANGO, "http.route": "x"})
    w.span("lms", "SELECT", Kind.CLIENT, 1, 3, parent=root, scope="opentelemetry.instrumentation.dbapi",
           attributes={"db.system": "mysql", "db.name": "edxapp", "net.peer.name": "rds.example.com",
                       "db.statement": "SELECT * FROM auth_user"})
    model = model_of(w.spans())
    step = _only(model).steps[1]
    assert (step.source, step.target, step.label, step.technology) == ("lms", "db-mysql-edxapp", "SELECT", "MySQL")
    db = model.element("db-mysql-edxapp")
    assert db is not None and db.kind == "database" and db.virtual
    assert {"edxapp", "rds.example.com", "mysql"} <= set(db.aliases)


def test_meaningless_values_give_way_to_the_next_naming_attribute() -> None:
    """A Redis database index and a bare IP do not name an element when a host name exists."""
    w = World()
    root = w.span("api", "GET /x", Kind.SERVER, 0, 10, attributes={**DJANGO, "http.route": "x"})
    w.span("api", "GET", Kind.CLIENT, 1, 3, parent=root,
           attributes={"db.system": "redis", "db.name": "0", "net.peer.name": "cache.internal",
                       "network.peer.address": "10.0.0.7"})
    step = _only(model_of(w.spans())).steps[1]
    assert step.target == "db-redis-cache-internal"


def test_virtual_peer_named_like_a_known_host_moves_to_that_service() -> None:
    """An unanswered CLIENT to a host that a traced service serves goes to that service (no context needed)."""
    w = World()
    root = w.span("xpro", "POST /order", Kind.SERVER, 0, 50, attributes={**DJANGO, "http.method": "POST",
                                                                          "http.route": "order"})
    w.span("xpro", "POST", Kind.CLIENT, 5, 40, parent=root,
           attributes={"http.method": "POST", "http.url": "https://courses.example.edu/api/enroll"})
    w.span("lms", "POST api/enroll", Kind.SERVER, 100, 140, base_ns=0,
           attributes={"http.method": "POST", "http.route": "api/enroll", "http.host": "courses.example.edu"})
    model = model_of(w.spans())
    order = next(s for s in model.scenarios if "order" in s.id)
    assert ("xpro", "lms", "POST /api/enroll", False) in _edges(order)
    assert "resolved to a known service" in order.steps[-1].provenance


def test_celery_producer_consumer_is_async_through_the_routing_key_queue() -> None:
    """Celery PRODUCER → CONSUMER (no messaging.system) draws producer → queue → consumer, labelled by task."""
    w = World()
    celery = "opentelemetry.instrumentation.celery"
    root = w.span("cms", "POST /publish", Kind.SERVER, 0, 100, attributes={**DJANGO, "http.method": "POST",
                                                                            "http.route": "publish"})
    task = "cms.djangoapps.contentstore.tasks.update_search_index"
    producer = w.span("cms", f"apply_async/{task}", Kind.PRODUCER, 50, 55, parent=root, scope=celery,
                      attributes={"celery.action": "apply_async", "celery.task_name": task,
                                  "messaging.destination": "edx.cms.core.default"})
    w.span("cms", "LPUSH", Kind.CLIENT, 51, 52, parent=producer, scope="opentelemetry.instrumentation.redis",
           attributes={"db.system": "redis", "db.statement": "LPUSH ? ?"})
    consumer = w.span("cms-worker", f"run/{task}", Kind.CONSUMER, 300, 900, parent=producer, scope=celery,
                      attributes={"celery.action": "run", "celery.task_name": task, "celery.state": "SUCCESS",
                                  "messaging.destination": "edx.cms.core.default"})
    w.span("cms-worker", "SETEX PUBLISH", Kind.CLIENT, 890, 895, parent=consumer,
           scope="opentelemetry.instrumentation.redis", attributes={"db.system": "redis"})
    model = model_of(w.spans())
    scenario = _only(model)
    assert _edges(scenario)[1:] == [("cms", "queue-edx-cms-core-default", "update_search_index", True),
                                    ("queue-edx-cms-core-default", "cms-worker", "update_search_index", True)]
    queue = model.element("queue-edx-cms-core-default")
    assert queue is not None and queue.kind == "queue" and queue.technology == "Celery"
    assert scenario.mode == "mixed"


def test_link_from_consumer_in_another_trace_continues_the_producers_scenario() -> None:
    """A root CONSUMER linked to a PRODUCER elsewhere joins that scenario, whichever trace arrives first."""
    w = World()
    root = w.span("learn", "GET /import", Kind.SERVER, 0, 20, attributes={**DJANGO, "http.route": "import"})
    producer = w.span("learn", "orders publish", Kind.PRODUCER, 5, 6, parent=root,
                      attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"})
    consumer = w.span("billing", "orders process", Kind.CONSUMER, 500, 600, links=[producer],
                      attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"})
    w.span("billing", "INSERT", Kind.CLIENT, 510, 520, parent=consumer,
           attributes={"db.system": "postgresql", "db.name": "billing"})
    spans = w.spans()
    forward = model_of(spans)
    backward = model_of(list(reversed(spans)))
    assert forward == backward
    scenario = _only(forward)
    assert ("queue-orders", "billing", "orders", True) in _edges(scenario)
    assert ("billing", "db-postgresql-billing", "INSERT", False) in _edges(scenario)
    assert scenario.traces == 1 and forward.diagnostics.unresolved_links == 0
    assert forward.element("db-postgresql-billing").name == "billing (PostgreSQL)"


def test_root_server_caller_is_a_person_for_browsers_and_a_program_otherwise() -> None:
    """A browser user agent gives a person; python-requests gives an external program named by its agent."""
    w = World()
    w.span("shop", "GET /cart", Kind.SERVER, 0, 5, attributes={**DJANGO, "http.route": "cart",
                                                               "http.user_agent": BROWSER})
    w.span("shop", "POST /hook", Kind.SERVER, 10, 15, attributes={"http.method": "POST", "http.route": "hook",
                                                                  "user_agent.original": "python-requests/2.32"})
    model = model_of(w.spans())
    callers = {s.entries[0]: (s.steps[0].source, s.trigger) for s in model.scenarios}
    assert callers == {"shop GET /cart": ("user", "person"),
                       "shop POST /hook": ("ext-python-requests", "program")}
    assert model.element("ext-python-requests").kind == "external"


def test_root_consumer_recurring_every_30_minutes_is_scheduled() -> None:
    """Root CONSUMER runs 30 minutes apart become a scheduled scenario with a Scheduler and its cadence."""
    w = World()
    task = "courseware.tasks.retry_failed_edx_enrollments"
    for run in range(4):
        w.span("xpro", f"run/{task}", Kind.CONSUMER, run * 30 * 60_000 + 3, run * 30 * 60_000 + 900,
               scope="opentelemetry.instrumentation.celery",
               attributes={"celery.action": "run", "celery.task_name": task, "messaging.destination": "celery"})
    scenario = _only(model_of(w.spans()))
    assert scenario.trigger == "scheduled" and scenario.cadence == "every 30 min"
    assert scenario.steps[0].source == "scheduler" and scenario.steps[0].is_async


def test_irregular_root_consumer_has_an_unknown_external_producer() -> None:
    """Root CONSUMER runs at irregular times are triggered by an unknown producer named from its attributes."""
    w = World()
    for start in (0, 7_000, 61_000):
        w.span("billing", "orders process", Kind.CONSUMER, start, start + 50,
               attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"})
    scenario = _only(model_of(w.spans()))
    assert scenario.trigger == "unknown" and scenario.cadence == ""
    assert scenario.steps[0].source == "ext-kafka-producer"


def test_beat_producer_roots_are_scheduled_daily() -> None:
    """A beat's root PRODUCER runs at 00:00 UTC on consecutive days: scheduled, "daily at 00:00 UTC"."""
    w = World()
    task = "courses.tasks.sync_courseruns_data"
    for day in range(3):
        base = day * 86_400_000
        beat = w.span("xpro", f"apply_async/{task}", Kind.PRODUCER, base, base + 2,
                      scope="opentelemetry.instrumentation.celery",
                      attributes={"celery.action": "apply_async", "celery.task_name": task,
                                  "messaging.destination": "celery"})
        w.span("xpro-worker", f"run/{task}", Kind.CONSUMER, base + 10, base + 400, parent=beat,
               scope="opentelemetry.instrumentation.celery",
               attributes={"celery.action": "run", "celery.task_name": task, "messaging.destination": "celery"})
    scenario = _only(model_of(w.spans()))
    assert (scenario.trigger, scenario.cadence, scenario.traces) == ("scheduled", "daily at 00:00 UTC", 3)


def test_health_checks_and_telemetry_exports_are_dropped_and_counted() -> None:
    """Health-check traces and exports to a collector leave the picture; the diagnostics count them."""
    w = World()
    w.span("lms", "GET heartbeat", Kind.SERVER, 0, 1, attributes={**DJANGO, "http.route": "heartbeat"})
    root = w.span("lms", "GET /x", Kind.SERVER, 10, 20, attributes={**DJANGO, "http.route": "x"})
    w.span("lms", "POST", Kind.CLIENT, 11, 12, parent=root,
           attributes={"http.method": "POST", "http.url": "http://otel-collector:4318/v1/traces"})
    model = model_of(w.spans())
    assert [s.entries for s in model.scenarios] == [("lms GET /x",)]
    assert len(model.scenarios[0].steps) == 1
    assert model.diagnostics.dropped == {"health check": 1, "telemetry export": 1}


def test_ids_in_paths_never_split_a_scenario() -> None:
    """Requests without a route but with different ids in the path are one templated operation."""
    w = World()
    for number, start in (("PX000123", 0), ("PX000456", 100)):
        w.span("track", "GET", Kind.SERVER, start, start + 5,
               attributes={"http.method": "GET", "http.target": f"/track/{number}?x=1"})
    scenario = _only(model_of(w.spans()))
    assert scenario.entries == ("track GET /track/{id}",) and scenario.traces == 2


def test_repeated_identical_calls_collapse_into_one_step_with_a_count() -> None:
    """Three identical SELECTs under one request are one step seen three times."""
    w = World()
    root = w.span("lms", "GET /x", Kind.SERVER, 0, 50, attributes={**DJANGO, "http.route": "x"})
    for i in range(3):
        w.span("lms", "SELECT", Kind.CLIENT, 2 + 10 * i, 8 + 10 * i, parent=root,
               attributes={"db.system": "mysql", "db.name": "edxapp", "db.statement": "SELECT 1"})
    steps = _only(model_of(w.spans())).steps
    assert len(steps) == 2 and steps[1].count == 3 and steps[1].traces == 1


def test_celery_retry_run_is_a_retry_not_a_new_step() -> None:
    """A consumer run in state RETRY counts as a retry of its step."""
    w = World()
    task = "hubspot.tasks.sync_deal"
    root = w.span("xpro", "POST /order", Kind.SERVER, 0, 100, attributes={"http.method": "POST",
                                                                           "http.route": "order"})
    producer = w.span("xpro", f"apply_async/{task}", Kind.PRODUCER, 10, 12, parent=root,
                      attributes={"celery.action": "apply_async", "celery.task_name": task})
    for start, state in ((200, "RETRY"), (800, "SUCCESS")):
        w.span("xpro-worker", f"run/{task}", Kind.CONSUMER, start, start + 50, parent=producer,
               attributes={"celery.action": "run", "celery.task_name": task, "celery.state": state})
    step = _only(model_of(w.spans())).steps[-1]
    assert (step.target, step.count, step.retries) == ("xpro-worker", 1, 1)


def test_internal_span_with_db_system_is_a_database_call() -> None:
    """The native Elasticsearch client's INTERNAL span with db.system makes a database step."""
    w = World()
    root = w.span("cms-worker", "run/index", Kind.CONSUMER, 0, 100,
                  attributes={"celery.action": "run", "celery.task_name": "search.index"})
    w.span("cms-worker", "bulk", Kind.INTERNAL, 10, 40, parent=root, scope="elasticsearch-api",
           attributes={"db.system": "elasticsearch", "db.operation": "bulk",
                       "url.full": "https://search.example.com:443/_bulk", "server.address": "search.example.com"})
    steps = _only(model_of(w.spans())).steps
    assert (steps[-1].target, steps[-1].label, steps[-1].technology) == (
        "db-elasticsearch-search-example-com", "bulk", "Elasticsearch")


def test_declared_journey_joins_entries_and_numbers_them_in_rule_order() -> None:
    """A config rule joins two entry signatures; the second entry's steps come after the first's."""
    config = parse_config({
        "systems": {"xpro": {"name": "xPRO"}, "openedx": {"name": "Open edX"}},
        "services": {"xpro": {"system": "xpro"}, "lms": {"system": "openedx"}},
        "scenarios": [{"title": "Enrollment", "match": [{"service": "xpro", "operation": "POST /order"},
                                                         {"service": "xpro", "span_name": "apply_async/*"}]}],
    })
    w = World()
    beat = w.span("xpro", "apply_async/retry", Kind.PRODUCER, 0, 1,
                  attributes={"celery.action": "apply_async", "celery.task_name": "retry"})
    w.span("xpro", "run/retry", Kind.CONSUMER, 2, 9, parent=beat,
           attributes={"celery.action": "run", "celery.task_name": "retry"})
    root = w.span("xpro", "POST /order", Kind.SERVER, 1000, 1050, attributes={"http.method": "POST",
                                                                               "http.route": "order"})
    client = w.span("xpro", "POST", Kind.CLIENT, 1010, 1040, parent=root,
                    attributes={"http.method": "POST", "http.url": "https://lms/api/enroll"})
    w.span("lms", "POST api/enroll", Kind.SERVER, 1012, 1038, parent=client,
           attributes={"http.method": "POST", "http.route": "api/enroll"})
    scenario = _only(model_of(w.spans(), config))
    assert scenario.id == "enrollment" and scenario.declared
    assert [s.label for s in scenario.steps] == ["POST /order", "POST /api/enroll", "retry", "retry"]
    assert scenario.mode_wording == "cross-service, mixed"


def test_explicit_scenario_attribute_wins_over_inference() -> None:
    """A tracegen.scenario attribute names the scenario, whatever the entry signature."""
    w = World()
    w.span("shop", "GET /a", Kind.SERVER, 0, 5, attributes={**DJANGO, "http.route": "a",
                                                            "tracegen.scenario": "Buyer checks out"})
    w.span("shop", "GET /b", Kind.SERVER, 10, 15, attributes={**DJANGO, "http.route": "b",
                                                              "tracegen.scenario": "Buyer checks out"})
    scenario = _only(model_of(w.spans()))
    assert (scenario.id, scenario.title, scenario.traces) == ("buyer-checks-out", "Buyer checks out", 2)


def test_step_seen_in_some_traces_only_is_optional() -> None:
    """A call made by one request of two is marked optional; the common one is not."""
    w = World()
    for i, with_cache in enumerate((True, False)):
        root = w.span("lms", "GET /x", Kind.SERVER, i * 100, i * 100 + 50, attributes={**DJANGO,
                                                                                       "http.route": "x"})
        if with_cache:
            w.span("lms", "GET", Kind.CLIENT, i * 100 + 5, i * 100 + 6, parent=root,
                   attributes={"db.system": "redis", "net.peer.name": "cache"})
    steps = _only(model_of(w.spans())).steps
    assert [(s.target, s.optional) for s in steps] == [("lms", False), ("db-redis-cache", True)]


def test_declared_elements_and_steps_appear_marked_declared() -> None:
    """Config can add what no instrumentation shows; the model marks it declared."""
    config = parse_config({
        "elements": [{"id": "sftp", "name": "Partner SFTP", "kind": "external"}],
        "scenarios": [{"id": "checkout", "title": "Checkout", "match": [{"service": "shop"}]}],
        "steps": [{"scenario": "checkout", "from": "shop", "to": "sftp", "label": "nightly export",
                   "async": True}],
    })
    w = World()
    w.span("shop", "GET /cart", Kind.SERVER, 0, 5, attributes={**DJANGO, "http.route": "cart"})
    model = model_of(w.spans(), config)
    last = _only(model).steps[-1]
    assert (last.source, last.target, last.label, last.is_async, last.declared) == (
        "shop", "sftp", "nightly export", True, True)
    assert model.element("sftp").declared and model.element("sftp").name == "Partner SFTP"


def test_environment_and_service_exclusions_drop_spans_and_count_them() -> None:
    """noise.environments keeps one environment; noise.exclude_services hides a service's spans."""
    config = parse_config({"noise": {"environments": ["production"], "exclude_services": ["sidecar-*"]}})
    w = World()
    root = w.span("shop", "GET /cart", Kind.SERVER, 0, 50, attributes={**DJANGO, "http.route": "cart"},
                  resource={"deployment.environment.name": "production"})
    client = w.span("shop", "GET", Kind.CLIENT, 5, 40, parent=root, resource={"deployment.environment.name":
                                                                               "production"},
                    attributes={"http.method": "GET", "http.url": "http://localhost:9000/x"})
    w.span("sidecar-proxy", "GET /x", Kind.SERVER, 6, 39, parent=client,
           resource={"deployment.environment.name": "production"},
           attributes={"http.method": "GET", "http.route": "/x"})
    w.span("shop", "GET /cart", Kind.SERVER, 100, 150, attributes={**DJANGO, "http.route": "cart"},
           resource={"deployment.environment.name": "staging"})
    model = model_of(w.spans(), config)
    scenario = _only(model)
    assert scenario.traces == 1
    assert "sidecar-proxy" not in {e.id for e in model.elements}
    assert model.diagnostics.dropped == {"excluded service": 1, "other environment": 1}


def test_timer_triggered_function_runs_every_hour_are_scheduled() -> None:
    """A FaaS root span with faas.trigger=timer, run hourly, is a scheduled scenario with its cadence."""
    w = World()
    for run in range(3):
        root = w.span("report-fn", "report-fn", Kind.SERVER, run * 3_600_000, run * 3_600_000 + 300,
                      attributes={"faas.trigger": "timer", "faas.cron": "0 * * * *"})
        w.span("report-fn", "PutObject", Kind.CLIENT, run * 3_600_000 + 10, run * 3_600_000 + 50, parent=root,
               attributes={"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": "PutObject",
                           "server.address": "s3.amazonaws.com"})
    scenario = _only(model_of(w.spans()))
    assert (scenario.trigger, scenario.cadence) == ("scheduled", "hourly")
    assert (scenario.steps[0].source, scenario.steps[0].target, scenario.steps[0].is_async) == (
        "scheduler", "report-fn", True)


def test_program_caller_names_ignore_versions() -> None:
    """Callers named by user agent keep one identity across library upgrades (no version in the id)."""
    w = World()
    for start, agent in ((0, "social-auth-4.5.4"), (100, "social-auth-4.6.0")):
        w.span("xpro", "GET api/users/me", Kind.SERVER, start, start + 5,
               attributes={"http.method": "GET", "http.route": "api/users/me", "http.user_agent": agent})
    scenario = _only(model_of(w.spans()))
    assert scenario.steps[0].source == "ext-social-auth" and scenario.steps[0].count == 2


def test_consumer_without_context_is_fed_by_the_publishers_of_its_message() -> None:
    """A root consumer with no link or parent takes its trigger from traced publishers of the same topic."""
    w = World()
    root = w.span("checkout", "POST /order", Kind.SERVER, 0, 20, attributes={"http.method": "POST",
                                                                              "http.route": "order"})
    w.span("checkout", "orders publish", Kind.PRODUCER, 5, 6, parent=root,
           attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"})
    w.span("accounting", "orders process", Kind.CONSUMER, 500, 600,
           attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"})
    model = model_of(w.spans())
    consumer = next(s for s in model.scenarios if s.entries[0].startswith("accounting"))
    assert consumer.trigger == "message"
    assert [(s.source, s.target, s.is_async) for s in consumer.steps][:2] == [
        ("checkout", "queue-orders", True), ("queue-orders", "accounting", True)]
    assert "ext-kafka-producer" not in {e.id for e in model.elements}


def test_client_without_peer_attributes_is_named_by_its_connection_spans() -> None:
    """A bare CLIENT span takes its peer's name from its own tcp.connect child (net.peer.name)."""
    w = World()
    root = w.span("api", "GET /x", Kind.SERVER, 0, 50, attributes={**DJANGO, "http.route": "x"})
    client = w.span("api", "log_to_loki", Kind.CLIENT, 5, 40, parent=root)
    w.span("api", "tcp.connect", Kind.INTERNAL, 6, 8, parent=client,
           attributes={"net.peer.name": "loki", "net.peer.port": 3100})
    model = model_of(w.spans())
    step = _only(model).steps[-1]
    assert step.target == "ext-loki"
    assert "tcp.connect" in model.element("ext-loki").why_virtual
