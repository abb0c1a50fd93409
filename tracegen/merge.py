"""Merge ``model.json`` files (sidecar shards, per-job runs) into one model. No I/O.

Rules:
- each document must carry its accumulator ``state`` (every tracegen run writes it); a model without one cannot be
  merged exactly and is refused, naming the document;
- the states are folded with :meth:`FlowAccumulator.merge`, which is commutative and associative, so any order and
  any grouping of shards gives the same model — the same model one run over all their traces gives, provided each
  trace was wholly on one shard (the Collector's ``loadbalancing`` exporter routes by ``traceID`` for that);
- a consumer on one shard linked to a producer on another still stitches: its continuation waits in the first
  shard's state and resolves against the second's producer index during the merge;
- the config given here (not the shards') names and groups: shards made with another config are merged with a
  warning, because their scenario keys were decided with theirs.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from tracegen.config import Config
from tracegen.errors import BaselineError
from tracegen.flows import FlowAccumulator, build_model
from tracegen.model import FlowModel

__all__ = ["merge_models", "merge_states"]

logger = logging.getLogger(__name__)


def merge_states(docs: Sequence[Mapping[str, Any]], config: Config) -> FlowAccumulator:
    """One accumulator holding every document's state."""
    acc = FlowAccumulator(config)
    for number, doc in enumerate(docs, start=1):
        state = doc.get("state")
        if not isinstance(state, Mapping):
            raise BaselineError(f"model #{number} ({doc.get('generator', 'unknown generator')}) has no 'state': "
                                "re-run it with this tracegen to get a mergeable model.json")
        if doc.get("config_hash", "") != config.digest:
            logger.warning("model #%d was made with config %r, merging with config %r", number,
                           doc.get("config_hash", ""), config.digest)
        acc.merge(FlowAccumulator.from_state(state, config))
    return acc


def merge_models(docs: Sequence[Mapping[str, Any]], config: Config, *, generator: str = "",
                 generated_at: str = "") -> tuple[FlowModel, dict[str, Any]]:
    """The model of several ``model.json`` documents together, and the merged state to write beside it."""
    acc = merge_states(docs, config)
    return build_model(acc, generator=generator, generated_at=generated_at), acc.to_state()
