"""Tests for the lineage event catalogue: parsing, errors, JSONL, reducers and schemas."""

from __future__ import annotations

import copy
import json
import pickle
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from policyengine.events import (
    ENTITY_KINDS,
    EVENT_TYPES,
    Approval,
    Deployment,
    DriftBreach,
    EventError,
    MemoryStateStore,
    Override,
    Ref,
    apply_event,
    entity_from_attributes,
    entity_json_schema,
    event_json_schema,
    new_entity,
    parse_event,
    read_jsonl,
)
from policyengine.events import schema as schema_module
from policyengine.events.models import Dataset, DatasetRegistered, Event, RunStarted
from policyengine.events.refs import Sensitive

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
MODEL = "mv-1"


def event(
    type_: str,
    kind: str,
    subject: str,
    time: str = "2024-05-01T12:00:00Z",
    actor: str = "alice@example.com",
    **attributes: Any,
) -> dict[str, Any]:
    return {
        "id": f"evt-{type_}-{time}",
        "type": type_,
        "time": time,
        "actor": {"id": actor, "roles": ["qa"]},
        "subject": {"kind": kind, "id": subject},
        "attributes": attributes,
    }


def approval(signer: str = "bob", time: str = "2024-05-01T12:00:00Z") -> dict[str, Any]:
    return event(
        "approval.recorded",
        "model_version",
        MODEL,
        time=time,
        signer=signer,
        role="qa",
        meaning="approved",
    )


def drift(breached: bool, value: float, time: str, feature: str = "age") -> dict[str, Any]:
    return event(
        "drift.evaluated",
        "model_version",
        MODEL,
        time=time,
        monitor="psi-nightly",
        feature=feature,
        metric="psi",
        value=value,
        threshold=0.2,
        breached=breached,
    )


def error_of(obj: Any) -> EventError:
    with pytest.raises(EventError) as info:
        parse_event(obj)
    return info.value


def replay(*events: dict[str, Any]) -> MemoryStateStore:
    store = MemoryStateStore()
    for raw in events:
        apply_event(store, parse_event(raw))
    return store


# --------------------------------------------------------------------------- catalogue


def test_catalogue_covers_the_brief() -> None:
    assert set(EVENT_TYPES) == {
        "dataset.registered",
        "dataset.accessed",
        "dataset.privacy_assessed",
        "dataset.released",
        "code.committed",
        "features.materialized",
        "run.started",
        "run.completed",
        "model.registered",
        "approval.recorded",
        "override.recorded",
        "model.promotion_requested",
        "model.deploy_requested",
        "model.deployed",
        "prediction.batch_completed",
        "drift.evaluated",
        "drift.response_recorded",
        "review.escalated",
    }
    assert set(ENTITY_KINDS) == {
        "dataset",
        "feature_set",
        "training_run",
        "model_version",
        "prediction_batch",
        "code_commit",
    }
    for name, spec in EVENT_TYPES.items():
        assert spec.name == name
        assert spec.subject_kind in ENTITY_KINDS
        assert spec.doc and spec.example["type"] == name


def test_registries_are_read_only() -> None:
    with pytest.raises(TypeError):
        EVENT_TYPES["x"] = EVENT_TYPES["model.deployed"]  # type: ignore[index]
    with pytest.raises(TypeError):
        ENTITY_KINDS["x"] = Dataset  # type: ignore[index]


def test_dataset_registration_carries_every_dataset_field() -> None:
    # `privacy` is what `dataset.privacy_assessed` measured, never declared at registration.
    assert set(DatasetRegistered.model_fields) == set(Dataset.model_fields) - {"id", "privacy"}
    assert DatasetRegistered.model_fields["name"].is_required()


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_upsert_attributes_all_land_on_the_entity(name: str) -> None:
    """An attribute without an entity field would be silently dropped by an upsert."""
    spec = EVENT_TYPES[name]
    entity_fields = set(ENTITY_KINDS[spec.subject_kind].model_fields)
    if spec.reducer is not None and "upsert" in (spec.reducer.__doc__ or "").lower():
        assert set(spec.attributes.model_fields) <= entity_fields


