"""`TransparencyLog.audit`: an honest log passes; each kind of tampering is caught and located.

Tampering goes through plain `sqlite3` after dropping the append-only triggers, which is
what someone with write access to the file can do. The expected `first_bad_leaf` follows
the audit's contract: the start of the earliest range proven to hold an altered or missing
leaf (a single leaf when its bytes betray it, a subtree when only a stored node does, the
span since the previous checkpoint when only a signed root does).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policyengine.log import (
    AuditReport,
    MemoryHashReader,
    Signer,
    TransparencyLog,
    leaf_hash,
    sign_checkpoint,
)
from policyengine.log.checkpoint import Checkpoint
from policyengine.log.note import SIGNATURE_PREFIX

ORIGIN = "example.com/policyengine/audit-test"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"audit").digest()))
IMPOSTOR = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"evil").digest()))
STRANGER = Signer("example.org/other-log", Ed25519PrivateKey.generate())
BATCHES = (1, 6, 13, 1, 9, 20, 7, 11)  # + 1 bundle publication leaf first: 69 leaves
BUNDLE = b"policy example { }\n"
DIGEST = "sha256:" + hashlib.sha256(BUNDLE).hexdigest()


def _leaf(i: int) -> bytes:
    return b'{"i":%d,"kind":"event","time":"2026-01-01T00:00:00Z","v":1}' % i


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "template.db"
    with TransparencyLog.open(path, SIGNER, create=True) as log:
        n = 0
        for k, size in enumerate(BATCHES):
            bundles = [(DIGEST, BUNDLE, b'{"kind":"bundle","v":1}')] if k == 0 else []
            log.append([_leaf(n + i) for i in range(size)], bundles=bundles)
            n += size
    assert not path.with_name("template.db-wal").exists()  # closing folded the WAL in
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    shutil.copy(template, path)
    return path


@pytest.fixture
def facts(db: Path) -> Iterator[tuple[int, list[int]]]:
    """(size, checkpoint sizes) of the untampered log."""
    with TransparencyLog.open(db) as log:
        yield log.size(), [cp.size for cp in log.store.checkpoints()]


def _tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for sql, args in statements:
        conn.execute(sql, args)
    conn.commit()
    conn.close()


def _audit(path: Path, signer: Signer = SIGNER) -> AuditReport:
    with TransparencyLog.open(path) as log:
        return log.audit(signer.verifier)


def _checkpoint_span(index: int, sizes: list[int]) -> tuple[int, int]:
    """(previous checkpoint size, first checkpoint size) around leaf `index`."""
    first = min(s for s in sizes if s > index)
    return max([0] + [s for s in sizes if s < first]), first


def test_honest_log_passes(db: Path, facts: tuple[int, list[int]]) -> None:
    n, sizes = facts
    assert n == 1 + sum(BATCHES) and n % 2 == 1
    assert sizes == [1 + sum(BATCHES[: k + 1]) for k in range(len(BATCHES))]
    report = _audit(db)
    assert report.ok, report.problems
    assert (report.size, report.checkpoints, report.bundles) == (n, len(BATCHES), 1)
    assert report.first_bad_leaf is None and report.bad_range is None
    progress: list[int] = []
    with TransparencyLog.open(db) as log:
        assert log.audit(SIGNER.verifier, progress=progress.append).ok
    assert progress[-1] == n


@pytest.mark.parametrize("signed_empty", [False, True])
def test_empty_log_passes(tmp_path: Path, signed_empty: bool) -> None:
    with TransparencyLog.open(tmp_path / "e.db", SIGNER, create=True) as log:
        if signed_empty:
            assert log.sign_checkpoint().size == 0
        report = log.audit(SIGNER.verifier)
    assert report.ok and report.size == 0 and report.checkpoints == int(signed_empty)


@pytest.mark.parametrize("index", [0, 1, 8, 29, 47, 68])
def test_altered_leaf_bytes_name_that_leaf(db: Path, index: int) -> None:
    _tamper(db, ("UPDATE leaves SET data = ? WHERE idx = ?", (_leaf(999), index)))
    report = _audit(db)
    assert not report.ok
    assert report.first_bad_leaf == index
    assert report.bad_range == (index, index + 1)
    assert f"leaf {index}: its bytes do not match" in report.problems[0]


@pytest.mark.parametrize("index", [0, 7, 8, 29, 31, 47, 68])
def test_altered_leaf_and_hash_are_caught_by_the_node_above(
    db: Path, facts: tuple[int, list[int]], index: int
) -> None:
    n, sizes = facts
    _tamper(
        db,
        ("UPDATE leaves SET data = ?, hash = ? WHERE idx = ?", (b"x", leaf_hash(b"x"), index)),
    )
    report = _audit(db)
    assert not report.ok
    pair = index & ~1
    start, end = _checkpoint_span(index, sizes)
    if pair + 1 < n and pair <= start:
        # The stored level-1 node over the pair disagrees, and no earlier leaf is suspect.
        expected = (pair, pair + 2)
        assert any("level 1, index" in p for p in report.problems)
    else:
        # Leaves since the previous checkpoint are suspect (or, for the last, unpaired leaf,
        # the signed root is all that can tell).
        expected = (start, end)
    assert report.bad_range == expected
    assert report.first_bad_leaf == expected[0]
    assert expected[0] <= index < expected[1]


def _rewrite_tree(path: Path, index: int) -> None:
    """Alter leaf `index` and rewrite its hash and every interior node to match."""
    _tamper(
        path,
        ("UPDATE leaves SET data = ?, hash = ? WHERE idx = ?", (b"x", leaf_hash(b"x"), index)),
    )
    conn = sqlite3.connect(path)
    hashes = [bytes(h) for (h,) in conn.execute("SELECT hash FROM leaves ORDER BY idx")]
    tree = MemoryHashReader(hashes)
    nodes = conn.execute("SELECT level, idx FROM nodes").fetchall()
    for level, idx in nodes:
        conn.execute(
            "UPDATE nodes SET hash = ? WHERE level = ? AND idx = ?",
            (tree.subtree_root(level, idx), level, idx),
        )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("index", [0, 1, 8, 29, 47, 68])
def test_consistently_rewritten_tree_is_betrayed_by_the_signed_roots(
    db: Path, facts: tuple[int, list[int]], index: int
) -> None:
    _, sizes = facts
    _rewrite_tree(db, index)
    report = _audit(db)
    assert not report.ok
    # Every hash in the file is self-consistent now; only the checkpoints disagree.
    assert all("checkpoint at size" in p for p in report.problems), report.problems
    assert "signed root does not match the leaves" in report.problems[0]
    expected = _checkpoint_span(index, sizes)
    assert report.bad_range == expected
    assert report.first_bad_leaf == expected[0]


@pytest.mark.parametrize("nodes", [False, True], ids=["leaves", "leaves-and-nodes"])
@pytest.mark.parametrize("keep", [68, 60, 49, 21])
def test_truncation_is_caught_by_the_signed_size(
    db: Path, facts: tuple[int, list[int]], keep: int, nodes: bool
) -> None:
    _, sizes = facts
    statements: list[tuple[str, tuple[object, ...]]] = [
        ("DELETE FROM leaves WHERE idx >= ?", (keep,))
    ]
    if nodes:
        statements.append(("DELETE FROM nodes WHERE ((idx + 1) << level) > ?", (keep,)))
    _tamper(db, *statements)
    report = _audit(db)
    assert not report.ok and report.size == keep
    first_gone = min(s for s in sizes if s > keep)
    assert report.first_bad_leaf == keep
    assert report.bad_range == (keep, first_gone)
    assert any(f"leaves {keep}..{first_gone - 1} are gone" in p for p in report.problems)


def test_missing_middle_leaf_is_named(db: Path) -> None:
    _tamper(db, ("DELETE FROM leaves WHERE idx = ?", (33,)))
    report = _audit(db)
    assert not report.ok and report.first_bad_leaf == 33
    assert "leaf 33 is missing" in report.problems[0]


def _flip_signature(note: str) -> str:
    lines = note.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(SIGNATURE_PREFIX))
    name, b64 = lines[at][len(SIGNATURE_PREFIX) :].split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01  # the last byte of the Ed25519 signature, after the 4-byte key ID
    lines[at] = f"{SIGNATURE_PREFIX}{name} {base64.b64encode(bytes(raw)).decode()}"
    return "\n".join(lines)


def test_altered_checkpoint_signature_is_caught(db: Path, facts: tuple[int, list[int]]) -> None:
    _, sizes = facts
    with TransparencyLog.open(db) as log:
        note = next(cp.note for cp in log.store.checkpoints() if cp.size == sizes[3])
    _tamper(
        db, ("UPDATE checkpoints SET note = ? WHERE size = ?", (_flip_signature(note), sizes[3]))
    )
    report = _audit(db)
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"checkpoint at size {sizes[3]}:")
    assert report.first_bad_leaf is None  # no leaf is implicated


def test_checkpoint_row_that_disagrees_with_its_note_is_caught(
    db: Path, facts: tuple[int, list[int]]
) -> None:
    _, sizes = facts
    _tamper(db, ("UPDATE checkpoints SET root = ? WHERE size = ?", (b"\0" * 32, sizes[2])))
    report = _audit(db)
    assert not report.ok
    assert f"checkpoint at size {sizes[2]}: stored row disagrees" in report.problems[0]


def test_checkpoint_forged_with_another_key_is_caught(
    db: Path, facts: tuple[int, list[int]]
) -> None:
    n, _ = facts
    with TransparencyLog.open(db) as log:
        root = log.root()
    forged = sign_checkpoint(Checkpoint(ORIGIN, n + 5, root), IMPOSTOR)
    _tamper(db, ("INSERT INTO checkpoints VALUES(?, ?, ?)", (n + 5, root, forged)))
    report = _audit(db)
    assert not report.ok
    assert report.problems[0].startswith(f"checkpoint at size {n + 5}:")


def test_altered_bundle_is_caught(db: Path) -> None:
    _tamper(db, ("UPDATE bundles SET sources = ? WHERE digest = ?", (BUNDLE + b"#", DIGEST)))
    report = _audit(db)
    assert not report.ok
    assert report.problems == [f"stored policy bundle `{DIGEST}` does not match its digest"]


@pytest.mark.parametrize("signer", [IMPOSTOR, STRANGER], ids=["same-name", "other-name"])
def test_wrong_verifier_key_fails(db: Path, signer: Signer) -> None:
    report = _audit(db, signer)
    assert not report.ok
    assert len(report.problems) == len(BATCHES)  # each checkpoint
    assert all(p.startswith("checkpoint at size") for p in report.problems)
