"""policyengine adapters for git and CI (see README.md in this folder).

`ci` (`CIRunAdapter`) turns CI run records — the generic `policyengine.ci-run/1` shape or
GitHub `workflow_run` webhook payloads — into `run.started` / `run.completed` /
`model.registered`, resolving commits to full SHAs in a real git repository. `commits()` and
`resolve()` read commit metadata with the `git` command line. Commits on their own are not
events yet: the catalogue has no commit event type (see README.md), so there is no `git`
adapter; commits reach lineage as the resolved `code_commit` of the runs `ci` ingests.
"""

from ._ci import CI_SCHEMA, CONFIG_ENV, CONFIG_FILE, REPO_ENV, CIConfig, CIRunAdapter, translate
from ._git import SIGNATURE_STATUS, Commit, GitError, commits, parse_source, resolve

__all__ = [
    "CI_SCHEMA",
    "CONFIG_ENV",
    "CONFIG_FILE",
    "REPO_ENV",
    "SIGNATURE_STATUS",
    "CIConfig",
    "CIRunAdapter",
    "Commit",
    "GitError",
    "commits",
    "parse_source",
    "resolve",
    "translate",
]
