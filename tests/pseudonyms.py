"""A fixed pseudonymisation key for tests that store the example events (which carry
patient identifiers, refused by every store without a key)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from policyengine.events.pseudonym import Pseudonymiser

KEY = bytes(range(32))
PSEUDONYMS = Pseudonymiser(KEY)


def pseudonymised(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated events with their identifiers replaced (what intake does with a key)."""
    return [PSEUDONYMS.apply(e) for e in events]


def pseudonym_key_file(folder: Path) -> Path:
    """The same key as a key file (0600), for the CLI's `--pseudonym-key`."""
    path = folder / "pseudonym.key"
    if not path.exists():
        path.write_text("policyengine-pseudonym-key:" + base64.b64encode(KEY).decode() + "\n")
        os.chmod(path, 0o600)
    return path
