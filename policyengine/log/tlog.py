"""The transparency log: appends leaves durably, signs checkpoints, serves proofs, audits.

All tree logic lives here and talks to storage only through `LogStore`, so the embedded
SQLite store and a future server database share it. Appends keep the *right frontier* (the
roots of the complete subtrees that make up the current tree, at most log2 n of them) and
store every subtree root they complete, which is what lets any proof be served in O(log n)
reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from policyengine.log.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from policyengine.log.cosignature import CosignatureVerifier, verify_cosignature_line
from policyengine.log.errors import LogError, VerificationError
from policyengine.log.merkle import (
    EMPTY_ROOT,
    HashReader,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    range_root,
    verify_consistency,
)
from policyengine.log.note import MAX_SIGNATURES, Signer, Verifier
from policyengine.log.proof import TlogProof
from policyengine.log.sqlite import SQLiteStore
from policyengine.log.store import AppendTxn, LogStore, StoredCheckpoint, StoredCosignature

__all__ = ["AuditReport", "BundleBlob", "TransparencyLog", "with_cosignatures"]

#: (digest, canonical sources, the leaf that publishes it) for `TransparencyLog.append`.
BundleBlob = tuple[str, bytes, bytes]


def with_cosignatures(note: str, cosignatures: Sequence[StoredCosignature]) -> str:
    """The signed note with stored witness cosignature lines after the log's own signature."""
    return note + "".join(c.line + "\n" for c in cosignatures)


def _frontier(reader: HashReader, size: int) -> list[tuple[int, int, bytes]]:
    """The complete subtrees `(level, index, hash)` that make up a tree of `size`, largest first."""
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, pos >> level, reader.subtree_root(level, pos >> level)))
            pos += 1 << level
    return out


def _extend(
    frontier: list[tuple[int, int, bytes]], start: int, hashes: Sequence[bytes]
) -> list[tuple[int, int, bytes]]:
    """Push leaf hashes onto the frontier; return the interior nodes this completes."""
    nodes: list[tuple[int, int, bytes]] = []
    for offset, h in enumerate(hashes):
        level, index, node = 0, start + offset, h
        while frontier and frontier[-1][0] == level:
            _, _, left = frontier.pop()
            level, index, node = level + 1, index >> 1, node_hash(left, node)
            nodes.append((level, index, node))
        frontier.append((level, index, node))
    return nodes


def _root(frontier: Sequence[tuple[int, int, bytes]]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1][2]
    for _, _, left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


@dataclass
class AuditReport:
    """What `TransparencyLog.audit` found. `ok` is False at the first sign of tampering."""

    size: int = 0
    checkpoints: int = 0
    bundles: int = 0
    #: Stored cosignatures by the witnesses the auditor passed, each verified.
    cosignatures: int = 0
    problems: list[str] = field(default_factory=list)
    #: Index of the first leaf that cannot be trusted, when one can be named.
    first_bad_leaf: int | None = None
    #: The range `[start, end)` the first bad leaf lies in, when only a range can be named.
    bad_range: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, first: int | None = None, end: int | None = None) -> None:
        self.problems.append(message)
        if first is not None and (self.first_bad_leaf is None or first < self.first_bad_leaf):
            self.first_bad_leaf = first
            self.bad_range = (first, end if end is not None else first + 1)


