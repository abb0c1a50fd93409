"""Helpers for the receiver tests: a fake clock, a sidecar on free ports, and a World whose spans also go live.

:class:`LiveWorld` builds the same real SDK spans as :class:`tests._world.World` (one ``TracerProvider`` per
service) and gives every provider a ``BatchSpanProcessor`` with an official OTLP exporter as well, so the very same
``ReadableSpan`` objects reach tracegen twice: through the in-memory exporter (for ``convert``'s model) and over
the network (for the sidecar's).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from tracegen.config import Config
from tracegen.modeljson import model_to_dict
from tracegen.model import FlowModel
from tracegen.outputs import OutputOptions
from tracegen.receiver.sidecar import Sidecar, SidecarOptions

from tests._world import World, mixed_traces, model_of

__all__ = ["FakeClock", "LiveWorld", "comparable", "make_sidecar", "mixed_traces", "post", "convert_model"]


class FakeClock:
    """An injected clock: seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LiveWorld(World):
    """A :class:`World` whose providers also export through ``exporter_factory()`` (an official exporter)."""

    def __init__(self, exporter_factory: Callable[[], SpanExporter] | None = None) -> None:
        super().__init__()
        self.factory = exporter_factory
        self.providers: list[TracerProvider] = []

    def tracer(self, service: str, scope: str = "opentelemetry.instrumentation.django", **resource: str) -> Any:
        key = f"{service}|{scope}"
        if key not in self.tracers:
            provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}),
                                      id_generator=self.ids)
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            if self.factory is not None:
                provider.add_span_processor(BatchSpanProcessor(self.factory(), schedule_delay_millis=20,
                                                               max_export_batch_size=64))
            self.providers.append(provider)
            self.tracers[key] = provider.get_tracer(scope)
        return self.tracers[key]

    def flush(self, timeout_ms: int = 20_000) -> bool:
        """Export everything ended so far; True when every provider's exporter succeeded in time."""
        return all(provider.force_flush(timeout_ms) for provider in self.providers)

    def close(self) -> None:
        """Shut every provider down (stops the batch processors' threads)."""
        for provider in self.providers:
            provider.shutdown()


def make_sidecar(out: Path, clock: FakeClock, config: Config | None = None, **changes: Any) -> Sidecar:
    """A started sidecar on free loopback ports writing ``out`` (no SVG rendering), clocks injected."""
    options = SidecarOptions(out_dir=out, grpc="127.0.0.1:0", http="127.0.0.1:0", idle_seconds=5.0,
                             write_interval=3600.0, retry_after=0.05, output=OutputOptions(renderer="none"))
    for key, value in changes.items():
        options = _replace(options, key, value)
    sidecar = Sidecar(config or Config(), options, clock=clock, wall=lambda: 1_800_000_000.0,
                      environ={"SOURCE_DATE_EPOCH": "1800000000"})
    sidecar.start()
    return sidecar


def _replace(options: SidecarOptions, key: str, value: Any) -> SidecarOptions:
    from dataclasses import replace

    return replace(options, **{key: value})


def comparable(model: FlowModel | Mapping[str, Any]) -> dict[str, Any]:
    """A model as a dict without what legitimately differs between runs (generator, generated_at, state)."""
    doc = dict(model_to_dict(model)) if isinstance(model, FlowModel) else dict(model)
    for key in ("generated_at", "generator", "state"):
        doc.pop(key, None)
    return doc


def convert_model(w: World, config: Config | None = None) -> dict[str, Any]:
    """What ``tracegen convert`` makes of the world's spans (the reference every receiver test compares to)."""
    return comparable(model_of(w.spans(), config))


def post(url: str, body: bytes, content_type: str = "application/json",
         headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST and return ``(status, headers, body)``, without raising on HTTP errors."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def get(url: str) -> tuple[int, bytes]:
    """GET and return ``(status, body)``, without raising on HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def json_body(data: bytes) -> Any:
    """Parse a JSON response body."""
    return json.loads(data or b"{}")
