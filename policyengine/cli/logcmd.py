"""`policyengine log …`: read, prove, audit and export the signed decision log.

Commands that read a log take `--log DB`; the two inspector commands, `verify-export` and
`verify-proof`, need no database at all — only the files and the verifier key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Sink,
    no_color_option,
    parse_timestamp,
    settings,
)
from policyengine.events import EventError, parse_event
from policyengine.events.pseudonym import (
    Pseudonymiser,
    carries_identifiers,
    load_pseudonym_key,
    require_pseudonymised,
)
from policyengine.log import (
    LogError,
    TlogProof,
    TransparencyLog,
    VerificationError,
    Verifier,
    canonical,
    load_signer,
    load_verifier,
    parse_record,
    verify_proof,
)
from policyengine.log.cosignature import (
    CosignatureVerifier,
    CosignedCheckpoint,
    load_witness_verifier,
    verify_cosigned,
)
from policyengine.log.export import ExportReport, export_log, verify_export
from policyengine.log.records import record
from policyengine.runtime.values import to_jsonable

__all__ = ["log_group"]

LOG_OPTION = click.option(
    "--log",
    "log_path",
    required=True,
    metavar="DB",
    envvar="POLICYENGINE_LOG",
    help="The decision log (SQLite file). Env: POLICYENGINE_LOG.",
)
VERIFIER_OPTION = click.option(
    "--verifier-key",
    "verifier_key",
    metavar="KEY|FILE",
    help="The log's verifier key (`name+hexid+base64`), or a file holding it.",
)


WITNESS_KEY_OPTION = click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    metavar="KEY|FILE",
    help="A trusted witness's verifier key (type 0x04), or a file holding it; repeatable. "
    "The checkpoint must carry cosignatures from --quorum of them.",
)
QUORUM_OPTION = click.option(
    "--quorum",
    type=int,
    metavar="N",
    help="How many distinct --witness-key witnesses must have cosigned. Default: all given.",
)


def _witnesses(keys: tuple[str, ...], quorum: int | None) -> tuple[list[CosignatureVerifier], int]:
    witnesses = [load_witness_verifier(k) for k in keys]
    distinct = len({w.public_key for w in witnesses})
    if quorum is None:
        return witnesses, distinct
    if not witnesses and quorum:
        raise CliError(f"--quorum {quorum} needs --witness-key", "name the witnesses you trust")
    if not 0 <= quorum <= distinct:
        raise CliError(
            f"--quorum {quorum} can never be met by {distinct} distinct witness key"
            f"{'s' if distinct != 1 else ''}",
            f"use a quorum between 0 and {distinct}",
        )
    return witnesses, quorum


def _vouched(cosigned: CosignedCheckpoint | None) -> str:
    if cosigned is None or not cosigned.cosignatures:
        return ""
    return "; cosigned by " + ", ".join(f"`{c.name}` at {c.time}" for c in cosigned.cosignatures)


def _open(path: str) -> TransparencyLog:
    return TransparencyLog.open(path)


def _trusted_verifier(log: TransparencyLog, given: str | None) -> Verifier:
    if given is not None:
        return load_verifier(given)
    if log.verifier_key is None:
        raise CliError("the log has never been signed, so there is no key to verify against")
    settings().warn(
        "trusting the verifier key stored in the log itself; an inspector should pass"
        " --verifier-key obtained independently"
    )
    return load_verifier(log.verifier_key)


@click.group("log")
def log_group() -> None:
    """The signed, append-only decision log (RFC 6962 tree, C2SP checkpoints and proofs).

    \b
    Exit codes: 0 ok · 1 verification failed (tampering or a bad proof) · 2 usage error.
    """


# ---------------------------------------------------------------- append


def _leaf_for(obj: Any, now: datetime, pseudonyms: Pseudonymiser | None) -> bytes:
    """Turn one JSON line into a leaf: a full record, a decision, or an event. Events (also
    inside records) are pseudonymised, and refused with raw identifiers and no key."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object (an event, a decision or a log record)")
    if "v" in obj and "kind" in obj:
        if isinstance(obj.get("event"), dict):
            try:
                inner = parse_event(obj["event"])
            except EventError:
                inner = None  # a record's event is stored as logged; only check identifiers
            if inner is not None and carries_identifiers(inner):
                if pseudonyms is None:
                    require_pseudonymised(inner, None)
                obj = {**obj, "event": to_jsonable(pseudonyms.apply(inner))}  # type: ignore[union-attr]
        data = canonical(obj)
        parse_record(data)
        return data
    if "outcome" in obj and "bundle_digest" in obj:
        missing = [k for k in ("event", "results", "evaluated_at") if k not in obj]
        if missing:
            raise ValueError(f"decision lacks {', '.join(f'`{k}`' for k in missing)}")
        return record("decision", str(obj["evaluated_at"]), decision=obj)
    event = require_pseudonymised(parse_event(obj), pseudonyms)
    return record("event", now, event=to_jsonable(event))


