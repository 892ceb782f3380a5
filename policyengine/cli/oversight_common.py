"""What the CLI commands that touch oversight share: opening the signer registry and the
review store with clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

from policyengine.cli._common import CliError
from policyengine.oversight.registry import RegistryError, SignerRegistry, load_registry
from policyengine.oversight.reviews import ReviewError, ReviewStore

__all__ = ["clock_now", "load_signers", "open_reviews"]


def load_signers(path: str | None) -> SignerRegistry | None:
    """The signer registry at `path`, or None without one; a bad file is a `CliError`."""
    if path is None:
        return None
    try:
        return load_registry(path)
    except RegistryError as exc:
        raise CliError(str(exc)) from None


def open_reviews(path: str) -> ReviewStore:
    """The review store kept in the decision log's file."""
    try:
        return ReviewStore(path)
    except ReviewError as exc:
        raise CliError(str(exc)) from None


def clock_now() -> datetime:
    return datetime.now(UTC)
