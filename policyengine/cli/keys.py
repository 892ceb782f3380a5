"""`policyengine keys`: the log's Ed25519 signing key."""

from __future__ import annotations

import click

from policyengine.cli._common import CliError, no_color_option, settings
from policyengine.events.pseudonym import generate_pseudonym_key
from policyengine.log import DEFAULT_KEY_NAME, generate_key_file, load_signer
from policyengine.secret_files import SecretFileError

__all__ = ["keys"]


@click.group("keys")
def keys() -> None:
    """Create and inspect the decision log's signing key.

    The private key signs checkpoints; inspectors verify with the verifier key alone.
    """


@keys.command("generate")
@click.option(
    "--out", "out", required=True, metavar="KEYFILE", help="Where to write the private key."
)
@click.option(
    "--name",
    default=DEFAULT_KEY_NAME,
    show_default=True,
    help="Key name; it becomes the log's origin line in every checkpoint.",
)
@no_color_option
def generate(out: str, name: str) -> None:
    """Write a new Ed25519 private key (mode 0600, never overwriting) and print its
    verifier key, `name+hexid+base64`, which is all an inspector needs."""
    signer = generate_key_file(out, name)
    click.echo(signer.verifier_key)
    settings().note(f"wrote private key `{out}` (mode 0600); keep it secret and backed up")


@keys.command("pseudonym")
@click.option("--out", "out", required=True, metavar="FILE", help="Where to write the key.")
@no_color_option
def pseudonym(out: str) -> None:
    """Write a new pseudonymisation key (32 random bytes, mode 0600, never overwriting).

    Patient identifiers are replaced by HMAC-SHA256 pseudonyms under this key before
    anything is stored; keep it apart from the log's signing key and back it up: without
    it, new records no longer join the pseudonyms already stored."""
    try:
        generate_pseudonym_key(out)
    except SecretFileError as exc:
        raise CliError(str(exc)) from None
    settings().note(f"wrote pseudonymisation key `{out}` (mode 0600); keep it secret")


@keys.command("show")
@click.option("--key", "key", required=True, metavar="KEYFILE", help="A private key file.")
@no_color_option
def show(key: str) -> None:
    """Print the verifier key of a private key file."""
    click.echo(load_signer(key).verifier_key)
