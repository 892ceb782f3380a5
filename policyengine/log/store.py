"""The storage interface under the decision log.

The tree logic (`policyengine.log.tlog`) only needs these operations, so a server database
can replace the embedded SQLite store without touching hashing, proofs or signing. A store
keeps leaves with their hashes, the roots of every complete subtree (so any proof costs
O(log n) reads), the signed checkpoints, content-addressed policy bundles and a few settings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AppendTxn", "LogStore", "StoredCheckpoint", "StoredCosignature"]


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class StoredCosignature:
    """A witness's cosignature line (no newline) on the checkpoint of `size`, kept beside the
    append-only checkpoint row rather than rewriting its note."""

    size: int
    name: str
    key_id: int
    line: str


class AppendTxn(Protocol):
    """One exclusive write transaction: other appenders wait until it commits or aborts.

    Everything written through it becomes durable together when the `with` block exits
    normally, and none of it does otherwise.
    """

    def size(self) -> int: ...

    def subtree_root(self, level: int, index: int) -> bytes: ...

    def write(
        self,
        start: int,
        leaves: Sequence[tuple[bytes, bytes]],
        nodes: Sequence[tuple[int, int, bytes]],
        keys: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Store leaves `(hash, data)` from index `start`, completed interior nodes and
        lookup keys `(key, leaf index)` (e.g. the event id a decision is about)."""
        ...

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    def cosignatures(self, size: int | None = None) -> list[StoredCosignature]: ...

    def add_cosignature(self, cosignature: StoredCosignature) -> bool:
        """Store a (verified) cosignature; False when this witness key's is already there."""
        ...

    def put_bundle(self, digest: str, blob: bytes) -> bool:
        """Store a bundle's canonical sources; False when it was already there."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


class LogStore(Protocol):
    """Read access plus a factory for exclusive append transactions."""

    path: str

    def size(self) -> int: ...

    def subtree_root(self, level: int, index: int) -> bytes: ...

    def leaf(self, index: int) -> tuple[bytes, bytes]:
        """`(hash, data)` of one leaf."""
        ...

    def leaves(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        """`(index, hash, data)` in index order for `start <= index < end`."""
        ...

    def nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Stored `(index, hash)` of one interior level (>= 1), in index order."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]: ...

    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    def checkpoint_at_or_after(self, size: int) -> StoredCheckpoint | None: ...

    def cosignatures(self, size: int | None = None) -> list[StoredCosignature]:
        """Cosignatures of the checkpoint of `size` (all when None), by size, name, key ID."""
        ...

    def get_bundle(self, digest: str) -> bytes | None: ...

    def find(self, key: str) -> list[int]:
        """Indices of the leaves stored under a lookup key, in log order."""
        ...

    def bundles(self) -> Iterator[tuple[str, bytes]]: ...

    def get_meta(self, key: str) -> str | None: ...

    def append_txn(self) -> AbstractContextManager[AppendTxn]: ...

    def close(self) -> None: ...
