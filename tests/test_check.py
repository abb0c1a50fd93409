"""`tracegen check`: semantic drift between a committed baseline and today's traces, its reports and exit codes."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracegen.check import Drift, compare_models, format_junit, format_markdown
from tracegen.cli import cli
from tracegen.model import Source
from tracegen.modeljson import dump_model, load_model_dict, model_from_dict

from tests._check_world import build, write_pb
from tests._svgtools import requires_plantuml
from tests._world import BROWSER, Kind, World, model_of

EPOCH = {"SOURCE_DATE_EPOCH": "1798761600"}
LATER = {"SOURCE_DATE_EPOCH": "1798848000"}  # a day later: generated_at differs, nothing else

EXPECTED = {
    "new-call": [
        '+ step 4 lms → discovery "GET /api/v1/courses" (sync, HTTPS)',
        '+ element discovery "discovery" (container, Django)',
    ],
    "celery-task": [
        '~ step 3 lms → ecommerce "POST /api/baskets": sync → async via queue-ecommerce-default "create_basket"',
        "~ element ecommerce: technology Django → Celery",
        '+ element queue-ecommerce-default "ecommerce.default" (queue, Celery)',
    ],
    "no-database": [
        '- step 2 lms → db-mysql-edxapp "SELECT" (sync, MySQL)',
        '- element db-mysql-edxapp "edxapp" (database, MySQL)',
    ],
    "renamed-route": [
        '~ scenario id lms-get-courses-course-id → lms-get-learn-course-id, title "lms: GET /courses/{course_id}" '
        '→ "lms: GET /learn/{course_id}"',
        '~ step 1 user → lms: label "GET /courses/{course_id}" → "GET /learn/{course_id}"',
    ],
}


@pytest.fixture(autouse=True)
def _no_ambient_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder so no tracegen.toml of the checkout is picked up."""
    monkeypatch.chdir(tmp_path)


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env or LATER)


def _baseline(tmp_path: Path) -> Path:
    """Convert the baseline traces into ``tmp_path/baseline`` the way a team commits them."""
    write_pb(tmp_path / "base-traces" / "traces.binpb", build())
    out = tmp_path / "baseline"
    result = _run("convert", str(tmp_path / "base-traces"), "--out", str(out), "--renderer", "none", env=EPOCH)
    assert result.exit_code == 0, result.output
    return out


def _check(baseline: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> Result:
    return _run("check", "--baseline", str(baseline), "--renderer", "none", *extra, *map(str, inputs))


def _drift_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("  ") and line.strip()[:1] in "+-~"]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}



# --- the model comparison ---------------------------------------------------------------------------------------

def test_a_model_compared_with_itself_has_no_drift() -> None:
    """compare_models(m, m) is empty, also after a round trip through model.json."""
    model = model_of(_decoded(build()))
    assert not compare_models(model, model)
    assert compare_models(model, model).items == ()
    again = model_from_dict(load_model_dict(dump_model(model), "model.json"))
    assert compare_models(again, model).items == ()


def _decoded(spans):  # -> list[tracegen Span]
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from tracegen.ingest.otlp_proto import decode_otlp_proto

    return decode_otlp_proto(encode_spans(spans).SerializeToString(), "check.pb")


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_compare_models_gives_the_exact_drift_of_each_change(variant: str) -> None:
    """Each derived trace set's drift is exactly its change: the same lines the CLI prints."""
    drift = compare_models(model_of(_decoded(build())), model_of(_decoded(build(*(variant,) * 3))))
    assert [item.line for item in drift.items] == EXPECTED[variant]


