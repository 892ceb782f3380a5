"""Lineage traces over a 1,000,000-edge store (pytest-benchmark).

Goal from issue 5: a trace over a graph of 1,000,000 edges answers in under a second.
The store is synthetic and seeded (`build_graph`): 2,000 data families of 60 dataset
versions each (every version derived from the previous one, 10 % also from an older version
of another family), feature sets over datasets of the same period, training runs over
feature sets and datasets with commits and images, model versions with two approvals each,
deployments to 500 endpoints (so versions supersede each other) and prediction batches.
It is bulk-loaded once per session in pytest's temp dir.

Benchmarks: `trace` upstream from late prediction batches and model versions (deep: their
inputs' version chains go back to the start), downstream from early datasets, and a
point-in-time trace; baseline in the same run: the same breadth-first walk over an adjacency
dict held in memory (no SQLite, no node rows, no networkx). Sizes reached land in
`extra_info`; nothing here asserts wall-clock time.
"""

from __future__ import annotations

import gc
import random
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policyengine.lineage import (
    STOP_KINDS,
    BulkEdge,
    BulkNode,
    NodeKey,
    SQLiteLineageStore,
    trace,
)

SEED = 20261128
FAMILIES = 2_000
VERSIONS = 60
CROSS_LINK = 0.10
FEATURE_SETS = 60_000
RUNS = 60_000
MODELS = 60_000
BATCHES = 40_000
ENDPOINTS = 500
COMMITS = 5_000
IMAGES = 200
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SAMPLES = 8


@dataclass
class Graph:
    nodes: list[BulkNode] = field(default_factory=list)
    edges: list[BulkEdge] = field(default_factory=list)
    late_batches: list[NodeKey] = field(default_factory=list)
    late_models: list[NodeKey] = field(default_factory=list)
    early_datasets: list[NodeKey] = field(default_factory=list)

    def node(self, kind: str, id_: str, tick: int, **attrs: Any) -> NodeKey:
        key = NodeKey(kind, id_)
        name = attrs.get("name")
        self.nodes.append(BulkNode(key, _time(tick), name, attrs))
        return key

    def edge(self, src: NodeKey, dst: NodeKey, relation: str, tick: int, etype: str) -> None:
        self.edges.append(BulkEdge(src, dst, relation, f"e{len(self.edges)}", etype, _time(tick)))


def _time(tick: int) -> datetime:
    return T0 + timedelta(hours=tick)


def build_graph(seed: int = SEED) -> Graph:
    """The synthetic lineage described in the module docstring (~1.03M edges)."""
    rng = random.Random(seed)
    g = Graph()
    commits = [g.node("commit", f"{rng.getrandbits(40):010x}", 0) for _ in range(COMMITS)]
    images = [g.node("image", f"registry.example/train@sha256:{i:08x}", 0) for i in range(IMAGES)]
    endpoints = [
        g.node("endpoint", f"ep-{i:03d}", 0, environment="production") for i in range(ENDPOINTS)
    ]
    # Datasets: version v of every family is registered at tick v * 10.
    ds: list[list[NodeKey]] = [[] for _ in range(VERSIONS)]
    for v in range(VERSIONS):
        for f in range(FAMILIES):
            key = g.node(
                "dataset", f"ds-{f:04d}-v{v:02d}", v * 10, name=f"family-{f:04d}", version=str(v)
            )
            ds[v].append(key)
            if v:
                g.edge(ds[v - 1][f], key, "derived_from", v * 10, "dataset.registered")
                if rng.random() < CROSS_LINK:
                    older = ds[rng.randrange(v)][rng.randrange(FAMILIES)]
                    g.edge(older, key, "derived_from", v * 10, "dataset.registered")
    g.early_datasets = [ds[0][rng.randrange(FAMILIES)] for _ in range(SAMPLES)]
    # Feature sets, runs and models spread over the same 60 periods, in time order.
    per = FEATURE_SETS // VERSIONS
    fs: list[list[NodeKey]] = [[] for _ in range(VERSIONS)]
    for i in range(FEATURE_SETS):
        v = i // per
        tick = v * 10 + 2
        key = g.node("feature_set", f"fs-{i:05d}", tick, name=f"features-{i % 500}", version=str(v))
        fs[v].append(key)
        for src in rng.sample(ds[v], 3):
            g.edge(src, key, "input_of", tick, "features.materialized")
        g.edge(rng.choice(commits), key, "code_of", tick, "features.materialized")
    models: list[NodeKey] = []
    for i in range(RUNS):
        v = i // (RUNS // VERSIONS)
        tick = v * 10 + 4
        run = g.node("training_run", f"run-{i:05d}", tick, name=f"train-{i % 300}")
        for src in rng.sample(fs[v], 2):
            g.edge(src, run, "features_of", tick, "run.started")
        g.edge(rng.choice(ds[v]), run, "input_of", tick, "run.started")
        g.edge(rng.choice(commits), run, "code_of", tick, "run.started")
        g.edge(rng.choice(images), run, "image_of", tick, "run.started")
        mv = g.node(
            "model_version", f"mv-{i:05d}", tick + 1, name=f"model-{i % 1000}", version=str(v)
        )
        g.edge(run, mv, "trained", tick + 1, "model.registered")
        for a in range(2):
            approval = g.node("approval", f"apr-{i:05d}-{a}", tick + 2, meaning="approved")
            g.edge(approval, mv, "approved", tick + 2, "approval.recorded")
        g.edge(mv, rng.choice(endpoints), "served_by", tick + 3, "model.deployed")
        models.append(mv)
    assert len(models) == MODELS
    for i in range(BATCHES):
        j = rng.randrange(len(models))
        v = j // (MODELS // VERSIONS)
        tick = v * 10 + 8
        batch = g.node("prediction_batch", f"pb-{i:05d}", tick, row_count=384)
        g.edge(models[j], batch, "scored", tick, "prediction.batch_completed")
        g.edge(rng.choice(ds[v]), batch, "scored_data", tick, "prediction.batch_completed")
        g.edge(rng.choice(endpoints), batch, "scored_via", tick, "prediction.batch_completed")
        if v == VERSIONS - 1 and len(g.late_batches) < SAMPLES:
            g.late_batches.append(batch)
    g.late_models = models[-SAMPLES:]
    return g


