"""Canonical lineage event catalogue: envelope, event types, entity state and reducers.

Systems (data catalogues, training orchestrators, registries, deployers, monitors) emit
events; `parse_event` validates them, policies evaluate them, and `apply_event` folds them
into per-entity state that later policies read.
"""

from typing import Any

from .catalog import (
    ENTITY_KINDS,
    EVENT_TYPES,
    EventSpec,
    entity_from_attributes,
    new_entity,
    parse_event,
)
from .jsonl import read_jsonl
from .models import (
    Actor,
    Approval,
    Dataset,
    Deployment,
    DriftBreach,
    Event,
    EventError,
    FeatureSet,
    ModelVersion,
    Override,
    PredictionBatch,
    SubjectRef,
    Target,
    TrainingRun,
)
from .reducers import (
    MemoryStateStore,
    Overlay,
    Reducer,
    StateChange,
    StateStore,
    apply_event,
    reduce_event,
)
from .refs import Ref


# `schema` is imported lazily so that `python -m policyengine.events.schema` does not find the
# module already imported (runpy warns about that) and plain parsing does not pay for it.
def event_json_schema() -> dict[str, Any]:
    """Draft 2020-12 JSON Schema of one event (see `policyengine.events.schema`)."""
    from .schema import event_json_schema as build

    return build()


def entity_json_schema() -> dict[str, Any]:
    """Draft 2020-12 JSON Schema of an entity-state snapshot."""
    from .schema import entity_json_schema as build

    return build()


__all__ = [
    "ENTITY_KINDS",
    "EVENT_TYPES",
    "Actor",
    "Approval",
    "Dataset",
    "Deployment",
    "DriftBreach",
    "Event",
    "EventError",
    "EventSpec",
    "FeatureSet",
    "MemoryStateStore",
    "ModelVersion",
    "Overlay",
    "Override",
    "PredictionBatch",
    "Reducer",
    "Ref",
    "StateChange",
    "StateStore",
    "SubjectRef",
    "Target",
    "TrainingRun",
    "apply_event",
    "entity_from_attributes",
    "entity_json_schema",
    "event_json_schema",
    "new_entity",
    "parse_event",
    "read_jsonl",
    "reduce_event",
]