_ALLOWED_LEAVES = {str, int, float, bool, datetime, timedelta, type(None)}


def _check_shape(annotation: Any, where: str) -> None:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        assert args[0] is str and any(isinstance(m, Ref | Sensitive) for m in args[1:]), where
    elif origin is Union or origin is types.UnionType:
        assert len(args) == 2 and type(None) in args, f"{where}: only `X | None` unions"
        for arg in args:
            _check_shape(arg, where)
    elif origin is list:
        _check_shape(args[0], where)
    elif origin is dict:
        assert args[0] is str, where
        if args[1] is not Any:
            _check_shape(args[1], where)
    elif origin is Literal:
        assert all(isinstance(a, str) for a in args), where
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _check_model(annotation)
    else:
        assert annotation in _ALLOWED_LEAVES, f"{where}: {annotation!r}"


def _check_model(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        _check_shape(field.annotation, f"{model.__name__}.{name}")
        assert all(
            isinstance(m, Ref) or type(m).__module__.startswith("annotated_types")
            for m in field.metadata
        ), f"{model.__name__}.{name}: {field.metadata}"


@pytest.mark.parametrize(
    "model",
    [Event, *ENTITY_KINDS.values(), *(spec.attributes for spec in EVENT_TYPES.values())],
    ids=lambda model: model.__name__,
)
def test_annotations_use_only_compiler_shapes(model: type[BaseModel]) -> None:
    _check_model(model)


def test_entity_references_are_marked() -> None:
    run_inputs = get_args(RunStarted.model_fields["inputs"].annotation)[0]
    assert get_args(run_inputs)[1] == Ref("dataset")
    training_run = EVENT_TYPES["model.registered"].attributes.model_fields["training_run"]
    assert Ref("training_run") in get_args(get_args(training_run.annotation)[0])
    batch = EVENT_TYPES["prediction.batch_completed"].attributes.model_fields["model_version"]
    assert batch.metadata == [Ref("model_version")]


# --------------------------------------------------------------------------- parse_event


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_every_catalogue_example_parses(name: str) -> None:
    spec = EVENT_TYPES[name]
    parsed = parse_event(copy.deepcopy(dict(spec.example)))
    assert set(parsed) == {"id", "type", "time", "actor", "subject", "attributes"}
    assert parsed["type"] == name
    assert parsed["subject"] == {"kind": spec.subject_kind, "id": spec.example["subject"]["id"]}
    assert parsed["time"].tzinfo is UTC
    assert set(parsed["attributes"]) == set(spec.attributes.model_fields)
    assert parsed["actor"]["id"] == spec.example["actor"]["id"]


def test_parse_fills_defaults_and_keeps_plain_python_values() -> None:
    parsed = parse_event(
        event(
            "override.recorded",
            "model_version",
            MODEL,
            rule="gxp.deploy.two_approvals",
            role="qa",
            justification="approver on leave",
            expires_at="2024-05-02T00:00:00+02:00",
        )
    )
    assert parsed["actor"] == {"id": "alice@example.com", "name": None, "roles": ["qa"]}
    assert parsed["attributes"]["labels"] == {}
    assert parsed["attributes"]["expires_at"] == datetime(2024, 5, 1, 22, tzinfo=UTC)
    deploy = parse_event(
        event("model.deployed", "model_version", MODEL, target={"environment": "staging"})
    )
    assert deploy["attributes"]["target"] == {
        "environment": "staging",
        "endpoint": None,
        "region": None,
    }


def test_time_is_normalised_to_utc() -> None:
    parsed = parse_event(approval(time="2024-05-01T14:30:00+02:00"))
    assert parsed["time"] == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert parsed["time"].utcoffset() == timedelta(0)


def test_naive_timestamp_is_rejected() -> None:
    err = error_of(approval(time="2024-05-01T12:00:00"))
    assert err.field == "time"
    assert err.message.startswith("`time`: timestamp `2024-05-01T12:00:00` has no timezone")


def test_naive_timestamp_in_attributes_is_rejected() -> None:
    raw = event(
        "override.recorded",
        "model_version",
        MODEL,
        rule="r",
        role="qa",
        justification="j",
        expires_at="2024-05-20T00:00:00",
    )
    err = error_of(raw)
    assert err.field == "attributes.expires_at"
    assert "has no timezone" in err.message


def test_numeric_timestamp_is_rejected() -> None:
    raw = approval()
    raw["time"] = 1714564800
    err = error_of(raw)
    assert err.field == "time"
    assert "not numbers" in err.message


def test_unknown_type_suggests_the_closest() -> None:
    raw = event("model.deploy_request", "model_version", MODEL, target={"environment": "prod"})
    err = error_of(raw)
    assert err.field == "type"
    assert err.message == (
        "unknown event type `model.deploy_request`; did you mean `model.deploy_requested`?"
    )


def test_unknown_type_without_close_match() -> None:
    err = error_of(event("zzz", "model_version", MODEL))
    assert err.message == "unknown event type `zzz`"


def test_extra_attribute_is_rejected_naming_the_field() -> None:
    raw = approval()
    raw["attributes"]["sigenr"] = "bob"
    err = error_of(raw)
    assert err.field == "attributes.sigenr"
    assert err.message == "`attributes.sigenr`: unknown field; did you mean `signer`?"


def test_extra_nested_field_suggests_within_the_nested_model() -> None:
    raw = event(
        "model.deployed",
        "model_version",
        MODEL,
        target={"environment": "production", "endpont": "x"},
    )
    err = error_of(raw)
    assert err.message == "`attributes.target.endpont`: unknown field; did you mean `endpoint`?"


def test_extra_envelope_field_is_rejected() -> None:
    raw = approval()
    raw["timestamp"] = raw["time"]
    err = error_of(raw)
    assert err.field == "timestamp"
    assert err.message.startswith("`timestamp`: unknown field")


def test_missing_nested_field() -> None:
    err = error_of(event("model.deploy_requested", "model_version", MODEL, target={}))
    assert err.field == "attributes.target.environment"
    assert err.message == "`attributes.target.environment`: field required"


def test_missing_attributes_object_reports_required_fields() -> None:
    raw = approval()
    del raw["attributes"]
    err = error_of(raw)
    assert err.field is not None and err.field.startswith("attributes.")
    assert {field for field, _ in err.details} >= {"attributes.role", "attributes.meaning"}


def test_invalid_literal_echoes_the_input() -> None:
    raw = approval()
    raw["attributes"]["meaning"] = "aproved"
    err = error_of(raw)
    assert err.field == "attributes.meaning"
    assert err.message.startswith("`attributes.meaning`: input should be 'approved'")
    assert err.message.endswith('(got `"aproved"`)')


def test_list_items_get_indexed_paths() -> None:
    raw = event("run.started", "training_run", "run-1", purpose="research", inputs=["ds-1", 7])
    err = error_of(raw)
    assert err.field == "attributes.inputs[1]"


def test_wrong_subject_kind() -> None:
    raw = approval()
    raw["subject"]["kind"] = "dataset"
    err = error_of(raw)
    assert err.field == "subject.kind"
    assert err.message == (
        "`subject.kind`: `approval.recorded` events are about a `model_version`, not a `dataset`"
    )


def test_all_problems_are_collected() -> None:
    raw = approval(time="2024-05-01T12:00:00")
    raw["attributes"]["meaning"] = "nope"
    raw["attributes"]["extra"] = 1
    err = error_of(raw)
    assert err.field == "time"
    assert [field for field, _ in err.details] == ["attributes.meaning", "attributes.extra"]
    assert str(err).endswith("(and 2 more problems)")


def test_nan_is_rejected() -> None:
    err = error_of(drift(True, float("nan"), "2024-05-01T00:00:00Z"))
    assert err.field == "attributes.value"


def test_non_object_event() -> None:
    assert error_of([1, 2]).message == "an event must be a JSON object, not an array"
    assert error_of(None).message == "an event must be a JSON object, not null"


def test_event_error_str_and_pickle() -> None:
    err = EventError("`a`: field required", field="a", line=3, details=[("b", "`b`: bad")])
    assert str(err) == "line 3: `a`: field required (and 1 more problem)"
    assert isinstance(err, ValueError)
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.message, clone.field, clone.line, clone.details) == (
        err.message,
        err.field,
        err.line,
        err.details,
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(name=st.sampled_from(list(EVENT_TYPES)), data=st.data())
def test_mutated_examples_raise_only_event_error(name: str, data: st.DataObject) -> None:
    """Whatever a field holds (or if it is missing), the parser reports an `EventError`."""
    raw = copy.deepcopy(dict(EVENT_TYPES[name].example))
    target = data.draw(st.sampled_from([raw, raw["attributes"]]))
    key = data.draw(st.sampled_from([*sorted(target), "extra"]))
    if data.draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = data.draw(_json)
    try:
        parsed = parse_event(raw)
    except EventError as err:
        assert err.message[0].islower() or err.message[0] == "`"
    else:
        assert parsed["type"] == name


# --------------------------------------------------------------------------- JSONL


def test_jsonl_reports_bad_lines_and_keeps_going() -> None:
    lines = [
        json.dumps(approval()),
        "",
        '{"id": "evt-2", "type": ',
        json.dumps(event("model.deploy_request", "model_version", MODEL)),
        "   ",
        json.dumps(approval(signer="carol")),
    ]
    results = list(read_jsonl(lines))
    assert [number for number, _ in results] == [1, 3, 4, 6]
    errors = [(n, r) for n, r in results if isinstance(r, EventError)]
    events = [(n, r) for n, r in results if not isinstance(r, EventError)]
    assert [n for n, _ in errors] == [3, 4]
    assert errors[0][1].line == 3
    assert errors[0][1].message.startswith("invalid JSON: expecting value")
    assert errors[1][1].line == 4
    assert errors[1][1].field == "type"
    assert str(errors[1][1]).startswith("line 4: unknown event type `model.deploy_request`")
    assert [n for n, _ in events] == [1, 6]
    assert events[1][1]["attributes"]["signer"] == "carol"


def test_jsonl_brief_scenario_two_errors_one_event() -> None:
    text = "\n".join(
        [
            "{not json",
            json.dumps(event("dataset.registerd", "dataset", "ds-1", name="x")),
            json.dumps(event("dataset.registered", "dataset", "ds-1", name="x")),
        ]
    )
    results = list(read_jsonl(text))  # a whole string is split into lines
    errors = [(n, r.message) for n, r in results if isinstance(r, EventError)]
    assert errors == [
        (1, "invalid JSON: expecting property name enclosed in double quotes (column 2)"),
        (2, "unknown event type `dataset.registerd`; did you mean `dataset.registered`?"),
    ]
    assert [n for n, r in results if not isinstance(r, EventError)] == [3]


def test_jsonl_rejects_duplicate_keys_nan_and_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\ufeff" + '{"id": "a", "id": "b"}\n' + '{"value": NaN}\n' + "[1, 2]\n",
        encoding="utf-8",
    )
    with path.open(encoding="utf-8") as handle:
        results = list(read_jsonl(handle))
    messages = [(n, r.message) for n, r in results if isinstance(r, EventError)]
    assert messages == [
        (1, "invalid JSON: duplicate key `id`"),
        (2, "invalid JSON: `NaN` is not valid JSON"),
        (3, "an event must be a JSON object, not an array"),
    ]


