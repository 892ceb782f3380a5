"""RFC 6962 / RFC 9162 §2.1 Merkle tree mathematics for the decision log.

Pure functions only: no storage, no signing. Proof *generation* is written against the
`HashReader` protocol, which serves roots of complete (aligned, power-of-two) subtrees, so a
storage layer that keeps those roots (e.g. tiles) can produce any proof in O(log n) reads.
Proof *verification* follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, and every failure
raises the single `VerificationError` so callers cannot forget to handle one kind of failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from policyengine.log.errors import VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashReader",
    "MemoryHashReader",
    "VerificationError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "range_root",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree (RFC 6962 §2.1)."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d); the prefix keeps leaves and nodes apart (second preimages)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the interior-node hash of RFC 6962 §2.1."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k such that k < n <= 2k (n >= 2): the split point of RFC 6962 §2.1."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


# --------------------------------------------------------------------------------------------
# Tree hashes and proof generation
# --------------------------------------------------------------------------------------------


class HashReader(Protocol):
    """Serves roots of complete subtrees, the only reads proof generation needs.

    `subtree_root(level, index)` is MTH(D[index * 2**level : (index + 1) * 2**level]); the range
    must lie inside the tree the caller asks about. Level 0 is the leaf hashes themselves.
    """

    def subtree_root(self, level: int, index: int) -> bytes: ...


class MemoryHashReader:
    """A `HashReader` over an in-memory list of leaf hashes; builds every level once, O(n)."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hash {i} is {len(h)} bytes, expected {HASH_SIZE}")
        self._levels: list[list[bytes]] = [list(hashes)]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def subtree_root(self, level: int, index: int) -> bytes:
        if level < 0 or index < 0 or (index + 1) << level > self.size:
            raise ValueError(
                f"subtree at level {level}, index {index} is outside a tree of {self.size} leaves"
            )
        return self._levels[level][index]


def range_root(reader: HashReader, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that RFC 6962's recursion can produce.

    Such a range starts at a multiple of the largest power of two not above its length, so it
    splits into complete subtrees of strictly decreasing size (at most log2 n reads), which are
    folded right to left exactly as MTH nests them.
    """
    if start < 0 or end < start:
        raise ValueError(f"invalid range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    size = end - start
    top = size.bit_length() - 1
    if start % (1 << top):
        raise ValueError(f"range [{start}, {end}) is not aligned to a subtree boundary")
    roots: list[bytes] = []
    pos = start
    for level in range(top, -1, -1):
        if size >> level & 1:
            roots.append(reader.subtree_root(level, pos >> level))
            pos += 1 << level
    root = roots[-1]
    for left in reversed(roots[:-1]):
        root = node_hash(left, root)
    return root


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, iteratively in O(n) time and O(log n) memory.

    Keeps a stack of complete subtrees (a compact range), merging equal sizes as leaves arrive,
    then folds the stack right to left — the same nesting as the recursive definition.
    """
    stack: list[tuple[int, bytes]] = []
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is {len(h)} bytes, expected {HASH_SIZE}")
        size, node = 1, h
        while stack and stack[-1][0] == size:
            node = node_hash(stack.pop()[1], node)
            size *= 2
        stack.append((size, node))
    if not stack:
        return EMPTY_ROOT
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def prove_inclusion(reader: HashReader, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 §2.1.1, leaf-side sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    path: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            path.append(range_root(reader, start + k, end))
            end = start + k
        else:
            path.append(range_root(reader, start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def prove_consistency(reader: HashReader, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 6962 §2.1.2; empty when size1 == size2.

    A proof from size 0 is not defined (every tree extends the empty one), so it is refused.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    path: list[bytes] = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            path.append(range_root(reader, start + k, end))
            end = start + k
        else:
            path.append(range_root(reader, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        path.append(range_root(reader, start, end))
    path.reverse()
    return path


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Inclusion proof for leaf `index` in the tree of all `hashes` (see `prove_inclusion`)."""
    return prove_inclusion(MemoryHashReader(hashes), index, len(hashes))


def consistency_proof(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency proof from the first `old_size` leaves to all `hashes`."""
    return prove_consistency(MemoryHashReader(hashes), old_size, len(hashes))


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)
# --------------------------------------------------------------------------------------------


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf` at `index` in a tree of `size` (RFC 9162 §2.1.3.2).

    Raises `VerificationError` when the proof cannot be for that position: index out of range,
    a hash of the wrong length, or a proof that is too short or too long.
    """
    if index < 0 or size < 0:
        raise VerificationError(f"negative index {index} or tree size {size}")
    if index >= size:
        raise VerificationError(f"leaf index {index} is not below tree size {size}")
    _check_hash(leaf, "leaf hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"inclusion proof hash {i}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError(f"inclusion proof is longer than the path to leaf {index}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"inclusion proof is shorter than the path to leaf {index}")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` is at `index` in the tree of `size` leaves whose root is `root`."""
    _check_hash(root, "root hash")
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    if computed != root:
        raise VerificationError(
            f"inclusion proof for leaf {index} does not lead to the root of tree size {size}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.

    RFC 9162 §2.1.4.2 for 0 < size1 < size2. Equal sizes need an empty proof and equal roots.
    A proof from size 0 is rejected (as transparency-dev/merkle's vectors expect): it proves
    nothing and usually means the caller has no previous checkpoint to compare against.
    """
    if size1 < 0 or size2 < 0:
        raise VerificationError(f"negative tree size {size1} or {size2}")
    if size2 < size1:
        raise VerificationError(f"new tree size {size2} is smaller than old tree size {size1}")
    if size1 == 0:
        raise VerificationError("consistency from tree size 0 proves nothing")
    _check_hash(root1, "old root hash")
    _check_hash(root2, "new root hash")
    if size1 == size2:
        if proof:
            raise VerificationError(f"tree sizes are equal ({size1}) but the proof is not empty")
        if root1 != root2:
            raise VerificationError(f"tree sizes are equal ({size1}) but the roots differ")
        return
    for i, c in enumerate(proof):
        _check_hash(c, f"consistency proof hash {i}")
    # Step 1.
    if not proof:
        raise VerificationError(f"empty consistency proof from size {size1} to {size2}")
    # Step 2: a power-of-two old tree is itself a node of the new one, so its root seeds the path.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # Steps 3-4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(
                f"consistency proof from size {size1} to {size2} is longer than expected"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise VerificationError(
            f"consistency proof from size {size1} to {size2} is shorter than expected"
        )
    if fr != root1:
        raise VerificationError(f"consistency proof does not lead to the old root (size {size1})")
    if sr != root2:
        raise VerificationError(f"consistency proof does not lead to the new root (size {size2})")