@log_group.command("append")
@LOG_OPTION
@click.option("--key", "key_path", required=True, metavar="KEYFILE", help="The log's key.")
@click.option(
    "--now",
    metavar="TIMESTAMP",
    help="Timestamp for event records (RFC 3339). Default: the current UTC time.",
)
@click.option(
    "--pseudonym-key",
    "pseudonym_key",
    metavar="FILE",
    help="Pseudonymise patient identifiers in events (required when they carry any).",
)
@click.argument("file", metavar="FILE")
@no_color_option
def append(
    log_path: str, key_path: str, now: str | None, pseudonym_key: str | None, file: str
) -> None:
    """Append events or decisions from a JSON Lines FILE (`-` for stdin), all or nothing.

    A decision (as `policyengine eval --format json` prints) is logged as it is; an event
    is validated and logged as an event record stamped with --now. A malformed line
    stops the append before anything is written.
    """
    s = settings()
    stamp = parse_timestamp(now, "--now") if now else datetime.now(UTC)
    try:
        pseudonyms = load_pseudonym_key(pseudonym_key) if pseudonym_key is not None else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    leaves: list[bytes] = []
    bad = 0
    try:
        with click.open_file(file, "rb") as fh:
            raw_lines = fh.read().split(b"\n")
    except OSError as exc:
        raise CliError(f"cannot read `{file}`: {exc.strerror or exc}") from None
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
            leaves.append(_leaf_for(obj, stamp, pseudonyms))
        except UnicodeDecodeError:
            s.error(f"{file}:{number}: not UTF-8 text")
            bad += 1
        except json.JSONDecodeError as exc:
            s.error(f"{file}:{number}: invalid JSON: {exc.msg} (column {exc.colno})")
            bad += 1
        except (EventError, ValueError, LogError) as exc:
            s.error(f"{file}:{number}: {exc}")
            bad += 1
    if bad:
        raise CliError(f"nothing appended: {bad} bad line{'s' if bad != 1 else ''} in `{file}`")
    with TransparencyLog.open(log_path, load_signer(key_path), create=True) as log:
        indices = log.append(leaves)
        cp = log.latest_checkpoint()
    where = f"leaves {indices.start}..{indices.stop - 1}" if indices else "nothing new"
    s.note(f"appended {len(indices)} ({where}); checkpoint at size {cp.size if cp else 0}")


# ---------------------------------------------------------------- show


def _summary(obj: dict[str, Any]) -> str:
    kind = obj.get("kind")
    if kind == "bundle":
        return f"bundle {obj.get('digest')} ({len(obj.get('files', {}))} files)"
    if kind == "session":
        return f"session: engine {obj.get('engine_version')} starts from {obj.get('state')} state"
    if kind == "event":
        ev = obj.get("event", {})
        subject = ev.get("subject", {})
        return f"event {ev.get('id')} {ev.get('type')} {subject.get('kind')}:{subject.get('id')}"
    d = obj.get("decision", {})
    ev = d.get("event", {})
    subject = ev.get("subject", {})
    failed = [r["rule"] for r in d.get("results", []) if r.get("status") in ("fail", "error")]
    tail = f"  [{', '.join(failed)}]" if failed else ""
    return (
        f"{d.get('outcome', '?'):<19} {ev.get('id')} {ev.get('type')}"
        f" {subject.get('kind')}:{subject.get('id')}{tail}"
    )


