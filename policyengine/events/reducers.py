"""State reducers: how each event type changes the entity it is about.

A reducer is a pure function `(previous entity, event) -> new entity` over plain dicts shaped
like the entity model's `model_dump()`. Reducers never mutate their inputs: the engine may
hand the previous dict to concurrent readers, so every change builds new containers.

Upsert rule: every attribute that is not `None` replaces the entity field of the same name.
Lists, dicts and booleans are therefore restated by each upsert (omitting
`allowed_purposes` clears it — the fail-safe direction for governance), while omitted
optional scalars keep their previous value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

__all__ = [
    "MemoryStateStore",
    "Overlay",
    "Reducer",
    "StateChange",
    "StateStore",
    "apply_event",
    "complete_run",
    "record_approval",
    "record_deployment",
    "record_drift",
    "record_override",
    "record_privacy_assessment",
    "reduce_event",
    "register_model",
    "start_run",
    "upsert",
    "upsert_dataset",
    "upsert_feature_set",
]

Reducer = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]
"""`(previous entity state, parsed event) -> new entity state`."""


class StateStore(Protocol):
    """Where entity state lives between events; the engine serialises access."""

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        """Current state of the entity, or `None` if no event has touched it."""
        ...

    def put(self, kind: str, id: str, value: dict[str, Any]) -> None:
        """Replace the entity's state (the value is never mutated afterwards)."""
        ...


class MemoryStateStore:
    """In-process `StateStore` for tests, the CLI and replays; not thread-safe."""

    def __init__(self) -> None:
        self._entities: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        return self._entities.get((kind, id))

    def put(self, kind: str, id: str, value: dict[str, Any]) -> None:
        self._entities[(kind, id)] = value

    def items(self) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
        """All `((kind, id), state)` pairs, in insertion order."""
        return iter(list(self._entities.items()))

    def __len__(self) -> int:
        return len(self._entities)


StateChange = tuple[str, str, dict[str, Any]]
"""`(kind, id, new state)`: what applying one event would write."""


def reduce_event(store: StateStore, event: Mapping[str, Any]) -> StateChange | None:
    """What applying a parsed event would write, without writing it.

    `None` for event types without a reducer (requests, accesses). An entity seen for the
    first time starts from its kind's defaults. The engine uses this to judge an event
    against the state it would produce and to commit it only if it is not denied.
    """
    # Imported here because the catalog refers to the reducers below.
    from .catalog import EVENT_TYPES, new_entity

    spec = EVENT_TYPES[event["type"]]
    if spec.reducer is None:
        return None
    kind, entity_id = spec.subject_kind, event["subject"]["id"]
    previous = store.get(kind, entity_id)
    if previous is None:
        previous = new_entity(kind, entity_id)
    return kind, entity_id, spec.reducer(previous, event)


def apply_event(store: StateStore, event: Mapping[str, Any]) -> None:
    """Apply a parsed event (`parse_event` output) to the state of its subject."""
    change = reduce_event(store, event)
    if change is not None:
        store.put(*change)


class Overlay:
    """A read view of `base` with one entity replaced: the state an event would produce."""

    __slots__ = ("_base", "_id", "_kind", "_value")

    def __init__(self, base: StateStore, change: StateChange) -> None:
        self._base = base
        self._kind, self._id, self._value = change

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        if id == self._id and kind == self._kind:
            return self._value
        return self._base.get(kind, id)


