"""The inspector's questions against the biotech scenario, and `trace` checked against a
naive breadth-first search over random graphs (hypothesis)."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pseudonyms import pseudonymised

from policyengine.events import read_jsonl
from policyengine.lineage import (
    STOP_KINDS,
    AmbiguousNodeError,
    BulkEdge,
    BulkNode,
    LineageError,
    NodeKey,
    SQLiteLineageStore,
    Trace,
    UnknownNodeError,
    affected_by,
    resolve,
    served_at,
    trace,
)

ROOT = Path(__file__).resolve().parent.parent


def T(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("lineage") / "lineage.db"
    with open(ROOT / "examples" / "biotech.jsonl", encoding="utf-8") as fh:
        events = pseudonymised(e for _, e in read_jsonl(fh) if isinstance(e, dict))
    with SQLiteLineageStore(path, create=True) as s:
        s.record_many(events)
    with SQLiteLineageStore(path) as s:
        yield s


def ids(t: Trace, kind: str) -> set[str]:
    return {n.id for n in t.of_kind(kind)}


# ----------------------------------------------------------------- upstream


def test_a_model_version_traces_back_to_sources_code_and_approvals(store: Any) -> None:
    t = trace(store, "mv-hepatox-1.0.0", "upstream")
    assert t.root.key == NodeKey("model_version", "mv-hepatox-1.0.0")
    assert ids(t, "dataset") == {
        "ds-hepatox-raw-2026q1",
        "ds-hepatox-deid-2026q1",
        "ds-compound-descriptors-v7",
    }
    assert ids(t, "feature_set") == {"fs-hepatox-v2"}
    assert ids(t, "training_run") == {"run-0121"}
    assert ids(t, "code_commit") == {"7a9d2f4"}  # not the dev commit e41b0c9
    assert len(ids(t, "image")) == 1
    assert ids(t, "approval") == {"evt-021", "evt-022", "evt-026", "evt-027", "evt-028"}
    assert ids(t, "override") == {"evt-040", "evt-041", "evt-042"}
    assert ids(t, "model_version") == {"mv-hepatox-1.0.0"}
    assert not t.of_kind("endpoint") and not t.of_kind("prediction_batch")
    assert t.depth[t.root.key] == 0
    assert t.depth[NodeKey("training_run", "run-0121")] == 1
    assert t.depth[NodeKey("dataset", "ds-compound-descriptors-v7")] == 2  # read directly
    assert t.depth[NodeKey("dataset", "ds-hepatox-raw-2026q1")] == 4  # via fs and de-id
    assert t.nodes[0] == t.root
    # Every edge joins two nodes of the trace, and networkx holds the same subgraph.
    keys = t.keys()
    assert all(e.src in keys and e.dst in keys for e in t.edges)
    assert set(t.graph.nodes) == keys and t.graph.number_of_edges() == len(t.edges)


def test_a_prediction_batch_traces_to_its_model_data_and_endpoint_only(store: Any) -> None:
    t = trace(store, "pb-2026-0412")
    assert ids(t, "model_version") == {"mv-hepatox-1.0.0"}
    assert "ds-plate-2026-0412" in ids(t, "dataset")
    assert ids(t, "endpoint") == {"hepatox-prod"}
    # The endpoint is not walked through: other versions that served or scored through it
    # (mv-hepatox-1.1.0, the unregistered rc1) are not this batch's lineage.
    assert ids(t, "prediction_batch") == {"pb-2026-0412"}


def test_an_unregistered_model_shows_incomplete_lineage(store: Any) -> None:
    t = trace(store, "pb-2026-0420")
    (mv,) = t.of_kind("model_version")
    assert mv.id == "mv-hepatox-1.1.0-rc1" and not mv.registered
    assert not t.of_kind("training_run") and not t.of_kind("dataset")


# ----------------------------------------------------------------- downstream


def test_a_dataset_traces_forward_to_models_endpoints_and_batches(store: Any) -> None:
    t = trace(store, "ds-hepatox-raw-2026q1", "downstream")
    assert ids(t, "dataset") == {
        "ds-hepatox-raw-2026q1",
        "ds-hepatox-deid-2026q1",
        "ds-hepatox-extract-tk",
    }
    assert ids(t, "training_run") == {"run-0117", "run-0118", "run-0120", "run-0121", "run-0130"}
    assert ids(t, "model_version") == {"mv-hepatox-1.0.0", "mv-hepatox-1.1.0"}
    assert ids(t, "endpoint") == {"hepatox-prod", "hepatox-staging"}
    assert ids(t, "prediction_batch") == {
        "pb-2026-0412",
        "pb-2026-0419",
        "pb-2026-0501",
        "pb-2026-0502",
        "pb-2026-0503",
    }  # not pb-2026-0420, scored by rc1 through the same endpoint
    assert not t.of_kind("approval") and not t.of_kind("code_commit")


def test_affected_by_answers_the_unconsented_data_question(store: Any) -> None:
    a = affected_by(store, "hepatox-assay-raw")  # by name
    assert a.source.id == "ds-hepatox-raw-2026q1"
    assert [n.id for n in a.datasets] == ["ds-hepatox-deid-2026q1", "ds-hepatox-extract-tk"]
    assert [n.id for n in a.feature_sets] == ["fs-hepatox-raw-v1", "fs-hepatox-v2"]
    assert [n.id for n in a.model_versions] == ["mv-hepatox-1.0.0", "mv-hepatox-1.1.0"]
    assert [n.id for n in a.endpoints] == ["hepatox-prod", "hepatox-staging"]
    assert [(d.src.id, d.dst.id, d.event_id) for d in a.deployments] == [
        ("mv-hepatox-1.0.0", "hepatox-prod", "evt-030"),
        ("mv-hepatox-1.0.0", "hepatox-staging", "evt-024"),
        ("mv-hepatox-1.1.0", "hepatox-staging", "evt-056"),
    ]
    assert len(a.prediction_batches) == 5
    plate = affected_by(store, "dataset:ds-plate-2026-0412")
    assert [n.id for n in plate.prediction_batches] == [
        "pb-2026-0412",
        "pb-2026-0501",
        "pb-2026-0502",
        "pb-2026-0503",
    ]
    assert not plate.model_versions  # scoring data does not make models
    early = affected_by(store, "ds-hepatox-raw-2026q1", at=T("2026-01-25T00:00:00Z"))
    assert not early.model_versions and {n.id for n in early.training_runs} == {
        "run-0117",
        "run-0118",
        "run-0120",
        "run-0121",
    }


# ----------------------------------------------------------------- point in time


def test_served_at_before_and_after_a_redeployment(store: Any) -> None:
    assert served_at(store, "hepatox-staging", T("2026-02-10T08:00:00Z")) is None
    before = served_at(store, "hepatox-staging", T("2026-03-01T00:00:00Z"))
    assert before is not None
    assert before.model_version.id == "mv-hepatox-1.0.0"
    assert before.deployment.event_id == "evt-024"
    assert [a.id for a in before.approvals] == [
        "evt-021",
        "evt-022",
        "evt-026",
        "evt-027",
        "evt-028",
    ]
    at_switch = served_at(store, "endpoint:hepatox-staging", T("2026-04-07T11:08:00Z"))
    assert at_switch is not None and at_switch.model_version.id == "mv-hepatox-1.1.0"
    after = served_at(store, "hepatox-staging", T("2026-04-10T00:00:00Z"))
    assert after is not None and after.model_version.id == "mv-hepatox-1.1.0"
    assert [(a.id, a.attrs["meaning"]) for a in after.approvals] == [
        ("evt-050", "approved"),
        ("evt-051", "rejected"),
        ("evt-052", "approved"),
        ("evt-054", "approved"),
    ]
    assert after.overrides == ()
    assert after.deployment.valid_to is None


def test_served_at_lists_the_overrides_in_force(store: Any) -> None:
    def overrides(at: str) -> list[str]:
        s = served_at(store, "hepatox-prod", T(at))
        assert s is not None and s.model_version.id == "mv-hepatox-1.0.0"
        return [o.id for o in s.overrides]

    assert overrides("2026-03-10T11:30:00Z") == ["evt-040"]
    assert overrides("2026-03-12T00:00:00Z") == ["evt-040", "evt-041", "evt-042"]
    assert overrides("2026-03-20T00:00:00Z") == ["evt-040", "evt-041"]  # evt-042 expired
    assert overrides("2026-03-24T00:00:00Z") == []


def test_served_at_rejects_unknown_endpoints_with_suggestions(store: Any) -> None:
    with pytest.raises(UnknownNodeError) as err:
        served_at(store, "hepatox-prd", T("2026-03-01T00:00:00Z"))
    assert "endpoint:hepatox-prod" in err.value.suggestions
    with pytest.raises(LineageError, match="timezone"):
        served_at(store, "hepatox-prod", datetime(2026, 3, 1))


def test_trace_at_a_time_keeps_only_edges_and_deployments_of_then(store: Any) -> None:
    early = trace(store, "mv-hepatox-1.1.0", at=T("2026-04-01T00:00:00Z"))
    assert ids(early, "approval") == {"evt-050", "evt-051", "evt-052"}  # not evt-054
    staging = "endpoint:hepatox-staging"
    then = trace(store, staging, "upstream", T("2026-03-01T00:00:00Z"))
    assert ids(then, "model_version") == {"mv-hepatox-1.0.0"}
    assert ids(then, "approval") == {"evt-021", "evt-022", "evt-026", "evt-027", "evt-028"}
    now = trace(store, staging, "upstream", T("2026-04-10T00:00:00Z"))
    assert ids(now, "model_version") == {"mv-hepatox-1.1.0"}
    everything = trace(store, staging, "upstream")
    assert ids(everything, "model_version") == {"mv-hepatox-1.0.0", "mv-hepatox-1.1.0"}
    before = trace(store, "ds-hepatox-raw-2026q1", "downstream", T("2026-01-13T09:30:00Z"))
    assert before.keys() == {
        NodeKey("dataset", "ds-hepatox-raw-2026q1"),
        NodeKey("dataset", "ds-hepatox-deid-2026q1"),
    }


# ----------------------------------------------------------------- resolving names


def test_resolve_ids_kinds_names_and_versions(store: Any) -> None:
    assert resolve(store, "mv-hepatox-1.0.0").key == NodeKey("model_version", "mv-hepatox-1.0.0")
    assert resolve(store, "model_version:mv-hepatox-1.0.0").id == "mv-hepatox-1.0.0"
    assert resolve(store, "  hepatox-assay-deid ").id == "ds-hepatox-deid-2026q1"
    assert resolve(store, "hepatox-predictor@1.1.0").id == "mv-hepatox-1.1.0"
    assert resolve(store, "hepatox-features@1-dev").id == "fs-hepatox-raw-v1"
    assert resolve(store, "code_commit:7a9d2f4").kind == "code_commit"
    image = "registry.helixbio.example/ml/train:latest"  # an id with `:` and `/`
    assert resolve(store, image).key == NodeKey("image", image)
    assert resolve(store, "image:" + image).key == NodeKey("image", image)


def test_an_ambiguous_name_lists_the_candidates(store: Any) -> None:
    with pytest.raises(AmbiguousNodeError) as err:
        resolve(store, "hepatox-predictor")
    assert err.value.candidates == (
        "model_version:mv-hepatox-1.0.0 (hepatox-predictor@1.0.0)",
        "model_version:mv-hepatox-1.1.0 (hepatox-predictor@1.1.0)",
    )
    with pytest.raises(AmbiguousNodeError):
        trace(store, "hepatox-gbm")  # two runs share the name


def test_an_unknown_id_suggests_close_ones(store: Any) -> None:
    with pytest.raises(UnknownNodeError) as err:
        resolve(store, "mv-hepatox-1.0.1")
    assert "model_version:mv-hepatox-1.0.0" in err.value.suggestions
    with pytest.raises(UnknownNodeError) as err:
        resolve(store, "dataset:ds-hepatox-raw-2026q2")
    assert "dataset:ds-hepatox-raw-2026q1" in err.value.suggestions
    with pytest.raises(UnknownNodeError) as err:
        resolve(store, "zzzz-nothing-like-it")
    assert err.value.suggestions == () and "lineage record" in (err.value.hint or "")
    with pytest.raises(LineageError, match="empty"):
        resolve(store, "   ")


def test_the_same_id_in_two_kinds_is_ambiguous() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with SQLiteLineageStore(":memory:") as s:
        s.bulk_load(
            [BulkNode(NodeKey("dataset", "x"), t0), BulkNode(NodeKey("code_commit", "x"), t0)], []
        )
        with pytest.raises(AmbiguousNodeError) as err:
            resolve(s, "x")
        assert err.value.candidates == ("code_commit:x", "dataset:x")
        assert resolve(s, "code_commit:x").kind == "code_commit"


# ----------------------------------------------------------------- property test

# Endpoints twice as likely: they are where traversal rules differ (stop kinds).
KINDS = ["dataset", "training_run", "model_version", "endpoint", "endpoint"]
RELS = ["derived_from", "input_of", "trained", "served_by", "scored"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[BulkNode], list[BulkEdge]]:
    n = draw(st.integers(1, 8))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=n, max_size=n))
    nodes = [BulkNode(NodeKey(k, f"n{i}"), T0) for i, k in enumerate(kinds)]
    index = st.integers(0, n - 1)
    edge = st.tuples(index, index, st.sampled_from(RELS), st.integers(0, 20))
    raw = draw(st.lists(edge, max_size=4 * n))
    # Edges always run from the lower index to the higher: a DAG, possibly with parallel edges.
    edges = [
        BulkEdge(nodes[min(a, b)].key, nodes[max(a, b)].key, rel, f"e{i:02d}", "synthetic",
                 T0 + timedelta(days=d))
        for i, (a, b, rel, d) in enumerate(raw)
        if a != b
    ]  # fmt: skip
    return nodes, edges


def naive(
    edges: list[BulkEdge], start: NodeKey, direction: str, at: datetime | None
) -> tuple[set[NodeKey], set[tuple[Any, ...]], dict[NodeKey, int]]:
    """Reference semantics spelled out: supersession, the time filter, stop kinds, BFS."""
    valid_to: dict[str, datetime | None] = {}
    by_dst: dict[NodeKey, list[BulkEdge]] = defaultdict(list)
    for e in edges:
        valid_to[e.event_id] = None
        if e.relation == "served_by":
            by_dst[e.dst].append(e)
    for group in by_dst.values():
        group.sort(key=lambda e: (e.time, e.event_id))
        for earlier, later in itertools.pairwise(group):
            valid_to[earlier.event_id] = later.time

    def live(e: BulkEdge) -> bool:
        if at is None:
            return True
        end = valid_to[e.event_id]
        return e.time <= at and (end is None or at < end)

    depth = {start: 0}
    found: set[tuple[Any, ...]] = set()
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here != start and here.kind in STOP_KINDS:
            continue
        for e in edges:
            near, far = (e.dst, e.src) if direction == "upstream" else (e.src, e.dst)
            if near != here or not live(e):
                continue
            found.add((e.src, e.dst, e.relation, e.event_id, e.time, valid_to[e.event_id]))
            if far not in depth:
                depth[far] = depth[here] + 1
                queue.append(far)
    return set(depth), found, depth


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    graphs(),
    st.integers(0, 7),
    st.sampled_from(["upstream", "downstream"]),
    st.none() | st.integers(0, 21),
)
def test_trace_matches_a_naive_breadth_first_search(
    graph: tuple[list[BulkNode], list[BulkEdge]], pick: int, direction: str, day: int | None
) -> None:
    nodes, edges = graph
    # Downstream walks start early in the order and upstream ones late, so they go far.
    index = pick % len(nodes) if direction == "downstream" else len(nodes) - 1 - pick % len(nodes)
    start = nodes[index].key
    at = None if day is None else T0 + timedelta(days=day)
    with SQLiteLineageStore(":memory:") as s:
        s.bulk_load(nodes, edges)
        t = trace(s, start, direction, at)  # type: ignore[arg-type]
    want_nodes, want_edges, want_depth = naive(edges, start, direction, at)
    assert t.keys() == want_nodes
    got = {(e.src, e.dst, e.relation, e.event_id, e.time, e.valid_to) for e in t.edges}
    assert got == want_edges
    assert dict(t.depth) == want_depth
