"""The `git` adapter: the commits of a repository as `code.committed` events.

Each commit becomes one event about the `code_commit` entity whose id is its full SHA, so a
training run or feature set naming that SHA as its `code_commit` reaches the commit, with its
author, branch and signature, in lineage and in policies. Events come oldest first, so a
commit is registered after its parents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from policyengine.adapter import AdapterError, Located
from policyengine.canonical import dumps as canonical_dumps

from ._git import SIGNATURE_STATUS, Commit, commits, parse_source, remote_url, symbolic_ref

__all__ = ["GitAdapter", "GitSource", "commit_event", "parse_git_source"]

_OPTIONS = ("rev", "max", "repository")


@dataclass(frozen=True)
class GitSource:
    """What `SOURCE` names: a working tree, a revision range, a commit limit and the name the
    repository is recorded under (default: its `origin` URL, else the folder's name)."""

    path: Path
    rev: str | None = None
    max_count: int | None = None
    repository: str | None = None


def parse_git_source(spec: str) -> GitSource:
    """`PATH`, `PATH?rev=A..B&max=N&repository=NAME` (any of the three), or the older
    `PATH@RANGE`. Values are percent-decoded; `+` stays a plus (it is legal in branch names)."""
    if Path(spec).is_dir() or "?" not in spec:
        path, rev = parse_source(spec)
        return GitSource(path, rev)
    base, _, query = spec.rpartition("?")
    options: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = unquote(key)
        if key not in _OPTIONS:
            raise AdapterError(
                f"unknown option `{key}` in `{spec}`",
                hint="options: " + ", ".join(f"`{o}`" for o in _OPTIONS),
            )
        if not eq or not value:
            raise AdapterError(f"option `{key}` in `{spec}` needs a value, e.g. `{key}=…`")
        if key in options:
            raise AdapterError(f"option `{key}` is given twice in `{spec}`")
        options[key] = unquote(value)
    max_count = None
    if "max" in options:
        text = options["max"]
        if not text.isdigit() or int(text) < 1:
            raise AdapterError(
                f"`max={text}` is not a positive number of commits", hint="e.g. `?max=50`"
            )
        max_count = int(text)
    return GitSource(Path(base), options.get("rev"), max_count, options.get("repository"))


def _without_credentials(url: str) -> str:
    """A remote URL without any `user:password@` part: tokens in clone URLs are common and
    must never reach an event, a decision log or a lineage store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "@" not in parts.netloc:
        return url  # a path, or scp-like `git@host:repo` (the user is not a secret)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _tip(rev: str | None) -> str:
    """The revision whose branch the commits of `rev` were read from: the right end of a
    range (`v1.0..main` → `main`), `HEAD` when none is given."""
    if not rev:
        return "HEAD"
    for sep in ("...", ".."):
        if sep in rev:
            return rev.rpartition(sep)[2] or "HEAD"
    return rev


def commit_event(commit: Commit, repository: str, ref: str | None) -> dict[str, Any]:
    """The `code.committed` event for one commit. Its id is the SHA plus a digest of what
    the event states, so reading the same repository again gives the same ids, and a commit
    read again with new facts (another branch, a signature git now trusts) is a new event
    rather than a conflicting reuse of an id."""
    attributes: dict[str, Any] = {
        "repository": repository,
        "author": commit.author_email or commit.author_name,
        "author_name": commit.author_name or None,
        "authored_at": commit.authored_at.isoformat(),
        "committer": commit.committer_email or commit.committer_name or None,
        "committer_name": commit.committer_name or None,
        "committed_at": commit.committed_at.isoformat(),
        "summary": commit.subject,
        "parents": list(commit.parents),
        "tree": commit.tree,
        "ref": ref,
        "signed": commit.signed,
        "signature_verified": commit.verified,
        "signature": SIGNATURE_STATUS.get(commit.signature_status, "unknown"),
        "signer": commit.signer,
    }
    attributes = {k: v for k, v in attributes.items() if v is not None}
    digest = hashlib.sha256(canonical_dumps(attributes)).hexdigest()[:16]
    actor: dict[str, Any] = {
        "id": commit.committer_email or commit.committer_name or attributes["author"]
    }
    if commit.committer_name:
        actor["name"] = commit.committer_name
    return {
        "id": f"git:{commit.sha}:{digest}",
        "type": "code.committed",
        "time": commit.committed_at.isoformat(),
        "actor": actor,
        "subject": {"kind": "code_commit", "id": commit.sha},
        "attributes": attributes,
    }


class GitAdapter:
    """Commits of a git working tree → `code.committed`. SOURCE: `PATH`, optionally
    `?rev=A..B` (a revision or range, default `HEAD`), `&max=N` (the newest N) and
    `&repository=NAME`; the older `PATH@RANGE` also works."""

    name = "git"
    summary = "commits of a git repository (PATH[?rev=A..B&max=N]) as code.committed events"

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        spec = parse_git_source(source)
        # Read before anything is yielded: a wrong path or range stops the source as a whole.
        found = commits(spec.path, spec.rev, max_count=spec.max_count)
        ref = symbolic_ref(spec.path, _tip(spec.rev))
        repository = spec.repository or _repository_name(spec.path)
        for commit in reversed(found):  # oldest first: parents before children
            yield Located(commit_event(commit, repository, ref), f"{spec.path}@{commit.sha}")


def _repository_name(path: Path) -> str:
    url = remote_url(path)
    if url is not None:
        return _without_credentials(url)
    return path.resolve().name or str(path.resolve())
