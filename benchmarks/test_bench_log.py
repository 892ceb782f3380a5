"""Throughput and latency of the decision log (pytest-benchmark).

Goals from issue 4, each with a baseline measured in the same run so ratios can be quoted:
- `log-append`: durable batches of 1,000 decision records (~600 bytes), a checkpoint signed
  in each transaction — goal ≥ 50,000 leaves/s on one core; baselines: the same batch
  without the signature, and the same rows inserted into a bare WAL/FULL SQLite table
  (the storage floor: no hashing, no tree);
- `log-prove`: `prove(index)` at random indices of a 1,000,000-leaf log — goal < 1 ms;
  baseline: the same proofs from every tree level held in memory;
- `log-audit`: full `audit` of the 1,000,000 leaves — goal < 10 s; baselines: SHA-256
  of every leaf folded with `root_from_leaf_hashes` in memory (the hashing floor), and a
  bare `SELECT` of every leaf (the reading floor).
Figures land in `extra_info`; nothing here asserts wall-clock time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policyengine.log import (
    MemoryHashReader,
    Signer,
    TransparencyLog,
    canonical,
    leaf_hash,
    prove_inclusion,
    root_from_leaf_hashes,
    verify_proof,
)

ORIGIN = "bench.example/policyengine/decisions"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench").digest()))
BATCH = 1_000
APPEND_ROUNDS = 60
MILLION = 1_000_000
BUILD_BATCH = 50_000
_ID = "evt-00000000"  # fixed width, replaced per leaf so a pool of records yields 1M leaves


def _record(rng: random.Random) -> bytes:
    """One decision record shaped like `records.decision_record` output, canonical JSON."""
    model = f"model-{rng.randrange(200):03d}@v{rng.randrange(1, 9)}"
    env = rng.choice(["staging", "production", "production"])
    approvers = rng.randrange(0, 4)
    ok = env != "production" or approvers >= 2
    stamp = f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}"
    subject = {"kind": "model_version", "id": model}
    event = {"id": _ID, "type": "model.deploy", "time": stamp + ":00Z", "subject": subject}
    decision = {
        "event": event,
        "outcome": "allow" if ok else "deny",
        "results": [
            {
                "rule": "two_person",
                "layer": "oversight",
                "severity": "high",
                "enforcement": "block",
                "status": "pass" if ok else "fail",
                "message": None if ok else "needs 2 approvers",
                "requirements": [
                    {
                        "expr": "approvers >= 2",
                        "status": "pass" if ok else "fail",
                        "values": [{"expr": "approvers", "value": approvers}],
                    }
                ]
                if not ok
                else [],
                "refs": [],
            }
        ],
        "bundle_digest": "sha256:" + hashlib.sha256(b"bundle").hexdigest(),
        "engine_version": "0.1.0",
        "evaluated_at": stamp + ":01Z",
    }
    full_event = event | {"attributes": {"target": {"environment": env}}}
    return canonical(
        {
            "v": 1,
            "kind": "decision",
            "time": stamp + ":01Z",
            "event": full_event,
            "decision": decision,
        }
    )


def decision_leaves(n: int, seed: int = 2026) -> list[bytes]:
    rng = random.Random(seed)
    pool = [_record(rng) for _ in range(1_000)]
    marker = _ID.encode()
    return [pool[i % len(pool)].replace(marker, b"evt-%08d" % i) for i in range(n)]


def _rate(benchmark: Any, leaves: int) -> None:
    benchmark.extra_info["leaves"] = leaves
    benchmark.extra_info["leaves_per_s"] = round(leaves / benchmark.stats.stats.mean)


def _batches(seed: int) -> Iterator[list[bytes]]:
    leaves = decision_leaves(BATCH * (APPEND_ROUNDS + 2), seed)
    return (leaves[i : i + BATCH] for i in range(0, len(leaves), BATCH))


# ------------------------------------------------------------------------------ append


@pytest.mark.benchmark(group="log-append")
def test_append_1000_signed(benchmark: Any, tmp_path: Path) -> None:
    batches = _batches(1)
    with TransparencyLog.open(tmp_path / "a.db", SIGNER, create=True) as log:
        benchmark.pedantic(
            lambda: log.append(next(batches)), rounds=APPEND_ROUNDS, iterations=1, warmup_rounds=2
        )
        assert log.latest_checkpoint().size == log.size() == BATCH * (APPEND_ROUNDS + 2)  # type: ignore[union-attr]
    sample = decision_leaves(BATCH)
    assert len(set(sample)) == BATCH and all(canonical(json.loads(lf)) == lf for lf in sample)
    benchmark.extra_info["mean_leaf_bytes"] = round(sum(map(len, sample)) / BATCH)
    _rate(benchmark, BATCH)


@pytest.mark.benchmark(group="log-append")
def test_append_1000_unsigned(benchmark: Any, tmp_path: Path) -> None:
    batches = _batches(2)
    with TransparencyLog.open(tmp_path / "a.db", create=True) as log:
        benchmark.pedantic(
            lambda: log.append(next(batches)), rounds=APPEND_ROUNDS, iterations=1, warmup_rounds=2
        )
        assert log.size() == BATCH * (APPEND_ROUNDS + 2)
    _rate(benchmark, BATCH)


@pytest.mark.benchmark(group="log-append")
def test_append_1000_bare_sqlite_baseline(benchmark: Any, tmp_path: Path) -> None:
    """The same rows, durably inserted with no hashing and no tree: the storage floor."""
    batches = _batches(3)
    db = sqlite3.connect(tmp_path / "bare.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE leaves(idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    pos = itertools.count()

    def insert() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO leaves VALUES(?, ?)", ((next(pos), d) for d in next(batches)))
        db.execute("COMMIT")

    benchmark.pedantic(insert, rounds=APPEND_ROUNDS, iterations=1, warmup_rounds=2)
    db.close()
    _rate(benchmark, BATCH)


@pytest.mark.benchmark(group="log-append")
def test_append_1_signed_latency(benchmark: Any, tmp_path: Path) -> None:
    """One decision per transaction: the latency of acknowledging a single decision."""
    leaves = iter(decision_leaves(2_100, seed=4))
    with TransparencyLog.open(tmp_path / "one.db", SIGNER, create=True) as log:
        benchmark.pedantic(lambda: log.append([next(leaves)]), rounds=2_000, warmup_rounds=20)
    _rate(benchmark, 1)


# ------------------------------------------------------------------------------ 1M leaves


@pytest.fixture(scope="session")
def million(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A 1,000,000-leaf signed log, built once: big unsigned batches, then one checkpoint."""
    leaves = decision_leaves(MILLION)
    path = tmp_path_factory.mktemp("million") / "decisions.db"
    t0 = time.perf_counter()
    with TransparencyLog.open(path, SIGNER, create=True) as log:
        for i in range(0, MILLION, BUILD_BATCH):
            log.append(leaves[i : i + BUILD_BATCH], sign=False)
        log.sign_checkpoint()
    built = time.perf_counter() - t0
    yield {
        "path": path,
        "leaves": leaves,
        "build_s": round(built, 1),
        "file_mb": round(path.stat().st_size / 2**20),
    }
    for leftover in path.parent.iterdir():  # ~0.9 GB: do not leave it in pytest's tmp dirs
        leftover.unlink()


