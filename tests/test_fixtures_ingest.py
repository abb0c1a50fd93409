"""The public fixtures (../shared/fixtures/public, see MANIFEST.md): every OTLP-family file ingests with the
expected span, trace and service counts; every Jaeger and Zipkin file is refused as "not supported yet"."""

from __future__ import annotations


import pytest
import yaml

from tracegen.errors import UnsupportedFormatError
from tracegen.ingest.files import IngestReport, read_spans
from tracegen.ingest.otlp_json import decode_otlp_json
from tracegen.inspect import inspect_spans

from tests.conftest import FIXTURES, requires_fixtures

pytestmark = requires_fixtures

_SG = "tempo/modules/generator/processor/servicegraphs/testdata"
_CC = "collector-contrib/connector/servicegraphconnector/testdata"

# path -> (spans, traces, services), spans and services as MANIFEST.md's inventory states them.
OTLP_JSON = {
    "jaeger-ui/packages/jaeger-ui/src/utils/fixtures/otlp2jaeger-multi-in-combined.json": (4, 1, 1),
    "jaeger/cmd/jaeger/internal/extension/jaegerquery/internal/fixture/otlp2jaeger-in.json": (2, 1, 1),
    "jaeger/internal/storage/integration/fixtures/traces/example_trace.json": (5, 1, 3),
    "jaeger/internal/storage/integration/fixtures/traces/link_attributes_trace.json": (1, 1, 1),
    "jaeger/internal/storage/v2/memory/fixtures/otel_traces_01.json": (4, 2, 1),
    "otel-proto/examples/trace.json": (1, 1, 1),
    "tempo/cmd/tempo-vulture/testdata/trace.json": (6, 1, 1),
    f"{_SG}/trace-with-both-db-attributes.json": (19, 1, 3),
    f"{_SG}/trace-with-db-namespace.json": (19, 1, 3),
    f"{_SG}/trace-with-db-system-and-system-name.json": (19, 1, 3),
    f"{_SG}/trace-with-db-system-name.json": (19, 1, 3),
    f"{_SG}/trace-with-expired-edges.json": (5, 1, 2),
    f"{_SG}/trace-with-failed-requests.json": (15, 1, 2),
    f"{_SG}/trace-with-queue-database.json": (19, 1, 3),
    f"{_SG}/trace-with-queue-database2.json": (19, 1, 3),
    f"{_SG}/trace-with-queue-database3.json": (19, 1, 3),
    f"{_SG}/trace-with-queue-database4.json": (19, 1, 3),
    f"{_SG}/trace-with-queue-database5.json": (19, 1, 3),
    f"{_SG}/trace-with-virtual-nodes.json": (3, 2, 3),
    f"{_SG}/trace-without-database-name.json": (19, 1, 3),
}
OTLP_YAML = {
    f"{_CC}/extra-dimensions-queue-db-trace.yaml": (2, 1, 2),
    f"{_CC}/messaging-system-trace.yaml": (2, 1, 2),
    f"{_CC}/virtual-node-label-client-trace.yaml": (1, 1, 1),
    f"{_CC}/virtual-node-label-trace.yaml": (2, 2, 2),
}
JAEGER = [
    "elastic-apm-server/testdata/jaeger/batch_0.json",
    "elastic-apm-server/testdata/jaeger/batch_1.json",
    "jaeger-ui/packages/jaeger-ui/src/components/TracePage/TraceFlamegraph/testTrace.json",
    "jaeger-ui/packages/jaeger-ui/src/components/TracePage/TraceGraph/testTrace.json",
    "jaeger-ui/packages/jaeger-ui/src/components/TracePage/TraceStatistics/tableValuesTestTrace/spanAmongEachOtherGroupedAndSpans.json",
    "jaeger-ui/packages/jaeger-ui/src/components/TracePage/TraceStatistics/tableValuesTestTrace/spanLongerAsParent.json",
    "jaeger-ui/packages/jaeger-ui/src/components/TracePage/TraceStatistics/tableValuesTestTrace/testTraceNormal.json",
    "jaeger-ui/packages/jaeger-ui/src/components/TracePage/TraceTimelineViewer/genaiTestTrace.json",
    "jaeger-ui/packages/jaeger-ui/src/utils/fixtures/oltp2jaeger-multi-out.json",
    "jaeger/cmd/anonymizer/app/uiconv/fixtures/trace_success.json",
    "jaeger/cmd/jaeger/internal/extension/jaegerquery/internal/fixture/otlp2jaeger-out.json",
    "jaeger/internal/uimodel/converter/v1/json/fixtures/domain_01.json",
    "jaeger/internal/uimodel/converter/v1/json/fixtures/ui_01.json",
]
ZIPKIN = sorted(
    str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("zipkin/**/*.json")
) if FIXTURES.is_dir() else []


