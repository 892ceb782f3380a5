"""Commit metadata from a real git repository, through the `git` command line.

`git log` runs with NUL-separated fields and records (`-z`, `%x00`), so subjects, bodies and
names can hold any character without breaking the parse. Revisions are passed after
`--end-of-options`, so a revision that looks like an option is never read as one.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from policyengine.adapter import AdapterError

__all__ = [
    "Commit",
    "GitError",
    "commits",
    "parse_source",
    "remote_url",
    "resolve",
    "symbolic_ref",
]

# Field order of one record; `%G?` is the signature status letter (`N` = unsigned).
_FIELDS = (
    *("%H", "%T", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI"),
    *("%G?", "%GS", "%GK", "%s", "%b"),
)
_FORMAT = "%x00".join(_FIELDS)
_HEX = re.compile(r"^[0-9a-f]{4,64}$")
_TIMEOUT = 60.0

# What `%G?` letters mean (git-log(1), "Pretty formats").
SIGNATURE_STATUS = {
    "G": "good",
    "B": "bad",
    "U": "good, unknown validity",
    "X": "good, expired signature",
    "Y": "good, expired key",
    "R": "good, revoked key",
    "E": "cannot be checked",
    "N": "unsigned",
}


class GitError(AdapterError):
    """A git repository or revision could not be read."""


@dataclass(frozen=True)
class Commit:
    """One commit as `git log` reports it."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: datetime
    committer_name: str
    committer_email: str
    committed_at: datetime
    subject: str
    body: str
    signature_status: str
    """`%G?`: `G` good, `B` bad, `U`/`X`/`Y`/`R` good with caveats, `E` unverifiable, `N` none."""
    signer: str | None
    signing_key: str | None

    @property
    def signed(self) -> bool:
        return self.signature_status != "N"

    @property
    def verified(self) -> bool:
        """A good signature from a key of known validity (`G`)."""
        return self.signature_status == "G"

    def labels(self, prefix: str = "git.") -> dict[str, str]:
        """Commit facts as event labels (strings), for the events that name this commit."""
        out = {
            f"{prefix}commit": self.sha,
            f"{prefix}author": f"{self.author_name} <{self.author_email}>",
            f"{prefix}authored_at": self.authored_at.isoformat(),
            f"{prefix}committer": f"{self.committer_name} <{self.committer_email}>",
            f"{prefix}committed_at": self.committed_at.isoformat(),
            f"{prefix}signature": SIGNATURE_STATUS.get(self.signature_status, "unknown"),
        }
        if self.signer:
            out[f"{prefix}signer"] = self.signer
        return out


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat")
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "-c", "log.showSignature=false", *args],
            capture_output=True,
            check=False,
            env=env,
            timeout=_TIMEOUT,
        )
    except FileNotFoundError:
        raise GitError("the `git` command is not installed", hint="install git") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {args[0]}` in `{repo}` took longer than {_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        # The `fatal:` line says what went wrong; usage advice may follow it.
        fatal = [ln for ln in lines if ln.startswith(("fatal: ", "error: "))]
        message = fatal[0].partition(": ")[2] if fatal else (lines[-1] if lines else "")
        raise GitError(message or f"`git {args[0]}` failed", location=str(repo))
    return done.stdout.decode("utf-8", "replace")


def _repository(repo: str | Path) -> Path:
    path = Path(repo)
    if not path.is_dir():
        raise GitError(f"no such directory `{repo}`")
    try:
        _git(path, "rev-parse", "--git-dir")
    except GitError:
        raise GitError(
            f"`{repo}` is not a git repository", hint="point at the repository's working tree"
        ) from None
    return path


def _check_revision(rev: str, what: str) -> None:
    if not rev or rev.startswith("-") or any(c.isspace() or c == "\0" for c in rev):
        raise GitError(f"`{rev}` is not a valid {what}")


def _parse(output: str) -> list[Commit]:
    tokens = output.split("\0")
    if tokens and tokens[-1] in ("", "\n"):
        tokens.pop()
    width = len(_FIELDS)
    if len(tokens) % width:
        raise GitError("unexpected `git log` output")
    out = []
    for i in range(0, len(tokens), width):
        f = tokens[i : i + width]
        out.append(
            Commit(
                sha=f[0].lstrip("\n"),
                tree=f[1],
                parents=tuple(f[2].split()),
                author_name=f[3],
                author_email=f[4],
                authored_at=datetime.fromisoformat(f[5]),
                committer_name=f[6],
                committer_email=f[7],
                committed_at=datetime.fromisoformat(f[8]),
                signature_status=f[9] or "N",
                signer=f[10] or None,
                signing_key=f[11] or None,
                subject=f[12],
                body=f[13].rstrip("\n"),
            )
        )
    return out


def commits(
    repo: str | Path,
    rev_range: str | None = None,
    *,
    paths: tuple[str, ...] = (),
    max_count: int | None = None,
) -> list[Commit]:
    """Commits of `rev_range` (default `HEAD`), newest first, optionally only those touching
    `paths` and at most `max_count`; e.g. `commits(".", "v1.0..main", paths=("training/",))`."""
    root = _repository(repo)
    rev = rev_range or "HEAD"
    _check_revision(rev, "revision range")
    args = ["log", "-z", f"--format=tformat:{_FORMAT}", "--no-color"]
    if max_count is not None:
        if max_count < 1:
            raise GitError(f"`{max_count}` is not a positive commit count")
        args.append(f"--max-count={max_count}")
    args += ["--end-of-options", rev]
    args += ["--", *paths]  # `--` even without paths: a range is never read as a path
    try:
        return _parse(_git(root, *args))
    except GitError as err:
        if "unknown revision" in err.message or "bad revision" in err.message:
            raise GitError(
                f"revision range `{rev}` names a revision that is not in `{repo}`",
                hint="check the branch and tag names (`git branch -a`, `git tag`)",
            ) from None
        raise


def resolve(repo: str | Path, rev: str) -> Commit:
    """The commit `rev` names (a full or abbreviated SHA, a branch, a tag…); a `GitError` when
    the repository has no such commit or an abbreviation is ambiguous."""
    root = _repository(repo)
    _check_revision(rev, "revision")
    try:
        sha = _git(root, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()
    except GitError as err:
        text = err.message
        if "ambiguous" in text:
            raise GitError(
                f"`{rev}` is ambiguous in `{repo}`", hint="use more characters of the SHA"
            ) from None
        raise GitError(f"commit `{rev}` is not in repository `{repo}`") from None
    log = _git(root, "log", "-z", "-1", f"--format=tformat:{_FORMAT}", "--end-of-options", sha)
    found = _parse(log)
    if len(found) != 1:
        raise GitError(f"commit `{rev}` is not in repository `{repo}`")
    return found[0]


def symbolic_ref(repo: str | Path, rev: str) -> str | None:
    """The full ref name `rev` stands for (`main` → `refs/heads/main`, `HEAD` → the branch
    checked out), or None for a SHA, a detached HEAD or an expression such as `main~2`."""
    root = _repository(repo)
    _check_revision(rev, "revision")
    try:
        # No `--end-of-options`: rev-parse before git 2.43 echoes it. `_check_revision`
        # already refused anything starting with `-`.
        out = _git(root, "rev-parse", "--symbolic-full-name", rev).strip()
    except GitError:
        return None
    return out if out.startswith("refs/") and "\n" not in out else None


def remote_url(repo: str | Path, remote: str = "origin") -> str | None:
    """The URL of `remote`, or None when the repository has no such remote."""
    root = _repository(repo)
    try:
        url = _git(root, "config", "--get", f"remote.{remote}.url").strip()
    except GitError:
        return None
    return url or None


def parse_source(spec: str) -> tuple[Path, str | None]:
    """`REPO` or `REPO@REV-RANGE` → (repository path, range or None). The split is at the
    first `@` whose left side is an existing folder, so folder names with `@` and revisions
    with `@{…}` both work."""
    if Path(spec).is_dir() or "@" not in spec:
        return Path(spec), None
    positions = [i for i, c in enumerate(spec) if c == "@"]
    at = next((i for i in positions if Path(spec[:i]).is_dir()), positions[0])
    return Path(spec[:at]), spec[at + 1 :] or None


def is_hex(text: str) -> bool:
    return bool(_HEX.match(text))
