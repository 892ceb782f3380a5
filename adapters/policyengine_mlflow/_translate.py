"""MLflow records (as plain dicts) → canonical events.

The reader turns MLflow entities into the dicts MLflow itself serialises them to (a run is
`Run.to_dictionary()`; model versions and registered models the same shape, tags as maps), so
translation is pure, testable without a server, and every error names the MLflow field at
fault (`data.tags.policyengine.purpose`, `inputs.dataset_inputs[0].dataset.digest`).

Event ids are deterministic: `mlflow-<kind>-` + 24 hex digits of SHA-256 over the event's
content (type, subject, time, actor, attributes) — the same registry state always gives the
same ids, and a changed record (a tag added to a version) gives a new event. Two exceptions,
documented in README.md: `run.completed` also covers the id of its `run.started` (so a
re-emitted start is always followed by its completion), and an alias promotion is identified
by (model, alias, version) alone because MLflow records no time for aliases.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from policyengine.adapter import AdapterError
from policyengine.adapter_kit import BadField, Fields, event_id

__all__ = [
    "APPROVAL_TAG_PREFIX",
    "DATASET_TAGS",
    "SERVICE_ACTOR",
    "Translated",
    "Translator",
    "dataset_id",
    "model_version_id",
]

P = "policyengine."
#: Version tags whose value is a JSON approval record (see README.md, "Approvals").
APPROVAL_TAG_PREFIX = P + "approval."
#: Who acts when MLflow names nobody (model versions without `user_id`, webhook deliveries).
SERVICE_ACTOR = "mlflow"

RUN_PURPOSE = P + "purpose"
RUN_IMAGE = P + "image"
CREATED_BY = P + "created_by"
ARTIFACT_DIGEST = P + "artifact_digest"
INTENDED_USE = P + "intended_use"
GIT_COMMIT = "mlflow.source.git.commit"
CONTEXT_TAG = "mlflow.data.context"
DOCKER_IMAGE = "mlflow.docker.image.uri"

#: Dataset-input tags (`mlflow.log_input(..., tags={...})`) → `dataset.registered` attributes.
DATASET_TAGS = {
    P + "classification": "classification",
    P + "deidentified": "deidentified",
    P + "deidentification_method": "deidentification_method",
    P + "allowed_purposes": "allowed_purposes",
    P + "consent_scope": "consent_scope",
    P + "region": "region",
    P + "owner": "owner",
    P + "quasi_identifiers": "quasi_identifiers",
    P + "digest": "digest",
    P + "version": "version",
    P + "derived_from": "derived_from",
}
_LIST_ATTRS = {"allowed_purposes", "consent_scope", "quasi_identifiers", "derived_from"}
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_STAGES = {"staging": "staging", "production": "production"}  # legacy stages that promote
_APPROVAL_KEYS = {"signer", "signer_name", "role", "meaning", "time", "comment"}

# Events at the same instant are ordered so that what a policy reads comes first.
_RANK = {
    "dataset.registered": 0,
    "run.started": 1,
    "run.completed": 2,
    "model.registered": 3,
    "approval.recorded": 4,
    "model.promotion_requested": 5,
}


def instant(text: str) -> datetime:
    """An event time as a datetime: the text forms (`...:04Z`, `...:04.913Z`) do not sort."""
    return datetime.fromisoformat(text)


def dataset_id(name: str, digest: str) -> str:
    """An MLflow dataset is identified by its name and MLflow's digest of its content."""
    return f"{name}@{digest}"


def model_version_id(name: str, version: str) -> str:
    """A model version's subject id: MLflow's own URI for it."""
    return f"models:/{name}/{version}"


@dataclass(frozen=True)
class Translated:
    """One canonical event with where it came from and the order key the reader sorts by."""

    event: dict[str, Any]
    location: str

    @property
    def order(self) -> tuple[datetime, int]:
        """Sort key (time, what-a-policy-reads-first); the sort is stable, so records at the
        same instant keep their order in MLflow (dataset inputs as logged)."""
        return (instant(self.event["time"]), _RANK.get(self.event["type"], 9))


