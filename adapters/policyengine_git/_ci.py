"""CI run records → training-run and model-registration events, with commits resolved in git.

Two input shapes: the generic CI run record (`policyengine.ci-run/1`, documented in README.md)
that any CI system can emit from a final step, and GitHub's `workflow_run` webhook payload.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyengine.adapter import AdapterError, Located
from policyengine.adapter_kit import BadField, Fields, read_records

from ._git import GitError, is_hex, resolve

__all__ = [
    "CI_SCHEMA",
    "CONFIG_ENV",
    "CONFIG_FILE",
    "REPO_ENV",
    "CIConfig",
    "CIRunAdapter",
    "translate",
]

CI_SCHEMA = "policyengine.ci-run/1"
CONFIG_FILE = "policyengine-ci.json"
CONFIG_ENV = "POLICYENGINE_CI_CONFIG"
REPO_ENV = "POLICYENGINE_GIT_REPO"

_STATUSES = ("running", "success", "failure", "cancelled")
_OUTCOME = {"success": "completed", "failure": "failed", "cancelled": "failed"}
# GitHub `workflow_run.conclusion` → generic status; `None` = the run did nothing to record.
_GITHUB_CONCLUSION: dict[str, str | None] = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "action_required": "failure",
    "cancelled": "cancelled",
    "skipped": None,
    "neutral": None,
    "stale": None,
}


@dataclass(frozen=True)
class CIConfig:
    """Where commits are resolved, and which GitHub workflows train models."""

    repo: str | None = None
    """Working tree of the code repository; commits are resolved there to full SHAs."""
    workflows: Mapping[str, str] = field(default_factory=dict)
    """GitHub workflow path (`.github/workflows/train.yml`) or name → declared purpose of the
    training run each of its runs is."""

    @classmethod
    def from_dict(cls, data: Any, origin: str = "config", base: Path | None = None) -> CIConfig:
        if not isinstance(data, dict):
            raise AdapterError("the configuration must be a JSON object", location=origin)
        for key in data:
            if key not in ("repo", "workflows"):
                raise AdapterError(
                    f"unknown configuration key `{key}`",
                    location=origin,
                    hint="known keys: repo, workflows",
                )
        repo = data.get("repo")
        if repo is not None and (not isinstance(repo, str) or not repo):
            raise AdapterError("expected a path", location=origin, field="repo")
        if repo is not None and base is not None and not Path(repo).is_absolute():
            repo = str(base / repo)
        workflows = data.get("workflows", {})
        if not isinstance(workflows, dict) or not all(
            isinstance(v, str) and v for v in workflows.values()
        ):
            raise AdapterError(
                "expected an object of workflow → purpose strings",
                location=origin,
                field="workflows",
            )
        return cls(repo=repo, workflows=dict(workflows))

    @classmethod
    def discover(cls, source: str) -> CIConfig:
        """`$POLICYENGINE_CI_CONFIG`, else `policyengine-ci.json` in the source folder (or
        beside the source file), else defaults; `$POLICYENGINE_GIT_REPO` sets `repo`."""
        config = cls()
        path = os.environ.get(CONFIG_ENV)
        candidate: Path | None = Path(path) if path else None
        if candidate is None and source != "-":
            where = Path(source)
            beside = (where if where.is_dir() else where.parent) / CONFIG_FILE
            candidate = beside if beside.is_file() else None
        if candidate is not None:
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise AdapterError(f"no such configuration file `{candidate}`") from None
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AdapterError(
                    f"cannot read configuration: {exc}", location=str(candidate)
                ) from None
            config = cls.from_dict(data, str(candidate), candidate.parent)
        repo = os.environ.get(REPO_ENV)
        if repo:
            config = cls(repo=repo, workflows=config.workflows)
        return config


@dataclass(frozen=True)
class _Run:
    """A CI run in the generic shape, whatever the input was."""

    provider: str
    pipeline: str
    run_id: str
    attempt: int
    commit: str
    status: str
    started_at: str
    finished_at: str | None
    actor: dict[str, Any]
    labels: dict[str, str]
    image: str | None
    training: Fields | None
    training_id: str | None
    training_name: str | None
    purpose: str | None
    model: Fields | None
    artifacts: dict[str, str]


class CIRunAdapter:
    """Generic CI run records and GitHub `workflow_run` payloads → `run.started`,
    `run.completed` and `model.registered`; commits resolved to full SHAs in the configured
    repository. SOURCE: a JSON file (one record or an array), JSON Lines, `-`, or a folder."""

    name = "ci"
    summary = "CI run records (policyengine.ci-run/1, GitHub workflow_run) with git commits"

    def __init__(self, config: CIConfig | None = None) -> None:
        self.config = config

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        config = self.config if self.config is not None else CIConfig.discover(source)
        for item in read_records(source, skip_names=frozenset({CONFIG_FILE})):
            if isinstance(item, AdapterError):
                yield item
                continue
            try:
                if not isinstance(item.value, dict):
                    raise BadField("", "a CI run record must be a JSON object")
                events = translate(item.value, config)
            except BadField as err:
                yield AdapterError(
                    err.message, location=item.location, field=err.field or None, hint=err.hint
                )
                continue
            except GitError as err:
                yield AdapterError(
                    err.message, location=item.location, field="commit", hint=err.hint
                )
                continue
            for event in events:
                yield Located(event, item.location)


def translate(record: dict[str, Any], config: CIConfig) -> list[dict[str, Any]]:
    """Canonical events for one CI run record (generic or GitHub `workflow_run`)."""
    f = Fields(record, "")
    run = _github(f, config) if "workflow_run" in record else _generic(f)
    if run is None:
        return []
    commit = run.commit
    labels = dict(run.labels)
    if config.repo is not None:
        found = resolve(config.repo, commit)
        commit = found.sha
        labels.update(found.labels())
    elif not is_hex(commit.lower()) or len(commit) < 7 or len(commit) > 40:
        raise BadField(
            "workflow_run.head_sha" if "workflow_run" in record else "commit",
            f"`{commit}` is not a commit SHA",
            "give the full or abbreviated hexadecimal SHA (7–40 digits)",
        )
    else:
        commit = commit.lower()
    labels["ci.commit"] = commit
    base = f"ci:{run.provider}:{run.pipeline}:{run.run_id}:{run.attempt}"
    events: list[dict[str, Any]] = []
    if run.training_id is not None:
        t = run.training
        if run.purpose is None:
            where = "training_run.purpose" if t is not None else "purpose"
            raise BadField(where, "a training run needs its declared purpose")
        attrs: dict[str, Any] = {
            "name": (t.text("name", required=False) if t else None)
            or run.training_name
            or run.pipeline,
            "purpose": run.purpose,
            "code_commit": commit,
            "image": run.image,
            "labels": labels,
        }
        if t is not None:
            attrs["inputs"] = _strings(t, "inputs")
            attrs["feature_sets"] = _strings(t, "feature_sets")
            attrs["parameters"] = t.str_map("parameters")
        subject = ("training_run", run.training_id)
        events.append(
            _event(f"{base}:run.started", "run.started", run.started_at, run.actor, subject, attrs)
        )
        if run.status in _OUTCOME:
            assert run.finished_at is not None
            metrics: dict[str, float] = {}
            raw = t.obj("metrics", required=False) if t else None
            for key in raw.data if raw else ():
                assert raw is not None
                value = raw.number(key)
                assert value is not None
                metrics[key] = value
            events.append(
                _event(
                    f"{base}:run.completed",
                    "run.completed",
                    run.finished_at,
                    run.actor,
                    ("training_run", run.training_id),
                    {"status": _OUTCOME[run.status], "metrics": metrics, "labels": labels},
                )
            )
    if run.model is not None and run.status == "success":
        # A run that failed did not publish its model, whatever the record says it would have.
        assert run.finished_at is not None
        m = run.model
        name = m.req_text("name")
        version_raw = m.raw("version")
        if isinstance(version_raw, bool) or not isinstance(version_raw, str | int):
            raise BadField(m.field("version"), "expected a string or an integer")
        version = str(version_raw)
        digest = m.text("artifact_digest", required=False)
        artifact = m.text("artifact", required=False)
        if artifact is not None:
            if artifact not in run.artifacts:
                raise BadField(
                    m.field("artifact"), f"no artifact named `{artifact}` in `artifacts`"
                )
            if digest is not None and digest != run.artifacts[artifact]:
                raise BadField(
                    m.field("artifact_digest"),
                    f"differs from the digest of artifact `{artifact}`",
                )
            digest = run.artifacts[artifact]
        events.append(
            _event(
                f"{base}:model.registered",
                "model.registered",
                run.finished_at,
                run.actor,
                ("model_version", m.text("id", required=False) or f"{name}/{version}"),
                {
                    "name": name,
                    "version": version,
                    "training_run": run.training_id,
                    "artifact_digest": digest,
                    "intended_use": m.text("intended_use", required=False),
                    "labels": labels,
                },
            )
        )
    return events


def _generic(f: Fields) -> _Run:
    schema = f.text("schema", required=False)
    if schema is not None and schema != CI_SCHEMA:
        raise BadField("schema", f"unknown schema `{schema}`", f"expected `{CI_SCHEMA}`")
    provider = f.req_text("provider")
    pipeline = f.req_text("pipeline")
    run_raw = f.raw("run_id")
    if isinstance(run_raw, bool) or not isinstance(run_raw, str | int) or run_raw == "":
        problem = (
            "required field is missing" if run_raw is None else "expected a string or an integer"
        )
        raise BadField("run_id", problem)
    attempt = f.integer("attempt", required=False) or 1
    status = f.req_text("status")
    if status not in _STATUSES:
        raise BadField("status", f"unknown status `{status}`", "expected " + ", ".join(_STATUSES))
    started = f.time("started_at")
    assert started is not None
    finished = f.time("finished_at", required=status != "running")
    labels = {"ci.provider": provider, "ci.pipeline": pipeline, "ci.run_id": str(run_raw)}
    if attempt != 1:
        labels["ci.attempt"] = str(attempt)
    for key in ("ref", "url"):
        value = f.text(key, required=False)
        if value:
            labels[f"ci.{key}"] = value
    tests = f.obj("tests", required=False)
    if tests is not None:
        for key in ("passed", "failed", "skipped"):
            count = tests.integer(key, required=False)
            if count is not None:
                if count < 0:
                    raise BadField(tests.field(key), "must not be negative")
                labels[f"tests.{key}"] = str(count)
    artifacts: dict[str, str] = {}
    for a in f.objects("artifacts", required=False):
        artifacts[a.req_text("name")] = a.req_text("digest")
    for name, digest in artifacts.items():
        labels[f"artifact.{name}"] = digest
    training = None
    training_id = None
    raw = f.raw("training_run")
    if isinstance(raw, str) and raw:
        training_id = raw
    elif isinstance(raw, dict):
        training = f.req_obj("training_run")
        training_id = training.req_text("id")
    elif raw is not None:
        raise BadField("training_run", "expected a run id or an object with `id`")
    purpose = (training.text("purpose", required=False) if training else None) or f.text(
        "purpose", required=False
    )
    return _Run(
        provider=provider,
        pipeline=pipeline,
        run_id=str(run_raw),
        attempt=attempt,
        commit=f.req_text("commit"),
        status=status,
        started_at=started,
        finished_at=finished,
        actor=_actor(f, "triggered_by", provider),
        labels=labels,
        image=f.text("image", required=False),
        training=training,
        training_id=training_id,
        training_name=None,
        purpose=purpose,
        model=f.obj("model", required=False),
        artifacts=artifacts,
    )


def _github(f: Fields, config: CIConfig) -> _Run | None:
    """A GitHub `workflow_run` webhook payload as a generic run (GitHub's documented shape)."""
    action = f.req_text("action")
    w = f.req_obj("workflow_run")
    repo = f.obj("repository", required=False)
    full_name = (repo.text("full_name", required=False) if repo else None) or "github"
    path = w.text("path", required=False)
    workflow = f.obj("workflow", required=False)
    if path is None and workflow is not None:
        path = workflow.text("path", required=False)
    name = w.text("name", required=False) or (
        workflow.text("name", required=False) if workflow else None
    )
    if action in ("requested", "in_progress"):
        status: str | None = "running"
    elif action == "completed":
        conclusion = w.req_text("conclusion")
        if conclusion not in _GITHUB_CONCLUSION:
            raise BadField(w.field("conclusion"), f"unknown conclusion `{conclusion}`")
        status = _GITHUB_CONCLUSION[conclusion]
    else:
        raise BadField("action", f"unknown workflow_run action `{action}`")
    if status is None:
        return None
    run_id = w.integer("id")
    attempt = w.integer("run_attempt", required=False) or 1
    started = w.time("run_started_at", required=False) or w.time("created_at")
    assert started is not None
    finished = w.time("updated_at") if status != "running" else None
    pipeline = f"{full_name}:{path or name or 'workflow'}"
    purpose = config.workflows.get(path or "") or config.workflows.get(name or "")
    labels = {"ci.provider": "github-actions", "ci.pipeline": pipeline, "ci.run_id": str(run_id)}
    if attempt != 1:
        labels["ci.attempt"] = str(attempt)
    branch = w.text("head_branch", required=False)
    if branch:
        labels["ci.ref"] = f"refs/heads/{branch}"
    url = w.text("html_url", required=False)
    if url:
        labels["ci.url"] = url
    event = w.text("event", required=False)
    if event:
        labels["ci.trigger"] = event
    login = None
    for key in ("triggering_actor", "actor"):
        who = w.obj(key, required=False)
        if who is not None and who.text("login", required=False):
            login = who.text("login")
            break
    sender = f.obj("sender", required=False)
    if login is None and sender is not None:
        login = sender.text("login", required=False)
    actor = {"id": f"github:{login}"} if login else {"id": "ci:github-actions"}
    return _Run(
        provider="github-actions",
        pipeline=pipeline,
        run_id=str(run_id),
        attempt=attempt,
        commit=w.req_text("head_sha"),
        status=status,
        started_at=started,
        finished_at=finished,
        actor=actor,
        labels=labels,
        image=None,
        training=None,
        training_id=f"github:{full_name}:{run_id}:{attempt}" if purpose else None,
        training_name=name,
        purpose=purpose,
        model=None,
        artifacts={},
    )


def _actor(f: Fields, key: str, provider: str) -> dict[str, Any]:
    raw = f.raw(key)
    if raw is None:
        return {"id": f"ci:{provider}"}
    if isinstance(raw, str) and raw:
        return {"id": raw}
    who = f.req_obj(key)
    actor: dict[str, Any] = {"id": who.req_text("id")}
    name = who.text("name", required=False)
    if name:
        actor["name"] = name
    return actor


def _strings(f: Fields, key: str) -> list[str]:
    items = f.array(key, required=False) or []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise BadField(f"{f.field(key)}[{i}]", "expected a non-empty string")
    return list(items)


def _event(
    ident: str,
    kind: str,
    time: str,
    actor: dict[str, Any],
    subject: tuple[str, str],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    attrs = {k: v for k, v in attributes.items() if v is not None}
    for key in ("labels", "parameters", "inputs", "feature_sets", "metrics"):
        if key in attrs and not attrs[key]:
            del attrs[key]
    return {
        "id": ident,
        "type": kind,
        "time": time,
        "actor": actor,
        "subject": {"kind": subject[0], "id": subject[1]},
        "attributes": attrs,
    }
