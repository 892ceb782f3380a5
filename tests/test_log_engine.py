"""The embedded engine with a decision log: acknowledged means durable, failure means no change."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pseudonyms import PSEUDONYMS

import policyengine as pe
from policyengine.log import parse_record

ROOT = Path(__file__).resolve().parent.parent
EVENTS = [
    json.loads(line) for line in (ROOT / "examples" / "biotech.jsonl").read_text().splitlines()
]


@pytest.fixture(scope="module")
def bundle() -> pe.Bundle:
    return pe.load_bundle(ROOT / "policies")


def test_recorded_engine_logs_what_it_returns(tmp_path: Path, bundle: pe.Bundle) -> None:
    signer = pe.Signer.generate("test.example/log")
    log = pe.TransparencyLog.open(tmp_path / "log.db", signer, create=True)
    engine = pe.Engine(bundle, recorder=pe.DecisionRecorder(log), pseudonymiser=PSEUDONYMS)
    plain = pe.Engine(bundle, pseudonymiser=PSEUDONYMS)
    for event in EVENTS:
        before = log.size()
        decision = engine.evaluate(event)
        assert decision.to_json() == plain.evaluate(event).to_json()
        # durable and signed by the time the call returns
        assert log.size() > before
        cp = log.latest_checkpoint()
        assert cp is not None and cp.size == log.size()
        record = parse_record(log.leaf(log.size() - 1))
        assert record["decision"] == json.loads(decision.to_json())
    assert log.size() == len(EVENTS) + 2  # + the bundle publication and the session
    # each decision can be found by the id of the event it judged
    assert [log.find(e["id"]) for e in EVENTS] == [[i + 2] for i in range(len(EVENTS))]
    assert log.audit(signer.verifier).ok


def test_batch_is_one_durable_append(tmp_path: Path, bundle: pe.Bundle) -> None:
    signer = pe.Signer.generate("test.example/log")
    log = pe.TransparencyLog.open(tmp_path / "log.db", signer, create=True)
    engine = pe.Engine(bundle, recorder=pe.DecisionRecorder(log), pseudonymiser=PSEUDONYMS)
    decisions = engine.evaluate_batch(EVENTS)
    expected = pe.Engine(bundle, pseudonymiser=PSEUDONYMS).evaluate_batch(EVENTS)
    assert [d.to_json() for d in decisions] == [d.to_json() for d in expected]
    assert [cp.size for cp in log.store.checkpoints()] == [len(EVENTS) + 2]


class _Broken:
    def record(self, pairs: Sequence[tuple[Mapping[str, Any], pe.Decision]], b: pe.Bundle) -> None:
        raise OSError(28, "No space left on device")


def test_failed_recording_leaves_state_untouched(bundle: pe.Bundle) -> None:
    broken = pe.Engine(bundle, recorder=_Broken())
    plain = pe.Engine(bundle, pseudonymiser=PSEUDONYMS)
    with pytest.raises(OSError):
        broken.evaluate(EVENTS[1])  # a registration that would change state
    with pytest.raises(OSError):
        broken.evaluate_batch(EVENTS[:5])
    assert isinstance(broken.state, pe.MemoryStateStore)
    assert list(broken.state.items()) == []
    # the same engine, once the log works again, decides as if nothing had happened
    broken.recorder = None
    assert [broken.evaluate(e).to_json() for e in EVENTS] == [
        plain.evaluate(e).to_json() for e in EVENTS
    ]


def test_threads_share_one_recorded_engine(tmp_path: Path, bundle: pe.Bundle) -> None:
    signer = pe.Signer.generate("test.example/log")
    log = pe.TransparencyLog.open(tmp_path / "log.db", signer, create=True)
    engine = pe.Engine(bundle, recorder=pe.DecisionRecorder(log), pseudonymiser=PSEUDONYMS)
    got: list[pe.Decision] = []
    lock = threading.Lock()

    def work(chunk: list[dict[str, Any]]) -> None:
        for event in chunk:
            d = engine.evaluate(event)
            with lock:
                got.append(d)

    threads = [threading.Thread(target=work, args=(EVENTS[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(EVENTS)
    logged = {parse_record(data)["decision"]["event"]["id"] for _, data in log.leaves(2)}
    assert logged == {e["id"] for e in EVENTS}
    assert log.audit(signer.verifier).ok