def test_technology_and_etl_row_changes_are_tilde_items() -> None:
    """A changed step/element technology and an ETL row's transport, cadence and brittleness are ~ drift."""
    model = model_of(_decoded(build()))
    row = Source(source="xPRO API", consumer="learn-webapp", transport="REST", cadence="daily at 05:00 UTC",
                 scenario="cms-post-publish")
    base = replace(model, sources=(row,))
    db = next(e for e in model.elements if e.kind == "database")
    scenario = model.scenario("lms-get-courses-course-id")
    steps = tuple(replace(s, technology="PostgreSQL") if s.target == db.id else s for s in scenario.steps)
    current = replace(model, elements=tuple(replace(e, technology="PostgreSQL") if e.id == db.id else e
                                            for e in model.elements),
                      scenarios=tuple(replace(s, steps=steps) if s.id == scenario.id else s
                                      for s in model.scenarios),
                      sources=(replace(row, transport="HTML scrape", cadence="hourly", brittle=True),))
    assert [item.line for item in compare_models(base, current).items] == [
        '~ source "xPRO API" → "learn-webapp": transport REST → HTML scrape',
        '~ source "xPRO API" → "learn-webapp": cadence daily at 05:00 UTC → hourly',
        '~ source "xPRO API" → "learn-webapp": robust → brittle',
        '~ step 2 lms → db-mysql-edxapp "SELECT": technology MySQL → PostgreSQL',
        "~ element db-mysql-edxapp: technology MySQL → PostgreSQL",
    ]


def test_unknown_cadence_in_a_short_run_is_a_note_not_drift() -> None:
    """An ETL row whose cadence this run could not infer ("scheduled") does not contradict a known one."""
    model = model_of(_decoded(build()))
    row = Source(source="MITx Online", consumer="learn-webapp", transport="REST", cadence="daily",
                 scenario="cms-post-publish")
    drift = compare_models(replace(model, sources=(row,)),
                           replace(model, sources=(replace(row, cadence="scheduled"),)))
    assert not drift and "not known on both sides" in drift.notes[0]


# --- the CLI: each change, exact lines and exit codes -----------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_check_reports_each_change_with_exact_lines_and_exit_1(tmp_path: Path, variant: str) -> None:
    """A changed architecture exits 1 and prints exactly its +/-/~ lines, grouped under its scenario."""
    baseline = _baseline(tmp_path)
    before = _snapshot(baseline)
    traces = write_pb(tmp_path / variant / "traces.binpb", build(*(variant,) * 3))
    result = _check(baseline, traces)
    assert result.exit_code == 1, result.output
    assert _drift_lines(result.stdout) == EXPECTED[variant]
    assert result.stdout.startswith(f"tracegen check: drift: {len(EXPECTED[variant])} changes in 1 scenario\n")
    assert _snapshot(baseline) == before


