"""tracegen: OpenTelemetry traces in, C4 architecture documentation out.

The public API is re-exported here; everything else is internal. The pipeline, one module per stage:
ingest -> assemble (``traces``) -> scenarios -> infer -> flows (model) -> render / serve / check.
"""

from tracegen.__about__ import __version__
from tracegen.errors import ConfigError, InputError, TracegenError
from tracegen.model import Element, FlowModel, Scenario, Step, System
from tracegen.spans import Link, Span, SpanKind

__all__ = [
    "__version__",
    "ConfigError",
    "Element",
    "FlowModel",
    "InputError",
    "Link",
    "Scenario",
    "Span",
    "SpanKind",
    "Step",
    "System",
    "TracegenError",
]
