"""git commit metadata (against a real repository made with `git init`), the `git` adapter
(commits as `code.committed`) and the CI adapter."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from policyengine_git import (
    CIConfig,
    CIRunAdapter,
    GitAdapter,
    GitError,
    GitSource,
    commits,
    parse_git_source,
    parse_source,
    resolve,
)

from policyengine.adapter import AdapterError, Located
from policyengine.cli.main import cli
from policyengine.events import parse_event
from policyengine.lineage import SQLiteLineageStore, trace

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "git"
GENERIC = FIXTURES / "ci-run-train-and-publish.json"
GITHUB = FIXTURES / "github-workflow-run-completed.json"

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "--version"], capture_output=True).returncode != 0,
    reason="needs the git command",
)


def git(repo: Path, *args: str, when: str = "2026-01-05T10:00:00+01:00") -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Priya Raman",
        GIT_AUTHOR_EMAIL="priya.raman@helix.example",
        GIT_COMMITTER_NAME="Helix CI",
        GIT_COMMITTER_EMAIL="ci@helix.example",
        GIT_AUTHOR_DATE=when,
        GIT_COMMITTER_DATE=when,
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three commits with fixed identities and dates, so their SHAs are reproducible."""
    root = tmp_path_factory.mktemp("hepatox")
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("hepatox\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial layout")
    (root / "training").mkdir()
    (root / "training" / "train.py").write_text("print('train')\n")
    git(root, "add", ".")
    message = "training: xgboost baseline\n\nAdds train.py.\nÜmlaut\tand tab."
    git(root, "commit", "-q", "-m", message, when="2026-01-06T09:30:00+00:00")
    (root / "README.md").write_text("hepatox screen\n")
    git(root, "commit", "-q", "-am", "docs: rename", when="2026-01-07T17:45:00-05:00")
    git(root, "tag", "v1.0", "HEAD~1")
    yield root


# --------------------------------------------------------------------------- git library


def test_commits_reads_metadata_newest_first(repo: Path) -> None:
    found = commits(repo)
    assert [c.subject for c in found] == ["docs: rename", "training: xgboost baseline",
                                          "initial layout"]  # fmt: skip
    docs, training, initial = found
    assert all(len(c.sha) == 40 for c in found)
    assert docs.parents == (training.sha,) and initial.parents == ()
    assert training.body == "Adds train.py.\nÜmlaut\tand tab."
    assert training.author_name == "Priya Raman"
    assert training.author_email == "priya.raman@helix.example"
    assert training.committer_email == "ci@helix.example"
    assert training.authored_at == datetime(2026, 1, 6, 9, 30, tzinfo=UTC)
    assert docs.authored_at.utcoffset() == timedelta(hours=-5)
    assert initial.committed_at == datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert not training.signed and not training.verified
    assert training.labels()["git.signature"] == "unsigned"
    assert training.sha == git(repo, "rev-parse", "HEAD~1")


def test_commits_of_a_range_and_paths(repo: Path) -> None:
    assert [c.subject for c in commits(repo, "v1.0..main")] == ["docs: rename"]
    touching = commits(repo, "main", paths=("training/",))
    assert [c.subject for c in touching] == ["training: xgboost baseline"]


def test_resolve_short_sha_branch_and_tag(repo: Path) -> None:
    full = git(repo, "rev-parse", "v1.0")
    assert resolve(repo, full[:7]).sha == full
    assert resolve(repo, "v1.0").sha == full
    assert resolve(repo, "main").subject == "docs: rename"


@pytest.mark.parametrize(
    ("rev", "message"),
    [
        ("deadbee", "commit `deadbee` is not in repository"),
        ("--output=/tmp/x", "is not a valid revision"),
        ("main two", "is not a valid revision"),
        ("", "is not a valid revision"),
    ],
)
def test_resolve_refuses_unknown_and_option_like_revisions(
    repo: Path, rev: str, message: str
) -> None:
    with pytest.raises(GitError, match=message):
        resolve(repo, rev)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="is not a git repository"):
        commits(tmp_path)
    with pytest.raises(GitError, match="no such directory"):
        resolve(tmp_path / "nope", "HEAD")