def test_same_traces_reordered_and_split_are_no_drift_and_update_touches_nothing(tmp_path: Path) -> None:
    """The baseline's traces in reverse order, split over two files, exit 0 and --update leaves every file alone."""
    baseline = _baseline(tmp_path)
    before = _snapshot(baseline)
    spans = list(reversed(build()))
    first = write_pb(tmp_path / "split" / "a.binpb", spans[: len(spans) // 2])
    write_pb(tmp_path / "split" / "b.binpb", spans[len(spans) // 2:])
    plain = _check(baseline, first.parent)
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == "tracegen check: no drift (2 scenarios compared)\n"
    updated = _check(baseline, first.parent, extra=("--update",))
    assert updated.exit_code == 0, updated.output
    assert _snapshot(baseline) == before


def test_update_rewrites_the_baseline_with_exactly_what_convert_writes(tmp_path: Path) -> None:
    """check --update on drift writes the same file set and bytes as convert of the same traces."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "changed" / "traces.binpb", build(*("new-call",) * 3))
    result = _run("check", "--baseline", str(baseline), "--update", "--renderer", "none", str(traces), env=EPOCH)
    assert result.exit_code == 0, result.output
    assert "baseline" in result.stderr and "updated" in result.stderr
    converted = tmp_path / "converted"
    assert _run("convert", str(traces), "--out", str(converted), "--renderer", "none", env=EPOCH).exit_code == 0
    assert {k: v[0] for k, v in _snapshot(baseline).items()} == {k: v[0] for k, v in _snapshot(converted).items()}
    assert _check(baseline, traces).exit_code == 0


@requires_plantuml
def test_update_with_the_real_renderer_writes_what_convert_writes(tmp_path: Path) -> None:
    """With PlantUML, check --update writes the same files as convert, SVGs included."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "changed" / "traces.binpb", build(*("celery-task",) * 3))
    result = _run("check", "--baseline", str(baseline), "--update", str(traces), env=EPOCH)
    assert result.exit_code == 0, result.output
    converted = tmp_path / "converted"
    assert _run("convert", str(traces), "--out", str(converted), env=EPOCH).exit_code == 0
    assert {k: v[0] for k, v in _snapshot(baseline).items()} == {k: v[0] for k, v in _snapshot(converted).items()}
    assert any(name.endswith(".svg") for name in _snapshot(baseline))


def test_update_removes_the_diagram_of_a_renamed_scenario(tmp_path: Path) -> None:
    """After --update on a renamed route, the old scenario's diagram is gone and the new one is there."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "renamed" / "traces.binpb", build(*("renamed-route",) * 3))
    assert _check(baseline, traces, extra=("--update",)).exit_code == 0
    assert not (baseline / "diagrams" / "lms-get-courses-course-id.puml").exists()
    assert (baseline / "diagrams" / "lms-get-learn-course-id.puml").is_file()


# --- not drift by default ---------------------------------------------------------------------------------------

def test_order_and_optionality_changes_are_drift_only_with_strict(tmp_path: Path) -> None:
    """A database read moved after the basket call, seen in two of three runs: exit 0, --strict exits 1."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "moved" / "traces.binpb", build("late-database", "late-database", "no-database"))
    assert _check(baseline, traces).exit_code == 0
    strict = _check(baseline, traces, extra=("--strict",))
    assert strict.exit_code == 1
    assert _drift_lines(strict.stdout) == [
        '~ step 2 lms → ecommerce "POST /api/baskets": position 3 → 2 among unchanged steps',
        '~ step 3 lms → db-mysql-edxapp "SELECT": required → optional',
        '~ step 3 lms → db-mysql-edxapp "SELECT": position 2 → 3 among unchanged steps',
    ]


def test_an_optional_step_not_exercised_is_not_drift(tmp_path: Path) -> None:
    """A baseline step seen in only some runs (optional) and absent today is a note, not drift."""
    write_pb(tmp_path / "base-traces" / "t.binpb", build("baseline", "baseline", "no-database"))
    baseline = tmp_path / "baseline"
    assert _run("convert", str(tmp_path / "base-traces"), "--out", str(baseline), "--renderer", "none").exit_code == 0
    traces = write_pb(tmp_path / "today" / "t.binpb", build(*("no-database",) * 3))
    result = _check(baseline, traces, extra=("--format", "json"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["drift"] is False and doc["items"] == []
    assert any("optional step 2 lms → db-mysql-edxapp" in note for note in doc["notes"])


def test_min_count_ignores_a_step_seen_fewer_times(tmp_path: Path) -> None:
    """A new call in one run of three is drift by default and ignored with --min-count 2."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "sampled" / "t.binpb", build("baseline", "baseline", "new-call"))
    default = _check(baseline, traces)
    assert default.exit_code == 1
    assert _drift_lines(default.stdout) == EXPECTED["new-call"]
    assert _check(baseline, traces, extra=("--min-count", "2")).exit_code == 0


def test_unexercised_scenarios_are_coverage_unless_require_all(tmp_path: Path) -> None:
    """Traces of one scenario: the other is only listed (exit 0); --require-all makes it and its elements drift."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "partial" / "t.binpb", build(publish=False))
    result = _check(baseline, traces)
    assert result.exit_code == 0, result.output
    assert "not exercised by these traces (1): cms-post-publish" in result.stdout
    strict = _check(baseline, traces, extra=("--require-all",))
    assert strict.exit_code == 1
    assert _drift_lines(strict.stdout) == [
        '- scenario cms-post-publish "cms: POST /publish" not exercised by these traces',
        '- element cms "cms" (container, Django)',
        '- element cms-worker "cms-worker" (container, Celery)',
        '- element queue-edx-cms-core-default "edx.cms.core.default" (queue, Celery)',
    ]


def test_traces_matching_no_declared_scenario_are_listed(tmp_path: Path) -> None:
    """With a config that declares only the publish journey, the learner traces are listed as unmatched."""
    config = tmp_path / "tracegen.toml"
    config.write_text('[[scenarios]]\ntitle = "Author publishes"\nmatch = [{ service = "cms" }]\n')
    write_pb(tmp_path / "base-traces" / "t.binpb", build())
    baseline = tmp_path / "baseline"
    assert _run("convert", str(tmp_path / "base-traces"), "--out", str(baseline), "--config", str(config),
                "--renderer", "none").exit_code == 0
    result = _check(baseline, tmp_path / "base-traces", extra=("--config", str(config)))
    assert result.exit_code == 0, result.output
    assert "traces matching no declared scenario: lms-get-courses-course-id (3 traces)" in result.stdout


# --- errors: exit 2 ---------------------------------------------------------------------------------------------

def test_bad_or_missing_baseline_exits_2(tmp_path: Path) -> None:
    """A missing model.json, one that is not JSON, and one of another schema all exit 2 naming the file."""
    traces = write_pb(tmp_path / "t" / "t.binpb", build())
    missing = _check(tmp_path / "nowhere", traces)
    assert missing.exit_code == 2 and "no baseline" in missing.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text("{not json")
    assert _check(bad, traces).exit_code == 2
    (bad / "model.json").write_text('{"schema": "tracegen.model/9"}')
    result = _check(bad, traces)
    assert result.exit_code == 2 and "model.json" in result.stderr
    (bad / "model.json").write_text('{"schema": "tracegen.model/1", "scenarios": [{"id": "x"}]}')
    assert _check(bad, traces).exit_code == 2


def test_unreadable_or_missing_traces_exit_2_not_1(tmp_path: Path) -> None:
    """A truncated trace file, a missing input and an input without spans exit 2, so 1 always means drift."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "t" / "t.binpb", build())
    traces.write_bytes(traces.read_bytes()[:-7])
    truncated = _check(baseline, traces)
    assert truncated.exit_code == 2 and str(traces) in truncated.stderr
    assert _check(baseline, tmp_path / "missing.binpb").exit_code == 2
    (tmp_path / "empty").mkdir()
    empty = _check(baseline, tmp_path / "empty")
    assert empty.exit_code == 2 and "no spans" in empty.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """No --baseline, no input, or a bad --min-count are usage errors (exit 2)."""
    traces = write_pb(tmp_path / "t" / "t.binpb", build())
    assert _run("check", str(traces)).exit_code == 2
    assert _run("check", "--baseline", str(tmp_path)).exit_code == 2
    assert _run("check", "--baseline", str(tmp_path), "--min-count", "0", str(traces)).exit_code == 2


def test_update_without_a_baseline_creates_it(tmp_path: Path) -> None:
    """--update on a folder without model.json bootstraps the baseline; a plain check then exits 0."""
    traces = write_pb(tmp_path / "t" / "t.binpb", build())
    result = _check(tmp_path / "new-baseline", traces, extra=("--update",))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new-baseline" / "model.json").is_file()
    assert _check(tmp_path / "new-baseline", traces).exit_code == 0


# --- machine-readable outputs -----------------------------------------------------------------------------------

def test_json_junit_and_markdown_outputs_describe_the_same_drift(tmp_path: Path) -> None:
    """--format json lists the items, --junit writes parseable XML with one failure, Markdown has the diagram."""
    baseline = _baseline(tmp_path)
    traces = write_pb(tmp_path / "c" / "t.binpb", build(*("no-database",) * 3))
    junit = tmp_path / "report" / "check.xml"
    result = _check(baseline, traces, extra=("--format", "json", "--junit", str(junit)))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["drift"] is True
    assert [f"{i['sign']} {i['message']}" for i in doc["items"]] == EXPECTED["no-database"]
    assert [i["kind"] for i in doc["items"]] == ["step-removed", "element-removed"]
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"lms-get-courses-course-id", "cms-post-publish", "elements and sources"}
    assert suite.get("failures") == "2" and suite.get("tests") == "3"
    assert EXPECTED["no-database"][0] in cases["lms-get-courses-course-id"].find("failure").text
    assert cases["cms-post-publish"].find("failure") is None
    markdown = _check(baseline, traces, extra=("--format", "markdown"))
    assert markdown.exit_code == 1
    assert "```diff\n" + EXPECTED["no-database"][0] + "\n```" in markdown.stdout
    assert "```plantuml\n@startuml" in markdown.stdout
    assert "@enduml\n```" in markdown.stdout


def test_markdown_fences_outlast_backticks_in_untrusted_labels() -> None:
    """A route label full of backticks cannot close the comment's code blocks early."""
    model = model_of(_decoded(build()))
    scenario = model.scenarios[0]
    evil = replace(scenario, steps=(replace(scenario.steps[0], label="GET /````x<script>"), *scenario.steps[1:]))
    current = replace(model, scenarios=(evil, *model.scenarios[1:]))
    drift = compare_models(model, current)
    text = format_markdown(drift, {f"diagrams/{scenario.id}.puml": "@startuml\n' ````\n@enduml\n"})
    assert "`````diff\n" in text and "`````plantuml\n" in text
    assert "<script>" not in text.split("`````diff")[0]


def test_junit_of_no_drift_has_no_failures_and_skips_unexercised() -> None:
    """Without drift the JUnit report parses with zero failures; a scenario not exercised is skipped."""
    model = model_of(_decoded(build()))
    partial = model_of(_decoded(build(publish=False)))
    root = ET.fromstring(format_junit(compare_models(model, partial)))
    suite = root.find("testsuite")
    assert suite.get("failures") == "0" and suite.get("skipped") == "1"
    assert ET.fromstring(format_junit(Drift())).find("testsuite").get("tests") == "1"


# --- the bundled example traces ---------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "traces"


def _learner_with_a_new_call(path: Path) -> Path:
    """One more "Learner takes a course" unit load (SDK-made) in which the LMS also calls a new service."""
    w = World()
    root = w.span("xpro-production-edxapp-lms", "GET", Kind.SERVER, 0, 120, resource={"service.namespace": "openedx"},
                  attributes={"http.method": "GET", "http.route": "xblock/<usage_key_string>",
                              "http.user_agent": BROWSER})
    client = w.span("xpro-production-edxapp-lms", "GET", Kind.CLIENT, 10, 60, parent=root,
                    scope="opentelemetry.instrumentation.requests", resource={"service.namespace": "openedx"},
                    attributes={"http.method": "GET", "http.url": "https://recommender.internal/api/v1/recommend"})
    w.span("recommender", "GET api/v1/recommend", Kind.SERVER, 12, 58, parent=client,
           attributes={"http.method": "GET", "http.route": "api/v1/recommend"})
    return write_pb(path, w.exporter.get_finished_spans())


EXAMPLE_NEW_CALL = [
    '+ step 2 xpro-production-edxapp-lms → recommender "GET /api/v1/recommend" (sync, HTTPS)',
    '+ element recommender "recommender" (container, Django)',
]


@pytest.mark.skipif(not (EXAMPLES / "tracegen.toml").is_file(), reason="example traces not generated")
def test_example_traces_baseline_then_a_new_downstream_call(tmp_path: Path) -> None:
    """The xPRO example traces as baseline: rechecked they are no drift; with an SDK trace adding a call, exit 1."""
    traces = tmp_path / "traces"
    shutil.copytree(EXAMPLES, traces)
    baseline = tmp_path / "baseline"
    assert _run("convert", str(traces), "--out", str(baseline), "--renderer", "none", env=EPOCH).exit_code == 0
    before = _snapshot(baseline)
    same = _check(baseline, traces, extra=("--update",))
    assert same.exit_code == 0, same.output
    assert "no drift (7 scenarios compared)" in same.stdout
    assert _snapshot(baseline) == before
    _learner_with_a_new_call(traces / "idealized" / "zz-new-call.binpb")
    result = _check(baseline, traces)
    assert result.exit_code == 1, result.output
    assert _drift_lines(result.stdout) == EXAMPLE_NEW_CALL
    assert "\nscenario learner-takes-a-course \"Learner takes a course\"\n" in result.stdout