@given(st.lists(st.text(max_size=40), max_size=5))
def test_jsonl_never_raises(lines: list[str]) -> None:
    for number, result in read_jsonl(lines):
        assert 1 <= number <= len(lines)
        assert isinstance(result, dict | EventError)


# --------------------------------------------------------------------------- reducers


def test_new_entity_has_every_field() -> None:
    for kind, model in ENTITY_KINDS.items():
        state = new_entity(kind, "x")
        assert set(state) == set(model.model_fields)
        assert state["id"] == "x"


def test_approvals_append() -> None:
    store = replay(
        approval("bob", "2024-05-01T12:00:00Z"), approval("carol", "2024-05-02T12:00:00Z")
    )
    state = store.get("model_version", MODEL)
    assert state is not None
    assert [a["signer"] for a in state["approvals"]] == ["bob", "carol"]
    first = state["approvals"][0]
    assert first == Approval.model_validate(first).model_dump()
    assert first["time"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert set(state) == set(ENTITY_KINDS["model_version"].model_fields)


def test_override_signer_is_the_actor() -> None:
    raw = event(
        "override.recorded",
        "model_version",
        MODEL,
        actor="qa-lead@example.com",
        rule="gxp.deploy.two_approvals",
        role="qa",
        justification="approver on leave",
    )
    state = replay(raw).get("model_version", MODEL)
    assert state is not None
    (override,) = state["overrides"]
    assert override["signer"] == "qa-lead@example.com"
    assert override == Override.model_validate(override).model_dump()


def test_drift_breach_add_replace_remove() -> None:
    store = replay(drift(True, 0.3, "2024-05-01T00:00:00Z"))
    state = store.get("model_version", MODEL)
    assert state is not None
    assert [(b["feature"], b["value"]) for b in state["drift_breaches"]] == [("age", 0.3)]
    assert (
        state["drift_breaches"][0]
        == DriftBreach.model_validate(state["drift_breaches"][0]).model_dump()
    )

    for raw in (
        drift(True, 0.4, "2024-05-02T00:00:00Z"),
        drift(True, 0.5, "2024-05-02T00:00:00Z", "bmi"),
    ):
        apply_event(store, parse_event(raw))
    state = store.get("model_version", MODEL)
    assert state is not None
    assert [(b["feature"], b["value"]) for b in state["drift_breaches"]] == [
        ("age", 0.4),
        ("bmi", 0.5),
    ]

    apply_event(store, parse_event(drift(False, 0.1, "2024-05-03T00:00:00Z")))
    state = store.get("model_version", MODEL)
    assert state is not None
    assert [b["feature"] for b in state["drift_breaches"]] == ["bmi"]


def test_upsert_merges_over_existing_state() -> None:
    first = event(
        "dataset.registered",
        "dataset",
        "ds-1",
        time="2024-05-01T00:00:00Z",
        name="ehr",
        uri="s3://a",
        classification="PHI",
        allowed_purposes=["research"],
        labels={"team": "cardio"},
    )
    second = event(
        "dataset.registered",
        "dataset",
        "ds-1",
        time="2024-06-01T00:00:00Z",
        name="ehr",
        classification="PII",
        row_count=10,
    )
    state = replay(first, second).get("dataset", "ds-1")
    assert state is not None
    assert state["uri"] == "s3://a"  # omitted scalar kept
    assert state["classification"] == "PII"  # given scalar replaced
    assert state["row_count"] == 10
    assert state["allowed_purposes"] == []  # collections are restated (fail-safe)
    assert state["registered_at"] == datetime(2024, 5, 1, tzinfo=UTC)  # first registration
    assert state == Dataset.model_validate(state).model_dump()


def test_run_lifecycle() -> None:
    started = event(
        "run.started",
        "training_run",
        "run-1",
        time="2024-05-01T00:00:00Z",
        actor="svc-train",
        purpose="research",
        inputs=["ds-1"],
    )
    completed = event(
        "run.completed",
        "training_run",
        "run-1",
        time="2024-05-01T02:00:00Z",
        status="failed",
        metrics={"auroc": 0.5},
    )
    store = replay(started)
    running = store.get("training_run", "run-1")
    assert running is not None
    assert (running["status"], running["started_by"]) == ("running", "svc-train")
    assert running["started_at"] == datetime(2024, 5, 1, tzinfo=UTC)
    apply_event(store, parse_event(completed))
    done = store.get("training_run", "run-1")
    assert done is not None
    assert (done["status"], done["metrics"], done["inputs"]) == ("failed", {"auroc": 0.5}, ["ds-1"])
    assert done["ended_at"] == datetime(2024, 5, 1, 2, tzinfo=UTC)


def test_model_registration_and_deployment() -> None:
    registered = event(
        "model.registered",
        "model_version",
        MODEL,
        actor="svc-train",
        name="risk",
        version="1.0",
        training_run="run-1",
    )
    deployed = event(
        "model.deployed",
        "model_version",
        MODEL,
        time="2024-05-02T00:00:00Z",
        target={"environment": "production", "region": "eu-west-1"},
    )
    store = replay(registered)
    state = store.get("model_version", MODEL)
    assert state is not None
    assert (state["stage"], state["created_by"], state["training_run"]) == (
        "none",
        "svc-train",
        "run-1",
    )
    apply_event(store, parse_event(deployed))
    state = store.get("model_version", MODEL)
    assert state is not None
    assert state["stage"] == "production"
    (deployment,) = state["deployments"]
    assert deployment == Deployment.model_validate(deployment).model_dump()
    assert deployment["region"] == "eu-west-1"
    assert state["created_by"] == "svc-train"


class CountingStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, kind: str, id: str, value: dict[str, Any]) -> None:
        self.puts += 1
        super().put(kind, id, value)