def _counts(spans) -> tuple[int, int, int]:
    return len(spans), len({s.trace_id for s in spans}), len({s.service for s in spans})


def test_the_lists_cover_every_trace_file_in_the_fixtures():
    """Every JSON/YAML trace file of the fixtures is in exactly one of the lists (none forgotten)."""
    listed = set(OTLP_JSON) | set(OTLP_YAML) | set(JAEGER) | set(ZIPKIN)
    on_disk = {
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.suffix in (".json", ".yaml")
        and p.name != "expected_edges.json"
        and "otel-demo" not in p.parts  # Tracetest specs, no traces
    }
    assert on_disk == listed
    assert len(ZIPKIN) == 12


@pytest.mark.parametrize(("path", "expected"), sorted(OTLP_JSON.items()), ids=sorted(OTLP_JSON))
def test_otlp_json_fixture_ingests(path, expected):
    """Each OTLP/JSON fixture (hex or base64 ids, int or string enums) reads without error with the stated counts."""
    report = IngestReport()
    spans = list(read_spans([str(FIXTURES / path)], report=report))
    assert _counts(spans) == expected
    assert not report.skipped and not report.warnings
    assert all(len(s.trace_id) == 32 and len(s.span_id) == 16 for s in spans)


@pytest.mark.parametrize(("path", "expected"), sorted(OTLP_YAML.items()), ids=sorted(OTLP_YAML))
def test_collector_yaml_golden_ingests_as_otlp_json(path, expected):
    """The Collector's YAML goldens, loaded with PyYAML, decode as OTLP/JSON with the stated counts."""
    doc = yaml.safe_load((FIXTURES / path).read_text())
    spans = decode_otlp_json(doc, str(path))
    assert _counts(spans) == expected


@pytest.mark.parametrize("path", JAEGER + ZIPKIN)
def test_jaeger_and_zipkin_fixtures_are_refused(path):
    """Jaeger (UI, query, domain, api_v2) and Zipkin (v2 list, single span) files get "not supported yet"."""
    with pytest.raises(UnsupportedFormatError) as info:
        list(read_spans([str(FIXTURES / path)]))
    message = str(info.value)
    assert message.startswith(f"{FIXTURES / path}: is ")
    assert "not supported yet" in message
    assert ("Zipkin" if path.startswith("zipkin") else "Jaeger") in message


def test_fixture_details_survive_decoding():
    """Decoded fixture spans carry what inference needs: Tempo's base64 ids and enum names, links, errors."""
    tempo = list(read_spans([str(FIXTURES / _SG / "trace-with-failed-requests.json")]))
    assert sum(s.error for s in tempo) >= 2
    assert any(s.status_message.startswith("null value in column") for s in tempo)
    vulture = list(read_spans([str(FIXTURES / "tempo/cmd/tempo-vulture/testdata/trace.json")]))
    assert {s.trace_id for s in vulture} == {"3149195ffb0bec05347b48efe8ecc1b0"}
    links = list(read_spans([str(FIXTURES / "jaeger/internal/storage/integration/fixtures/traces/link_attributes_trace.json")]))
    assert len(links[0].links) == 3
    proto_example = list(read_spans([str(FIXTURES / "otel-proto/examples/trace.json")]))
    assert proto_example[0].trace_id == "5b8efff798038103d269b633813fc60c"


def test_inspect_over_the_whole_otlp_fixture_set_is_stable():
    """Inspecting all OTLP/JSON fixtures at once is deterministic whatever the input order."""
    paths = [str(FIXTURES / p) for p in sorted(OTLP_JSON)]
    forward = inspect_spans(read_spans(paths))
    backward = inspect_spans(read_spans(paths[::-1]))
    assert forward == backward
    assert forward["semantic_conventions"]["flavour"] == "mixed"
    assert forward["links"]["total"] >= 3