def test_bad_range_is_reported(repo: Path) -> None:
    with pytest.raises(GitError):
        commits(repo, "v9.9..main")


def test_parse_source(repo: Path, tmp_path: Path) -> None:
    assert parse_source(str(repo)) == (repo, None)
    assert parse_source(f"{repo}@v1.0..main") == (repo, "v1.0..main")
    odd = tmp_path / "team@site"
    odd.mkdir()
    assert parse_source(f"{odd}@main@{{1}}") == (odd, "main@{1}")


# --------------------------------------------------------------------------- ci


def ci(source: Path | str, config: CIConfig | None = None) -> list[Any]:
    """Everything the CI adapter yields for `source`: events (`Located`) and errors."""
    return list(CIRunAdapter(config).events(str(source)))


def events_of(items: list[Any]) -> list[dict[str, Any]]:
    """The events among `items`, unwrapped; any error fails the test with its message."""
    out: list[dict[str, Any]] = []
    for item in items:
        assert not isinstance(item, AdapterError), item.render()
        out.append(item.event if isinstance(item, Located) else item)
    return out


def record(**changes: Any) -> dict[str, Any]:
    """The generic fixture with fields replaced (`None` removes a field)."""
    base: dict[str, Any] = json.loads(GENERIC.read_text())
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def write(folder: Path, data: dict[str, Any], name: str = "run.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_generic_record_trains_and_publishes() -> None:
    started, completed, registered = events_of(ci(GENERIC))
    base = "ci:gitlab:helix/hepatox:train:118734:1"
    assert [e["id"] for e in (started, completed, registered)] == [
        f"{base}:run.started",
        f"{base}:run.completed",
        f"{base}:model.registered",
    ]
    assert started["subject"] == {"kind": "training_run", "id": "run-hepatox-118734"}
    assert started["time"] == "2026-03-02T07:00:00Z"  # +01:00 offset normalised
    assert started["actor"] == {"id": "priya.raman@helix.example", "name": "Priya Raman"}
    attrs = started["attributes"]
    assert attrs["purpose"] == "hepatotoxicity-screening"
    assert attrs["code_commit"] == "4be1d07"
    assert attrs["image"].startswith("registry.helix.example/train@sha256:")
    assert attrs["parameters"] == {"max_depth": "6", "eta": "0.1"}
    labels = attrs["labels"]
    assert (labels["tests.passed"], labels["tests.failed"], labels["tests.skipped"]) == (
        "412", "0", "3",
    )  # fmt: skip
    assert labels["ci.ref"] == "refs/heads/main"
    assert completed["time"] == "2026-03-02T08:01:00Z"  # epoch milliseconds
    assert completed["attributes"]["status"] == "completed"
    assert completed["attributes"]["metrics"] == {"auc": 0.912}
    assert registered["subject"] == {"kind": "model_version", "id": "hepatox-screen/3"}
    model = registered["attributes"]
    assert (model["name"], model["version"], model["training_run"]) == (
        "hepatox-screen", "3", "run-hepatox-118734",
    )  # fmt: skip
    assert model["artifact_digest"] == (
        "sha256:c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
    )


def test_failed_run_completes_as_failed_and_publishes_nothing(tmp_path: Path) -> None:
    events = events_of(ci(write(tmp_path, record(status="failure"))))
    assert [e["type"] for e in events] == ["run.started", "run.completed"]
    assert events[1]["attributes"]["status"] == "failed"
    running = events_of(ci(write(tmp_path, record(status="running", finished_at=None))))
    assert [e["type"] for e in running] == ["run.started"]


def test_plain_ci_run_produces_nothing(tmp_path: Path) -> None:
    assert ci(write(tmp_path, record(training_run=None, model=None))) == []


def test_commit_is_resolved_in_the_configured_repository(repo: Path, tmp_path: Path) -> None:
    full = git(repo, "rev-parse", "v1.0")
    path = write(tmp_path, record(commit=full[:8]))
    started = events_of(ci(path, CIConfig(repo=str(repo))))[0]
    assert started["attributes"]["code_commit"] == full
    labels = started["attributes"]["labels"]
    assert labels["git.commit"] == full == labels["ci.commit"]
    assert labels["git.author"] == "Priya Raman <priya.raman@helix.example>"
    assert labels["git.signature"] == "unsigned"


def test_unknown_commit_is_an_error_naming_the_field(repo: Path, tmp_path: Path) -> None:
    path = write(tmp_path, record(commit="0badc0de"))
    (error,) = ci(path, CIConfig(repo=str(repo)))
    assert isinstance(error, AdapterError)
    assert error.field == "commit" and "is not in repository" in error.message
    assert error.location == str(path)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"provider": None}, "provider", "required field is missing"),
        ({"run_id": True}, "run_id", "expected a string or an integer"),
        ({"status": "green"}, "status", "unknown status"),
        ({"started_at": "2026-03-02 08:00"}, "started_at", "has no timezone"),
        ({"finished_at": None}, "finished_at", "required field is missing"),
        ({"commit": "HEAD~1"}, "commit", "is not a commit SHA"),
        ({"schema": "other/2"}, "schema", "unknown schema"),
        ({"tests": {"passed": -1}}, "tests.passed", "must not be negative"),
        ({"artifacts": [{"name": "x"}]}, "artifacts[0].digest", "required field is missing"),
        ({"training_run": 7}, "training_run", "expected a run id"),
        ({"training_run": "run-1"}, "purpose", "needs its declared purpose"),
        ({"model": {"name": "m", "version": 1, "artifact": "nope.bin"}}, "model.artifact",
         "no artifact named"),
        ({"model": {"name": "m", "version": 1, "artifact": "model.tar.gz",
                    "artifact_digest": "sha256:00"}}, "model.artifact_digest", "differs"),
        ({"model": {"name": "m", "version": [1]}}, "model.version", "expected a string"),
    ],
)  # fmt: skip
def test_malformed_records_name_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str, message: str
) -> None:
    (error,) = ci(write(tmp_path, record(**changes)))
    assert isinstance(error, AdapterError), error
    assert error.field == field
    assert message in error.message


