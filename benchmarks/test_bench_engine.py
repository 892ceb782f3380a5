"""Throughput and latency of the engine (pytest-benchmark).

Each group carries its own baseline measured in the same run, so the figures
to quote are ratios:
- `oversight`: the issue's typical rule through the engine vs. the same logic
  hand-written in plain Python (the floor for any Python evaluator);
- `bundle50`: 50 generated rules: batch calls of 1,000 vs. single calls collecting the
  same 1,000 decisions (and single calls whose decisions are dropped at once);
- `compile`: 1,000 rules vs. 50 rules (scaling).
Absolute goals from the issue: oversight ≥ 150,000 events/s with the
explanation recorded and p99 < 30 µs; 50 rules ≥ 50,000 events/s; compiling
1,000 rules < 1 s. Figures are recorded in `extra_info` (events_per_s, p50_us,
p99_us) — nothing here asserts wall-clock time.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from scenarios import (
    OVERSIGHT_RULE,
    bundle_source,
    deploy_events,
    mixed_events,
    seeded_state,
)

from policyengine import compile_sources

N_EVENTS = 100_000
BATCH = 1_000  # events per batch call, like one HTTP batch request


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    state, models = seeded_state()
    return {
        "state": state,
        "deploys": deploy_events(models, N_EVENTS),
        "mixed": mixed_events(models, N_EVENTS),
        "oversight": compile_sources({"oversight.policy": OVERSIGHT_RULE}),
        "bundle50": compile_sources({"bundle50.policy": bundle_source(50)}),
    }


def _native_oversight(event: dict[str, Any], state: Any) -> tuple[str, tuple[Any, ...]]:
    """The oversight rule written by hand, with the same explanation values."""
    if event["attributes"]["target"]["environment"] != "production":
        return "not_applicable", ()
    mv = state.get("model_version", event["subject"]["id"])
    author = mv["created_by"]
    signers = {
        a["signer"]
        for a in mv["approvals"]
        if a["meaning"] == "approved"
        and a["role"] in ("qa", "domain_expert")
        and a["signer"] != author
    }
    run = state.get("training_run", mv["training_run"])
    bad = None
    for d in run["inputs"]:
        ds = state.get("dataset", d)
        if ds["classification"] == "PHI" and not ds["deidentified"]:
            bad = d
            break
    ok = len(signers) >= 2 and bad is None
    return ("pass" if ok else "fail"), (len(signers), bad)


def _rate(benchmark: Any, n: int) -> None:
    benchmark.extra_info["events"] = n
    benchmark.extra_info["events_per_s"] = round(n / benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="oversight")
def test_oversight_engine(benchmark: Any, world: dict[str, Any]) -> None:
    bundle, state, events = world["oversight"], world["state"], world["deploys"]

    def run() -> int:
        denied = 0
        for e in events:
            if bundle.evaluate(e, state).outcome.value == "deny":
                denied += 1
        return denied

    denied = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert 0 < denied < len(events)
    _rate(benchmark, len(events))
    # Single-event latency distribution, measured per call.
    samples = []
    clock = time.perf_counter_ns
    for e in events[:20_000]:
        t0 = clock()
        bundle.evaluate(e, state)
        samples.append(clock() - t0)
    samples.sort()
    benchmark.extra_info["p50_us"] = round(samples[len(samples) // 2] / 1000, 2)
    benchmark.extra_info["p99_us"] = round(samples[int(len(samples) * 0.99)] / 1000, 2)


@pytest.mark.benchmark(group="oversight")
def test_oversight_native_baseline(benchmark: Any, world: dict[str, Any]) -> None:
    state, events = world["state"], world["deploys"]

    def run() -> int:
        return sum(1 for e in events if _native_oversight(e, state)[0] == "fail")

    failed = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert 0 < failed < len(events)
    _rate(benchmark, len(events))


@pytest.mark.benchmark(group="bundle50")
def test_bundle50_single(benchmark: Any, world: dict[str, Any]) -> None:
    """One call per event, each decision consumed and dropped (a streaming consumer)."""
    bundle, state, events = world["bundle50"], world["state"], world["mixed"]

    def run() -> int:
        return sum(1 for e in events if bundle.evaluate(e, state).outcome.value == "deny")

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _rate(benchmark, len(events))


@pytest.mark.benchmark(group="bundle50")
def test_bundle50_single_collected(benchmark: Any, world: dict[str, Any]) -> None:
    """Baseline for the batch: one call per event, decisions kept in lists of 1,000."""
    bundle, state, events = world["bundle50"], world["state"], world["mixed"]
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]

    def run() -> int:
        return sum(len([bundle.evaluate(e, state) for e in chunk]) for chunk in chunks)

    assert benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1) == len(events)
    _rate(benchmark, len(events))


@pytest.mark.benchmark(group="bundle50")
def test_bundle50_batch(benchmark: Any, world: dict[str, Any]) -> None:
    """`Bundle.evaluate_batch` on lists of 1,000, decisions returned."""
    bundle, state, events = world["bundle50"], world["state"], world["mixed"]
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]

    def run() -> int:
        return sum(len(bundle.evaluate_batch(chunk, state)) for chunk in chunks)

    assert benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1) == len(events)
    _rate(benchmark, len(events))


@pytest.mark.benchmark(group="compile")
def test_compile_1000_rules(benchmark: Any) -> None:
    source = {"generated.policy": bundle_source(1000)}
    bundle = benchmark.pedantic(
        compile_sources, args=(source,), rounds=3, iterations=1, warmup_rounds=1
    )
    assert len(bundle.rules) == 1000


@pytest.mark.benchmark(group="compile")
def test_compile_50_rules_baseline(benchmark: Any) -> None:
    source = {"generated.policy": bundle_source(50)}
    bundle = benchmark.pedantic(
        compile_sources, args=(source,), rounds=5, iterations=1, warmup_rounds=1
    )
    assert len(bundle.rules) == 50