@dataclass
class Translator:
    """Translates runs, model versions, approvals and aliases; remembers what this source
    has seen (dataset registrations, run authors) so records can refer to each other."""

    aliases: Mapping[str, str] = field(default_factory=dict)
    """Alias → stage (`champion` → `production`); other aliases promote to their own name."""
    registered_datasets: set[str] = field(default_factory=set)
    run_users: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ runs

    def run(
        self, record: Mapping[str, Any], experiment: Mapping[str, Any] | None = None
    ) -> Iterator[Translated | AdapterError]:
        """`dataset.registered` for each dataset input, `run.started`, and `run.completed`
        once the run has ended."""
        where = "run ?"
        try:
            root = Fields(record, "")
            info = root.req_obj("info")
            run_id = info.req_text("run_id")
            where = f"run {run_id}"
            data = root.obj("data", required=False) or Fields({}, "data")
            tags = data.str_map("tags")
            user = info.text("user_id", required=False) or tags.get("mlflow.user") or ""
            actor = {"id": user or SERVICE_ACTOR}
            self.run_users[run_id] = actor["id"]
            started = info.time("start_time")
            assert started is not None
        except BadField as err:
            yield AdapterError(err.message, location=where, field=err.field, hint=err.hint)
            return
        inputs: list[str] = []
        contexts: dict[str, str] = {}
        inputs_obj = root.obj("inputs", required=False)
        for i, item in enumerate(
            inputs_obj.objects("dataset_inputs", required=False) if inputs_obj else []
        ):
            try:
                ds_event = self._dataset(item, started, actor, run_id)
            except BadField as err:
                yield AdapterError(err.message, location=where, field=err.field, hint=err.hint)
                continue
            ds = ds_event["subject"]["id"]
            if ds not in inputs:
                inputs.append(ds)
            ctx = item.str_map("tags").get(CONTEXT_TAG)
            if ctx:
                contexts[ds] = ctx
            if self._should_register(ds, item.str_map("tags")):
                yield Translated(_finish(ds_event, "mlflow-dataset"), f"{where} input {i}")
        try:
            yield from self._run_events(
                root, info, data, tags, run_id, actor, started, inputs, contexts, experiment
            )
        except BadField as err:
            yield AdapterError(err.message, location=where, field=err.field, hint=err.hint)

    def _run_events(
        self,
        root: Fields,
        info: Fields,
        data: Fields,
        tags: dict[str, str],
        run_id: str,
        actor: dict[str, Any],
        started: str,
        inputs: list[str],
        contexts: dict[str, str],
        experiment: Mapping[str, Any] | None,
    ) -> Iterator[Translated | AdapterError]:
        where = f"run {run_id}"
        exp_tags = dict((experiment or {}).get("tags") or {})
        purpose = tags.get(RUN_PURPOSE) or exp_tags.get(RUN_PURPOSE)
        params = data.str_map("params")
        labels = {
            "mlflow.run_id": run_id,
            "mlflow.experiment_id": info.text("experiment_id", required=False) or "",
            **{f"mlflow.context.{ds}": ctx for ds, ctx in contexts.items()},
            **_user_tags(tags),
        }
        if experiment and experiment.get("name"):
            labels["mlflow.experiment"] = str(experiment["name"])
        for key in ("mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.parentRunId"):
            if tags.get(key):
                labels[key] = tags[key]
        start: dict[str, Any] | None = None
        if purpose is None:
            yield AdapterError(
                "the run declares no purpose",
                location=where,
                field=f"data.tags.{RUN_PURPOSE}",
                hint=f"tag the run (or its experiment) with `{RUN_PURPOSE}`; "
                "privacy rules check it against the datasets' allowed purposes",
            )
        else:
            attrs: dict[str, Any] = {
                "name": info.text("run_name", required=False) or tags.get("mlflow.runName"),
                "inputs": inputs,
                "purpose": purpose,
                "code_commit": tags.get(GIT_COMMIT),
                "image": tags.get(RUN_IMAGE) or tags.get(DOCKER_IMAGE),
                "parameters": params,
                "labels": _clean(labels),
            }
            start = _finish(
                _event("run.started", started, actor, "training_run", run_id, attrs),
                "mlflow-run",
            )
            yield Translated(start, where)
        status = info.text("status", required=False) or "RUNNING"
        outcome = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "failed"}.get(status)
        if outcome is None:
            return  # RUNNING / SCHEDULED: not ended yet
        ended = info.time("end_time", required=False)
        if ended is None:
            yield AdapterError(
                f"the run is {status} but has no end time", location=where, field="info.end_time"
            )
            return
        metrics, dropped = _metrics(data)
        done_labels = {"mlflow.status": status}
        if dropped:
            done_labels["mlflow.nonfinite_metrics"] = ",".join(dropped)
        attrs = {"status": outcome, "metrics": metrics, "labels": done_labels}
        done = _event("run.completed", ended, actor, "training_run", run_id, attrs)
        yield Translated(
            _finish(done, "mlflow-run", start["id"] if start else None), f"{where} (ended)"
        )

    def _dataset(
        self, item: Fields, started: str, actor: dict[str, Any], run_id: str
    ) -> dict[str, Any]:
        ds = item.req_obj("dataset")
        name = ds.req_text("name")
        digest = ds.req_text("digest")
        tags = item.str_map("tags")
        attrs: dict[str, Any] = {"name": name, "labels": {"mlflow.digest": digest}}
        source_type = ds.text("source_type", required=False)
        if source_type:
            attrs["labels"]["mlflow.source_type"] = source_type
        uri = _source_uri(ds)
        if uri:
            attrs["uri"] = uri
        profile = _json_obj(ds, "profile")
        rows = profile.get("num_rows") if profile else None
        if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0:
            attrs["row_count"] = rows
        schema = _json_obj(ds, "schema")
        columns = _columns(schema)
        if columns:
            attrs["labels"]["mlflow.columns"] = ",".join(columns)
        for key, attr in DATASET_TAGS.items():
            if key not in tags:
                continue
            value = tags[key]
            path = f"{item.field('tags')}.{key}"
            if attr in _LIST_ATTRS:
                attrs[attr] = [v.strip() for v in value.split(",") if v.strip()]
            elif attr == "deidentified":
                if value.lower() not in ("true", "false"):
                    raise BadField(path, f"expected `true` or `false`, got `{value}`")
                attrs[attr] = value.lower() == "true"
            else:
                attrs[attr] = value
        # MLflow's own digest is a short hash of a sample of rows, not of the bytes, so it
        # only becomes the content digest when it already is one.
        if "digest" not in attrs and _SHA256.match(digest):
            attrs["digest"] = digest
        if "digest" in attrs and not _SHA256.match(attrs["digest"]):
            raise BadField(
                f"{item.field('tags')}.{P}digest",
                f"`{attrs['digest']}` is not `sha256:` + 64 hex digits",
            )
        attrs["labels"]["mlflow.first_run_id"] = run_id
        return _event(
            "dataset.registered", started, actor, "dataset", dataset_id(name, digest), attrs
        )

    def _should_register(self, ds: str, tags: dict[str, str]) -> bool:
        """The first sight of a dataset registers it; later inputs only when they state
        governance tags (an untagged re-use must not clear a classification)."""
        governed = any(k in DATASET_TAGS for k in tags)
        if ds in self.registered_datasets and not governed:
            return False
        self.registered_datasets.add(ds)
        return True

    # ------------------------------------------------------------------ registry

    def model_version(
        self, record: Mapping[str, Any], model: Mapping[str, Any] | None = None
    ) -> Iterator[Translated | AdapterError]:
        """`model.registered`, an `approval.recorded` per approval tag, and a
        `model.promotion_requested` for a legacy Staging/Production stage."""
        where = "model version ?"
        try:
            root = Fields(record, "")
            name = root.req_text("name")
            version = root.req_text("version")
            where = f"model version {name}/{version}"
            created = root.time("creation_timestamp")
            assert created is not None
            tags = root.str_map("tags")
            model_tags = dict((model or {}).get("tags") or {})
            subject = model_version_id(name, version)
            run_id = root.text("run_id", required=False) or None
            actor = {"id": self._creator(root, tags, run_id)}
            attrs: dict[str, Any] = {
                "name": name,
                "version": version,
                "training_run": run_id,
                "artifact_digest": tags.get(ARTIFACT_DIGEST),
                "intended_use": tags.get(INTENDED_USE) or model_tags.get(INTENDED_USE),
                "labels": _clean(
                    {
                        "mlflow.source": root.text("source", required=False) or "",
                        "mlflow.status": root.text("status", required=False) or "",
                        "mlflow.current_stage": root.text("current_stage", required=False) or "",
                        "mlflow.description": root.text("description", required=False) or "",
                        "mlflow.model_id": root.text("model_id", required=False) or "",
                        **_user_tags(tags),
                    }
                ),
            }
            if attrs["artifact_digest"] is not None and not _SHA256.match(attrs["artifact_digest"]):
                raise BadField(
                    f"tags.{ARTIFACT_DIGEST}",
                    f"`{attrs['artifact_digest']}` is not `sha256:` + 64 hex digits",
                )
        except BadField as err:
            yield AdapterError(err.message, location=where, field=err.field, hint=err.hint)
            return
        yield Translated(
            _finish(
                _event("model.registered", created, actor, "model_version", subject, attrs),
                "mlflow-model",
            ),
            where,
        )
        for key in sorted(tags):
            if key.startswith(APPROVAL_TAG_PREFIX):
                yield self.approval(name, version, key, tags[key], where)
        stage = (root.raw("current_stage") or "").lower()
        if stage in _STAGES:
            try:
                at = root.time("last_updated_timestamp")
            except BadField as err:
                yield AdapterError(err.message, location=where, field=err.field)
                return
            assert at is not None
            event = _event(
                "model.promotion_requested",
                at,
                {"id": SERVICE_ACTOR},
                "model_version",
                subject,
                {"to_stage": _STAGES[stage], "labels": {"mlflow.stage": stage.title()}},
            )
            yield Translated(_finish(event, "mlflow-stage"), f"{where} (stage)")

    def _creator(self, root: Fields, tags: dict[str, str], run_id: str | None) -> str:
        return (
            tags.get(CREATED_BY)
            or root.text("user_id", required=False)
            or (self.run_users.get(run_id) if run_id else None)
            or SERVICE_ACTOR
        )

    def approval(
        self, name: str, version: str, key: str, value: str, where: str
    ) -> Translated | AdapterError:
        """An approval tag's JSON value → `approval.recorded` by the signer it names."""
        path = f"tags.{key}"
        try:
            raw = json.loads(value)
        except json.JSONDecodeError as exc:
            return AdapterError(
                f"invalid JSON: {exc.msg} (column {exc.colno})",
                location=where,
                field=path,
                hint=_APPROVAL_HINT,
            )
        if not isinstance(raw, dict):
            return AdapterError(
                "an approval must be a JSON object", location=where, field=path, hint=_APPROVAL_HINT
            )
        unknown = sorted(set(raw) - _APPROVAL_KEYS)
        if unknown:
            return AdapterError(
                f"unknown field `{unknown[0]}`",
                location=where,
                field=f"{path}.{unknown[0]}",
                hint=_APPROVAL_HINT,
            )
        try:
            f = Fields(raw, path)
            signer = f.req_text("signer")
            role = f.req_text("role")
            at = f.time("time")
            assert at is not None
            attrs = {
                "signer": signer,
                "signer_name": f.text("signer_name", required=False),
                "role": role,
                "meaning": f.req_text("meaning"),
                "comment": f.text("comment", required=False),
                "labels": {"mlflow.tag": key},
            }
        except BadField as err:
            return AdapterError(
                err.message, location=where, field=err.field, hint=err.hint or _APPROVAL_HINT
            )
        actor: dict[str, Any] = {"id": signer, "roles": [role]}
        if attrs["signer_name"]:
            actor["name"] = attrs["signer_name"]
        event = _event(
            "approval.recorded", at, actor, "model_version", model_version_id(name, version), attrs
        )
        return Translated(_finish(event, "mlflow-approval"), f"{where} ({key})")

    def alias(self, name: str, alias: str, version: str, at: str, where: str) -> Translated:
        """An alias pointing at a version → `model.promotion_requested` to its stage."""
        stage = self.aliases.get(alias, alias)
        event = _event(
            "model.promotion_requested",
            at,
            {"id": SERVICE_ACTOR},
            "model_version",
            model_version_id(name, version),
            {"to_stage": stage, "labels": {"mlflow.alias": alias}},
        )
        event["id"] = event_id("mlflow-alias", name, alias, version)
        return Translated(event, f"{where} (alias {alias})")


