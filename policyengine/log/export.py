"""Export a log to a folder an inspector can take away, and verify such a folder.

The folder holds plain files only, so it can be checked with this module, with a short script
of the inspector's own, or with any RFC 6962 / C2SP tooling:

    leaves.jsonl            one leaf's exact bytes per line, in log order (index = line - 1)
    checkpoint              the latest signed checkpoint; it covers every line of leaves.jsonl
    checkpoints/<size>      every signed checkpoint, by tree size
                            (both with any witness cosignatures after the log's signature)
    bundles/<hex>.json      policy bundle sources by digest (canonical JSON; hash = file name)
    verifier.key            the log's verifier key, for convenience only: check it against the
                            one you were given out of band, as `verify-export` does
    README.txt              these instructions

Only leaves covered by the latest checkpoint are exported, so everything in the folder is
signed.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from policyengine.log.checkpoint import Checkpoint, verify_checkpoint
from policyengine.log.errors import LogError, VerificationError
from policyengine.log.merkle import EMPTY_ROOT, leaf_hash
from policyengine.log.note import Verifier
from policyengine.log.store import StoredCosignature
from policyengine.log.tlog import AuditReport, TransparencyLog, _extend, _root, with_cosignatures

__all__ = ["ExportReport", "ExportSummary", "export_log", "verify_export"]

_README = """\
Decision log export ({origin}, {size} leaves)

leaves.jsonl   line N (1-based) is leaf N-1: its exact bytes (RFC 8785 canonical JSON), then
               a newline that is not part of the leaf.
checkpoint     C2SP tlog-checkpoint signed as a C2SP signed-note (Ed25519) covering all leaves.
               Witness cosignatures (C2SP tlog-cosignature), if any, follow the log's signature.
checkpoints/   every checkpoint the log signed, named by tree size (with its cosignatures).
bundles/       policy bundle sources; sha256 of each file's bytes is its name.
verifier.key   the log's verifier key as the log reported it. Trust only a key you obtained
               independently.

Verify with: policyengine log verify-export {{this folder}} --verifier-key KEY
Tree hashing is RFC 6962 section 2.1: leaf hash SHA-256(0x00 || leaf), node SHA-256(0x01 || l || r).
"""


@dataclass
class ExportSummary:
    path: Path
    size: int
    checkpoints: int
    bundles: int


def export_log(log: TransparencyLog, directory: str | Path) -> ExportSummary:
    """Write the log into `directory`, which must be new or empty."""
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LogError(f"`{out}` exists and is not an empty directory; choose a new folder")
    latest = log.latest_checkpoint()
    if latest is None:
        raise LogError(
            "the log has no signed checkpoint to export"
            " (hint: `policyengine log checkpoint --log DB --key KEY` signs one)"
        )
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "bundles").mkdir(exist_ok=True)
    tmp = out / "leaves.jsonl.partial"
    with tmp.open("wb") as fh:
        for index, data in log.leaves(0, latest.size):
            if b"\n" in data or b"\r" in data:
                raise LogError(f"leaf {index} contains a line break; it cannot go in JSON Lines")
            fh.write(data)
            fh.write(b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(out / "leaves.jsonl")
    cps = [cp for cp in log.store.checkpoints() if cp.size <= latest.size]
    cosigned: dict[int, list[StoredCosignature]] = {}
    for c in log.store.cosignatures():
        cosigned.setdefault(c.size, []).append(c)
    for cp in cps:
        note = with_cosignatures(cp.note, cosigned.get(cp.size, []))
        (out / "checkpoints" / str(cp.size)).write_text(note, encoding="utf-8")
    note = with_cosignatures(latest.note, cosigned.get(latest.size, []))
    (out / "checkpoint").write_text(note, encoding="utf-8")
    bundles = 0
    for digest, blob in log.store.bundles():
        hexdigest = digest.removeprefix("sha256:")
        (out / "bundles" / f"{hexdigest}.json").write_bytes(blob)
        bundles += 1
    if log.verifier_key is not None:
        (out / "verifier.key").write_text(log.verifier_key + "\n", encoding="utf-8")
    (out / "README.txt").write_text(
        _README.format(origin=log.origin, size=latest.size), encoding="utf-8"
    )
    return ExportSummary(out, latest.size, len(cps), bundles)


#: The findings of `verify_export`: the same shape as a log audit's.
ExportReport = AuditReport


_HEX = re.compile(r"[0-9a-f]{64}")


def verify_export(directory: str | Path, verifier: Verifier) -> ExportReport:
    """Check an exported folder with nothing but the verifier key."""
    root_dir = Path(directory)
    report = ExportReport()
    leaves_path = root_dir / "leaves.jsonl"
    if not root_dir.is_dir():
        raise LogError(f"`{root_dir}` is not a directory")
    if not leaves_path.is_file():
        raise LogError(f"`{leaves_path}` is missing: this is not a decision log export")
    # Checkpoints first: they say which tree sizes the leaves must reproduce.
    signed: dict[int, Checkpoint] = {}
    cp_dir = root_dir / "checkpoints"
    files = sorted(cp_dir.iterdir()) if cp_dir.is_dir() else []
    for f in files:
        try:
            cp = verify_checkpoint(f.read_bytes(), verifier, verifier.name)
        except VerificationError as exc:
            report.fail(f"checkpoints/{f.name}: {exc}")
            continue
        if f.name != str(cp.size):
            report.fail(f"checkpoints/{f.name} holds the checkpoint for size {cp.size}")
            continue
        signed[cp.size] = cp
    latest_path = root_dir / "checkpoint"
    latest: Checkpoint | None = None
    try:
        latest = verify_checkpoint(latest_path.read_bytes(), verifier, verifier.name)
        signed.setdefault(latest.size, latest)
    except FileNotFoundError:
        report.fail("`checkpoint` is missing: nothing in the folder is signed")
    except VerificationError as exc:
        report.fail(f"checkpoint: {exc}")
    report.checkpoints = len(signed)
    # Leaves: recompute the tree, taking the root at every signed size.
    roots: dict[int, bytes] = {0: EMPTY_ROOT}
    frontier: list[tuple[int, int, bytes]] = []
    count = 0
    with leaves_path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                report.fail(f"leaves.jsonl: line {count + 1} is not terminated", count)
                break
            data = line[:-1]
            _extend(frontier, count, [leaf_hash(data)])
            count += 1
            if count in signed:
                roots[count] = _root(frontier)
    report.size = count
    previous = 0
    for size in sorted(signed):
        cp = signed[size]
        if size > count:
            report.fail(
                f"checkpoint for size {size} but leaves.jsonl has {count} lines:"
                f" leaves {count}..{size - 1} are missing",
                count,
                size,
            )
        elif size and roots[size] != cp.root:
            report.fail(
                f"leaves 0..{size - 1} do not reproduce the signed root at size {size}"
                f" (a leaf in {previous}..{size - 1} was altered)",
                previous,
                size,
            )
        previous = size
    if latest is not None and count > latest.size:
        report.fail(
            f"leaves.jsonl has {count} lines but the checkpoint covers {latest.size}:"
            f" leaves {latest.size}..{count - 1} are not signed",
            latest.size,
            count,
        )
    bdir = root_dir / "bundles"
    for f in sorted(bdir.iterdir()) if bdir.is_dir() else []:
        report.bundles += 1
        name = f.name.removesuffix(".json")
        if not _HEX.fullmatch(name) or hashlib.sha256(f.read_bytes()).hexdigest() != name:
            report.fail(f"bundles/{f.name} does not match its content hash")
    return report
