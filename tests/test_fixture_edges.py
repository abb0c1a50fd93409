"""Every edge the public fixtures' sources state (Tempo's tests, the Collector's goldens) is found by inference.

The expectations come from ``fixtures/public/expected_edges.json``; nothing is restated here. An element matches a
stated name by id, display name or alias; a messaging edge counts when drawn through its queue
(producer → queue → consumer). Stated non-edges must be absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracegen.ingest.files import read_spans
from tracegen.ingest.otlp_json import decode_otlp_json
from tracegen.model import FlowModel
from tracegen.render.puml import render_puml
from tracegen.render.svg import render_svgs

from tests._svgtools import CountingRunner, requires_plantuml
from tests._world import model_of
from tests.conftest import FIXTURES, requires_fixtures

pytestmark = requires_fixtures
_EXPECTED_FILE = FIXTURES / "expected_edges.json"
EXPECTED = json.loads(_EXPECTED_FILE.read_text(encoding="utf-8")) if _EXPECTED_FILE.is_file() else []
CASES = [entry for entry in EXPECTED
         if entry["file"].startswith(("tempo/", "collector-contrib/")) and entry["edges"]]


def _model(relative: str) -> FlowModel:
    path = FIXTURES / relative
    if path.suffix == ".yaml":
        spans = decode_otlp_json(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    else:
        spans = list(read_spans([str(path)]))
    return model_of(spans)


def _names(model: FlowModel, element_id: str) -> set[str]:
    element = model.element(element_id)
    if element is None:
        return {element_id}
    return {element.id, element.name, *element.aliases}


def _has_edge(model: FlowModel, edge: dict[str, Any]) -> bool:
    steps = [step for scenario in model.scenarios for step in scenario.steps]
    if edge["type"] == "async-messaging":
        for into in steps:
            if into.is_async and edge["from"] in _names(model, into.source):
                for out in steps:
                    if out.is_async and out.source == into.target and edge["to"] in _names(model, out.target):
                        return True
        return False
    return any(edge["from"] in _names(model, s.source) and edge["to"] in _names(model, s.target) for s in steps)


@pytest.mark.parametrize("case", CASES, ids=[Path(c["file"]).name for c in CASES])
def test_stated_edges_are_inferred(case: dict[str, Any]) -> None:
    """Each stated edge of a fixture appears in the model, and each stated non-edge does not."""
    model = _model(case["file"])
    missing = [edge for edge in case["edges"] if not _has_edge(model, edge)]
    assert not missing, missing
    for edge in case.get("not_edges", []):
        assert not _has_edge(model, edge), edge


def test_expired_edges_trace_invents_no_services() -> None:
    """Tempo's expired-edges trace (one server edge unmatched) yields containers only for its own two services."""
    model = _model("tempo/modules/generator/processor/servicegraphs/testdata/trace-with-expired-edges.json")
    services = {"mythical-server", "mythical-requester"}
    containers = {e.id for e in model.elements if e.kind == "container"}
    assert containers <= services


@requires_plantuml
def test_every_fixture_models_diagrams_render_in_real_plantuml(tmp_path: Path) -> None:
    """The diagrams of every OTLP fixture (real-world names and shapes) are accepted by PlantUML, in one JVM."""
    paths: list[Path] = []
    for index, entry in enumerate(e for e in EXPECTED if e["file"].startswith(("tempo/", "collector-contrib/"))):
        for rel, text in render_puml(_model(entry["file"])).items():
            path = tmp_path / f"f{index}-{Path(rel).name}"
            path.write_text(text, encoding="utf-8")
            paths.append(path)
    runner = CountingRunner()
    rendered = render_svgs(paths, tmp_path / "svg", runner=runner)
    assert len(rendered) == len(paths) and len(runner.commands) == 1