def test_github_workflow_run_payload(tmp_path: Path) -> None:
    # Not a training workflow: nothing to record.
    assert ci(GITHUB) == []
    started, completed = events_of(ci(GITHUB, CIConfig(workflows={"test": "assay-qc"})))
    assert started["subject"]["id"] == "github:octo-org/octo-repo:289782451:1"
    assert started["actor"] == {"id": "github:Codertocat"}
    assert started["attributes"]["code_commit"] == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert started["attributes"]["name"] == "test"
    assert started["time"] == "2020-10-05T16:33:24Z"
    assert completed["time"] == "2020-10-05T16:33:49Z"
    assert started["attributes"]["labels"]["ci.pipeline"] == (
        "octo-org/octo-repo:.github/workflows/test.yml"
    )
    # Keyed by workflow path as well as name.
    by_path = CIConfig(workflows={".github/workflows/test.yml": "assay-qc"})
    assert len(events_of(ci(GITHUB, by_path))) == 2
    payload = json.loads(GITHUB.read_text())
    failed = copy.deepcopy(payload)
    failed["workflow_run"]["conclusion"] = "timed_out"
    events = events_of(ci(write(tmp_path, failed), CIConfig(workflows={"test": "assay-qc"})))
    assert events[1]["attributes"]["status"] == "failed"
    skipped = copy.deepcopy(payload)
    skipped["workflow_run"]["conclusion"] = "skipped"
    assert ci(write(tmp_path, skipped), CIConfig(workflows={"test": "assay-qc"})) == []
    odd = copy.deepcopy(payload)
    odd["workflow_run"]["conclusion"] = "exploded"
    (error,) = ci(write(tmp_path, odd))
    assert isinstance(error, AdapterError) and error.field == "workflow_run.conclusion"