@pytest.mark.parametrize(
    "name", [name for name, spec in EVENT_TYPES.items() if spec.reducer is None]
)
def test_request_events_do_not_change_state(name: str) -> None:
    store = CountingStore()
    apply_event(store, parse_event(dict(EVENT_TYPES[name].example)))
    assert store.puts == 0 and len(store) == 0


def test_stored_dicts_are_never_mutated() -> None:
    store = replay(approval("bob"), drift(True, 0.3, "2024-05-01T00:00:00Z"))
    before = store.get("model_version", MODEL)
    assert before is not None
    snapshot = copy.deepcopy(before)
    for raw in (
        approval("carol"),
        drift(False, 0.1, "2024-05-02T00:00:00Z"),
        event("model.deployed", "model_version", MODEL, target={"environment": "staging"}),
        event("model.registered", "model_version", MODEL, name="m", version="2", labels={"a": "b"}),
    ):
        apply_event(store, parse_event(raw))
    assert before == snapshot
    after = store.get("model_version", MODEL)
    assert after is not None and after is not before
    assert len(after["approvals"]) == 2 and after["drift_breaches"] == []


def test_state_does_not_alias_event_attributes() -> None:
    parsed = parse_event(event("run.started", "training_run", "r", purpose="p", inputs=["ds-1"]))
    store = MemoryStateStore()
    apply_event(store, parsed)
    parsed["attributes"]["inputs"].append("ds-2")
    state = store.get("training_run", "r")
    assert state is not None and state["inputs"] == ["ds-1"]


