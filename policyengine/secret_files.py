"""Files that hold secrets (signing keys, witness keys, pseudonymisation keys).

One place for the rules every key file follows: created with mode 0600 and never over an
existing file (`O_EXCL`, no symlink following), written and fsynced before it is used, and
refused when group or others can read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["SecretFileError", "read_secret", "write_secret"]


class SecretFileError(ValueError):
    """A key file that cannot be created or used; the message names the file and the fix."""


def write_secret(path: str | Path, text: str, *, what: str = "a key") -> None:
    """Create `path` with mode 0600 holding `text` (plus a newline); never overwrite."""
    p = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError:
        raise SecretFileError(
            f"`{p}` already exists; refusing to overwrite {what}"
            " (hint: choose another --out, or delete the old key only if nothing depends on it)"
        ) from None
    except OSError as exc:
        raise SecretFileError(f"cannot create `{p}`: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have removed bits but never adds them; be explicit
        os.write(fd, (text.rstrip("\n") + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(path: str | Path, *, what: str = "key file", create: str | None = None) -> str:
    """The stripped text of a secret file that only its owner can read."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        hint = f" (hint: `{create}` makes one)" if create else ""
        raise SecretFileError(f"no {what} `{p}`{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(f"cannot read {what} `{p}`: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{what} `{p}` is accessible by other users (mode {stat.S_IMODE(mode):04o})"
            f" (hint: `chmod 600 {p}`)"
        )
    return text