def test_ids_are_deterministic() -> None:
    first = [e["id"] for e in events_of(ci(GENERIC))]
    assert first == [e["id"] for e in events_of(ci(GENERIC))]
    assert len(set(first)) == len(first)


def test_config_file_and_environment(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    write(folder, record(commit=git(repo, "rev-parse", "HEAD")[:9]))
    (folder / "policyengine-ci.json").write_text(json.dumps({"repo": str(repo)}))
    started = events_of(list(CIRunAdapter().events(str(folder))))[0]
    assert len(started["attributes"]["code_commit"]) == 40
    monkeypatch.setenv("POLICYENGINE_GIT_REPO", str(tmp_path))
    (error,) = list(CIRunAdapter().events(str(folder)))
    assert isinstance(error, AdapterError) and "is not a git repository" in error.message
    with pytest.raises(AdapterError, match="unknown configuration key `repos`"):
        CIConfig.from_dict({"repos": "."})


# --------------------------------------------------------------------------- end to end


def test_ingest_ci_decides_and_traces_code_lineage(repo: Path, tmp_path: Path) -> None:
    full = git(repo, "rev-parse", "v1.0")
    runs = tmp_path / "runs"
    runs.mkdir()
    write(runs, record(commit=full[:7]), "118734.json")
    (runs / "policyengine-ci.json").write_text(json.dumps({"repo": str(repo)}))
    store = tmp_path / "lineage.db"
    result = CliRunner().invoke(
        cli,
        ["ingest", "--adapter", "ci", str(runs), "--policies", str(ROOT / "policies"),
         "--store", str(store), "--format", "json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    decided = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["event"]["type"], d["outcome"]) for d in decided] == [
        ("run.started", "allow"),  # commit and digest-pinned image: reproducible
        ("run.completed", "allow"),
        ("model.registered", "allow"),  # sha256 artifact digest
    ]
    with SQLiteLineageStore(store) as lineage:
        up = trace(lineage, "model_version:hepatox-screen/3", "upstream")
        keys = {str(n.key) for n in up.nodes}
    assert f"code_commit:{full}" in keys  # the full SHA, resolved from `4be1d07`-style input
    assert "training_run:run-hepatox-118734" in keys
    assert any(k.startswith("image:registry.helix.example/train@sha256:") for k in keys)


# --------------------------------------------------------------------------- git adapter


def git_events(source: Path | str) -> list[dict[str, Any]]:
    return events_of(list(GitAdapter().events(str(source))))


def test_git_adapter_emits_each_commit_oldest_first(repo: Path) -> None:
    events = git_events(repo)
    shas = [git(repo, "rev-parse", rev) for rev in ("HEAD~2", "HEAD~1", "HEAD")]
    assert [e["subject"] for e in events] == [{"kind": "code_commit", "id": s} for s in shas]
    assert {e["type"] for e in events} == {"code.committed"}
    training = events[1]
    assert training["time"] == "2026-01-06T09:30:00+00:00"
    assert training["actor"] == {"id": "ci@helix.example", "name": "Helix CI"}
    attrs = training["attributes"]
    assert attrs["repository"] == repo.name  # no remote: the folder's name
    assert (attrs["author"], attrs["author_name"]) == ("priya.raman@helix.example", "Priya Raman")
    assert attrs["committer"] == "ci@helix.example"
    assert attrs["summary"] == "training: xgboost baseline"
    assert attrs["parents"] == [shas[0]] and events[0]["attributes"]["parents"] == []
    assert attrs["tree"] == git(repo, "rev-parse", "HEAD~1^{tree}")
    assert attrs["ref"] == "refs/heads/main"  # HEAD is on main
    assert (attrs["signed"], attrs["signature_verified"], attrs["signature"]) == (
        False, False, "unsigned",
    )  # fmt: skip
    for event in events:  # valid catalogue events, docs timestamp normalised to UTC
        parse_event(event)
    assert parse_event(events[2])["attributes"]["authored_at"] == datetime(
        2026, 1, 7, 22, 45, tzinfo=UTC
    )


def test_git_event_ids_are_deterministic_and_follow_the_facts(repo: Path) -> None:
    first = [e["id"] for e in git_events(repo)]
    assert first == [e["id"] for e in git_events(repo)]
    assert len(set(first)) == 3 and all(i.startswith("git:") for i in first)
    # The same commit read from a tag states another ref: a new event, not a reused id.
    (tagged,) = git_events(f"{repo}?rev=v1.0&max=1")
    assert tagged["attributes"]["ref"] == "refs/tags/v1.0"
    assert tagged["subject"]["id"] == git(repo, "rev-parse", "v1.0")
    assert tagged["id"] not in first
    renamed = git_events(f"{repo}?repository=hepatox")
    assert [e["attributes"]["repository"] for e in renamed] == ["hepatox"] * 3


def test_git_source_range_limit_and_legacy_form(repo: Path) -> None:
    only_docs = git_events(f"{repo}?rev=v1.0..main")
    assert [e["attributes"]["summary"] for e in only_docs] == ["docs: rename"]
    assert only_docs[0]["attributes"]["ref"] == "refs/heads/main"  # the range's tip
    assert git_events(f"{repo}@v1.0..main") == only_docs
    newest = git_events(f"{repo}?max=2")
    assert [e["attributes"]["summary"] for e in newest] == ["training: xgboost baseline",
                                                            "docs: rename"]  # fmt: skip
    detached = git_events(f"{repo}?rev={git(repo, 'rev-parse', 'HEAD')}&max=1")
    assert "ref" not in detached[0]["attributes"]  # a bare SHA names no branch
    assert parse_git_source(f"{repo}?rev=feat%2Bx&max=3") == GitSource(repo, "feat+x", 3)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("?max=0", "is not a positive number of commits"),
        ("?max=ten", "is not a positive number of commits"),
        ("?branch=main", "unknown option `branch`"),
        ("?rev=", "needs a value"),
        ("?max=1&max=2", "is given twice"),
        ("?rev=v9.9..main", "v9.9"),
        ("?rev=--output=/tmp/x", "is not a valid revision range"),
    ],
)
def test_git_source_errors_stop_the_source(repo: Path, suffix: str, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        list(GitAdapter().events(f"{repo}{suffix}"))


def test_git_source_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="is not a git repository"):
        list(GitAdapter().events(str(tmp_path)))