def test_replaying_all_examples_yields_valid_entities() -> None:
    store = MemoryStateStore()
    for spec in sorted(EVENT_TYPES.values(), key=lambda s: s.example["time"]):
        apply_event(store, parse_event(dict(spec.example)))
    kinds = set()
    for (kind, entity_id), state in store.items():
        kinds.add(kind)
        model = ENTITY_KINDS[kind]
        assert state == model.model_validate(state).model_dump(), kind
        assert state["id"] == entity_id
    assert kinds == set(ENTITY_KINDS)


# --------------------------------------------------------------------------- fixtures


def test_entity_from_attributes_fills_defaults() -> None:
    state = entity_from_attributes(
        "dataset",
        "ds-1",
        {"classification": "PHI", "registered_at": "2024-01-01T00:00:00+01:00"},
    )
    assert state == {
        **new_entity("dataset", "ds-1"),
        "classification": "PHI",
        "registered_at": datetime(2023, 12, 31, 23, tzinfo=UTC),
    }


def test_entity_from_attributes_errors() -> None:
    with pytest.raises(EventError) as info:
        entity_from_attributes("dataset", "ds-1", {"clasification": "PHI"})
    assert info.value.message == "`clasification`: unknown field; did you mean `classification`?"
    with pytest.raises(EventError) as info:
        entity_from_attributes("datasets", "ds-1", {})
    assert info.value.message == "unknown entity kind `datasets`; did you mean `dataset`?"
    with pytest.raises(EventError) as info:
        entity_from_attributes("dataset", "ds-1", {"id": "ds-2"})
    assert info.value.field == "id"
    with pytest.raises(EventError) as info:
        entity_from_attributes("model_version", "m", {"approvals": [{"signer": "x"}]})
    assert info.value.field == "approvals[0].role"


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize("name", ["events.schema.json", "entities.schema.json", "events.md"])
def test_committed_spec_files_are_up_to_date(name: str) -> None:
    expected = schema_module.spec_files()[name]
    committed = (SPEC_DIR / name).read_text(encoding="utf-8")
    assert committed == expected, (
        f"spec/{name} is stale; regenerate with `python -m policyengine.events.schema "
        "spec/events.schema.json --entities spec/entities.schema.json --markdown spec/events.md`"
    )


