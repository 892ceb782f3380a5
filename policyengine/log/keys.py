"""Key files for the log's signing key and the verifier keys inspectors are given.

The private key file holds Go's `PRIVATE+KEY+name+id+base64` string (the signed-note
ecosystem's own encoding) and is created with mode 0600, never over an existing file. The
log signing key is used for nothing else: pseudonymisation keys are separate secrets.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from policyengine.log.errors import LogError
from policyengine.log.note import Signer, Verifier

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
    p = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError:
        raise LogError(
            f"`{p}` already exists; refusing to overwrite a key"
            " (hint: choose another --out, or delete the old key only if nothing depends on it)"
        ) from None
    except OSError as exc:
        raise LogError(f"cannot create `{p}`: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have removed bits but never adds them; be explicit
        os.write(fd, (signer.to_private_key_string() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return signer


def load_signer(path: str | Path) -> Signer:
    """Read a private key file, refusing one that others can read."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise LogError(
            f"no key file `{p}` (hint: `policyengine keys generate --out {p}` makes one)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(f"cannot read key file `{p}`: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LogError(
            f"key file `{p}` is accessible by other users (mode {stat.S_IMODE(mode):04o})"
            f" (hint: `chmod 600 {p}`)"
        )
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
