"""Key files for the log's signing key and the verifier keys inspectors are given.

The private key file holds Go's `PRIVATE+KEY+name+id+base64` string (the signed-note
ecosystem's own encoding) and is created with mode 0600, never over an existing file. The
log signing key is used for nothing else: pseudonymisation keys are separate secrets.
"""

from __future__ import annotations

from pathlib import Path

from policyengine.log.errors import LogError
from policyengine.log.note import Signer, Verifier
from policyengine.secret_files import SecretFileError, read_secret, write_secret

__all__ = ["DEFAULT_KEY_NAME", "generate_key_file", "load_signer", "load_verifier"]

DEFAULT_KEY_NAME = "policyengine.local/decision-log"


def generate_key_file(path: str | Path, name: str = DEFAULT_KEY_NAME) -> Signer:
    """Write a fresh Ed25519 key to `path` (0600, refusing to overwrite); return its signer."""
    try:
        signer = Signer.generate(name)
    except ValueError as exc:
        raise LogError(
            f"invalid key name `{name}`: {exc} (hint: a name like `example.com/decisions`)"
        ) from None
    try:
        write_secret(path, signer.to_private_key_string())
    except SecretFileError as exc:
        raise LogError(str(exc)) from None
    return signer


def load_signer(path: str | Path) -> Signer:
    """Read a private key file, refusing one that others can read."""
    p = Path(path)
    try:
        text = read_secret(p, create=f"policyengine keys generate --out {p}")
    except SecretFileError as exc:
        raise LogError(str(exc)) from None
    try:
        return Signer.from_private_key_string(text)
    except ValueError as exc:
        raise LogError(f"`{p}` is not a policyengine private key: {exc}") from None


def load_verifier(value: str | Path) -> Verifier:
    """A verifier key given inline (`name+hexid+base64`) or as a file holding one."""
    text = str(value).strip()
    if "+" not in text or Path(text).exists():
        p = Path(text)
        try:
            text = p.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise LogError(
                f"`{value}` is neither a verifier key (`name+hexid+base64`) nor a file"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LogError(f"cannot read verifier key file `{p}`: {exc}") from None
        if text.startswith("PRIVATE+KEY+"):
            raise LogError(
                f"`{p}` holds a private key; give the verifier key instead"
                " (it is printed by `policyengine keys generate` and `policyengine keys show`)"
            )
    try:
        return Verifier.from_key_string(text)
    except ValueError as exc:
        raise LogError(f"invalid verifier key: {exc}") from None