def _copy(value: Any) -> Any:
    # Event attributes must not alias entity state: a caller may keep using the event.
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _merged(previous: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    state = dict(previous)
    for name, value in attributes.items():
        if value is not None and name in state:
            state[name] = _copy(value)
    return state


def upsert(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert: non-null attributes replace the entity's fields of the same name."""
    return _merged(previous, event["attributes"])


def upsert_dataset(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert the dataset; `registered_at` defaults to the first registration's event time."""
    state = _merged(previous, event["attributes"])
    if state["registered_at"] is None:
        state["registered_at"] = event["time"]
    return state


def upsert_feature_set(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert the feature set; `created_at` is set to the first materialisation time."""
    state = _merged(previous, event["attributes"])
    if state["created_at"] is None:
        state["created_at"] = event["time"]
    return state


def record_privacy_assessment(
    previous: Mapping[str, Any], event: Mapping[str, Any]
) -> dict[str, Any]:
    """Set `privacy` to the assessment (assessed_at = event time, assessed_by = actor)."""
    attributes = event["attributes"]
    privacy = {name: _copy(value) for name, value in attributes.items() if name != "labels"}
    privacy["direct_identifiers"] = [dict(found) for found in attributes["direct_identifiers"]]
    privacy["assessed_at"] = event["time"]
    privacy["assessed_by"] = event["actor"]["id"]
    return {**previous, "privacy": privacy}


def start_run(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert the run; `status` = `running`, `started_by` = actor, `started_at` = time."""
    state = _merged(previous, event["attributes"])
    state["status"] = "running"
    state["started_by"] = event["actor"]["id"]
    state["started_at"] = event["time"]
    return state


def complete_run(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Set `status` and `ended_at` = time; merge `metrics` over any already recorded."""
    attributes = event["attributes"]
    state = dict(previous)
    state["status"] = attributes["status"]
    state["metrics"] = {**previous["metrics"], **attributes["metrics"]}
    state["ended_at"] = event["time"]
    return state


def register_model(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert the model; `created_by`/`created_at`/`stage = none` are set once, if unset."""
    state = _merged(previous, event["attributes"])
    if state["created_by"] is None:
        state["created_by"] = event["actor"]["id"]
    if state["created_at"] is None:
        state["created_at"] = event["time"]
    if state["stage"] is None:
        state["stage"] = "none"
    return state


def record_approval(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Append an `Approval` (time = event time) to `approvals`."""
    attributes = event["attributes"]
    approval = {
        "signer": attributes["signer"],
        "signer_name": attributes["signer_name"],
        "role": attributes["role"],
        "meaning": attributes["meaning"],
        "time": event["time"],
        "comment": attributes["comment"],
        **_signed(attributes),
    }
    return {**previous, "approvals": [*previous["approvals"], approval]}


_SIGNED_FIELDS = (
    "record_digest",
    "review",
    "signature",
    "signature_status",
    "signature_problem",
)


def _signed(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The signature fields every signed record keeps (see `_Signed` in models)."""
    return {name: _copy(attributes[name]) for name in _SIGNED_FIELDS}


def record_override(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Append an `Override` (signer = actor, time = event time) to `overrides`."""
    attributes = event["attributes"]
    override = {
        "rule": attributes["rule"],
        "signer": event["actor"]["id"],
        "role": attributes["role"],
        "justification": attributes["justification"],
        "time": event["time"],
        "expires_at": attributes["expires_at"],
        **_signed(attributes),
    }
    return {**previous, "overrides": [*previous["overrides"], override]}


def record_drift_response(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Append a `DriftResponse` (signer = actor, time = event time) to `drift_responses`."""
    attributes = event["attributes"]
    response = {
        "monitor": attributes["monitor"],
        "feature": attributes["feature"],
        "metric": attributes["metric"],
        "decision": attributes["decision"],
        "justification": attributes["justification"],
        "signer": event["actor"]["id"],
        "signer_name": event["actor"].get("name"),
        "role": attributes["role"],
        "time": event["time"],
        "expires_at": attributes["expires_at"],
        **_signed(attributes),
    }
    return {**previous, "drift_responses": [*previous["drift_responses"], response]}


def record_deployment(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Append a `Deployment` and set `stage` to the target environment."""
    target = event["attributes"]["target"]
    deployment = {
        "environment": target["environment"],
        "endpoint": target["endpoint"],
        "region": target["region"],
        "time": event["time"],
    }
    return {
        **previous,
        "deployments": [*previous["deployments"], deployment],
        "stage": target["environment"],
    }


def record_drift(previous: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Open (or refresh) the breach for (monitor, feature, metric) if breached, else close it."""
    attributes = event["attributes"]
    key = (attributes["monitor"], attributes["feature"], attributes["metric"])
    breaches = [
        breach
        for breach in previous["drift_breaches"]
        if (breach["monitor"], breach["feature"], breach["metric"]) != key
    ]
    if attributes["breached"]:
        breaches.append(
            {
                "monitor": attributes["monitor"],
                "feature": attributes["feature"],
                "metric": attributes["metric"],
                "value": attributes["value"],
                "threshold": attributes["threshold"],
                "time": event["time"],
            }
        )
    return {**previous, "drift_breaches": breaches}