def _bfs(
    adjacency: dict[NodeKey, list[NodeKey]], kinds: dict[NodeKey, str], start: NodeKey
) -> tuple[int, int]:
    """The floor: the same walk (stopping at endpoints) over an in-memory adjacency dict."""
    seen = {start}
    queue = deque([start])
    edges = 0
    while queue:
        here = queue.popleft()
        if here != start and kinds[here] in STOP_KINDS:
            continue
        for other in adjacency.get(here, ()):
            edges += 1
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return len(seen), edges


@dataclass
class Built:
    store: SQLiteLineageStore
    graph: Graph
    build_s: float
    file_mb: float
    up: dict[NodeKey, list[NodeKey]]
    down: dict[NodeKey, list[NodeKey]]
    kinds: dict[NodeKey, str]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    path = Path(tmp_path_factory.mktemp("lineage")) / "lineage.db"
    started = time.perf_counter()
    graph = build_graph()
    store = SQLiteLineageStore(path, create=True)
    store.bulk_load(graph.nodes, graph.edges)
    build_s = time.perf_counter() - started
    up: dict[NodeKey, list[NodeKey]] = defaultdict(list)
    down: dict[NodeKey, list[NodeKey]] = defaultdict(list)
    for e in graph.edges:
        up[e.dst].append(e.src)
        down[e.src].append(e.dst)
    kinds = {n.key: n.key.kind for n in graph.nodes}
    # Millions of fixture objects stay alive for the session; freeze them so the cyclic
    # collector does not rescan them inside a measured trace (a ~1 s pause otherwise).
    gc.collect()
    gc.freeze()
    yield Built(store, graph, build_s, path.stat().st_size / 1e6, up, down, kinds)
    gc.unfreeze()
    store.close()


def _cycle(keys: list[NodeKey]) -> Iterator[NodeKey]:
    while True:
        yield from keys


def _run_traces(
    benchmark: Any, built: Built, keys: list[NodeKey], direction: str, at: datetime | None = None
) -> None:
    counts = built.store.counts()
    assert counts["edges"] >= 1_000_000
    traces = [trace(built.store, k, direction, at) for k in keys]  # type: ignore[arg-type]
    sizes = [(len(t.nodes), len(t.edges)) for t in traces]
    deepest = max(max(t.depth.values()) for t in traces)
    del traces
    chosen = _cycle(keys)
    benchmark.pedantic(
        lambda: trace(built.store, next(chosen), direction, at),  # type: ignore[arg-type]
        rounds=len(keys) * 3,
        iterations=1,
        warmup_rounds=1,
    )
    benchmark.extra_info.update(
        store_edges=counts["edges"],
        store_nodes=counts["nodes"],
        build_s=round(built.build_s, 1),
        file_mb=round(built.file_mb),
        nodes_reached_min=min(n for n, _ in sizes),
        nodes_reached_max=max(n for n, _ in sizes),
        edges_reached_min=min(e for _, e in sizes),
        edges_reached_max=max(e for _, e in sizes),
        max_depth=deepest,
    )


@pytest.mark.benchmark(group="lineage-upstream")
def test_upstream_from_late_batches(benchmark: Any, built: Built) -> None:
    _run_traces(benchmark, built, built.graph.late_batches, "upstream")


@pytest.mark.benchmark(group="lineage-upstream")
def test_upstream_from_late_models(benchmark: Any, built: Built) -> None:
    _run_traces(benchmark, built, built.graph.late_models, "upstream")


@pytest.mark.benchmark(group="lineage-upstream")
def test_upstream_baseline_in_memory(benchmark: Any, built: Built) -> None:
    chosen = _cycle(built.graph.late_batches)
    benchmark(lambda: _bfs(built.up, built.kinds, next(chosen)))


@pytest.mark.benchmark(group="lineage-downstream")
def test_downstream_from_early_datasets(benchmark: Any, built: Built) -> None:
    _run_traces(benchmark, built, built.graph.early_datasets, "downstream")


@pytest.mark.benchmark(group="lineage-downstream")
def test_downstream_largest(benchmark: Any, built: Built) -> None:
    # The worst case among the samples: the early dataset that feeds the most.
    largest = max(built.graph.early_datasets, key=lambda k: _bfs(built.down, built.kinds, k)[1])
    _run_traces(benchmark, built, [largest], "downstream")


@pytest.mark.benchmark(group="lineage-downstream")
def test_downstream_at_a_point_in_time(benchmark: Any, built: Built) -> None:
    # Half-way through the history: later datasets, runs and deployments do not count.
    _run_traces(benchmark, built, built.graph.early_datasets, "downstream", _time(VERSIONS * 5))


@pytest.mark.benchmark(group="lineage-downstream")
def test_downstream_baseline_in_memory(benchmark: Any, built: Built) -> None:
    chosen = _cycle(built.graph.early_datasets)
    benchmark(lambda: _bfs(built.down, built.kinds, next(chosen)))