class TransparencyLog:
    """A signed RFC 6962 log over a `LogStore`. Thread-safe; several processes may append.

    `signer` is needed only to sign checkpoints; reading, proving and auditing need at most
    the verifier key.
    """

    def __init__(self, store: LogStore, signer: Signer | None = None) -> None:
        self.store = store
        self.signer = signer
        if signer is not None:
            self._adopt_key(signer)

    @classmethod
    def open(
        cls, path: str | Path, signer: Signer | None = None, *, create: bool = False
    ) -> TransparencyLog:
        """Open the SQLite log at `path` (`create` makes a new one when it is missing)."""
        return cls(SQLiteStore(path, create=create), signer)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ identity

    @property
    def origin(self) -> str | None:
        return self.store.get_meta("origin")

    @property
    def verifier_key(self) -> str | None:
        """The verifier key recorded when the log was first signed (convenience, not trust)."""
        return self.store.get_meta("verifier_key")

    def _adopt_key(self, signer: Signer) -> None:
        known = self.store.get_meta("verifier_key")
        if known == signer.verifier_key:
            return
        if known is not None:
            raise LogError(
                f"key `{signer.name}` (id {signer.key_id:08x}) is not the key of the log at"
                f" `{self.store.path}`, which is signed by `{known}`"
                " (hint: pass the log's own --key; a log has exactly one signing key)"
            )
        with self.store.append_txn() as txn:
            if txn.get_meta("verifier_key") is None:
                txn.set_meta("origin", signer.name)
                txn.set_meta("verifier_key", signer.verifier_key)
        if self.store.get_meta("verifier_key") != signer.verifier_key:
            raise LogError(f"another process set a different key on `{self.store.path}`")

    # ------------------------------------------------------------------ append

    def size(self) -> int:
        return self.store.size()

    def append(
        self,
        leaves: Sequence[bytes],
        *,
        bundles: Sequence[BundleBlob] = (),
        sign: bool = True,
        keys: Sequence[str | None] | None = None,
    ) -> range:
        """Append leaves durably (one transaction) and return their indices.

        Each bundle not yet stored is stored and its publication leaf goes in first, so a
        decision never precedes the bundle it names. With a signer and `sign`, a checkpoint
        covering the new leaves is signed in the same transaction. `keys[i]`, when given,
        indexes `leaves[i]` for `find` (the event id of a decision record).
        """
        if keys is not None and len(keys) != len(leaves):
            raise ValueError("keys must give one entry per leaf")
        with self.store.append_txn() as txn:
            start = txn.size()
            batch = [lf for digest, blob, lf in bundles if txn.put_bundle(digest, blob)]
            batch.extend(leaves)
            if batch:
                frontier = _frontier(txn, start)
                hashes = [leaf_hash(lf) for lf in batch]
                nodes = _extend(frontier, start, hashes)
                first = start + len(batch) - len(leaves)
                index = [(k, first + i) for i, k in enumerate(keys or ()) if k is not None]
                txn.write(start, list(zip(hashes, batch, strict=True)), nodes, index)
            if self.signer is not None and sign:
                self._sign(txn, start + len(batch))
        end = start + len(batch)
        return range(end - len(leaves), end)

    def sign_checkpoint(self) -> StoredCheckpoint:
        """Sign the current tree (or return the latest checkpoint when nothing is new)."""
        if self.signer is None:
            raise LogError("signing a checkpoint needs the log's private key (--key)")
        with self.store.append_txn() as txn:
            return self._sign(txn, txn.size())

    def _sign(self, txn: AppendTxn, size: int) -> StoredCheckpoint:
        assert self.signer is not None
        latest = txn.latest_checkpoint()
        if latest is not None and latest.size == size:
            return latest
        if latest is not None and latest.size > size:
            raise LogError(
                f"refusing to sign: the log holds {size} leaves but a checkpoint for"
                f" {latest.size} was signed before (leaves may have been removed)"
            )
        root = range_root(txn, 0, size)
        if latest is not None:
            # Never sign a tree that does not extend what was signed before.
            try:
                previous = verify_checkpoint(latest.note, self.signer.verifier, self.signer.name)
                if (previous.size, previous.root) != (latest.size, latest.root):
                    raise VerificationError("stored checkpoint row disagrees with its note")
                if latest.size > 0:
                    proof = prove_consistency(txn, latest.size, size)
                    verify_consistency(latest.size, size, proof, latest.root, root)
            except VerificationError as exc:
                raise LogError(
                    f"refusing to sign a checkpoint inconsistent with the one at size"
                    f" {latest.size}: {exc} (hint: run `policyengine log verify`)"
                ) from None
        note = sign_checkpoint(Checkpoint(self.signer.name, size, root), self.signer)
        stored = StoredCheckpoint(size, root, note)
        txn.add_checkpoint(stored)
        return stored

    # ------------------------------------------------------------------ reads and proofs

    def root(self, size: int | None = None) -> bytes:
        n = self.store.size() if size is None else size
        if n > self.store.size():
            raise LogError(f"the log holds {self.store.size()} leaves, not {n}")
        return range_root(self.store, 0, n)

    def find(self, key: str) -> list[int]:
        """Leaves appended under `key` (for decisions: the event id), in log order."""
        return self.store.find(key)

    def leaf(self, index: int) -> bytes:
        return self.store.leaf(index)[1]

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        stop = self.store.size() if end is None else end
        for index, _, data in self.store.leaves(start, stop):
            yield index, data

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self.store.latest_checkpoint()

    def prove(self, index: int, size: int | None = None) -> TlogProof:
        """A tlog-proof of leaf `index` against the latest signed checkpoint (or the one at
        `size`), carrying the leaf bytes so the file alone is enough to check it."""
        cp = self._checkpoint_for(size)
        if not 0 <= index < cp.size:
            raise LogError(
                f"leaf {index} is not covered by the checkpoint at size {cp.size}"
                + (
                    " (hint: sign a newer checkpoint with `policyengine log checkpoint --key`)"
                    if index >= cp.size and index < self.store.size()
                    else ""
                )
            )
        hashes = prove_inclusion(self.store, index, cp.size)
        note = with_cosignatures(cp.note, self.store.cosignatures(cp.size))
        return TlogProof(index, tuple(hashes), note, extra=self.leaf(index))

    def cosigned_note(self, size: int | None = None) -> str:
        """The checkpoint note of `size` (default: the latest) with its witness cosignatures."""
        cp = self._checkpoint_for(size)
        return with_cosignatures(cp.note, self.store.cosignatures(cp.size))

    def add_cosignature(self, size: int, line: str, witness: CosignatureVerifier) -> bool:
        """Keep `witness`'s cosignature `line` of the checkpoint of `size`; False if it was
        already kept. The line is verified against the stored note first (VerificationError)."""
        cp = self._checkpoint_for(size)
        found = verify_cosignature_line(cp.note, line, witness)
        row = StoredCosignature(cp.size, found.name, found.key_id, found.line.rstrip("\n"))
        with self.store.append_txn() as txn:
            kept = txn.cosignatures(cp.size)
            if any((c.name, c.key_id) == (row.name, row.key_id) for c in kept):
                return False
            if len(kept) + 2 > MAX_SIGNATURES:  # the log's signature, the kept ones, this one
                raise LogError(
                    f"the checkpoint at size {cp.size} already carries the most signatures a"
                    f" note may have ({MAX_SIGNATURES})"
                )
            return txn.add_cosignature(row)

    def consistency(self, old: int, new: int) -> list[bytes]:
        """PROOF(old, D[new]) from stored nodes."""
        n = self.store.size()
        if not 0 < old <= new <= n:
            raise LogError(
                f"no consistency proof from size {old} to {new}: need 0 < OLD <= NEW <= {n}"
            )
        return prove_consistency(self.store, old, new)

    def _checkpoint_for(self, size: int | None) -> StoredCheckpoint:
        if size is None:
            cp = self.store.latest_checkpoint()
            if cp is None:
                raise LogError(
                    "the log has no signed checkpoint yet"
                    " (hint: `policyengine log checkpoint --log DB --key KEY` signs one)"
                )
            return cp
        found = self.store.checkpoint_at_or_after(size)  # one indexed read, not every row
        if found is not None and found.size == size:
            return found
        raise LogError(f"no signed checkpoint at size {size}")

    # ------------------------------------------------------------------ audit

    def audit(
        self,
        verifier: Verifier,
        *,
        witnesses: Sequence[CosignatureVerifier] = (),
        progress: Callable[[int], None] | None = None,
    ) -> AuditReport:
        """Recompute every hash from the leaves and check every checkpoint against them.

        Needs only the verifier key. Leaf hashes are recomputed from leaf bytes, every stored
        interior node from the level below, and every checkpoint's signature, origin, root and
        consistency with its predecessor are checked. Reports where trust first breaks.
        """
        report = AuditReport(size=self.store.size())
        n = report.size
        # Level 0: leaf bytes against their stored hashes; also the frontier root at each
        # checkpointed size, computed from the *recomputed* hashes, independent of `nodes`.
        cps = self.store.checkpoints()
        report.checkpoints = len(cps)
        want = sorted({cp.size for cp in cps if 0 < cp.size <= n})
        roots: dict[int, bytes] = {0: EMPTY_ROOT}
        frontier: list[tuple[int, int, bytes]] = []
        expect = 0
        wi = 0
        level1: list[tuple[int, bytes]] = []
        stored_level1 = self.store.nodes(1)
        for index, stored, data in self.store.leaves(0, n):
            if index != expect:
                report.fail(f"leaf {expect} is missing (the next stored leaf is {index})", expect)
                return report
            h = leaf_hash(bytes(data))
            if h != stored:
                report.fail(f"leaf {index}: its bytes do not match its stored hash", index)
                h = stored  # keep going to report checkpoints, but trust is already gone
            for level, node_index, node in _extend(frontier, index, [h]):
                if level == 1:
                    level1.append((node_index, node))
            expect += 1
            while wi < len(want) and want[wi] == expect:
                roots[expect] = _root(frontier)
                wi += 1
            if progress is not None and expect % 65536 == 0:
                progress(expect)
            if len(level1) >= 4096:
                self._compare_level(1, level1, stored_level1, report)
                level1.clear()
        if expect != n:
            report.fail(f"leaf {expect} is missing", expect)
        self._compare_level(1, level1, stored_level1, report)
        self._check_rest(stored_level1, 1, report)
        # Upper levels: each stored level recomputed from the (now checked) level below.
        level = 1
        while (n >> level) >= 2:
            below = self.store.nodes(level)
            above = self.store.nodes(level + 1)
            pending: list[tuple[int, bytes]] = []
            left: tuple[int, bytes] | None = None
            for idx, h in below:
                if idx % 2 == 0:
                    left = (idx, h)
                elif left is not None and left[0] == idx - 1:
                    pending.append((idx >> 1, node_hash(left[1], h)))
                    left = None
                if len(pending) >= 4096:
                    self._compare_level(level + 1, pending, above, report)
                    pending.clear()
            self._compare_level(level + 1, pending, above, report)
            self._check_rest(above, level + 1, report)
            level += 1
        if progress is not None:
            progress(expect)
        self._check_checkpoints(cps, roots, verifier, report)
        self._check_cosignatures(cps, witnesses, report)
        for digest, blob in self.store.bundles():
            report.bundles += 1
            if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
                report.fail(f"stored policy bundle `{digest}` does not match its digest")
        return report

    def _check_cosignatures(
        self,
        cps: list[StoredCheckpoint],
        witnesses: Sequence[CosignatureVerifier],
        report: AuditReport,
    ) -> None:
        """Every stored cosignature by a witness the auditor trusts must verify."""
        trusted = {(w.name, w.key_id): w for w in witnesses}
        notes = {cp.size: cp.note for cp in cps}
        for row in self.store.cosignatures():
            witness = trusted.get((row.name, row.key_id))
            if witness is None:
                continue
            report.cosignatures += 1
            note = notes.get(row.size)
            if note is None:
                report.fail(f"cosignature by `{row.name}` for size {row.size}: no such checkpoint")
                continue
            try:
                verify_cosignature_line(note, row.line, witness)
            except VerificationError as exc:
                report.fail(f"cosignature by `{row.name}` for size {row.size}: {exc}")

    def _compare_level(
        self,
        level: int,
        computed: list[tuple[int, bytes]],
        stored: Iterator[tuple[int, bytes]],
        report: AuditReport,
    ) -> None:
        for index, h in computed:
            row = next(stored, None)
            if row is None or row[0] != index:
                report.fail(
                    f"tree node at level {level}, index {index} is missing",
                    index << level,
                    (index + 1) << level,
                )
                return
            if row[1] != h:
                span = (index << level, (index + 1) << level)
                report.fail(
                    f"tree node at level {level}, index {index} does not match leaves"
                    f" {span[0]}..{span[1] - 1}",
                    *span,
                )

    def _check_rest(
        self, stored: Iterator[tuple[int, bytes]], level: int, report: AuditReport
    ) -> None:
        extra = next(stored, None)
        if extra is not None:
            report.fail(f"unexpected tree node at level {level}, index {extra[0]}")

    def _check_checkpoints(
        self,
        cps: list[StoredCheckpoint],
        roots: dict[int, bytes],
        verifier: Verifier,
        report: AuditReport,
    ) -> None:
        origin = self.origin
        previous: Checkpoint | None = None
        for cp in cps:
            try:
                signed = verify_checkpoint(cp.note, verifier, origin)
            except VerificationError as exc:
                report.fail(f"checkpoint at size {cp.size}: {exc}")
                continue
            if (signed.size, signed.root) != (cp.size, cp.root):
                report.fail(f"checkpoint at size {cp.size}: stored row disagrees with its note")
                continue
            if signed.size > report.size:
                report.fail(
                    f"checkpoint at size {signed.size} was signed but the log holds only"
                    f" {report.size} leaves: leaves {report.size}..{signed.size - 1} are gone",
                    report.size,
                    signed.size,
                )
                continue
            expected = roots.get(signed.size)
            if expected is not None and expected != signed.root:
                start = previous.size if previous is not None else 0
                report.fail(
                    f"checkpoint at size {signed.size}: signed root does not match the leaves"
                    f" (a leaf in {start}..{signed.size - 1} was altered)",
                    start,
                    signed.size,
                )
            elif expected is None and previous is not None and previous.size > 0:
                # Both roots were recomputed from the leaves above whenever they could be,
                # which already proves consistency; prove it explicitly only otherwise.
                try:
                    proof = prove_consistency(self.store, previous.size, signed.size)
                    verify_consistency(
                        previous.size, signed.size, proof, previous.root, signed.root
                    )
                except (VerificationError, LogError) as exc:
                    report.fail(f"checkpoints at sizes {previous.size} and {signed.size}: {exc}")
            previous = signed