@log_group.command("show")
@LOG_OPTION
@click.option("--from", "start", type=int, default=0, show_default=True, help="First index.")
@click.option("--to", "end", type=int, help="Last index (inclusive). Default: the last leaf.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one readable line per leaf; json: the exact leaf bytes, one per line.",
)
@no_color_option
def show(log_path: str, start: int, end: int | None, fmt: str) -> None:
    """Print leaves START..END of the log."""
    with _open(log_path) as log:
        size = log.size()
        stop = size if end is None else min(end + 1, size)
        if start < 0 or start > size:
            raise CliError(f"--from {start} is outside the log (0..{max(size - 1, 0)})")
        with Sink(None, settings().stdout_color) as sink:
            for index, data in log.leaves(start, stop):
                if fmt == "json":
                    sink.write_bytes(data + b"\n")
                    continue
                try:
                    obj = parse_record(data, index)
                    line = f"{index:>8}  {obj['time']:<20}  {_summary(obj)}\n"
                except LogError as exc:
                    line = f"{index:>8}  ? {exc}\n"
                sink.write_text(line)


# ---------------------------------------------------------------- checkpoints and proofs


@log_group.command("checkpoint")
@LOG_OPTION
@click.option(
    "--key",
    "key_path",
    metavar="KEYFILE",
    help="Sign a checkpoint of the current tree first (needed only if leaves were appended "
    "since the last one).",
)
@no_color_option
def checkpoint(log_path: str, key_path: str | None) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint as a signed note), with any
    witness cosignatures attached to it."""
    signer = load_signer(key_path) if key_path else None
    with TransparencyLog.open(log_path, signer) as log:
        cp = log.sign_checkpoint() if signer else log.latest_checkpoint()
        if cp is None:
            raise CliError(
                "the log has no signed checkpoint yet",
                "pass --key to sign one",
            )
        if cp.size < log.size():
            settings().warn(
                f"{log.size() - cp.size} leaves are newer than this checkpoint; pass --key to"
                " sign one that covers them"
            )
        note = log.cosigned_note(cp.size)
    click.echo(note, nl=False)


@log_group.command("prove")
@LOG_OPTION
@click.argument("index", type=int, required=False)
@click.option("--event", "event_id", metavar="ID", help="Prove the latest decision on event ID.")
@click.option("--size", type=int, help="Prove against the checkpoint of this size.")
@click.option("--output", "-o", metavar="FILE", help="Write the proof to FILE (.tlog-proof).")
@no_color_option
def prove(
    log_path: str, index: int | None, event_id: str | None, size: int | None, output: str | None
) -> None:
    """Print a C2SP tlog-proof for leaf INDEX (or the decision on --event ID): the leaf bytes
    (as `extra`), the inclusion proof and the signed checkpoint — one file that verifies
    offline."""
    if (index is None) == (event_id is None):
        raise CliError("give either a leaf INDEX or --event ID")
    with _open(log_path) as log:
        if event_id is not None:
            found = log.find(event_id)
            if not found:
                raise CliError(f"no decision on event `{event_id}` in `{log_path}`")
            index = found[-1]
        assert index is not None
        proof = log.prove(index, size)
    with Sink(output, False) as sink:
        sink.write_text(proof.to_text())


@log_group.command("consistency")
@LOG_OPTION
@click.argument("old", type=int)
@click.argument("new", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@no_color_option
def consistency(log_path: str, old: int, new: int, fmt: str) -> None:
    """Print the RFC 6962 consistency proof from tree size OLD to NEW (base64, one per line)."""
    with _open(log_path) as log:
        proof = log.consistency(old, new)
        roots = (log.root(old), log.root(new))
    b64 = [base64.b64encode(h).decode("ascii") for h in proof]
    if fmt == "json":
        doc = {
            "old_size": old,
            "new_size": new,
            "old_root": base64.b64encode(roots[0]).decode("ascii"),
            "new_root": base64.b64encode(roots[1]).decode("ascii"),
            "proof": b64,
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        for line in b64:
            click.echo(line)


@log_group.command("cosign")
@LOG_OPTION
@click.option(
    "--witness-key",
    "witness_key",
    required=True,
    metavar="KEY|FILE",
    help="The witness's verifier key (`name+hexid+base64`, type 0x04), or a file holding it.",
)
@click.option(
    "--size", type=int, metavar="N", help="Tree size of the checkpoint it cosigns. Default: latest."
)
@click.argument("line_file", metavar="LINE_FILE")
@no_color_option
def cosign_cmd(log_path: str, witness_key: str, size: int | None, line_file: str) -> None:
    """Attach a witness's cosignature — the line `policyengine witness cosign` prints, in
    LINE_FILE (`-` for stdin) — to a checkpoint, after verifying it. `prove` and `export`
    then hand out the checkpoint with the cosignature."""
    witness = load_witness_verifier(witness_key)
    try:
        with click.open_file(line_file, "r", encoding="utf-8") as fh:
            lines = [line for line in fh.read().split("\n") if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read `{line_file}`: {exc}") from None
    if not lines:
        raise CliError(f"`{line_file}` holds no cosignature line")
    hint = None if size is not None else "pass --size N of the checkpoint the witness cosigned"
    with _open(log_path) as log:
        if size is None:
            latest = log.latest_checkpoint()
            if latest is None:
                raise CliError("the log has no signed checkpoint to attach a cosignature to")
            size = latest.size
        for line in lines:
            try:
                added = log.add_cosignature(size, line, witness)
            except VerificationError as exc:
                settings().error(
                    f"cosignature does not verify against the checkpoint at size {size}: {exc}",
                    hint,
                )
                click.get_current_context().exit(EXIT_FINDINGS)
            settings().note(
                f"attached cosignature by `{witness.name}` to the checkpoint at size {size}"
                if added
                else f"cosignature by `{witness.name}` was already attached at size {size}"
            )


# ---------------------------------------------------------------- verification


@log_group.command("verify")
@LOG_OPTION
@VERIFIER_OPTION
@click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    metavar="KEY|FILE",
    help="Also verify every stored cosignature by this witness (repeatable).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@no_color_option
def verify(
    log_path: str, verifier_key: str | None, witness_keys: tuple[str, ...], fmt: str
) -> None:
    """Full audit: recompute every hash from the leaves, check every stored checkpoint's
    signature, root and consistency. On tampering, name the first bad leaf and exit 1."""
    s = settings()
    witnesses = [load_witness_verifier(k) for k in witness_keys]
    with _open(log_path) as log:
        verifier = _trusted_verifier(log, verifier_key)
        report = log.audit(verifier, witnesses=witnesses)
    if fmt == "json":
        doc = {
            "ok": report.ok,
            "size": report.size,
            "checkpoints": report.checkpoints,
            "bundles": report.bundles,
            "cosignatures": report.cosignatures,
            "first_bad_leaf": report.first_bad_leaf,
            "bad_range": list(report.bad_range) if report.bad_range else None,
            "problems": report.problems,
        }
        click.echo(json.dumps(doc, indent=2))
    elif report.ok:
        cosigned = (
            f"; {_n(report.cosignatures, 'witness cosignature')} verified" if witnesses else ""
        )
        click.echo(
            f"ok: {_n(report.size, 'leaf', 'leaves')}, {_n(report.checkpoints, 'checkpoint')}"
            f" and {_n(report.bundles, 'bundle')} verified against"
            f" `{verifier.to_key_string()}`{cosigned}"
        )
    else:
        for problem in report.problems:
            s.error(problem)
        click.echo(f"FAILED: {_where(report.first_bad_leaf, report.bad_range)}")
    click.get_current_context().exit(EXIT_OK if report.ok else EXIT_FINDINGS)


def _where(first: int | None, span: tuple[int, int] | None) -> str:
    if first is None:
        return "the log cannot be trusted (see above)"
    if span is None or span[1] - span[0] <= 1:
        return f"first bad leaf is {first}"
    return f"first bad leaf is in {span[0]}..{span[1] - 1}"


@log_group.command("export")
@LOG_OPTION
@click.argument("directory", metavar="DIR")
@no_color_option
def export(log_path: str, directory: str) -> None:
    """Write the log to DIR for an inspector: leaves.jsonl, checkpoints, bundles, key."""
    with _open(log_path) as log:
        summary = export_log(log, directory)
    settings().note(
        f"exported {_n(summary.size, 'leaf', 'leaves')}, {_n(summary.checkpoints, 'checkpoint')}"
        f" and {_n(summary.bundles, 'bundle')} to `{summary.path}`"
    )


@log_group.command("verify-export")
@click.argument("directory", metavar="DIR")
@click.option(
    "--verifier-key",
    "verifier_key",
    required=True,
    metavar="KEY|FILE",
    help="The log's verifier key, obtained independently of the export.",
)
@WITNESS_KEY_OPTION
@QUORUM_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@no_color_option
def verify_export_cmd(
    directory: str,
    verifier_key: str,
    witness_keys: tuple[str, ...],
    quorum: int | None,
    fmt: str,
) -> None:
    """Check an exported folder with nothing but the verifier key (and, with --witness-key,
    that the latest checkpoint is cosigned by a quorum of trusted witnesses)."""
    verifier = load_verifier(verifier_key)
    witnesses, quorum = _witnesses(witness_keys, quorum)
    report = verify_export(directory, verifier)
    cosigned = None
    if witnesses:
        cosigned = _check_export_cosignatures(Path(directory), verifier, witnesses, quorum, report)
    if fmt == "json":
        doc: dict[str, Any] = {
            "ok": report.ok,
            "size": report.size,
            "checkpoints": report.checkpoints,
            "bundles": report.bundles,
            "first_bad_leaf": report.first_bad_leaf,
            "bad_range": list(report.bad_range) if report.bad_range else None,
            "problems": report.problems,
        }
        if witnesses:
            doc["cosignatures"] = [
                {"witness": c.name, "key_id": f"{c.key_id:08x}", "time": c.time}
                for c in (cosigned.cosignatures if cosigned else ())
            ]
        click.echo(json.dumps(doc, indent=2))
    elif report.ok:
        click.echo(
            f"ok: {_n(report.size, 'leaf', 'leaves')}, {_n(report.checkpoints, 'checkpoint')}"
            f" and {_n(report.bundles, 'bundle')} verified against"
            f" `{verifier.to_key_string()}`{_vouched(cosigned)}"
        )
    else:
        for problem in report.problems:
            settings().error(problem)
        click.echo(f"FAILED: {_where(report.first_bad_leaf, report.bad_range)}")
    click.get_current_context().exit(EXIT_OK if report.ok else EXIT_FINDINGS)


def _check_export_cosignatures(
    directory: Path,
    verifier: Verifier,
    witnesses: list[CosignatureVerifier],
    quorum: int,
    report: ExportReport,
) -> CosignedCheckpoint | None:
    """Every trusted cosignature in the folder must verify; the latest checkpoint needs a
    quorum. Files whose log signature already failed are not reported twice."""
    cp_dir = directory / "checkpoints"
    files = [("checkpoint", directory / "checkpoint", quorum)] + [
        (f"checkpoints/{f.name}", f, 0)
        for f in (sorted(cp_dir.iterdir()) if cp_dir.is_dir() else [])
    ]
    latest: CosignedCheckpoint | None = None
    for label, path, needed in files:
        if any(p.startswith(f"{label}:") or f"`{label}`" in p for p in report.problems):
            continue
        try:
            result = verify_cosigned(
                path.read_bytes(), verifier, witnesses, needed, now=int(time.time())
            )
        except (OSError, VerificationError) as exc:
            report.fail(f"{label}: {exc}")
            continue
        if label == "checkpoint":
            latest = result
    return latest


@log_group.command("verify-proof")
@click.argument("proof_file", metavar="PROOF")
@click.option("--verifier-key", "verifier_key", required=True, metavar="KEY|FILE", help="Log key.")
@click.option(
    "--leaf",
    "leaf_file",
    metavar="FILE",
    help="Your own copy of the record (exact bytes); default: the leaf inside the proof.",
)
@WITNESS_KEY_OPTION
@QUORUM_OPTION
@no_color_option
def verify_proof_cmd(
    proof_file: str,
    verifier_key: str,
    leaf_file: str | None,
    witness_keys: tuple[str, ...],
    quorum: int | None,
) -> None:
    """Check a tlog-proof offline: the checkpoint signature and the leaf's inclusion (and, with
    --witness-key, the witnesses' cosignatures on the checkpoint)."""
    verifier = load_verifier(verifier_key)
    witnesses, quorum = _witnesses(witness_keys, quorum)
    try:
        text = Path(proof_file).read_bytes()
        leaf = Path(leaf_file).read_bytes() if leaf_file else None
    except OSError as exc:
        raise CliError(f"cannot read `{exc.filename}`: {exc.strerror or exc}") from None
    cosigned = None
    try:
        cp, data = verify_proof(TlogProof.parse(text), verifier, leaf=leaf)
        if witnesses:
            cosigned = verify_cosigned(
                TlogProof.parse(text).checkpoint, verifier, witnesses, quorum, now=int(time.time())
            )
    except VerificationError as exc:
        settings().error(f"proof does not verify: {exc}")
        click.get_current_context().exit(EXIT_FINDINGS)
    proof = TlogProof.parse(text)
    click.echo(
        f"ok: leaf {proof.index} is in `{cp.origin}` at tree size {cp.size}"
        f" ({len(data)} bytes, sha256 {_short(data)}){_vouched(cosigned)}"
    )


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
