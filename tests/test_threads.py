"""Thread safety: a compiled `Bundle` is immutable and shared; an `Engine` serialises.

Threads are started together on a barrier and the interpreter's switch interval is
shortened, so evaluations really interleave; results are compared byte for byte with
a sequential run of the same streams.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import strategies as S

from policyengine import (
    Engine,
    EventError,
    Outcome,
    compile_sources,
    load_bundle,
    parse_event,
    read_jsonl,
)
from policyengine.compiler.bundle import Bundle
from policyengine.events import MemoryStateStore

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8
R = TypeVar("R")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(ROOT / "policies")


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(work: Callable[[int], R], n: int = THREADS) -> list[R]:
    """Run `work(i)` for i in range(n) on n threads released together; re-raise errors."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def _biotech_raw() -> list[dict[str, Any]]:
    lines = (ROOT / "examples" / "biotech.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def stream(n: int) -> list[dict[str, Any]]:
    """Stream `n`: the biotech story with every entity id renamed for this stream (so the
    streams share no state), followed by random events over the catalogue."""
    raw = _biotech_raw()
    ids = {e["subject"]["id"] for e in raw}
    out = []
    for e in raw:
        text = json.dumps(e)
        for i in sorted(ids, key=len, reverse=True):
            text = text.replace(f'"{i}"', f'"{i}-s{n}"')
        out.append(parse_event(json.loads(text)))
    rng = random.Random(n)
    for _ in range(40):
        event_type = rng.choice(S.EVENT_TYPE_NAMES)
        event = S.make_event(rng, event_type)
        event["subject"] = {**event["subject"], "id": f"{event['subject']['id']}-s{n}"}
        out.append(event)
    return out


def sequential(bundle: Bundle, events: list[dict[str, Any]]) -> list[bytes]:
    engine = Engine(bundle)
    return [engine.evaluate(e, validated=True).to_json() for e in events]


def test_shared_bundle_matches_sequential_evaluation(bundle: Bundle) -> None:
    streams = [stream(i) for i in range(THREADS)]
    expected = [sequential(bundle, s) for s in streams]
    for _ in range(2):
        got = run_threads(lambda i: sequential(bundle, streams[i]))
        assert got == expected
    outcomes = {json.loads(d)["outcome"] for ds in expected for d in ds}
    assert {"allow", "deny"} <= outcomes


def test_shared_bundle_stateless_evaluate_with_own_stores(bundle: Bundle) -> None:
    """`Bundle.evaluate` (no Engine, no lock) from many threads, each with its own store."""
    streams = [stream(i) for i in range(THREADS)]

    def decide(i: int) -> list[bytes]:
        store = MemoryStateStore()
        out = []
        for e in streams[i]:
            out.append(bundle.evaluate(e, store).to_json())
        return out

    expected = [decide(i) for i in range(THREADS)]
    assert run_threads(decide) == expected


def test_shared_engine_disjoint_streams(bundle: Bundle) -> None:
    """Threads feeding one Engine with streams about different entities: each stream's
    decisions and the final state are exactly those of a sequential run."""
    streams = [stream(i) for i in range(THREADS)]
    expected = [sequential(bundle, s) for s in streams]
    reference = Engine(bundle)
    for s in streams:
        for e in s:
            reference.evaluate(e, validated=True)
    engine = Engine(bundle)
    got = run_threads(lambda i: [engine.evaluate(e, validated=True).to_json() for e in streams[i]])
    assert got == expected
    assert isinstance(engine.state, MemoryStateStore)
    assert isinstance(reference.state, MemoryStateStore)
    assert dict(engine.state.items()) == dict(reference.state.items())


CONTENDED_POLICY = """
package t

rule no_qa0 {
  layer oversight
  on approval.recorded
  require event.signer != "qa-0"
}

rule tally {
  layer audit
  enforce advisory
  on approval.recorded
  require count(a in subject.approvals) <= 100000
}
"""


def test_shared_engine_contended_subject() -> None:
    """All threads sign the same model version: every event gets one decision, no
    committed approval is lost or duplicated, and each decision saw exactly the approvals
    committed before it plus its own (judge-then-commit is atomic under the lock)."""
    engine = Engine(compile_sources({"t.policy": CONTENDED_POLICY}))
    per_thread = 25

    def sign(i: int) -> list[tuple[str, Outcome, int]]:
        out = []
        for k in range(per_thread):
            d = engine.evaluate(
                {
                    "id": f"sig-{i}-{k}",
                    "type": "approval.recorded",
                    "time": f"2026-03-02T{i:02d}:{k:02d}:00Z",
                    "actor": {"id": f"qa-{i}", "roles": ["qa"]},
                    "subject": {"kind": "model_version", "id": "mv-shared"},
                    "attributes": {"signer": f"qa-{i}", "role": "qa", "meaning": "approved"},
                }
            )
            tally = d.result("t.tally")
            assert tally is not None
            seen = tally.requirements[0].values[0][1]
            out.append((d.event_id, d.outcome, seen))
        return out

    results = [r for rs in run_threads(sign) for r in rs]
    assert len({eid for eid, _, _ in results}) == THREADS * per_thread
    committed = [seen for eid, outcome, seen in results if outcome is not Outcome.DENY]
    assert len(committed) == (THREADS - 1) * per_thread  # qa-0 is always denied
    assert sorted(committed) == list(range(1, len(committed) + 1))
    state = engine.state.get("model_version", "mv-shared")
    assert state is not None
    assert len(state["approvals"]) == len(committed)
    assert all(a["signer"] != "qa-0" for a in state["approvals"])


def test_shared_engine_batches_and_bad_events(bundle: Bundle) -> None:
    """Batches and single events interleave; a malformed event raises `EventError` in its
    own thread only and changes nothing."""
    streams = [stream(i) for i in range(THREADS)]
    engine = Engine(bundle)
    bad = {"id": "bad", "type": "model.deployed", "time": "2026-03-01T00:00:00"}

    def work(i: int) -> list[bytes]:
        if i % 2:
            return [d.to_json() for d in engine.evaluate_batch(streams[i], validated=True)]
        out = []
        for e in streams[i]:
            out.append(engine.evaluate(e, validated=True).to_json())
            with pytest.raises(EventError):
                engine.evaluate(bad)
        return out

    got = run_threads(work)
    assert got == [sequential(bundle, s) for s in streams]


def test_read_jsonl_streams_are_independent() -> None:
    """The reader holds no shared state: parsing the same log on many threads agrees."""
    text = (ROOT / "examples" / "biotech.jsonl").read_text(encoding="utf-8")
    expected = [(n, e if isinstance(e, dict) else str(e)) for n, e in read_jsonl(text)]
    got = run_threads(
        lambda i: [(n, e if isinstance(e, dict) else str(e)) for n, e in read_jsonl(text)]
    )
    assert all(g == expected for g in got)
