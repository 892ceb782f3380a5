"""RFC 6962 / RFC 9162 Merkle maths: reference roots, published vectors, exhaustive proofs."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.log import (
    EMPTY_ROOT,
    MemoryHashReader,
    VerificationError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    range_root,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

FIXTURES = Path(__file__).parent / "fixtures" / "merkle"
REFERENCE = json.loads((FIXTURES / "reference_tree.json").read_text())
REF_LEAVES = [bytes.fromhex(x) for x in REFERENCE["leaf_inputs_hex"]]
REF_ROOTS = [bytes.fromhex(x) for x in REFERENCE["root_hashes_hex_by_size"]]

MAX_SIZE = 64
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]


def _recursive_mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH written literally, as an independent oracle."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(_recursive_mth(hashes[:k]), _recursive_mth(hashes[k:]))


ROOTS = [_recursive_mth(LEAVES[:n]) for n in range(MAX_SIZE + 1)]


def _flip(h: bytes, rng: random.Random) -> bytes:
    bit = rng.randrange(len(h) * 8)
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# Hashing and roots
# ---------------------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert leaf_hash(b"") != EMPTY_ROOT


@pytest.mark.parametrize("size", range(len(REF_ROOTS)))
def test_reference_roots(size: int) -> None:
    hashes = [leaf_hash(d) for d in REF_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == REF_ROOTS[size]
    assert range_root(MemoryHashReader(hashes), 0, size) == REF_ROOTS[size]


def test_roots_match_recursive_definition() -> None:
    reader = MemoryHashReader(LEAVES)
    for n in range(MAX_SIZE + 1):
        assert root_from_leaf_hashes(LEAVES[:n]) == ROOTS[n]
        assert range_root(reader, 0, n) == ROOTS[n]


def test_bad_leaf_hash_length_is_refused() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 is 31 bytes"):
        root_from_leaf_hashes([LEAVES[0], b"\x00" * 31])
    with pytest.raises(ValueError, match="leaf hash 0 is 0 bytes"):
        MemoryHashReader([b""])


def test_range_root_refuses_unaligned_and_out_of_tree_ranges() -> None:
    reader = MemoryHashReader(LEAVES[:8])
    with pytest.raises(ValueError, match="not aligned"):
        range_root(reader, 1, 3)
    with pytest.raises(ValueError, match="outside a tree of 8 leaves"):
        range_root(reader, 0, 9)
    with pytest.raises(ValueError, match="invalid range"):
        range_root(reader, 3, 2)
    assert range_root(reader, 4, 7) == _recursive_mth(LEAVES[4:7])


def test_generation_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="outside a tree of 3 leaves"):
        inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof([], 0)
    for old in (0, 4, -1):
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(LEAVES[:3], old)


class _CountingReader:
    def __init__(self, inner: MemoryHashReader) -> None:
        self.inner = inner
        self.reads = 0

    def subtree_root(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.inner.subtree_root(level, index)


def test_proofs_need_only_logarithmic_reads() -> None:
    """A storage layer serving complete subtrees answers any proof in O(log n) reads."""
    n = 1000
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    reader = _CountingReader(MemoryHashReader(hashes))
    bound = 2 * n.bit_length() + 2
    for index in (0, 1, 511, 512, 777, 999):
        reader.reads = 0
        prove_inclusion(reader, index, n)
        assert reader.reads <= bound
    for old in (1, 3, 512, 513, 999, 1000):
        reader.reads = 0
        prove_consistency(reader, old, n)
        assert reader.reads <= bound


# ---------------------------------------------------------------------------------------------
# transparency-dev/merkle vectors
# ---------------------------------------------------------------------------------------------


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _vector_paths(kind: str) -> list[str]:
    return sorted(str(p.relative_to(FIXTURES)) for p in (FIXTURES / kind).rglob("*.json"))


def _load(rel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / rel).read_text())
    return data


def test_vector_corpus_is_present() -> None:
    assert len(_vector_paths("inclusion")) > 50
    assert len(_vector_paths("consistency")) > 50
    assert set(_vector_paths("consistency")) >= STRICTER


@pytest.mark.parametrize("rel", _vector_paths("inclusion"))
def test_inclusion_vector(rel: str) -> None:
    v = _load(rel)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


# Where we are deliberately stricter than transparency-dev/merkle: its vector accepts equal
# sizes with equal 12-byte "roots"; we reject any root that is not 32 bytes, whatever the sizes.
STRICTER = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


@pytest.mark.parametrize("rel", _vector_paths("consistency"))
def test_consistency_vector(rel: str) -> None:
    v = _load(rel)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"] or rel in STRICTER:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_happy_vectors_match_generated_proofs() -> None:
    """Our generator reproduces the published proofs for the reference tree."""
    hashes = [leaf_hash(d) for d in REF_LEAVES]
    seen = 0
    for rel in _vector_paths("inclusion"):
        v = _load(rel)
        if v["desc"] != "happy path" or _b64(v["root"]) != REF_ROOTS[v["treeSize"]]:
            continue
        want = [_b64(p) for p in v["proof"] or []]
        assert inclusion_proof(hashes[: v["treeSize"]], v["leafIdx"]) == want, rel
        seen += 1
    for rel in _vector_paths("consistency"):
        v = _load(rel)
        if v["desc"] != "happy path" or _b64(v["root2"]) != REF_ROOTS[v["size2"]]:
            continue
        want = [_b64(p) for p in v["proof"] or []]
        assert consistency_proof(hashes[: v["size2"]], v["size1"]) == want, rel
        seen += 1
    assert seen >= 8


# ---------------------------------------------------------------------------------------------
# Exhaustive small trees
# ---------------------------------------------------------------------------------------------


def _structural_mutations(proof: list[bytes], rng: random.Random) -> list[list[bytes]]:
    """Truncations, paddings, garbage and reorderings: each must fail."""
    junk = hashlib.sha256(b"junk").digest()
    out: list[list[bytes]] = []
    if proof:
        out += [proof[:-1], proof[1:], [*proof[:-1], b""], [*proof[:-1], proof[-1][:31]]]
    out += [[*proof, junk], [junk, *proof], [*proof, b""], [b"", *proof]]
    out += [[*proof, *proof]] if proof else []
    if len(proof) > 1 and proof[0] != proof[1]:
        out.append([proof[1], proof[0], *proof[2:]])
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = _flip(proof[i], rng)
        out.append(flipped)
    return out


def _inclusion_shape(index: int, size: int) -> tuple[str, ...] | None:
    """Sides of the siblings on the path, leaf first, from the RFC 6962 PATH recursion.

    Verification of one position's proof at another position succeeds exactly when both combine
    the same hashes on the same sides (anything else would need a SHA-256 collision), so this is
    an independent oracle for which index/size mutations must be rejected.
    """
    if not 0 <= index < size:
        return None
    sides: list[str] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = 1
        while k * 2 < end - start:
            k *= 2
        if m < k:
            sides.append("R")
            end = start + k
        else:
            sides.append("L")
            start, m = start + k, m - k
    return tuple(reversed(sides))


def _consistency_shape(size1: int, size2: int) -> tuple[str, ...] | None:
    """Like `_inclusion_shape` for RFC 6962 SUBPROOF: seed kind, then each element's role.

    "R" elements are right siblings outside the old tree, "L" ones are left siblings inside it.
    """
    if not 0 < size1 <= size2:
        return None
    if size1 == size2:
        return ("equal",)
    roles: list[str] = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = 1
        while k * 2 < end - start:
            k *= 2
        if m <= k:
            roles.append("R")
            end = start + k
        else:
            roles.append("L")
            start, m, whole = start + k, m - k, False
    roles.append("seed" if not whole else "old-root")
    return tuple(reversed(roles))


def _rejects(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except VerificationError:
        return True
    return False


def test_every_inclusion_proof_verifies_and_mutations_fail() -> None:
    rng = random.Random(6962)
    reader = MemoryHashReader(LEAVES)
    shape_kept = 0
    for n in range(1, MAX_SIZE + 1):
        root = ROOTS[n]
        for i in range(n):
            proof = prove_inclusion(reader, i, n)
            assert proof == inclusion_proof(LEAVES[:n], i)
            leaf = LEAVES[i]
            verify_inclusion(leaf, i, n, proof, root)
            assert root_from_inclusion_proof(leaf, i, n, proof) == root
            for bad in _structural_mutations(proof, rng):
                assert _rejects(verify_inclusion, leaf, i, n, bad, root), (n, i, bad)
            assert _rejects(verify_inclusion, leaf, i, n, proof, _flip(root, rng))
            assert _rejects(verify_inclusion, _flip(leaf, rng), i, n, proof, root)
            assert _rejects(verify_inclusion, leaf, i, n, proof, root[:31])
            assert _rejects(verify_inclusion, leaf[:31], i, n, proof, root)
            shape = _inclusion_shape(i, n)
            for j, m in ((i - 1, n), (i + 1, n), (i, n - 1), (i, n + 1), (i, 2 * n)):
                # Sizes that keep every sibling on the same side legitimately verify: RFC 9162
                # binds the path's shape, not the exact size (the checkpoint binds the size).
                want_reject = _inclusion_shape(j, m) != shape
                shape_kept += not want_reject
                got = _rejects(verify_inclusion, leaf, j, m, proof, root)
                assert got == want_reject, (n, i, j, m)
    assert shape_kept > 0  # the oracle is exercised both ways


def test_every_consistency_proof_verifies_and_mutations_fail() -> None:
    rng = random.Random(9162)
    reader = MemoryHashReader(LEAVES)
    shape_kept = 0
    for n in range(1, MAX_SIZE + 1):
        for m in range(1, n + 1):
            proof = prove_consistency(reader, m, n)
            assert proof == consistency_proof(LEAVES[:n], m)
            r1, r2 = ROOTS[m], ROOTS[n]
            verify_consistency(m, n, proof, r1, r2)
            for bad in _structural_mutations(proof, rng):
                assert _rejects(verify_consistency, m, n, bad, r1, r2), (m, n, bad)
            assert _rejects(verify_consistency, m, n, proof, _flip(r1, rng), r2)
            assert _rejects(verify_consistency, m, n, proof, r1, _flip(r2, rng))
            if m != n:
                assert _rejects(verify_consistency, m, n, proof, r2, r1)
                assert _rejects(verify_consistency, m, n, proof, r1[:31], r2)
            shape = _consistency_shape(m, n)
            for a, b in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
                want_reject = _consistency_shape(a, b) != shape
                shape_kept += not want_reject
                got = _rejects(verify_consistency, a, b, proof, r1, r2)
                assert got == want_reject, (m, n, a, b)
    assert shape_kept > 0  # the oracle is exercised both ways


def test_verifiers_reject_negative_and_out_of_range_numbers() -> None:
    root = ROOTS[4]
    proof = inclusion_proof(LEAVES[:4], 0)
    for index, size in ((-1, 4), (4, 4), (0, 0), (0, -1), (2**64 - 1, 4)):
        with pytest.raises(VerificationError):
            verify_inclusion(LEAVES[0], index, size, proof, root)
    with pytest.raises(VerificationError, match="smaller than old tree size"):
        verify_consistency(5, 4, [], root, root)
    with pytest.raises(VerificationError, match="size 0"):
        verify_consistency(0, 4, [], EMPTY_ROOT, root)
    with pytest.raises(VerificationError, match="negative"):
        verify_consistency(-1, 4, [], root, root)


def test_error_messages_name_what_failed() -> None:
    proof = inclusion_proof(LEAVES[:5], 2)
    with pytest.raises(VerificationError, match="shorter"):
        verify_inclusion(LEAVES[2], 2, 5, proof[:-1], ROOTS[5])
    with pytest.raises(VerificationError, match="longer"):
        verify_inclusion(LEAVES[2], 2, 5, [*proof, proof[0]], ROOTS[5])
    with pytest.raises(VerificationError, match="does not lead to the root"):
        verify_inclusion(LEAVES[3], 2, 5, proof, ROOTS[5])
    with pytest.raises(VerificationError, match="inclusion proof hash 1 is 3 bytes"):
        verify_inclusion(LEAVES[2], 2, 5, [proof[0], b"abc", proof[2]], ROOTS[5])
    cproof = consistency_proof(LEAVES[:7], 3)
    with pytest.raises(VerificationError, match="new root"):
        verify_consistency(3, 7, cproof, ROOTS[3], ROOTS[6])
    with pytest.raises(VerificationError, match="old root"):
        verify_consistency(3, 7, cproof, ROOTS[2], ROOTS[7])
    with pytest.raises(VerificationError, match="empty consistency proof"):
        verify_consistency(3, 7, [], ROOTS[3], ROOTS[7])


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@st.composite
def _tree_and_sizes(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    data = draw(st.lists(st.binary(max_size=16), min_size=1, max_size=200))
    n = len(data)
    index = draw(st.integers(0, n - 1))
    old = draw(st.integers(1, n))
    return [leaf_hash(d) for d in data], index, old


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(_tree_and_sizes())
def test_proof_round_trip_property(case: tuple[list[bytes], int, int]) -> None:
    hashes, index, old = case
    n = len(hashes)
    root = root_from_leaf_hashes(hashes)
    assert root == _recursive_mth(hashes)
    proof = inclusion_proof(hashes, index)
    assert len(proof) <= n.bit_length()
    verify_inclusion(hashes[index], index, n, proof, root)
    cproof = consistency_proof(hashes, old)
    verify_consistency(old, n, cproof, root_from_leaf_hashes(hashes[:old]), root)
    # The old tree's leaves are still provable against the old root after growth.
    old_proof = inclusion_proof(hashes[:old], min(index, old - 1))
    verify_inclusion(
        hashes[min(index, old - 1)],
        min(index, old - 1),
        old,
        old_proof,
        root_from_leaf_hashes(hashes[:old]),
    )
