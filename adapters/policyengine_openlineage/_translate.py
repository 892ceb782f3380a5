"""OpenLineage events → canonical policyengine events (the mapping is tabled in README.md).

OpenLineage describes *jobs* that read and write *datasets*; it has no model, no purpose and
no classification. What governance needs comes from standard facets where the spec has one
(`datasetVersion`, `dataSource`, `ownership`, `schema`, `columnLineage`, `outputStatistics`,
`sourceCodeLocation`, `executionParameters`, `errorMessage`, `parent`) and from three
documented custom facets where it has none (`policyengine_governance`, `policyengine_training`,
`policyengine_model`; schemas in `schemas/policyengine-facets.json`). Nothing is guessed:
what an event does not say is left out, and the policies treat it as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, get_args

from policyengine.adapter import AdapterError

from ._schema import (
    GOVERNANCE,
    INTERPRETED,
    MODEL,
    TRAINING,
    FacetMode,
    Problem,
    Schemas,
    event_kind,
    facet_at,
    schemas,
)
from ._time import NaiveTime, TimeError, parse_event_time

__all__ = [
    "FACETS_ENV",
    "NAIVE_TIME_ENV",
    "OpenLineageError",
    "Options",
    "Translator",
    "dataset_id",
    "model_id",
]

NAIVE_TIME_ENV = "POLICYENGINE_OPENLINEAGE_NAIVE_TIME"
FACETS_ENV = "POLICYENGINE_OPENLINEAGE_FACETS"

#: Longest error message kept in the `openlineage.error` label of a failed run.
_ERROR_LABEL_CHARS = 500


@dataclass(frozen=True)
class Options:
    """How strict the adapter is (see the package docstring).

    `naive_time`: `reject` (default) refuses an `eventTime` without a UTC offset; `utc` reads
    it as UTC and records the original text in the label `openlineage.naive_event_time`.
    `facets`: `all` (default) checks every facet with a published schema against it;
    `interpreted` checks only the facets the translation reads, for producers whose other
    facets do not conform (Marquez, for one, accepts such events)."""

    naive_time: NaiveTime = "reject"
    facets: FacetMode = "all"

    def __post_init__(self) -> None:
        if self.naive_time not in get_args(NaiveTime):
            raise ValueError(f"naive_time must be `reject` or `utc`, not `{self.naive_time}`")
        if self.facets not in get_args(FacetMode):
            raise ValueError(f"facets must be `all` or `interpreted`, not `{self.facets}`")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Options:
        """Options from `POLICYENGINE_OPENLINEAGE_NAIVE_TIME` / `POLICYENGINE_OPENLINEAGE_FACETS`
        (how `policyengine ingest --adapter openlineage` is configured)."""
        env = os.environ if environ is None else environ
        naive = env.get(NAIVE_TIME_ENV, "").strip().lower() or "reject"
        facets = env.get(FACETS_ENV, "").strip().lower() or "all"
        if naive not in get_args(NaiveTime):
            raise AdapterError(
                f"`{NAIVE_TIME_ENV}` is `{env[NAIVE_TIME_ENV]}`", hint="use `reject` or `utc`"
            )
        if facets not in get_args(FacetMode):
            raise AdapterError(
                f"`{FACETS_ENV}` is `{env[FACETS_ENV]}`", hint="use `all` or `interpreted`"
            )
        return cls(naive_time=naive, facets=facets)  # type: ignore[arg-type]


class OpenLineageError(AdapterError):
    """One OpenLineage event that cannot be translated, with every problem found in it."""

    def __init__(
        self,
        problems: Sequence[Problem],
        *,
        location: str | None = None,
        hint: str | None = None,
    ) -> None:
        if not problems:
            raise ValueError("an OpenLineageError needs at least one problem")
        self.problems = list(problems)
        first, rest = self.problems[0], self.problems[1:]
        message = first.message
        if rest:
            shown = ", ".join(f"`{p.path or '(event)'}`" for p in rest[:3])
            more = f", and {len(rest) - 3} more" if len(rest) > 3 else ""
            s = "s" if len(rest) > 1 else ""
            message += f" (and {len(rest)} more problem{s}: {shown}{more})"
        super().__init__(message, location=location, field=first.path or None, hint=hint)

    def at(self, location: str) -> OpenLineageError:
        """The same error, located in its source."""
        return OpenLineageError(self.problems, location=location, hint=self.hint)


def _fail(parts: tuple[str | int, ...], message: str, hint: str | None = None) -> OpenLineageError:
    return OpenLineageError([Problem(parts, message)], hint=hint)


def dataset_id(namespace: str, name: str, version: str | None = None) -> str:
    """`<namespace>/<name>`, plus `@<version>` when the dataset has a `datasetVersion` facet.

    Readable on purpose (decision messages and lineage traces show it) and stable: the same
    dataset version gets the same id from every event that mentions it."""
    base = f"{namespace}/{name}"
    return f"{base}@{version}" if version else base


def model_id(facet: Mapping[str, Any]) -> str:
    """The `policyengine_model` facet's `id`, else `<name>@<version>`."""
    explicit = facet.get("id")
    return explicit if isinstance(explicit, str) else f"{facet['name']}@{facet['version']}"