@pytest.fixture(scope="session")
def million_log(million: dict[str, Any]) -> Iterator[TransparencyLog]:
    with TransparencyLog.open(million["path"]) as log:
        yield log


def _indices(seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    return itertools.cycle([rng.randrange(MILLION) for _ in range(10_000)])


@pytest.mark.benchmark(group="log-prove")
def test_prove_at_1m(benchmark: Any, million: dict[str, Any], million_log: TransparencyLog) -> None:
    indices = _indices(11)
    proof = benchmark(lambda: million_log.prove(next(indices)))
    assert verify_proof(proof.to_text(), SIGNER.verifier, origin=ORIGIN)[0].size == MILLION
    benchmark.extra_info["us_per_proof"] = round(benchmark.stats.stats.mean * 1e6, 1)
    benchmark.extra_info["build_1m_s"] = million["build_s"]
    benchmark.extra_info["file_mb"] = million["file_mb"]


@pytest.mark.benchmark(group="log-prove")
def test_prove_at_1m_as_text(benchmark: Any, million_log: TransparencyLog) -> None:
    """What `policyengine log prove` hands out: the proof as tlog-proof text."""
    indices = _indices(12)
    benchmark(lambda: million_log.prove(next(indices)).to_text())
    benchmark.extra_info["us_per_proof"] = round(benchmark.stats.stats.mean * 1e6, 1)


@pytest.mark.benchmark(group="log-prove")
def test_prove_at_1m_in_memory_baseline(benchmark: Any, million: dict[str, Any]) -> None:
    """Every level of the tree in a Python list: proof generation with no storage at all."""
    tree = MemoryHashReader([leaf_hash(lf) for lf in million["leaves"]])
    indices = _indices(11)
    benchmark(lambda: prove_inclusion(tree, next(indices), MILLION))
    benchmark.extra_info["us_per_proof"] = round(benchmark.stats.stats.mean * 1e6, 1)


@pytest.mark.benchmark(group="log-prove")
def test_verify_proof_at_1m(benchmark: Any, million_log: TransparencyLog) -> None:
    """The inspector's side: parse a tlog-proof, check the signature and the path."""
    rng = random.Random(13)
    texts = itertools.cycle(
        [million_log.prove(rng.randrange(MILLION)).to_text() for _ in range(100)]
    )
    benchmark(lambda: verify_proof(next(texts), SIGNER.verifier, origin=ORIGIN))
    benchmark.extra_info["us_per_proof"] = round(benchmark.stats.stats.mean * 1e6, 1)


@pytest.mark.benchmark(group="log-audit")
def test_audit_1m(benchmark: Any, million_log: TransparencyLog) -> None:
    report = benchmark.pedantic(
        million_log.audit, args=(SIGNER.verifier,), rounds=2, iterations=1, warmup_rounds=0
    )
    assert report.ok and report.size == MILLION and report.checkpoints == 1
    benchmark.extra_info["s_per_audit"] = round(benchmark.stats.stats.mean, 2)
    _rate(benchmark, MILLION)


@pytest.mark.benchmark(group="log-audit")
def test_audit_1m_hashing_baseline(benchmark: Any, million: dict[str, Any]) -> None:
    """SHA-256 of every leaf (leaf prefix included) and the RFC 6962 fold, all in memory."""
    leaves = million["leaves"]
    sha = hashlib.sha256

    def run() -> bytes:
        return root_from_leaf_hashes([sha(b"\0" + lf).digest() for lf in leaves])

    root = benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=0)
    with TransparencyLog.open(million["path"]) as log:
        assert root == log.root()
    _rate(benchmark, MILLION)


