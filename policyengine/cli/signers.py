"""`policyengine signers …`: signing keys and the registry of people who may sign.

A signer makes a passphrase-protected key with `keygen` and hands over the `.pub` file; a
registry administrator (QA) enrols it with `add`, and later revokes keys or disables signers.
Nothing is ever deleted from the registry: old signatures must stay verifiable.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from policyengine.cli._common import CliError, no_color_option, parse_timestamp, settings
from policyengine.oversight.esign import (
    PASSPHRASE_ENV,
    SigningKeyError,
    check_passphrase,
    generate_signing_key,
    load_public_key_file,
)
from policyengine.oversight.registry import (
    RegistryError,
    SignerRegistry,
    decode_public_key,
    encode_public_key,
    key_id,
    load_registry,
    update_registry,
)
from policyengine.runtime.values import format_timestamp

__all__ = ["read_passphrase", "signers_group"]

DEFAULT_REGISTRY = "signers.json"


# --------------------------------------------------------------------------- passphrases


def _read_passphrase_file(path: str) -> str:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"no passphrase file `{p}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read passphrase file `{p}`: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CliError(
            f"passphrase file `{p}` is accessible by other users (mode {stat.S_IMODE(mode):04o})",
            f"`chmod 600 {p}`",
        )
    text = text.strip()
    if not text:
        raise CliError(f"passphrase file `{p}` is empty")
    return text


def read_passphrase(passphrase_file: str | None, *, confirm: bool) -> str:
    """The signing-key passphrase: from `--passphrase-file` (mode 0600, surrounding
    whitespace ignored), else the POLICYENGINE_SIGNING_PASSPHRASE environment variable, else
    a hidden prompt on the terminal (asked twice when `confirm`, i.e. for a new key, whose
    passphrase must then meet the policy)."""
    if passphrase_file is not None:
        passphrase = _read_passphrase_file(passphrase_file)
    elif (env := os.environ.get(PASSPHRASE_ENV)) is not None:
        passphrase = env
    else:
        passphrase = click.prompt(
            "passphrase",
            hide_input=True,
            confirmation_prompt="repeat the passphrase" if confirm else False,
            err=True,
        )
    if confirm:
        try:
            check_passphrase(passphrase)
        except SigningKeyError as exc:
            raise CliError(str(exc)) from None
    return passphrase


# --------------------------------------------------------------------------- helpers


def _fail(exc: RegistryError | SigningKeyError) -> CliError:
    """A library error as a CLI error; further problems in a malformed file become the hint."""
    details = exc.details if isinstance(exc, RegistryError) else []
    hint = ("also " + "; ".join(m for _f, m in details[:5])) if details else None
    if len(details) > 5:
        hint = f"{hint}; and {len(details) - 5} more"
    return CliError(str(exc), hint)


def _at(value: str | None) -> datetime:
    return datetime.now(UTC) if value is None else parse_timestamp(value, "--at")


def _update(
    registry: str, change: Callable[[SignerRegistry], SignerRegistry], *, create: bool = False
) -> SignerRegistry:
    try:
        return update_registry(registry, change, create=create)
    except (RegistryError, SigningKeyError) as exc:
        raise _fail(exc) from None


registry_option = click.option(
    "--registry",
    default=DEFAULT_REGISTRY,
    show_default=True,
    metavar="FILE",
    help="The signer registry (JSON).",
)
at_option = click.option(
    "--at",
    "at",
    default=None,
    metavar="TIME",
    help="When the change takes effect (RFC 3339; default: now).",
)


# --------------------------------------------------------------------------- commands


@click.group("signers")
def signers_group() -> None:
    """Electronic-signature keys and the signer registry (21 CFR Part 11).

    \b
    Signers hold an Ed25519 key protected by a passphrase (two identification components,
    11.200); the registry names each signer, their printed name, roles and keys. Keys are
    revoked and signers disabled, never deleted, so earlier signatures stay verifiable.
    """


@signers_group.command("keygen")
@click.option("--out", "out", required=True, metavar="KEYFILE", help="The private key to write.")
@click.option(
    "--passphrase-file",
    default=None,
    metavar="FILE",
    help=f"Read the passphrase from FILE (mode 0600) instead of prompting; {PASSPHRASE_ENV}"
    " also works.",
)
@no_color_option
def keygen(out: str, passphrase_file: str | None) -> None:
    """Write a new passphrase-protected signing key (KEYFILE, mode 0600) and its public key
    (KEYFILE.pub); print the public key and its key id. Never overwrites."""
    pub = Path(out + ".pub")
    for p in (Path(out), pub):
        if p.exists() or p.is_symlink():
            raise CliError(
                f"`{p}` already exists; refusing to overwrite a signing key",
                "choose another --out",
            )
    passphrase = read_passphrase(passphrase_file, confirm=True)
    try:
        raw = generate_signing_key(out, passphrase)
    except SigningKeyError as exc:
        raise _fail(exc) from None
    text = encode_public_key(raw)
    try:
        fd = os.open(pub, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, (text + "\n").encode("ascii"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise CliError(f"cannot write public key file `{pub}`: {exc.strerror or exc}") from None
    click.echo(f"public key: {text}")
    click.echo(f"key id: {key_id(raw)}")
    settings().note(
        f"wrote signing key `{out}` (mode 0600, passphrase-protected) and `{pub}`;"
        f" enrol it with `policyengine signers add ID --name NAME --role ROLE --key-file {pub}`"
    )


@signers_group.command("add")
@click.argument("signer_id", metavar="ID")
@click.option("--name", default=None, help="Printed name (required for a new signer).")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="A role; repeat for several.")
@click.option("--public-key", default=None, metavar="B64", help="Public key, base64.")
@click.option(
    "--key-file", default=None, metavar="FILE", help="Public key file (KEYFILE.pub from keygen)."
)
@registry_option
@at_option
@no_color_option
def add(
    signer_id: str,
    name: str | None,
    roles: tuple[str, ...],
    public_key: str | None,
    key_file: str | None,
    registry: str,
    at: str | None,
) -> None:
    """Enrol signer ID with a public key, or add another key to an existing signer.

    The registry file is created if missing. A key that is already registered (to anyone,
    even revoked) is refused.
    """
    if (public_key is None) == (key_file is None):
        raise CliError("give exactly one of --public-key and --key-file")
    if key_file is not None:
        try:
            raw = load_public_key_file(key_file)
        except SigningKeyError as exc:
            raise _fail(exc) from None
    else:
        assert public_key is not None
        try:
            raw = decode_public_key(public_key.strip())
        except ValueError as exc:
            raise CliError(f"invalid --public-key `{public_key}`: {exc}") from None
    when = _at(at)
    existed: list[bool] = []

    def change(reg: SignerRegistry) -> SignerRegistry:
        current = reg.signer(signer_id)
        existed.append(current is not None)
        if current is None:
            if name is None or not roles:
                raise CliError(
                    f"signer `{signer_id}` is new: --name and at least one --role are required"
                )
            return reg.with_signer(signer_id, name, list(roles), at=when, public_key=raw)
        if name is not None and name != current.name:
            raise CliError(
                f"signer `{signer_id}` is registered as `{current.name}`, not `{name}`",
                "printed names do not change; omit --name to add a key",
            )
        if roles and sorted(set(roles)) != current.roles:
            raise CliError(
                f"signer `{signer_id}` has roles {', '.join(current.roles)}",
                f"change roles with `policyengine signers roles {signer_id} --role …`",
            )
        return reg.with_key(signer_id, raw, when)

    _update(registry, change, create=True)
    kid = key_id(raw)
    if existed and existed[0]:
        settings().note(f"added key `{kid}` to signer `{signer_id}` in `{registry}`")
    else:
        settings().note(f"enrolled signer `{signer_id}` with key `{kid}` in `{registry}`")


@signers_group.command("roles")
@click.argument("signer_id", metavar="ID")
@click.option(
    "--role", "roles", multiple=True, required=True, metavar="ROLE", help="The new role set."
)
@registry_option
@at_option
@no_color_option
def roles_cmd(signer_id: str, roles: tuple[str, ...], registry: str, at: str | None) -> None:
    """Replace the roles of signer ID from --at on; the old set is kept in its history, so
    earlier signatures are still judged by the roles held when they were made."""
    when = _at(at)
    reg = _update(registry, lambda r: r.with_roles(signer_id, list(roles), at=when))
    found = reg.signer(signer_id)
    assert found is not None
    settings().note(f"signer `{signer_id}` now has roles {', '.join(found.roles)}")


@signers_group.command("revoke")
@click.argument("key", metavar="KEY_ID")
@click.option("--reason", required=True, help="Why, e.g. `key lost` or `left the company`.")
@registry_option
@at_option
@no_color_option
def revoke(key: str, reason: str, registry: str, at: str | None) -> None:
    """Revoke a key from --at on. Signatures made before then stay valid; later ones fail."""
    when = _at(at)
    _update(registry, lambda r: r.with_revoked_key(key, when, reason))
    settings().note(f"revoked key `{key}` from {format_timestamp(when)}")


@signers_group.command("disable")
@click.argument("signer_id", metavar="ID")
@click.option("--reason", required=True, help="Why the signer may no longer sign.")
@registry_option
@at_option
@no_color_option
def disable(signer_id: str, reason: str, registry: str, at: str | None) -> None:
    """Stop signer ID from signing from --at on (all keys); earlier signatures stand."""
    when = _at(at)
    _update(registry, lambda r: r.with_disabled_signer(signer_id, when, reason))
    settings().note(f"disabled signer `{signer_id}` from {format_timestamp(when)}")


@signers_group.command("list")
@registry_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@no_color_option
def list_cmd(registry: str, fmt: str) -> None:
    """Show the signers, their roles and keys, and what is revoked or disabled."""
    try:
        reg = load_registry(registry)
    except RegistryError as exc:
        raise _fail(exc) from None
    if fmt == "json":
        doc = {"digest": reg.digest(), **reg.document()}
        click.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
        return
    click.echo(f"registry {registry}  {reg.digest()}  {len(reg.signers)} signer(s)")
    for s in reg.signers:
        status = (
            f"  disabled {format_timestamp(s.disabled_at)} (reason: {s.disabled_reason})"
            if s.disabled_at is not None
            else ""
        )
        click.echo(f"{s.id}  {s.name}  roles: {', '.join(s.roles)}{status}")
        for k in s.keys:
            state = (
                f"revoked {format_timestamp(k.revoked_at)} (reason: {k.revocation_reason})"
                if k.revoked_at is not None
                else "active"
            )
            click.echo(f"  key {k.key_id}  added {format_timestamp(k.added_at)}  {state}")
