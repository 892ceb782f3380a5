"""The transparency log over its SQLite store: roots, proofs, append-only storage, refusals.

Every root and proof the log serves from its stored nodes is checked against the in-memory
RFC 6962 maths (`root_from_leaf_hashes`, `verify_proof`, `verify_consistency`), which
`test_merkle.py` pins to the published reference vectors.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policyengine.log import (
    EMPTY_ROOT,
    LogError,
    Signer,
    TlogProof,
    TransparencyLog,
    VerificationError,
    consistency_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_proof,
)
from policyengine.log.sqlite import FORMAT

ORIGIN = "example.com/policyengine/test-log"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"store").digest()))
OTHER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other").digest()))
TABLES = ("leaves", "nodes", "checkpoints", "bundles")


def _leaf(i: int) -> bytes:
    return b'{"kind":"event","n":%d,"v":1}' % i


def _files(path: Path) -> dict[str, bytes]:
    """Every file beside (and including) `path`, by name: what opening must not change."""
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}


def _drop_triggers(path: Path) -> None:
    db = sqlite3.connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    for name in names:
        db.execute(f"DROP TRIGGER {name}")
    db.commit()
    db.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "decisions.db"


# ------------------------------------------------------------------------------ roots


@pytest.mark.parametrize("seed", range(4))
def test_roots_match_reference_for_every_size_over_random_batches(db: Path, seed: int) -> None:
    rng = random.Random(seed)
    total = rng.randrange(60, 140)
    data = [_leaf(seed * 1000 + i) for i in range(total)]
    hashes = [leaf_hash(d) for d in data]
    with TransparencyLog.open(db, SIGNER if seed % 2 else None, create=True) as log:
        assert log.root() == EMPTY_ROOT
        pos = 0
        while pos < total:
            n = min(total - pos, rng.choice([0, 1, 1, 2, 3, 5, 8, 13, 31]))
            got = log.append(data[pos : pos + n], sign=rng.random() < 0.5)
            assert got == range(pos, pos + n)
            pos += n
            assert log.size() == pos
            assert log.root() == root_from_leaf_hashes(hashes[:pos])
        # Every historical size, served from the stored subtree roots alone.
        for size in range(total + 1):
            assert log.root(size) == root_from_leaf_hashes(hashes[:size]), size
        with pytest.raises(LogError, match=f"holds {total} leaves"):
            log.root(total + 1)
        assert [d for _, d in log.leaves()] == data
        assert [d for _, d in log.leaves(7, 19)] == data[7:19]
        assert log.leaf(total - 1) == data[-1]


def test_stored_nodes_are_exactly_the_complete_subtrees(db: Path) -> None:
    # O(log n) proofs rely on every complete subtree root being stored, and nothing else.
    rng = random.Random(7)
    n = 0
    with TransparencyLog.open(db, create=True) as log:
        while n < 100:
            k = rng.randrange(1, 9)
            log.append([_leaf(n + i) for i in range(k)], sign=False)
            n += k
    conn = sqlite3.connect(db)
    stored = set(conn.execute("SELECT level, idx FROM nodes"))
    conn.close()
    expected = {
        (level, idx)
        for level in range(1, n.bit_length())
        for idx in range(n >> level)  # subtrees that end at or before leaf n
    }
    assert stored == expected


# ------------------------------------------------------------------------------ proofs


@pytest.fixture(scope="module")
def signed70(tmp_path_factory: pytest.TempPathFactory) -> TransparencyLog:
    """A log of 70 leaves with a signed checkpoint at every size 1..70."""
    path = tmp_path_factory.mktemp("signed70") / "log.db"
    log = TransparencyLog.open(path, SIGNER, create=True)
    for i in range(70):
        log.append([_leaf(i)])
    return log


def test_every_inclusion_proof_round_trips_and_verifies(signed70: TransparencyLog) -> None:
    log = signed70
    assert [cp.size for cp in log.store.checkpoints()] == list(range(1, 71))
    hashes = [leaf_hash(_leaf(i)) for i in range(70)]
    for size in range(1, 71):
        for index in range(size):
            proof = log.prove(index, size)
            text = proof.to_text()
            assert TlogProof.parse(text) == proof
            assert TlogProof.parse(text.encode()) == proof
            checkpoint, leaf = verify_proof(text, SIGNER.verifier, origin=ORIGIN)
            assert (checkpoint.size, leaf) == (size, _leaf(index))
            assert checkpoint.root == root_from_leaf_hashes(hashes[:size])
    # Latest checkpoint by default; the caller's own copy of the record is checked too.
    proof = log.prove(3)
    assert verify_proof(proof, SIGNER.verifier, leaf=_leaf(3))[0].size == 70
    with pytest.raises(VerificationError):
        verify_proof(proof, SIGNER.verifier, leaf=_leaf(4))
    with pytest.raises(VerificationError):
        verify_proof(TlogProof(4, proof.hashes, proof.checkpoint, _leaf(4)), SIGNER.verifier)
    with pytest.raises(VerificationError):
        verify_proof(proof, OTHER.verifier)


def test_prove_refuses_what_no_checkpoint_covers(db: Path) -> None:
    with TransparencyLog.open(db, SIGNER, create=True) as log:
        with pytest.raises(LogError, match="no signed checkpoint yet"):
            log.prove(0)
        log.append([_leaf(0), _leaf(1)])
        log.append([_leaf(2)], sign=False)
        with pytest.raises(LogError, match=r"not covered by the checkpoint at size 2 \(hint: "):
            log.prove(2)
        with pytest.raises(LogError, match="no signed checkpoint at size 3"):
            log.prove(0, 3)
        with pytest.raises(LogError, match="not covered"):
            log.prove(-1)
        log.sign_checkpoint()
        assert verify_proof(log.prove(2), SIGNER.verifier)[1] == _leaf(2)


def test_every_consistency_proof_verifies(signed70: TransparencyLog) -> None:
    log = signed70
    hashes = [leaf_hash(_leaf(i)) for i in range(40)]
    roots = [root_from_leaf_hashes(hashes[:n]) for n in range(41)]
    for new in range(1, 41):
        for old in range(1, new + 1):
            proof = log.consistency(old, new)
            assert proof == consistency_proof(hashes[:new], old), (old, new)
            verify_consistency(old, new, proof, roots[old], roots[new])
            if old < new:
                with pytest.raises(VerificationError):
                    verify_consistency(old, new, proof, roots[old], roots[new - 1])
    for old, new in [(0, 5), (6, 5), (1, 71)]:
        with pytest.raises(LogError, match="no consistency proof"):
            log.consistency(old, new)


# ------------------------------------------------------------------------------ storage


def test_connection_is_wal_with_full_sync(db: Path) -> None:
    with TransparencyLog.open(db, create=True) as log:
        conn = log.store._db  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    other = sqlite3.connect(db)  # WAL is a property of the file, not just the connection
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_triggers_refuse_update_and_delete(db: Path) -> None:
    with TransparencyLog.open(db, SIGNER, create=True) as log:
        blob = b"rule r {}"
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        log.append([_leaf(i) for i in range(5)], bundles=[(digest, blob, _leaf(99))])
    before = _files(db)
    conn = sqlite3.connect(db)
    statements = [f"DELETE FROM {t}" for t in TABLES] + [
        "UPDATE leaves SET data = x'00' WHERE idx = 2",
        "UPDATE leaves SET hash = x'00' WHERE idx = 2",
        "UPDATE nodes SET hash = x'00'",
        "UPDATE checkpoints SET note = 'forged'",
        "UPDATE bundles SET sources = x'00'",
        "DELETE FROM meta WHERE key = 'verifier_key'",
    ]
    for sql in statements:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    # Overwriting by primary key is refused by the key itself.
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO leaves(idx, hash, data) VALUES(2, x'00', x'00')")
    conn.commit()
    conn.close()
    with TransparencyLog.open(db) as log:
        assert log.audit(SIGNER.verifier).ok
        assert [d for _, d in log.leaves()] == [_leaf(99)] + [_leaf(i) for i in range(5)]
    assert _files(db)["decisions.db"] == before["decisions.db"]


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)  # the default rollback journal, as most tools leave it
    conn.execute("CREATE TABLE readings(id INTEGER PRIMARY KEY, value REAL)")
    conn.execute("INSERT INTO readings(value) VALUES (1.5), (2.5)")
    conn.commit()
    conn.close()


def _other_format(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES('format', 'someone-else/9')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"PK\x03\x04 not a database " * 64), "is not a decision log"),
        (_foreign_sqlite, "is an SQLite database but not a decision log"),
        (_other_format, f"is not a {FORMAT} decision log \\(format `someone-else/9`\\)"),
    ],
    ids=["not-sqlite", "foreign-sqlite", "other-format"],
)
def test_refuses_files_that_are_not_logs_without_touching_them(
    db: Path, make: Callable[[Path], object], message: str
) -> None:
    make(db)
    before = _files(db)
    for create in (False, True):
        for signer in (None, SIGNER):
            with pytest.raises(LogError, match=f"^`{db}` {message}"):
                TransparencyLog.open(db, signer, create=create)
    assert _files(db) == before  # same bytes, and no -wal / -shm left behind


def test_refuses_missing_path_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(LogError, match=r"^no decision log at `.*nope\.db` \(hint: "):
        TransparencyLog.open(missing)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(LogError, match="is a directory, not a decision log file"):
        TransparencyLog.open(tmp_path, create=True)
    with pytest.raises(LogError, match="is not a decision log: unable to open"):
        TransparencyLog.open(tmp_path / "no-such-dir" / "x.db", create=True)
    assert list(tmp_path.iterdir()) == []


def test_a_second_signing_key_is_refused(db: Path) -> None:
    with TransparencyLog.open(db, SIGNER, create=True) as log:
        log.append([_leaf(0)])
        assert log.verifier_key == SIGNER.verifier_key
        assert log.origin == ORIGIN
    with pytest.raises(LogError, match=r"is not the key of the log at .*\(hint: "):
        TransparencyLog.open(db, OTHER)
    with TransparencyLog.open(db) as log:  # reading needs no key, and nothing changed
        assert log.verifier_key == SIGNER.verifier_key
        assert len(log.store.checkpoints()) == 1
        with pytest.raises(LogError, match="needs the log's private key"):
            log.sign_checkpoint()
    with TransparencyLog.open(db, SIGNER) as log:
        log.append([_leaf(1)])
        assert log.audit(SIGNER.verifier).ok


def _truncated(db: Path, keep: int, *, nodes: bool) -> None:
    """Delete leaves from `keep` on (and, with `nodes`, every node covering them)."""
    _drop_triggers(db)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM leaves WHERE idx >= ?", (keep,))
    if nodes:
        conn.execute("DELETE FROM nodes WHERE ((idx + 1) << level) > ?", (keep,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("nodes", [False, True], ids=["leaves-only", "leaves-and-nodes"])
def test_never_signs_over_a_truncated_tree(db: Path, nodes: bool) -> None:
    with TransparencyLog.open(db, SIGNER, create=True) as log:
        log.append([_leaf(i) for i in range(12)])
        log.append([_leaf(i) for i in range(12, 20)])
        signed = log.store.checkpoints()
    _truncated(db, 15, nodes=nodes)
    with TransparencyLog.open(db, SIGNER) as log:
        assert log.size() == 15
        with pytest.raises(
            LogError, match=r"refusing to sign: the log holds 15 leaves but .* for 20 "
        ):
            log.sign_checkpoint()
        # Refilling the gap with other leaves cannot get a checkpoint signed either: the
        # new tree does not extend the one signed at 20. Each attempt rolls back whole.
        # Left-over nodes clash with the new ones; without them the signing step refuses.
        for extra, message in [(2, "holds 17 leaves"), (9, "inconsistent with the one at size 20")]:
            expected = "UNIQUE constraint failed: nodes" if not nodes else message
            with pytest.raises(LogError, match=expected):
                log.append([b"forged %d" % i for i in range(extra)])
            assert log.size() == 15
        assert log.store.checkpoints() == signed
        assert not log.audit(SIGNER.verifier).ok


def test_sign_checkpoint_is_idempotent_and_never_moves_back(db: Path) -> None:
    with TransparencyLog.open(db, SIGNER, create=True) as log:
        empty = log.sign_checkpoint()
        assert (empty.size, empty.root) == (0, EMPTY_ROOT)
        log.append([_leaf(0), _leaf(1)], sign=False)
        first = log.sign_checkpoint()
        assert first.size == 2
        assert log.sign_checkpoint() == first
        assert log.append([]) == range(2, 2)
        assert log.store.checkpoints() == [empty, first]
        assert log.audit(SIGNER.verifier).ok


# ------------------------------------------------------------------------------ bundles


def _bundle(text: str) -> tuple[str, bytes, bytes]:
    blob = text.encode()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    return digest, blob, b'{"digest":"%s","kind":"bundle","v":1}' % digest.encode()


def test_bundles_are_stored_once_and_published_before_their_decisions(db: Path) -> None:
    a, b = _bundle("bundle A"), _bundle("bundle B")
    with TransparencyLog.open(db, SIGNER, create=True) as log:
        first = log.append([_leaf(0), _leaf(1)], bundles=[a])
        assert first == range(1, 3)  # the publication leaf went in first, at 0
        again = log.append([_leaf(2)], bundles=[a])
        assert again == range(3, 4)  # already published: no second publication leaf
        both = log.append([_leaf(3)], bundles=[a, b, b])
        assert both == range(5, 6)
        only = log.append([], bundles=[_bundle("bundle C")])
        assert only == range(7, 7)
        assert [d for _, d in log.leaves()] == [
            a[2], _leaf(0), _leaf(1), _leaf(2), b[2], _leaf(3), _bundle("bundle C")[2]
        ]  # fmt: skip
        assert log.store.get_bundle(a[0]) == a[1]
        assert log.store.get_bundle(b[0]) == b[1]
        assert log.store.get_bundle("sha256:" + "0" * 64) is None
        assert sorted(d for d, _ in log.store.bundles()) == sorted(
            [a[0], b[0], _bundle("bundle C")[0]]
        )
        report = log.audit(SIGNER.verifier)
        assert report.ok and report.bundles == 3 and report.size == 7
        assert log.latest_checkpoint() is not None
        assert log.latest_checkpoint().size == 7  # type: ignore[union-attr]