@pytest.mark.benchmark(group="log-audit")
def test_audit_1m_read_baseline(benchmark: Any, million: dict[str, Any]) -> None:
    """A bare `SELECT` of every leaf's hash and bytes: the cost of reading the file."""
    db = sqlite3.connect(million["path"])

    def run() -> int:
        return sum(1 for _ in db.execute("SELECT idx, hash, data FROM leaves ORDER BY idx"))

    assert benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=0) == MILLION
    db.close()
    _rate(benchmark, MILLION)


# ------------------------------------------------------------------------------ checkpoints

DENSE = 10_000


@pytest.fixture(scope="module")
def dense_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 10,000 leaves signed once per leaf (as single-decision appends do) and once."""
    leaves = decision_leaves(DENSE, seed=5)
    base = tmp_path_factory.mktemp("dense")
    with TransparencyLog.open(base / "per-leaf.db", SIGNER, create=True) as log:
        for lf in leaves:
            log.append([lf])
    with TransparencyLog.open(base / "once.db", SIGNER, create=True) as log:
        log.append(leaves)
    return {"per-leaf": base / "per-leaf.db", "once": base / "once.db"}


@pytest.mark.benchmark(group="log-audit-checkpoints")
@pytest.mark.parametrize("signed", ["per-leaf", "once"])
def test_audit_10k_by_checkpoint_density(
    benchmark: Any, dense_logs: dict[str, Path], signed: str
) -> None:
    """Audit verifies every stored checkpoint: its cost grows with how often the log signs."""
    with TransparencyLog.open(dense_logs[signed]) as log:
        report = benchmark.pedantic(log.audit, args=(SIGNER.verifier,), rounds=3, iterations=1)
    assert report.ok and report.checkpoints == (DENSE if signed == "per-leaf" else 1)
    benchmark.extra_info["checkpoints"] = report.checkpoints
    benchmark.extra_info["s_per_audit"] = round(benchmark.stats.stats.mean, 3)
