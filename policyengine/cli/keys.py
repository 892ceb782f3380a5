"""`policyengine keys`: the log's Ed25519 signing key."""

from __future__ import annotations

import click

from policyengine.cli._common import no_color_option, settings
from policyengine.log import DEFAULT_KEY_NAME, generate_key_file, load_signer

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


@keys.command("show")
@click.option("--key", "key", required=True, metavar="KEYFILE", help="A private key file.")
@no_color_option
def show(key: str) -> None:
    """Print the verifier key of a private key file."""
    click.echo(load_signer(key).verifier_key)
