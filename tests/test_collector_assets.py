"""The deployment assets in collector/ are coherent: pipelines reference defined components, and traces reach
tracegen the way its docs say (no Collector binary runs here, so this checks structure, not behaviour)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

COLLECTOR = Path(__file__).resolve().parents[1] / "collector"
CONFIGS = sorted(COLLECTOR.glob("otelcol-*.yaml"))


def _components(config: dict, section: str) -> set[str]:
    return set((config.get(section) or {}).keys())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_pipelines_reference_only_defined_components(path: Path) -> None:
    """Every receiver, processor and exporter a pipeline names is defined in the same file."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(section, [])) <= _components(config, section), (path.name, section)


def test_sidecar_config_tees_traces_to_tracegen_with_retries() -> None:
    """The tee config exports to tracegen's documented loopback port with retry_on_failure, beside the backend."""
    config = yaml.safe_load((COLLECTOR / "otelcol-sidecar.yaml").read_text(encoding="utf-8"))
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    assert len(exporters) >= 2
    tracegen = config["exporters"]["otlp/tracegen"]
    assert tracegen["endpoint"].startswith("127.0.0.1:") and tracegen["retry_on_failure"]["enabled"]


def test_scale_out_config_routes_by_trace_id() -> None:
    """The scale-out config load-balances by trace id, so each tracegen instance sees whole traces."""
    config = yaml.safe_load((COLLECTOR / "otelcol-loadbalancing.yaml").read_text(encoding="utf-8"))
    assert config["exporters"]["loadbalancing"]["routing_key"] == "traceID"
    assert "loadbalancing" in config["service"]["pipelines"]["traces"]["exporters"]


def test_kubernetes_snippet_runs_tracegen_serve_with_probes() -> None:
    """The pod snippet runs `tracegen serve` and wires /healthz and /readyz probes."""
    docs = list(yaml.safe_load_all((COLLECTOR / "k8s-sidecar.yaml").read_text(encoding="utf-8")))
    text = yaml.safe_dump(docs)
    assert "serve" in text and "/healthz" in text and "/readyz" in text