_APPROVAL_HINT = (
    f'`{APPROVAL_TAG_PREFIX}<name>` holds {{"signer": ID, "signer_name": NAME, "role": ROLE, '
    '"meaning": "approved"|"rejected"|..., "time": RFC3339, "comment": TEXT}'
)


def _event(
    kind: str,
    time: str,
    actor: dict[str, Any],
    subject_kind: str,
    subject: str,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    attrs = {k: v for k, v in attributes.items() if v is not None}
    return {
        "id": "",
        "type": kind,
        "time": time,
        "actor": actor,
        "subject": {"kind": subject_kind, "id": subject},
        "attributes": attrs,
    }


def _finish(event: dict[str, Any], prefix: str, *extra: Any) -> dict[str, Any]:
    content = {k: v for k, v in event.items() if k != "id"}
    event["id"] = event_id(prefix, content, *extra)
    return event


def _clean(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if v}


def _user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags a user set, as labels: MLflow's own `mlflow.*` tags and the governance tags this
    adapter interprets are left out (the ones worth keeping are labelled explicitly)."""
    return {
        k: v for k, v in tags.items() if not k.startswith("mlflow.") and not k.startswith(P) and v
    }


def _metrics(data: Fields) -> tuple[dict[str, float], list[str]]:
    raw = data.raw("metrics") or {}
    if not isinstance(raw, dict):
        raise BadField(data.field("metrics"), "expected an object")
    metrics: dict[str, float] = {}
    dropped: list[str] = []
    for key, value in sorted(raw.items()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadField(f"{data.field('metrics')}.{key}", "expected a number")
        if math.isfinite(value):
            metrics[key] = float(value)
        else:
            dropped.append(key)  # NaN/Infinity never reach a policy
    return metrics, dropped


def _json_obj(ds: Fields, key: str) -> dict[str, Any] | None:
    text = ds.text(key, required=False)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # free text is allowed by MLflow; it is just not interpreted
    return value if isinstance(value, dict) else None


def _source_uri(ds: Fields) -> str | None:
    source = _json_obj(ds, "source")
    if not source:
        return None
    for key in ("uri", "url", "path", "table_name"):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _columns(schema: dict[str, Any] | None) -> list[str]:
    if not schema:
        return []
    spec = schema.get("mlflow_colspec") or schema.get("mlflow_tensorspec") or []
    if not isinstance(spec, list):
        return []
    return [c["name"] for c in spec if isinstance(c, dict) and isinstance(c.get("name"), str)]