def test_schema_output_is_deterministic() -> None:
    assert schema_module.render_json(event_json_schema()) == schema_module.render_json(
        event_json_schema()
    )


@pytest.fixture(scope="module")
def event_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SPEC_DIR / "events.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_examples_validate_against_the_schema(
    name: str, event_validator: jsonschema.Draft202012Validator
) -> None:
    event_validator.validate(EVENT_TYPES[name].example)


def test_schema_agrees_with_the_parser_on_bad_events(
    event_validator: jsonschema.Draft202012Validator,
) -> None:
    good = approval()
    event_validator.validate(good)
    bad_events = []
    for mutate in (
        lambda e: e.update(time="2024-05-01T12:00:00"),
        lambda e: e.update(type="model.deploy_request"),
        lambda e: e["subject"].update(kind="dataset"),
        lambda e: e["attributes"].update(sigenr="x"),
        lambda e: e["attributes"].pop("meaning"),
        lambda e: e.pop("attributes"),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        bad_events.append(bad)
    for bad in bad_events:
        assert not event_validator.is_valid(bad), bad
        with pytest.raises(EventError):
            parse_event(bad)


def test_entity_schema_validates_a_state_snapshot() -> None:
    schema = json.loads((SPEC_DIR / "entities.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    store = MemoryStateStore()
    for spec in EVENT_TYPES.values():
        apply_event(store, parse_event(dict(spec.example)))
    snapshot: dict[str, dict[str, Any]] = {}
    for (kind, entity_id), state in store.items():
        dumped = ENTITY_KINDS[kind].model_validate(state).model_dump(mode="json")
        snapshot.setdefault(kind, {})[entity_id] = dumped
    jsonschema.validate(snapshot, schema, cls=jsonschema.Draft202012Validator)
    snapshot["dataset"]["ds-ehr-cardio-2024q1"]["classification"] = "secret"
    assert not jsonschema.Draft202012Validator(schema).is_valid(snapshot)
    assert entity_json_schema()["properties"].keys() == ENTITY_KINDS.keys()


def test_cli_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events.schema.json"
    entities = tmp_path / "entities.schema.json"
    docs = tmp_path / "events.md"
    args = [str(out), "--entities", str(entities), "--markdown", str(docs)]
    assert schema_module.main(args) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == event_json_schema()
    assert schema_module.main([*args, "--check"]) == 0
    docs.write_text("stale\n", encoding="utf-8")
    assert schema_module.main([*args, "--check"]) == 1
    assert "events.md: out of date" in capsys.readouterr().err