def test_remote_credentials_never_reach_an_event(tmp_path: Path) -> None:
    root = tmp_path / "cloned"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "empty")
    git(root, "remote", "add", "origin", "https://ci-bot:s3cr3t-t0ken@git.example.com/tox/h.git")
    (event,) = git_events(root)
    assert event["attributes"]["repository"] == "https://git.example.com/tox/h.git"
    assert "s3cr3t" not in json.dumps(event)


@pytest.mark.skipif(
    subprocess.run(["ssh-keygen", "-?"], capture_output=True).returncode == 127,
    reason="needs ssh-keygen for an SSH-signed commit",
)
def test_signed_commit_verified_by_git(tmp_path: Path) -> None:
    key = tmp_path / "signing"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "priya", "-f", str(key)],
                   check=True, capture_output=True)  # fmt: skip
    root = tmp_path / "signed"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingkey", str(key))
    git(root, "commit", "-q", "--allow-empty", "-m", "unsigned")
    git(root, "commit", "-q", "--allow-empty", "-S", "-m", "signed")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"priya.raman@helix.example {key.with_suffix('.pub').read_text()}")
    git(root, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    unsigned, signed = (e["attributes"] for e in git_events(root))
    assert (unsigned["signed"], unsigned["signature_verified"]) == (False, False)
    assert (signed["signed"], signed["signature_verified"], signed["signature"]) == (
        True, True, "good",
    )  # fmt: skip
    assert signed["signer"] == "priya.raman@helix.example"


SITE_POLICY = """\
package site.code

/// Released models name their training code through a registered commit.
rule training_code_registered {
  title "Training code commit is registered"
  layer audit
  on model.registered
  refs "EU GMP Annex 11 §4"
  require len(upstream(subject, "code_commit")) == 1 else "no commit upstream"
  require all(c in upstream(subject, "code_commit"): known(c) and c.ref == "refs/heads/main")
    else "the commit is unregistered or not on main"
  message "{subject} was trained from unregistered code"
}
"""


def test_commits_then_ci_runs_reach_the_commit_in_rules_and_lineage(
    repo: Path, tmp_path: Path
) -> None:
    """Commits ingested first (`git`), CI runs second (`ci`), into one store and one log: the
    second ingest continues the first's state, so a rule following `upstream(…,
    "code_commit")` sees the registered commit, and the lineage trace of the model reaches
    the commit node with its metadata."""
    full = git(repo, "rev-parse", "v1.0")
    runs = tmp_path / "runs"
    runs.mkdir()
    write(runs, record(commit=full[:7]), "118734.json")
    (runs / "policyengine-ci.json").write_text(json.dumps({"repo": str(repo)}))
    policies = tmp_path / "site.policy"
    policies.write_text(SITE_POLICY)
    key = tmp_path / "log.key"
    runner = CliRunner()
    runner.invoke(cli, ["keys", "generate", "--out", str(key), "--name", "example.com/git"])
    store, log = tmp_path / "lineage.db", tmp_path / "decisions.db"

    def ingest(adapter: str, source: str, *logging: str) -> Any:
        return runner.invoke(
            cli,
            ["ingest", "-a", adapter, source, "-p", str(policies), "--store", str(store),
             "--format", "json", *logging],
            catch_exceptions=False,
        )  # fmt: skip

    # Without the commits, the model's code is an unregistered string: the rule fails closed.
    alone = ingest("ci", str(runs))
    assert [json.loads(x)["outcome"] for x in alone.stdout.splitlines()][-1] == "deny"
    logging = ("--log", str(log), "--key", str(key))
    commits_in = ingest("git", str(repo), *logging)
    assert commits_in.exit_code == 0, commits_in.stderr
    assert len(commits_in.stdout.splitlines()) == 3
    runs_in = ingest("ci", str(runs), *logging)
    assert runs_in.exit_code == 0, runs_in.stderr
    decided = [json.loads(line) for line in runs_in.stdout.splitlines()]
    assert [(d["event"]["type"], d["outcome"]) for d in decided] == [
        ("run.started", "allow"),
        ("run.completed", "allow"),
        ("model.registered", "allow"),  # the commit is known from the first ingest
    ]
    with SQLiteLineageStore(store) as lineage:
        up = trace(lineage, "model_version:hepatox-screen/3", "upstream")
    (node,) = up.of_kind("code_commit")
    assert node.key.id == full and node.registered
    assert node.attrs["summary"] == "training: xgboost baseline"
    assert node.attrs["author"] == "priya.raman@helix.example"
    assert (node.attrs["ref"], node.attrs["signed"]) == ("refs/heads/main", False)
    replay = runner.invoke(cli, ["audit", "replay", "--log", str(log)])
    assert replay.exit_code == 0, replay.output
    assert "6 decisions replayed: 6 reproduced" in replay.output
