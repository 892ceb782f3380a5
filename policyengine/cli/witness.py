"""`policyengine witness …`: an independent witness that cosigns the log's checkpoints.

A witness is run by someone other than the log operator (QA, a partner, a notary-like
service). It keeps a small state file — per log origin, the largest checkpoint it cosigned —
and cosigns a new checkpoint only when the log's signature verifies and the tree has grown
consistently from that one (C2SP tlog-witness semantics), stamping the cosignature with its
own clock (C2SP tlog-cosignature, Ed25519 `cosignature/v1`). The log operator attaches the
printed line with `policyengine log cosign`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from policyengine.cli._common import EXIT_FINDINGS, CliError, no_color_option, settings
from policyengine.log import VerificationError, load_verifier, verify_checkpoint
from policyengine.log.checkpoint import HASH_SIZE
from policyengine.log.cosignature import (
    cosign,
    cosign_with_state,
    format_timestamp,
    generate_witness_key_file,
    load_witness_signer,
)
from policyengine.log.note import _b64decode_canonical

__all__ = ["witness_group"]


@click.group("witness")
def witness_group() -> None:
    """Cosign the decision log's checkpoints as an independent witness (C2SP tlog-cosignature).

    \b
    Exit codes: 0 ok · 1 refused (bad signature, rollback, fork, no consistency proof) ·
    2 usage error.
    """


@witness_group.group("keys")
def keys_group() -> None:
    """Create and inspect a witness's Ed25519 cosigning key (type 0x04)."""


@keys_group.command("generate")
@click.option("--out", "out", required=True, metavar="FILE", help="Where to write the key.")
@click.option(
    "--name",
    required=True,
    metavar="NAME",
    help="The witness's name, e.g. `witness.example.com/qa`; it appears on every cosignature.",
)
@no_color_option
def generate(out: str, name: str) -> None:
    """Write a new witness private key (mode 0600, never overwriting) and print its verifier
    key, `name+hexid+base64`, which verifiers pass as --witness-key."""
    signer = generate_witness_key_file(out, name)
    click.echo(signer.verifier_key)
    settings().note(f"wrote witness key `{out}` (mode 0600); keep it secret and backed up")


@keys_group.command("show")
@click.option("--key", "key", required=True, metavar="FILE", help="A witness key file.")
@no_color_option
def show(key: str) -> None:
    """Print the verifier key of a witness key file."""
    click.echo(load_witness_signer(key).verifier_key)


def _read(path: str, what: str) -> str:
    try:
        with click.open_file(path, "r", encoding="utf-8") as fh:
            text: str = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} `{path}`: {exc}") from None
    return text


def _read_proof(path: str, new_size: int) -> tuple[int | None, list[bytes]]:
    """A consistency proof as `log consistency` prints it: base64 lines, or its JSON form
    (whose sizes are checked; its roots are ignored, the witness trusts only its own)."""
    text = _read(path, "consistency proof")
    old_size: int | None = None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
            old_size, size, lines = int(doc["old_size"]), int(doc["new_size"]), doc["proof"]
        except (ValueError, TypeError, KeyError) as exc:
            raise CliError(
                f"`{path}` is not a `log consistency --format json` proof: {exc}"
            ) from None
        if size != new_size:
            raise CliError(
                f"`{path}` proves consistency up to size {size}, but the checkpoint has size"
                f" {new_size}"
            )
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise CliError(f"`{path}`: `proof` must be a list of base64 hashes")
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    hashes = []
    for number, line in enumerate(lines, start=1):
        try:
            digest = _b64decode_canonical(line)
        except ValueError:
            raise CliError(f"`{path}`: proof hash {number} is not base64") from None
        if len(digest) != HASH_SIZE:
            raise CliError(f"`{path}`: proof hash {number} is not {HASH_SIZE} bytes")
        hashes.append(digest)
    return old_size, hashes


@witness_group.command("cosign")
@click.option("--key", "key_path", required=True, metavar="WKEY", help="The witness key file.")
@click.option(
    "--log-key",
    "log_key",
    required=True,
    metavar="VKEY",
    help="The log's verifier key (`name+hexid+base64`), or a file holding it.",
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE",
    help="The witness's state (JSON, created on first use): the largest checkpoint cosigned "
    "per log. Without it the witness cannot refuse rollbacks or forks.",
)
@click.option(
    "--consistency",
    "proof_path",
    metavar="PROOF_FILE",
    help="Consistency proof from the size last cosigned (`policyengine log consistency OLD NEW "
    "--log DB`, text or --format json).",
)
@click.argument("checkpoint_file", metavar="CHECKPOINT_FILE")
@no_color_option
def cosign_cmd(
    key_path: str,
    log_key: str,
    state_path: str | None,
    proof_path: str | None,
    checkpoint_file: str,
) -> None:
    """Cosign the signed checkpoint in CHECKPOINT_FILE (`-` for stdin) and print the
    cosignature line, for the log operator's `policyengine log cosign`."""
    s = settings()
    witness = load_witness_signer(key_path)
    log_verifier = load_verifier(log_key)
    note = _read(checkpoint_file, "checkpoint")
    now = int(time.time())
    try:
        cp = verify_checkpoint(note, log_verifier)
        if state_path is None:
            if proof_path is not None:
                raise CliError(
                    "--consistency needs --state",
                    "the proof is checked against the checkpoint the witness last cosigned",
                )
            s.warn(
                "no --state: this witness remembers nothing, so it cannot refuse a rollback"
                " or a fork"
            )
            line = cosign(note, log_verifier, witness, now=now)
        else:
            old_size, proof = _read_proof(proof_path, cp.size) if proof_path else (None, None)
            line = cosign_with_state(
                note, log_verifier, witness, state_path, proof=proof, now=now, old_size=old_size
            )
    except VerificationError as exc:
        s.error(f"not cosigned: {exc}")
        click.get_current_context().exit(EXIT_FINDINGS)
    click.echo(line, nl=False)
    where = f"; state `{Path(state_path)}` updated" if state_path else ""
    s.note(
        f"cosigned `{cp.origin}` at size {cp.size} as `{witness.name}`,"
        f" {format_timestamp(now)}{where}"
    )
