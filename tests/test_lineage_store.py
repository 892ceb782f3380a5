"""The lineage store: deriving edges from events, recording them idempotently and in any
order, and refusing files that are not lineage stores.

The scenario is examples/biotech.jsonl (read with `read_jsonl`), so the edges checked here
are the ones an inspector would ask about.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pseudonyms import pseudonymised
from pydantic import BaseModel, Field

from policyengine.events import Ref, parse_event, read_jsonl
from policyengine.events.catalog import EVENT_TYPES
from policyengine.lineage import (
    RELATIONS,
    LineageError,
    NodeKey,
    SQLiteLineageStore,
    lineage_of,
)
from policyengine.lineage import edges as edges_module
from policyengine.lineage.edges import ref_fields
from policyengine.log.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
EVENTS_FILE = ROOT / "examples" / "biotech.jsonl"


def biotech() -> list[dict[str, Any]]:
    with open(EVENTS_FILE, encoding="utf-8") as fh:
        items = list(read_jsonl(fh))
    events = [e for _, e in items if isinstance(e, dict)]
    assert len(events) == len(items) == 59
    return pseudonymised(events)


EVENTS = biotech()


def dump(path_or_store: str | Path | SQLiteLineageStore) -> dict[str, Any]:
    """Everything a query can see, independent of row ids and insertion order."""
    db = path_or_store._db if isinstance(path_or_store, SQLiteLineageStore) else None
    db = db or sqlite3.connect(str(path_or_store))
    nodes = sorted(
        db.execute(
            "SELECT kind, id, name, attrs, first_seen, last_seen, updated_at, registered"
            " FROM lineage_nodes"
        )
    )
    edges = sorted(db.execute("SELECT * FROM lineage_edge_view"))
    events = sorted(db.execute("SELECT * FROM lineage_events"))
    return {"nodes": nodes, "edges": edges, "events": events}


def edge_set(store: SQLiteLineageStore) -> set[tuple[str, str, str]]:
    rows = store._db.execute(
        "SELECT src_kind || ':' || src_id, relation, dst_kind || ':' || dst_id"
        " FROM lineage_edge_view"
    )
    return {tuple(r) for r in rows}  # type: ignore[misc]


@pytest.fixture()
def store(tmp_path: Path) -> SQLiteLineageStore:
    s = SQLiteLineageStore(tmp_path / "lineage.db", create=True)
    s.record_many(EVENTS)
    return s


# ----------------------------------------------------------------- deriving edges


def test_every_relation_is_derived_from_the_scenario() -> None:
    relations = {e.relation for ev in EVENTS for e in lineage_of(ev).edges}
    assert relations == set(RELATIONS)


def test_edges_point_downstream_with_the_expected_relations(store: SQLiteLineageStore) -> None:
    edges = edge_set(store)
    for expected in [
        ("dataset:ds-hepatox-raw-2026q1", "derived_from", "dataset:ds-hepatox-deid-2026q1"),
        ("dataset:ds-hepatox-deid-2026q1", "input_of", "feature_set:fs-hepatox-v2"),
        ("feature_set:fs-hepatox-v2", "features_of", "training_run:run-0121"),
        ("dataset:ds-compound-descriptors-v7", "input_of", "training_run:run-0121"),
        ("code_commit:7a9d2f4", "code_of", "training_run:run-0121"),
        ("code_commit:7a9d2f4", "code_of", "feature_set:fs-hepatox-v2"),
        ("training_run:run-0121", "trained", "model_version:mv-hepatox-1.0.0"),
        ("approval:evt-022", "approved", "model_version:mv-hepatox-1.0.0"),
        ("override:evt-042", "overrides", "model_version:mv-hepatox-1.0.0"),
        ("model_version:mv-hepatox-1.0.0", "served_by", "endpoint:hepatox-prod"),
        ("model_version:mv-hepatox-1.0.0", "scored", "prediction_batch:pb-2026-0412"),
        ("dataset:ds-plate-2026-0412", "scored_data", "prediction_batch:pb-2026-0412"),
        ("endpoint:hepatox-prod", "scored_via", "prediction_batch:pb-2026-0412"),
    ]:
        assert expected in edges, expected
    image = "image:registry.helixbio.example/ml/train:latest"
    assert (image, "image_of", "training_run:run-0117") in edges
    # Requests (deploy_requested, promotion_requested) and accesses make no edges.
    assert not any(
        dst == "endpoint:hepatox-prod-fra" or src == "endpoint:hepatox-prod-fra"
        for src, _, dst in edges
    )


def test_each_edge_is_stamped_with_the_event_that_created_it(store: SQLiteLineageStore) -> None:
    rows = store._db.execute(
        "SELECT event_id, event_type, time FROM lineage_edge_view WHERE src_id=? AND dst_id=?",
        ("ds-hepatox-raw-2026q1", "ds-hepatox-deid-2026q1"),
    ).fetchall()
    # Registered twice (evt-005, evt-006) with the same parent: one edge, from the first.
    assert rows == [("evt-005", "dataset.registered", "2026-01-13T09:10:00.000000Z")]


def test_deployments_are_superseded_by_the_next_one_to_the_same_endpoint(
    store: SQLiteLineageStore,
) -> None:
    served = store.edges(dst=NodeKey("endpoint", "hepatox-staging"), relation="served_by")
    assert [(e.src.id, e.event_id, e.valid_to) for e in served] == [
        ("mv-hepatox-1.0.0", "evt-024", datetime(2026, 4, 7, 11, 8, tzinfo=UTC)),
        ("mv-hepatox-1.1.0", "evt-056", None),
    ]
    (prod,) = store.edges(dst=NodeKey("endpoint", "hepatox-prod"), relation="served_by")
    assert prod.valid_to is None and prod.event_id == "evt-030"


def test_node_attributes_and_registration(store: SQLiteLineageStore) -> None:
    raw = store.node(NodeKey("dataset", "ds-hepatox-raw-2026q1"))
    assert raw is not None and raw.registered
    assert raw.name == "hepatox-assay-raw"
    assert raw.attrs["classification"] == "PHI"
    assert raw.attrs["digest"].startswith("sha256:6f4c9665")
    # evt-002 added the region; evt-004 (an access from eu-west-1) must not restate it.
    assert raw.attrs["region"] == "eu-west-1"
    assert raw.updated_at == datetime(2026, 1, 12, 9, 20, tzinfo=UTC)
    assert raw.first_seen == datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    assert raw.last_seen == datetime(2026, 1, 19, 11, 20, tzinfo=UTC)  # run-0118 read it
    deid = store.node(NodeKey("dataset", "ds-hepatox-deid-2026q1"))
    assert deid is not None and deid.attrs["deidentified"] is True
    run = store.node(NodeKey("training_run", "run-0121"))
    assert run is not None and run.attrs["status"] == "completed"  # from run.completed
    mv = store.node(NodeKey("model_version", "mv-hepatox-1.0.0"))
    assert mv is not None and mv.attrs["version"] == "1.0.0" and mv.registered
    approval = store.node(NodeKey("approval", "evt-051"))
    assert approval is not None and approval.attrs["meaning"] == "rejected"
    assert approval.attrs["model_version"] == "mv-hepatox-1.1.0"
    endpoint = store.node(NodeKey("endpoint", "hepatox-prod"))
    assert endpoint is not None
    assert endpoint.attrs == {"environment": "production", "region": "eu-west-1"}
    # Only referenced, never registered: lineage completeness checks look for these.
    for key in [
        NodeKey("dataset", "ds-plate-2026-0419"),
        NodeKey("model_version", "mv-hepatox-1.1.0-rc1"),
        NodeKey("code_commit", "7a9d2f4"),
    ]:
        node = store.node(key)
        assert node is not None and not node.registered and node.updated_at is None, key


def test_endpointless_deployment_uses_the_environment() -> None:
    event = parse_event(
        {
            "id": "e1",
            "type": "model.deployed",
            "time": "2026-01-01T00:00:00Z",
            "actor": {"id": "svc"},
            "subject": {"kind": "model_version", "id": "mv-1"},
            "attributes": {"target": {"environment": "production"}},
        }
    )
    delta = lineage_of(event)
    assert [(str(e.src), e.relation, str(e.dst)) for e in delta.edges] == [
        ("model_version:mv-1", "served_by", "endpoint:production")
    ]


class _Nested(BaseModel):
    source: Annotated[str, Ref("dataset")]
    weights: list[Annotated[str, Ref("model_version")]] = Field(default_factory=list)


class _WithNewRefs(BaseModel):
    baseline: Annotated[str, Ref("dataset")] | None = None
    teachers: list[_Nested] = Field(default_factory=list)
    lookup: dict[str, Annotated[str, Ref("feature_set")]] = Field(default_factory=dict)
    plain: str | None = None


def test_ref_fields_are_found_by_introspection() -> None:
    found = {(".".join(f.path), f.kind, f.relation) for f in ref_fields(_WithNewRefs)}
    assert found == {
        ("baseline", "dataset", "baseline"),
        ("teachers.source", "dataset", "teachers.source"),
        ("teachers.weights", "model_version", "teachers.weights"),
        ("lookup", "feature_set", "lookup"),
    }


def test_a_new_ref_field_yields_lineage_without_code_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = EVENT_TYPES["drift.evaluated"]

    class DriftWithBaseline(spec.attributes):  # type: ignore[name-defined,misc]
        baseline_dataset: Annotated[str, Ref("dataset")] | None = None
        teachers: list[_Nested] = Field(default_factory=list)

    types = dict(EVENT_TYPES)
    types["drift.evaluated"] = dataclasses.replace(spec, attributes=DriftWithBaseline)
    monkeypatch.setattr(edges_module, "EVENT_TYPES", types)
    event = {
        "id": "e9",
        "type": "drift.evaluated",
        "time": datetime(2026, 3, 2, tzinfo=UTC),
        "actor": {"id": "svc", "name": None, "roles": []},
        "subject": {"kind": "model_version", "id": "mv-1"},
        "attributes": DriftWithBaseline(
            monitor="m",
            feature="f",
            metric="psi",
            value=0.1,
            threshold=0.2,
            breached=False,
            baseline_dataset="ds-ref",
            teachers=[_Nested(source="ds-a", weights=["mv-0", "mv-00"])],
        ).model_dump(),
    }
    got = {(str(e.src), e.relation, str(e.dst)) for e in lineage_of(event).edges}
    assert got == {
        ("dataset:ds-ref", "baseline_dataset", "model_version:mv-1"),
        ("dataset:ds-a", "teachers.source", "model_version:mv-1"),
        ("model_version:mv-0", "teachers.weights", "model_version:mv-1"),
        ("model_version:mv-00", "teachers.weights", "model_version:mv-1"),
    }


# ----------------------------------------------------------------- recording


def test_reingesting_the_same_events_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SQLiteLineageStore(path, create=True) as s:
        first = s.record_many(EVENTS)
        before = dump(s)
        again = s.record_many(EVENTS)
        for ev in EVENTS[:5]:
            assert s.record(ev).duplicates == 1
        assert dump(s) == before
    assert (first.recorded, first.duplicates) == (59, 0)
    assert (first.nodes_added, first.edges_added) == (len(before["nodes"]), len(before["edges"]))
    assert (again.recorded, again.duplicates, again.nodes_added, again.edges_added) == (0, 59, 0, 0)
    with SQLiteLineageStore(path) as reopened:  # and it persisted
        assert dump(reopened) == before


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(st.permutations(EVENTS))
def test_the_graph_does_not_depend_on_recording_order(shuffled: list[dict[str, Any]]) -> None:
    with SQLiteLineageStore(":memory:") as ordered, SQLiteLineageStore(":memory:") as other:
        ordered.record_many(EVENTS)
        half = len(shuffled) // 2
        other.record_many(shuffled[:half])
        other.record_many(shuffled[half:])
        assert dump(other) == dump(ordered)


def test_latest_attribute_value_wins_by_event_time() -> None:
    def registered(id_: str, time: str, **attrs: Any) -> dict[str, Any]:
        return parse_event(
            {
                "id": id_,
                "type": "dataset.registered",
                "time": time,
                "actor": {"id": "steward"},
                "subject": {"kind": "dataset", "id": "ds-1"},
                "attributes": {"name": "cohort", **attrs},
            }
        )

    early = registered("a", "2026-01-01T00:00:00Z", classification="PII", region="eu")
    late = registered("b", "2026-02-01T00:00:00Z", classification="PHI")
    with SQLiteLineageStore(":memory:") as s:
        s.record_many([late, early])  # out of order
        node = s.node(NodeKey("dataset", "ds-1"))
    assert node is not None
    assert node.attrs["classification"] == "PHI"  # the later registration's
    assert node.attrs["region"] == "eu"  # only the earlier one stated it
    assert node.updated_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_a_reused_event_id_with_other_content_is_a_conflict(tmp_path: Path) -> None:
    changed = json.loads(json.dumps(EVENTS[0], default=str))
    changed["attributes"]["classification"] = "internal"
    changed = parse_event(changed)
    with SQLiteLineageStore(tmp_path / "l.db", create=True) as s:
        s.record_many(EVENTS[:3])
        before = dump(s)
        with pytest.raises(LineageError, match="`evt-001` was already recorded"):
            s.record_many([EVENTS[3], changed])
        assert dump(s) == before  # the whole batch rolled back
        skipped = s.record_many([EVENTS[3], changed, EVENTS[4]], on_conflict="skip")
        assert skipped.conflicts == ["evt-001"] and skipped.conflict_positions == [1]
        assert skipped.recorded == 2
        node = s.node(NodeKey("dataset", "ds-hepatox-raw-2026q1"))
        assert node is not None and node.attrs["classification"] == "PHI"


# ----------------------------------------------------------------- files


def test_a_missing_store_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(LineageError, match="no lineage store at") as err:
        SQLiteLineageStore(tmp_path / "none.db")
    assert err.value.hint is not None and "lineage record" in err.value.hint
    assert not (tmp_path / "none.db").exists()


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(LineageError, match="is a directory"):
        SQLiteLineageStore(tmp_path, create=True)


def test_a_text_file_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database\n" * 200)
    with pytest.raises(LineageError, match="is not a lineage store"):
        SQLiteLineageStore(path, create=True)
    assert path.read_text().startswith("hello")  # untouched


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers(id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(LineageError, match="an SQLite database but not a lineage store"):
        SQLiteLineageStore(path, create=True)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert tables == {"customers"}


def test_another_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    SQLiteLineageStore(path, create=True).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE lineage_meta SET value='policyengine-lineage/9' WHERE key='format'")
    db.commit()
    db.close()
    with pytest.raises(LineageError, match="format `policyengine-lineage/9`"):
        SQLiteLineageStore(path)


def test_the_store_can_share_the_decision_logs_file(tmp_path: Path) -> None:
    path = tmp_path / "governance.db"
    SQLiteStore(path, create=True).close()
    with pytest.raises(LineageError, match="holds no lineage store") as err:
        SQLiteLineageStore(path)
    assert err.value.hint is not None and "decision log" in err.value.hint
    with SQLiteLineageStore(path, create=True) as s:
        s.record_many(EVENTS)
    log = SQLiteStore(path)  # the log still opens and is untouched by our tables
    assert log.size() == 0
    log.close()
    with SQLiteLineageStore(path) as s:
        assert s.counts()["events"] == 59
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