@dataclass(frozen=True)
class _Dataset:
    """One dataset occurrence in an event, with its live facets (deleted ones dropped)."""

    parts: tuple[str | int, ...]
    namespace: str
    name: str
    version: str | None
    facets: Mapping[str, Any]
    extra: Mapping[str, Any]

    @property
    def id(self) -> str:
        return dataset_id(self.namespace, self.name, self.version)

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def model(self) -> Mapping[str, Any] | None:
        return self.facets.get(MODEL)

    @property
    def governance(self) -> Mapping[str, Any] | None:
        return self.facets.get(GOVERNANCE)


@dataclass
class _Context:
    source: str
    time: str
    producer: str
    labels: dict[str, str] = field(default_factory=dict)


class Translator:
    """Validates OpenLineage events and translates them; shared by the file adapter and the
    HTTP receiver so both read events the same way."""

    def __init__(self, options: Options | None = None, schemas_: Schemas | None = None) -> None:
        self.options = options if options is not None else Options()
        self._schemas = schemas_

    @property
    def schemas(self) -> Schemas:
        if self._schemas is None:
            self._schemas = schemas()
        return self._schemas

    def validate(self, event: Any) -> list[Problem]:
        """Schema problems of `event` (spec 2-0-2, facets per `options.facets`)."""
        return self.schemas.validate(event, self.options.facets)

    def translate(self, event: Any) -> list[dict[str, Any]]:
        """Canonical events for one OpenLineage event, in the order they should be decided.

        Raises `OpenLineageError` (an `AdapterError` whose `field` is the JSON path of the
        first problem) when the event is invalid or cannot be translated faithfully."""
        problems = self.validate(event)
        if problems:
            raise OpenLineageError(problems, hint=self._facet_hint(problems))
        try:
            time, assumed = parse_event_time(event["eventTime"], self.options.naive_time)
        except TimeError as err:
            raise _fail(("eventTime",), err.message, err.hint) from None
        producer = event["producer"]
        if not producer.strip():
            raise _fail(("producer",), "must not be empty", "name the producing integration")
        ctx = _Context(_digest(event), time, producer)
        if assumed:
            ctx.labels["openlineage.naive_event_time"] = event["eventTime"]
        kind = event_kind(event)
        if kind == "DatasetEvent":
            return self._dataset_event(ctx, event)
        if kind == "JobEvent":
            return self._job_event(ctx, event)
        return self._run_event(ctx, event)

    def _facet_hint(self, problems: Sequence[Problem]) -> str | None:
        """Where only facets that the translation does not read are at fault, say how to
        accept the event anyway."""
        facets = [facet_at(p.parts) for p in problems]
        if self.options.facets == "all" and all(
            f is not None and f not in INTERPRETED for f in facets
        ):
            names = ", ".join(dict.fromkeys(f"`{f[1]}`" for f in facets if f is not None))
            return (
                f"policyengine does not read {names}; to check only the facets it reads,"
                f" set {FACETS_ENV}=interpreted"
            )
        return None

    # ------------------------------------------------------------------ event types

    def _dataset_event(self, ctx: _Context, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        ds = _dataset(event["dataset"], ("dataset",), "")
        if ds.model is not None:
            return [self._model(ctx, ds, run_id=None, labels={})]
        parents = _column_parents(ds, {})
        return [self._registered(ctx, ds, derived_from=parents, labels={})]

    def _job_event(self, ctx: _Context, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        job_name = _job_name(event["job"])
        inputs = _datasets(event, "inputs")
        outputs = _datasets(event, "outputs")
        out: list[dict[str, Any]] = []
        data_inputs = [d for d in inputs if d.model is None]
        written = {d.id for d in outputs if d.model is None}
        out += self._governed_inputs(ctx, data_inputs, skip=written)
        # A job definition's model outputs are no model version (no run trained them).
        labels = {"openlineage.job": job_name}
        out += self._outputs(ctx, data_inputs, outputs, labels)
        return out

    def _run_event(self, ctx: _Context, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        run, job = event["run"], event["job"]
        run_id: str = run["runId"]
        run_facets = _live(run.get("facets"))
        job_facets = _live(job.get("facets"))
        job_name = _job_name(job)
        state = event.get("eventType") or "OTHER"
        inputs = _datasets(event, "inputs")
        outputs = _datasets(event, "outputs")
        data_inputs = [d for d in inputs if d.model is None]
        models = [d for d in outputs if d.model is not None]
        training = _training(run_facets, job_facets)
        completed = state == "COMPLETE"

        labels = {"openlineage.job": job_name, **_parent_labels(run_facets)}
        model_inputs = _unique(model_id(d.model) for d in inputs if d.model is not None)
        if model_inputs:
            labels["openlineage.model_inputs"] = ", ".join(model_inputs)

        written = {d.id for d in outputs if d.model is None} if completed else set()
        out = self._governed_inputs(ctx, data_inputs, skip=written)
        actor = training.started_by if training is not None else None
        if training is not None or models:
            if state == "START":
                out.append(self._run_started(ctx, event, training, data_inputs, labels, actor))
            elif state in ("COMPLETE", "FAIL", "ABORT"):
                out.append(self._run_completed(ctx, run_id, state, run_facets, training, actor))
        if completed:
            run_labels = {**labels, "openlineage.run": run_id}
            out += self._outputs(ctx, data_inputs, outputs, run_labels)
            for ds in _unique_datasets(models):
                out.append(self._model(ctx, ds, run_id=run_id, labels=labels, actor=actor))
        return out

    # ------------------------------------------------------------------ canonical events

    def _governed_inputs(
        self, ctx: _Context, inputs: Sequence[_Dataset], skip: set[str]
    ) -> list[dict[str, Any]]:
        """Inputs that state their governance are registered (others are only referenced:
        a mere mention must not restate, and so clear, a dataset's governance lists)."""
        return [
            self._registered(ctx, ds, derived_from=[], labels={})
            for ds in _unique_datasets(inputs)
            if ds.governance is not None and ds.id not in skip
        ]

    def _outputs(
        self,
        ctx: _Context,
        inputs: Sequence[_Dataset],
        outputs: Sequence[_Dataset],
        labels: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        """Datasets a job wrote, registered as derived from everything it read (and from the
        datasets its `columnLineage` names): the conservative reading for sensitivity."""
        input_ids = _unique(d.id for d in inputs)
        by_name: dict[tuple[str, str], str] = {}
        for d in inputs:
            by_name.setdefault((d.namespace, d.name), d.id)
        governed = {d.id: d for d in _unique_datasets(inputs) if d.governance is not None}
        out = []
        for ds in _unique_datasets(d for d in outputs if d.model is None):
            parents = _unique([*input_ids, *_column_parents(ds, by_name)])
            source = governed.get(ds.id)
            if ds.governance is None and source is not None:
                # Read and rewritten (same id): the input's governance statement is about
                # this very dataset, and leaving it out would clear it (lists are restated).
                ds = replace(ds, parts=source.parts, facets={**source.facets, **ds.facets})
            out.append(self._registered(ctx, ds, derived_from=parents, labels=labels))
        return out

    def _registered(
        self,
        ctx: _Context,
        ds: _Dataset,
        *,
        derived_from: Sequence[str],
        labels: Mapping[str, str],
    ) -> dict[str, Any]:
        attrs: dict[str, Any] = {"name": ds.qualified_name}
        tags: dict[str, str] = dict(labels)
        if ds.version is not None:
            attrs["version"] = ds.version
        source = ds.facets.get("dataSource")
        if source is not None:
            if source.get("uri"):
                attrs["uri"] = source["uri"]
            if source.get("name"):
                tags["openlineage.datasource"] = source["name"]
        owners = (ds.facets.get("ownership") or {}).get("owners") or []
        if owners:
            attrs["owner"] = owners[0]["name"]
            tags["openlineage.owners"] = ", ".join(
                o["name"] + (f" ({o['type']})" if o.get("type") else "") for o in owners
            )
        gov = ds.governance
        if gov is not None:
            _check_quasi_identifiers(ds, gov)
            for key in ("classification", "region", "deidentification_method", "digest", "owner"):
                if key in gov:
                    attrs[key] = gov[key]
            for key in ("allowed_purposes", "consent_scope", "quasi_identifiers"):
                if key in gov:
                    attrs[key] = list(gov[key])
            if "deidentified" in gov:
                attrs["deidentified"] = gov["deidentified"]
        stats = ds.extra.get("outputStatistics")
        if stats is not None and "rowCount" in stats:
            attrs["row_count"] = stats["rowCount"]
        parents = [p for p in derived_from if p != ds.id]
        if parents:
            attrs["derived_from"] = parents
        return _event(ctx, "dataset.registered", "dataset", ds.id, attrs, tags)

    def _run_started(
        self,
        ctx: _Context,
        event: Mapping[str, Any],
        training: _Training | None,
        inputs: Sequence[_Dataset],
        labels: Mapping[str, str],
        actor: str | None,
    ) -> dict[str, Any]:
        if training is None or training.purpose is None:
            parts = training.purpose_path if training is not None else ("run", "facets", TRAINING)
            raise _fail(
                parts,
                "a training run must declare its purpose"
                if training is not None
                else "a run that writes a model is a training run and must declare its purpose",
                f"add `purpose` to the `{TRAINING}` run facet (or job facet); the privacy"
                " policies check it against every input's allowed purposes",
            )
        run_facets = _live(event["run"].get("facets"))
        job_facets = _live(event["job"].get("facets"))
        attrs: dict[str, Any] = {
            "name": _job_name(event["job"]),
            "inputs": _unique(d.id for d in inputs),
            "purpose": training.purpose,
        }
        tags = dict(labels)
        location = job_facets.get("sourceCodeLocation")
        if location is not None:
            if location.get("version"):
                attrs["code_commit"] = location["version"]
            tags["openlineage.source_url"] = location["url"]
            if location.get("repoUrl"):
                tags["openlineage.repo"] = location["repoUrl"]
        if training.image is not None:
            attrs["image"] = training.image
        parameters = _execution_parameters(run_facets)
        parameters.update(training.parameters)
        if parameters:
            attrs["parameters"] = parameters
        run_id = event["run"]["runId"]
        return _event(ctx, "run.started", "training_run", run_id, attrs, tags, actor)

    def _run_completed(
        self,
        ctx: _Context,
        run_id: str,
        state: str,
        run_facets: Mapping[str, Any],
        training: _Training | None,
        actor: str | None,
    ) -> dict[str, Any]:
        attrs: dict[str, Any] = {"status": "completed" if state == "COMPLETE" else "failed"}
        tags: dict[str, str] = {}
        if state != "COMPLETE":
            tags["openlineage.event_type"] = state
        error = run_facets.get("errorMessage")
        if error is not None:
            tags["openlineage.error"] = error["message"][:_ERROR_LABEL_CHARS]
        if training is not None and training.metrics:
            attrs["metrics"] = dict(training.metrics)
        return _event(ctx, "run.completed", "training_run", run_id, attrs, tags, actor)

    def _model(
        self,
        ctx: _Context,
        ds: _Dataset,
        *,
        run_id: str | None,
        labels: Mapping[str, str],
        actor: str | None = None,
    ) -> dict[str, Any]:
        facet = ds.model
        assert facet is not None
        attrs: dict[str, Any] = {"name": facet["name"], "version": facet["version"]}
        if run_id is not None:
            attrs["training_run"] = run_id
        for key in ("artifact_digest", "intended_use"):
            if key in facet:
                attrs[key] = facet[key]
        tags = {**labels, "openlineage.artifact": ds.id}
        return _event(ctx, "model.registered", "model_version", model_id(facet), attrs, tags, actor)


# ---------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Training:
    """The `policyengine_training` facets of a run and its job, run fields winning."""

    purpose: str | None
    purpose_path: tuple[str, ...]
    image: str | None
    started_by: str | None
    parameters: dict[str, str]
    metrics: dict[str, float]


def _training(run_facets: Mapping[str, Any], job_facets: Mapping[str, Any]) -> _Training | None:
    job, run = job_facets.get(TRAINING), run_facets.get(TRAINING)
    if job is None and run is None:
        return None
    merged: dict[str, Any] = {}
    parameters: dict[str, str] = {}
    for facet in (job, run):
        if facet is None:
            continue
        for key in ("purpose", "image", "started_by"):
            if key in facet:
                merged[key] = facet[key]
        parameters.update({k: _text(v) for k, v in (facet.get("parameters") or {}).items()})
    # Where a missing purpose is reported: the run facet when there is one.
    path = ("run" if run is not None else "job", "facets", TRAINING, "purpose")
    metrics = {k: float(v) for k, v in ((run or {}).get("metrics") or {}).items()}
    return _Training(
        purpose=merged.get("purpose"),
        purpose_path=path,
        image=merged.get("image"),
        started_by=merged.get("started_by"),
        parameters=parameters,
        metrics=metrics,
    )


def _text(value: Any) -> str:
    """A parameter value as recorded: strings as they are, numbers and booleans as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _execution_parameters(run_facets: Mapping[str, Any]) -> dict[str, str]:
    facet = run_facets.get("executionParameters")
    found: dict[str, str] = {}
    for p in (facet or {}).get("parameters") or []:
        if "value" in p:
            found[p["key"]] = p["value"]
    return found


def _parent_labels(run_facets: Mapping[str, Any]) -> dict[str, str]:
    parent = run_facets.get("parent")
    if parent is None:
        return {}
    return {
        "openlineage.parent_run": parent["run"]["runId"],
        "openlineage.parent_job": _job_name(parent["job"]),
    }


def _check_quasi_identifiers(ds: _Dataset, gov: Mapping[str, Any]) -> None:
    """Quasi-identifiers must be columns of the dataset when its schema is known: a misspelt
    one would leave the re-identification rules looking at nothing."""
    schema = ds.facets.get("schema")
    fields = (schema or {}).get("fields") or []
    if not fields:
        return
    names = set(_field_names(fields, ""))
    for index, column in enumerate(gov.get("quasi_identifiers") or []):
        if column not in names:
            shown = ", ".join(f"`{n}`" for n in sorted(names)[:20])
            raise _fail(
                (*ds.parts, "facets", GOVERNANCE, "quasi_identifiers", index),
                f"`{column}` is not a field of the dataset's `schema` facet",
                f"its fields: {shown}",
            )


def _field_names(fields: Iterable[Mapping[str, Any]], prefix: str) -> Iterator[str]:
    for f in fields:
        name = prefix + f["name"]
        yield name
        yield from _field_names(f.get("fields") or [], name + ".")


def _column_parents(ds: _Dataset, by_name: Mapping[tuple[str, str], str]) -> list[str]:
    """Datasets `columnLineage` says this one was computed from (field- and dataset-level),
    as the versioned ids the event's inputs give them where they are inputs."""
    facet = ds.facets.get("columnLineage")
    if facet is None:
        return []
    refs: list[Mapping[str, Any]] = []
    for column in (facet.get("fields") or {}).values():
        refs += column.get("inputFields") or []
    refs += facet.get("dataset") or []
    return _unique(
        by_name.get((r["namespace"], r["name"])) or dataset_id(r["namespace"], r["name"])
        for r in refs
    )


def _datasets(event: Mapping[str, Any], side: str) -> list[_Dataset]:
    extra = "inputFacets" if side == "inputs" else "outputFacets"
    return [_dataset(d, (side, i), extra) for i, d in enumerate(event.get(side) or [])]


def _dataset(obj: Mapping[str, Any], parts: tuple[str | int, ...], extra: str) -> _Dataset:
    for key in ("namespace", "name"):
        if not obj[key].strip():
            raise _fail((*parts, key), "must not be empty", "dataset ids are namespace/name")
    facets = _live(obj.get("facets"))
    version = (facets.get("version") or {}).get("datasetVersion") or None
    return _Dataset(
        parts=parts,
        namespace=obj["namespace"],
        name=obj["name"],
        version=version,
        facets=facets,
        extra=_live(obj.get(extra)) if extra else {},
    )


def _live(facets: Any) -> dict[str, Any]:
    """Facets that are present and not deletion markers (`_deleted: true`)."""
    if not isinstance(facets, Mapping):
        return {}
    return {
        k: v for k, v in facets.items() if isinstance(v, Mapping) and v.get("_deleted") is not True
    }


def _job_name(job: Mapping[str, Any]) -> str:
    return f"{job['namespace']}/{job['name']}"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _unique_datasets(items: Iterable[_Dataset]) -> list[_Dataset]:
    seen: dict[str, _Dataset] = {}
    for ds in items:
        seen.setdefault(ds.id, ds)
    return list(seen.values())


def _digest(event: Any) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _event(
    ctx: _Context,
    type_: str,
    kind: str,
    subject: str,
    attributes: dict[str, Any],
    labels: Mapping[str, str],
    actor: str | None = None,
) -> dict[str, Any]:
    """A canonical event; its id is derived from the source event's content, the type and
    the subject, so re-reading (or re-receiving) the same event gives the same ids."""
    key = "\n".join((ctx.source, type_, kind, subject)).encode("utf-8")
    merged = {**ctx.labels, **labels}
    if merged:
        attributes["labels"] = dict(sorted(merged.items()))
    return {
        "id": "ol-" + hashlib.sha256(key).hexdigest()[:32],
        "type": type_,
        "time": ctx.time,
        "actor": {"id": actor or ctx.producer},
        "subject": {"kind": kind, "id": subject},
        "attributes": attributes,
    }
