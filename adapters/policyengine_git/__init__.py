"""policyengine adapters for git and CI (see README.md in this folder).

`git` (`GitAdapter`) reads the commits of a repository as `code.committed` events, so each
commit is a registered `code_commit` entity (id = full SHA) that training runs and feature sets
reach through their `code_commit`. `ci` (`CIRunAdapter`) turns CI run records — the generic
`policyengine.ci-run/1` shape or GitHub `workflow_run` webhook payloads — into `run.started` /
`run.completed` / `model.registered`, resolving commits to full SHAs in a real git repository.
`commits()` and `resolve()` read commit metadata with the `git` command line.
"""

from ._adapter import GitAdapter, GitSource, commit_event, parse_git_source
from ._ci import CI_SCHEMA, CONFIG_ENV, CONFIG_FILE, REPO_ENV, CIConfig, CIRunAdapter, translate
from ._git import (
    SIGNATURE_STATUS,
    Commit,
    GitError,
    commits,
    parse_source,
    remote_url,
    resolve,
    symbolic_ref,
)

__all__ = [
    "CI_SCHEMA",
    "CONFIG_ENV",
    "CONFIG_FILE",
    "REPO_ENV",
    "SIGNATURE_STATUS",
    "CIConfig",
    "CIRunAdapter",
    "Commit",
    "GitAdapter",
    "GitError",
    "GitSource",
    "commit_event",
    "commits",
    "parse_git_source",
    "parse_source",
    "remote_url",
    "resolve",
    "symbolic_ref",
    "translate",
]
