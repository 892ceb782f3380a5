"""Pydantic models for the lineage event envelope, event attributes and entity state.

Field annotations are deliberately restricted (`str`, `int`, `float`, `bool`, `datetime`,
`X | None`, `list[X]`, `dict[str, X]`, nested models, `Annotated[str, Ref(kind)]`, string
`Literal`s) because the policy compiler reads them to build its static type environment.
Timestamps therefore stay plain `datetime`; awareness is enforced by explicit validators.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .refs import Ref, Sensitive

__all__ = [
    "Actor",
    "Approval",
    "ApprovalRecorded",
    "Classification",
    "CodeCommit",
    "CodeCommitted",
    "Dataset",
    "DatasetAccessed",
    "DatasetPrivacy",
    "DatasetPrivacyAssessed",
    "DatasetRegistered",
    "DatasetReleased",
    "Deployment",
    "DirectIdentifier",
    "DriftBreach",
    "DriftEvaluated",
    "DriftResponse",
    "DriftResponseRecorded",
    "ESignature",
    "Event",
    "EventError",
    "FeatureSet",
    "FeaturesMaterialized",
    "ModelDeployRequested",
    "ModelDeployed",
    "ModelPromotionRequested",
    "ModelRegistered",
    "ModelVersion",
    "Override",
    "OverrideRecorded",
    "PredictionBatch",
    "PredictionBatchCompleted",
    "ReviewEscalated",
    "RunCompleted",
    "RunStarted",
    "SignatureStatus",
    "SubjectRef",
    "Target",
    "TrainingRun",
]

Classification = Literal["public", "internal", "confidential", "PII", "PHI"]
ApprovalMeaning = Literal["approved", "rejected", "reviewed", "responsibility", "acknowledged"]
SignatureStatus = Literal["verified", "invalid", "unverified", "unsigned"]
DriftResponseDecision = Literal["accept", "retrain"]


# --------------------------------------------------------------------------- errors


class EventError(ValueError):
    """The one error type for bad events, so callers (CLI, engine) catch a single class.

    `message` is lowercase and already names the field, `field` is the dotted path of the
    first problem, `line` is the 1-based JSONL line when known, and `details` lists the
    remaining problems as `(field, message)` pairs.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        details: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line
        self.details: list[tuple[str, str]] = list(details)

    def __str__(self) -> str:
        text = self.message if self.line is None else f"line {self.line}: {self.message}"
        if self.details:
            more = len(self.details)
            text += f" (and {more} more problem{'s' if more > 1 else ''})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments would otherwise be lost when pickled across processes.
        return (_rebuild_error, (self.message, self.field, self.line, tuple(self.details)))

    def at_line(self, line: int) -> EventError:
        """Return a copy located at `line` (the parser does not know line numbers)."""
        return EventError(self.message, field=self.field, line=line, details=self.details)

    @classmethod
    def from_problems(cls, problems: Sequence[tuple[str, str]]) -> EventError:
        """Build from `(field, message)` pairs; the first is the headline, `""` = no field."""
        field, message = problems[0]
        return cls(message, field=field or None, details=problems[1:])

    @classmethod
    def from_validation(
        cls, exc: ValidationError, model: type[BaseModel], prefix: str = ""
    ) -> EventError:
        """Translate a pydantic error into our lowercase, dotted-path form."""
        return cls.from_problems(validation_problems(exc, model, prefix))


def _rebuild_error(
    message: str, field: str | None, line: int | None, details: tuple[tuple[str, str], ...]
) -> EventError:
    return EventError(message, field=field, line=line, details=details)


def suggestion(word: str, choices: Sequence[str] | Mapping[str, Any]) -> str:
    """`"; did you mean `x`?"` for the closest choice, or `""` — typos are the common case."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def validation_problems(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[tuple[str, str]]:
    """`(dotted path, message)` for each pydantic error, paths prefixed by `prefix`."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _dotted(((prefix,) if prefix else ()) + loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            hint = suggestion(str(loc[-1]), known) if known else ""
            text = f"unknown field{hint}"
        elif kind == "missing":
            text = "field required"
        else:
            raw = error["msg"]
            text = raw[:1].lower() + raw[1:]
            if kind not in _NO_INPUT_ECHO:
                text += _echo(error.get("input"))
        problems.append((path, f"`{path}`: {text}" if path else text))
    return problems


_NO_INPUT_ECHO = frozenset({"naive_timestamp", "numeric_timestamp", "model_type", "dict_type"})


def _echo(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f" (got `{json.dumps(shown)}`)"
    if value is None or isinstance(value, bool | int | float):
        return f" (got `{json.dumps(value)}`)"
    return ""


def _dotted(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names of the (nested) model found at `loc`, for "did you mean" on typos."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(part)
        if info is None:
            return []
        current = _nested_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- timestamps


def _aware_utc(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Reject naive and numeric timestamps, normalise to UTC.

    A naive time in an audit trail is ambiguous (whose wall clock?), and pydantic would
    otherwise guess whether a number is seconds or milliseconds since the epoch.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError(
            "numeric_timestamp",
            "timestamps must be ISO 8601 strings with a timezone, not numbers",
        )
    result = handler(value)
    if result is None:
        return None
    if result.tzinfo is None or result.utcoffset() is None:
        raise PydanticCustomError(
            "naive_timestamp",
            "timestamp `{value}` has no timezone; add `Z` or an offset such as `+00:00`",
            {"value": str(value)},
        )
    return result.astimezone(UTC)


class _Model(BaseModel):
    """Shared config: typos are errors, NaN never reaches a policy, field docs feed the spec."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)


class _Attributes(_Model):
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""


# --------------------------------------------------------------------------- envelope


class Actor(_Model):
    """Who (person or service account) caused the event; policies check `roles`."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    """Stable identity, e.g. an e-mail or service-account id."""
    name: str | None = None
    """Display name, for audit reports."""
    roles: list[str] = Field(default_factory=list)
    """Roles held at the time of the event (as asserted by the emitting system)."""


class SubjectRef(_Model):
    """The entity the event is about; its kind must match the event type's subject kind."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(min_length=1)
    """Entity kind, e.g. `dataset` or `model_version`."""
    id: str = Field(min_length=1)
    """Entity id within that kind."""


class Event(_Model):
    """The envelope shared by every event; `attributes` is checked per `type` by the catalog."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    """Globally unique event id, used for idempotency and audit references."""
    type: str
    """Event type from the catalogue, e.g. `model.deployed`."""
    time: datetime
    """When it happened; must carry a timezone and is normalised to UTC."""
    actor: Actor
    subject: SubjectRef
    attributes: dict[str, Any] = Field(default_factory=dict)
    """Type-specific payload."""

    check_time = field_validator("time", mode="wrap")(_aware_utc)


# --------------------------------------------------------------------------- nested records


class ESignature(_Model):
    """An Ed25519 electronic signature over the e-signature manifest (spec/esign.md)."""

    algorithm: Literal["ed25519"] = "ed25519"
    key_id: str
    """Registry id of the signer's public key."""
    value: str
    """Base64 signature over the RFC 8785 bytes of the manifest."""


class _Signed(_Model):
    """Fields shared by every signed record: what was signed and whether it verified."""

    record_digest: str | None = None
    """`sha256:` digest of the reviewed record (the subject and its lineage) the signature
    covers, so it cannot be moved to another record (21 CFR 11.70)."""
    review: str | None = None
    """Review item the signature answers, if any."""
    signature: ESignature | None = None
    """The electronic signature; `null` for an unsigned record."""
    signature_status: SignatureStatus = "unsigned"
    """Set by the engine at intake, never taken from the input: `verified` against the signer
    registry, `invalid` (see `signature_problem`), `unverified` (signed, but no registry was
    configured) or `unsigned`."""
    signature_problem: str | None = None
    """Why the signature did not verify (engine-set)."""


class Approval(_Signed):
    """An electronic signature on a model version (21 CFR Part 11 style meaning)."""

    signer: str
    """Identity of the person signing."""
    signer_name: str | None = None
    """Printed name of the signer, as shown on the signature manifestation."""
    role: str
    """Role in which the signer signs, e.g. `qa`."""
    meaning: ApprovalMeaning
    """What the signature means."""
    time: datetime
    """When it was signed (the event time)."""
    comment: str | None = None
    """Free-text remark recorded with the signature."""

    check_time = field_validator("time", mode="wrap")(_aware_utc)


class Override(_Signed):
    """A justified, signed exception to one rule, optionally time-limited."""

    rule: str
    """Qualified id of the overridden rule, e.g. `gxp.deploy.requires_qa`."""
    signer: str
    """Identity of the person granting the override (the event actor)."""
    role: str
    """Role in which the override is granted."""
    justification: str
    """Why the rule may be bypassed; required for the audit trail."""
    time: datetime
    """When it was granted (the event time)."""
    expires_at: datetime | None = None
    """After this instant the override no longer applies; `null` means no expiry."""

    check_times = field_validator("time", "expires_at", mode="wrap")(_aware_utc)


class DriftBreach(_Model):
    """An open drift-threshold breach; closed by a later non-breaching evaluation."""

    monitor: str
    """Name of the monitor (job) that computed the statistic."""
    feature: str
    """Input feature (or `prediction`) the statistic is about."""
    metric: str
    """Drift statistic, e.g. `psi` or `ks`."""
    value: float | None
    """Observed value of the statistic; `null` when it could not be computed."""
    threshold: float
    """Configured limit that `value` is compared with."""
    time: datetime
    """When the breach was (last) observed."""

    check_time = field_validator("time", mode="wrap")(_aware_utc)


class DriftResponse(_Signed):
    """A person's signed decision on a drift breach: accept it as acceptable variance
    (justified, until an expiry) or require retraining."""

    monitor: str
    """Monitor whose breach is answered."""
    feature: str
    """Feature of the breach, or `*` for every breach of the monitor."""
    metric: str
    """Metric of the breach, or `*` for every metric."""
    decision: DriftResponseDecision
    """`accept` (acceptable variance) or `retrain` (the model must not be promoted)."""
    justification: str
    """Why; required for the audit trail."""
    signer: str
    """Identity of the person deciding (the event actor)."""
    signer_name: str | None = None
    """Printed name of the signer."""
    role: str
    """Role in which the decision is signed."""
    time: datetime
    """When it was decided (the event time)."""
    expires_at: datetime | None = None
    """An acceptance lapses here; `null` means no expiry."""

    check_times = field_validator("time", "expires_at", mode="wrap")(_aware_utc)


class Target(_Model):
    """Where a model is (to be) deployed."""

    environment: str
    """Deployment environment, e.g. `staging` or `production`; becomes the model's stage."""
    endpoint: str | None = None
    """Serving endpoint name."""
    region: str | None = None
    """Data-residency region of the serving infrastructure."""


class Deployment(_Model):
    """A completed deployment of a model version."""

    environment: str
    """Environment the model now serves in."""
    endpoint: str | None = None
    """Serving endpoint name."""
    region: str | None = None
    """Data-residency region of the serving infrastructure."""
    time: datetime
    """When the deployment completed (the event time)."""

    check_time = field_validator("time", mode="wrap")(_aware_utc)


class DirectIdentifier(_Model):
    """A column of a checked dataset that holds (or is named like) a direct identifier."""

    column: str
    """Column name (the values themselves are never recorded)."""
    kind: str
    """`name`, `email`, `phone`, `mrn`, `date_of_birth`, `ssn`, `ip_address` or
    `street_address` (spec/privacy.md)."""
    name_match: bool = False
    """The column name points to the kind."""
    share: float | None = None
    """Share of the sampled non-null values matching the kind's pattern; `null` when values
    were not matched (not a text column, or no pattern for the kind)."""


class DatasetPrivacy(_Model):
    """The latest privacy assessment of a dataset, recorded by `dataset.privacy_assessed`."""

    data_digest: str | None = None
    """Content digest of the data the checks ran on: `sha256:` + hex of the file's bytes
    (named apart from the dataset's own `digest`, which release rules compare it with)."""
    source: str | None = None
    """The file that was checked, for the audit trail."""
    rows: int
    """Rows checked."""
    quasi_identifiers: list[str] = Field(default_factory=list)
    """Columns k-anonymity was computed over; empty for an aggregated table."""
    k: int | None = None
    """Size of the smallest equivalence class; `null` when not computed or without rows."""
    classes: int | None = None
    """Number of equivalence classes."""
    sensitive: str | None = None
    """Sensitive attribute l-diversity was computed for; `null` when none was declared."""
    l: int | None = None  # noqa: E741 - the letter is the name of the property
    """Distinct l: the fewest distinct sensitive values in any equivalence class."""
    entropy_l: float | None = None
    """Entropy l: the smallest exp(entropy) of the sensitive values over the classes."""
    direct_identifiers: list[DirectIdentifier] = Field(default_factory=list)
    """Columns found to hold direct identifiers; empty when none were found."""
    aggregated: bool = False
    """The data checked is an aggregated table (one row per cell, with a count)."""
    min_cell_size: int | None = None
    """Smallest positive cell count; `null` when no cell-size check ran."""
    small_cells: int | None = None
    """Cells with a count below the checker's threshold; `null` when no check ran."""
    assessed_at: datetime
    """When the assessment was recorded (the event time)."""
    assessed_by: str
    """Who ran it (the event actor)."""

    check_time = field_validator("assessed_at", mode="wrap")(_aware_utc)


# --------------------------------------------------------------------------- entities


class Dataset(_Model):
    """A registered data set (one version) with its governance metadata."""

    id: str
    name: str | None = None
    """Human-readable name shared by all versions."""
    version: str | None = None
    uri: str | None = None
    """Storage location."""
    digest: str | None = None
    """Content digest pinning the exact bytes, e.g. `sha256:...`."""
    classification: Classification | None = None
    """Sensitivity class; `PII`/`PHI` trigger privacy rules."""
    deidentified: bool = False
    """Whether direct identifiers were removed before registration."""
    deidentification_method: str | None = None
    """E.g. `hipaa-safe-harbor` or `expert-determination`."""
    allowed_purposes: list[str] = Field(default_factory=list)
    """Purposes the data may be used for (purpose limitation)."""
    consent_scope: list[str] = Field(default_factory=list)
    """Uses the data subjects consented to."""
    region: str | None = None
    """Where the data resides (data residency)."""
    owner: str | None = None
    """Accountable data owner."""
    row_count: int | None = None
    """Number of records, for small-cell / re-identification rules."""
    quasi_identifiers: list[str] = Field(default_factory=list)
    """Columns that could re-identify subjects in combination."""
    derived_from: list[Annotated[str, Ref("dataset")]] = Field(default_factory=list)
    """Parent datasets, so policies can follow provenance."""
    registered_at: datetime | None = None
    """When the dataset was first registered."""
    privacy: DatasetPrivacy | None = None
    """The latest `dataset.privacy_assessed`; `null` until one is recorded."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""

    check_time = field_validator("registered_at", mode="wrap")(_aware_utc)


class FeatureSet(_Model):
    """A materialised feature set and the datasets it was computed from."""

    id: str
    name: str | None = None
    version: str | None = None
    inputs: list[Annotated[str, Ref("dataset")]] = Field(default_factory=list)
    """Datasets the features were computed from."""
    code_commit: Annotated[str, Ref("code_commit")] | None = None
    """Commit of the pipeline code, for reproducibility (a `code_commit` entity once
    `code.committed` registers it; the full SHA is what matches)."""
    created_at: datetime | None = None
    """First materialisation time."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""

    check_time = field_validator("created_at", mode="wrap")(_aware_utc)


class TrainingRun(_Model):
    """One training (or fine-tuning) run: its inputs, purpose, code and outcome."""

    id: str
    name: str | None = None
    inputs: list[Annotated[str, Ref("dataset")]] = Field(default_factory=list)
    """Datasets read directly by the run."""
    feature_sets: list[Annotated[str, Ref("feature_set")]] = Field(default_factory=list)
    """Feature sets read by the run (their own `inputs` give indirect lineage)."""
    purpose: str | None = None
    """Declared purpose; checked against datasets' `allowed_purposes`."""
    code_commit: Annotated[str, Ref("code_commit")] | None = None
    """Commit of the training code, for reproducibility (a `code_commit` entity once
    `code.committed` registers it; the full SHA is what matches)."""
    image: str | None = None
    """Container image reference (ideally digest-pinned)."""
    parameters: dict[str, str] = Field(default_factory=dict)
    """Hyperparameters, as strings so that values are recorded exactly as passed."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Final metrics from `run.completed`."""
    status: Literal["running", "completed", "failed"] | None = None
    """`running` from `run.started` until `run.completed` reports the outcome."""
    started_by: str | None = None
    """Actor of `run.started`."""
    started_at: datetime | None = None
    """Time of `run.started`."""
    ended_at: datetime | None = None
    """Time of `run.completed`."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""

    check_times = field_validator("started_at", "ended_at", mode="wrap")(_aware_utc)


class CodeCommit(_Model):
    """One commit of source code (id = the full commit SHA), as a git adapter read it.

    `parents` are plain SHAs, not references: following them would make every ancestor
    commit part of a model's lineage (`upstream`), which is history, not provenance."""

    id: str
    repository: str | None = None
    """Repository the commit was read from (its remote URL or name)."""
    author: str | None = None
    """Author identity (e-mail): a workforce identity, recorded as is."""
    author_name: str | None = None
    authored_at: datetime | None = None
    committer: str | None = None
    """Committer identity (e-mail)."""
    committer_name: str | None = None
    committed_at: datetime | None = None
    summary: str | None = None
    """First line of the commit message."""
    parents: list[str] = Field(default_factory=list)
    """Full SHAs of the parent commits (none for a root commit)."""
    tree: str | None = None
    """SHA of the commit's tree: the exact content of the code."""
    ref: str | None = None
    """Branch or tag the commit was last read from, e.g. `refs/heads/main`."""
    signed: bool = False
    """The commit carries a signature (git reports one, valid or not)."""
    signature_verified: bool = False
    """git verified the signature with a key of known validity (`%G?` = `G`)."""
    signature: str | None = None
    """What git reported, e.g. `good`, `bad`, `good, unknown validity`, `unsigned`."""
    signer: str | None = None
    """Signer as git reports it (`%GS`), when signed."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""

    check_times = field_validator("authored_at", "committed_at", mode="wrap")(_aware_utc)


class ModelVersion(_Model):
    """A registered model version with its sign-offs, overrides, drift and deployments."""

    id: str
    name: str | None = None
    version: str | None = None
    training_run: Annotated[str, Ref("training_run")] | None = None
    """Run that produced the model, the start of its lineage."""
    created_by: str | None = None
    """Actor of the first `model.registered`."""
    created_at: datetime | None = None
    """When the model version was first registered."""
    artifact_digest: str | None = None
    """Digest of the model artifact, so sign-offs pin exact bytes."""
    intended_use: str | None = None
    """Intended-use statement (what the model may and may not be used for)."""
    stage: str | None = None
    """`none` after registration, then the environment of the latest deployment."""
    approvals: list[Approval] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    drift_breaches: list[DriftBreach] = Field(default_factory=list)
    """Currently open breaches, at most one per (monitor, feature, metric)."""
    drift_responses: list[DriftResponse] = Field(default_factory=list)
    """Signed decisions on drift breaches, oldest first."""
    deployments: list[Deployment] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""

    check_time = field_validator("created_at", mode="wrap")(_aware_utc)


class PredictionBatch(_Model):
    """A batch-inference job: which model scored which data."""

    id: str
    model_version: Annotated[str, Ref("model_version")] | None = None
    """Model version that produced the predictions."""
    endpoint: str | None = None
    input_dataset: Annotated[str, Ref("dataset")] | None = None
    """Dataset that was scored."""
    row_count: int | None = None
    """Number of rows scored."""
    patient_ids: list[Annotated[str, Sensitive("patient")]] = Field(default_factory=list)
    """Patients the batch scored, as keyed pseudonyms (never raw identifiers)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form user labels; never interpreted by the engine."""


# --------------------------------------------------------------------------- attributes


class DatasetRegistered(_Attributes):
    """Attributes of `dataset.registered` (the dataset's fields; `name` required)."""

    name: str
    version: str | None = None
    uri: str | None = None
    digest: str | None = None
    classification: Classification | None = None
    deidentified: bool = False
    deidentification_method: str | None = None
    allowed_purposes: list[str] = Field(default_factory=list)
    consent_scope: list[str] = Field(default_factory=list)
    region: str | None = None
    owner: str | None = None
    row_count: int | None = None
    quasi_identifiers: list[str] = Field(default_factory=list)
    derived_from: list[Annotated[str, Ref("dataset")]] = Field(default_factory=list)
    registered_at: datetime | None = None
    """Defaults to the event time."""

    check_time = field_validator("registered_at", mode="wrap")(_aware_utc)


class DatasetAccessed(_Attributes):
    """Attributes of `dataset.accessed`."""

    purpose: str
    """Why the data is being read; checked against `allowed_purposes`/`consent_scope`."""
    region: str | None = None
    """Where the data will be processed."""
    job: str | None = None
    """Id of the requesting job or notebook."""
    patient_ids: list[Annotated[str, Sensitive("patient")]] = Field(default_factory=list)
    """Patients (ids or MRNs) whose records the access returns. Sensitive: stored and logged
    only as keyed pseudonyms."""


class DatasetPrivacyAssessed(_Attributes):
    """Attributes of `dataset.privacy_assessed` (written by `policyengine privacy check`)."""

    data_digest: str | None = None
    """Content digest of the data the checks ran on (`sha256:` + hex of the file's bytes);
    release rules require it to equal the dataset's registered `digest`."""
    source: str | None = None
    rows: int
    """Rows checked."""
    quasi_identifiers: list[str] = Field(default_factory=list)
    """Columns k-anonymity was computed over; empty for an aggregated table."""
    k: int | None = None
    classes: int | None = None
    sensitive: str | None = None
    l: int | None = None  # noqa: E741 - the letter is the name of the property
    entropy_l: float | None = None
    direct_identifiers: list[DirectIdentifier] = Field(default_factory=list)
    aggregated: bool = False
    min_cell_size: int | None = None
    small_cells: int | None = None


class DatasetReleased(_Attributes):
    """Attributes of `dataset.released`."""

    recipient: str
    """Who receives the data (an organisation or person outside the controlled
    environment)."""
    purpose: str
    """Why it is shared; checked against `allowed_purposes`."""
    aggregated: bool = False
    """The release is an aggregated table (counts per cell) rather than record-level data:
    cell sizes apply instead of k-anonymity."""


class FeaturesMaterialized(_Attributes):
    """Attributes of `features.materialized`."""

    name: str
    version: str | None = None
    inputs: list[Annotated[str, Ref("dataset")]] = Field(default_factory=list)
    code_commit: Annotated[str, Ref("code_commit")] | None = None


class CodeCommitted(_Attributes):
    """Attributes of `code.committed` (the commit's fields; the subject id is the full SHA)."""

    repository: str
    """Repository the commit was read from (its remote URL or name)."""
    author: str
    """Author identity (e-mail): a workforce identity, recorded as is."""
    author_name: str | None = None
    """Author's display name."""
    authored_at: datetime
    """Author date."""
    committer: str | None = None
    """Committer identity (e-mail)."""
    committer_name: str | None = None
    """Committer's display name."""
    committed_at: datetime
    """Commit date (also the event time)."""
    summary: str
    """First line of the commit message."""
    parents: list[str] = Field(default_factory=list)
    """Full SHAs of the parent commits; plain ids, not lineage references."""
    tree: str | None = None
    """SHA of the commit's tree."""
    ref: str | None = None
    """Branch or tag the commit was read from, e.g. `refs/heads/main`."""
    signed: bool = False
    """git reports a signature, valid or not."""
    signature_verified: bool = False
    """git verified the signature with a key of known validity (`%G?` = `G`)."""
    signature: str | None = None
    """git's verdict, e.g. `good`, `bad`, `good, unknown validity`, `unsigned`."""
    signer: str | None = None
    """Signer as git reports it (`%GS`)."""

    check_times = field_validator("authored_at", "committed_at", mode="wrap")(_aware_utc)


class RunStarted(_Attributes):
    """Attributes of `run.started`."""

    name: str | None = None
    inputs: list[Annotated[str, Ref("dataset")]] = Field(default_factory=list)
    feature_sets: list[Annotated[str, Ref("feature_set")]] = Field(default_factory=list)
    purpose: str
    code_commit: Annotated[str, Ref("code_commit")] | None = None
    image: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)


class RunCompleted(_Attributes):
    """Attributes of `run.completed`."""

    status: Literal["completed", "failed"] = "completed"
    """Outcome of the run."""
    metrics: dict[str, float] = Field(default_factory=dict)


class ModelRegistered(_Attributes):
    """Attributes of `model.registered`."""

    name: str
    version: str
    training_run: Annotated[str, Ref("training_run")] | None = None
    artifact_digest: str | None = None
    intended_use: str | None = None


class _SignedAttributes(_Attributes):
    record_digest: str | None = None
    """`sha256:` digest of the reviewed record the signature covers (spec/esign.md)."""
    review: str | None = None
    """Review item the signature answers, if any."""
    signature: ESignature | None = None
    """The Ed25519 e-signature over the manifest; `null` for an unsigned record."""
    signature_status: SignatureStatus = "unsigned"
    """Set by the engine at intake from the signer registry; a value in the input is
    replaced."""
    signature_problem: str | None = None
    """Why the signature did not verify (engine-set)."""


class ApprovalRecorded(_SignedAttributes):
    """Attributes of `approval.recorded`."""

    signer: str
    signer_name: str | None = None
    role: str
    meaning: ApprovalMeaning
    comment: str | None = None


class OverrideRecorded(_SignedAttributes):
    """Attributes of `override.recorded` (the signer is the event actor)."""

    rule: str
    """Qualified id of the rule being overridden."""
    role: str
    """Role in which the override is granted."""
    justification: str = Field(min_length=1)
    expires_at: datetime | None = None

    check_time = field_validator("expires_at", mode="wrap")(_aware_utc)


class ModelPromotionRequested(_Attributes):
    """Attributes of `model.promotion_requested`."""

    to_stage: str
    """Requested registry stage, e.g. `staging` or `production`."""


class ModelDeployRequested(_Attributes):
    """Attributes of `model.deploy_requested`."""

    target: Target
    """Where the model is to be deployed."""


class ModelDeployed(_Attributes):
    """Attributes of `model.deployed`."""

    target: Target
    """Where the model now serves."""


class PredictionBatchCompleted(_Attributes):
    """Attributes of `prediction.batch_completed`."""

    model_version: Annotated[str, Ref("model_version")]
    endpoint: str | None = None
    input_dataset: Annotated[str, Ref("dataset")] | None = None
    row_count: int | None = None
    patient_ids: list[Annotated[str, Sensitive("patient")]] = Field(default_factory=list)
    """Patients (ids or MRNs) the batch scored. Sensitive: stored and logged only as keyed
    pseudonyms."""


class DriftEvaluated(_Attributes):
    """Attributes of `drift.evaluated`."""

    monitor: str
    feature: str
    metric: str
    value: float | None
    """The statistic; `null` when it could not be computed (no data, a constant reference),
    which a monitor reports as a breach: missing evidence is never a pass."""
    threshold: float
    breached: bool
    """Whether `value` is beyond `threshold` (decided by the monitor)."""
    baseline: str | None = None
    """Reference window or dataset the statistic was computed against."""
    condition: str | None = None
    """What must hold when there is no drift, e.g. `psi < 0.2` (from the monitor policy)."""
    p_value: float | None = None
    """The test's p-value where the metric is a statistical test."""


class DriftResponseRecorded(_SignedAttributes):
    """Attributes of `drift.response_recorded` (the signer is the event actor)."""

    monitor: str
    feature: str = "*"
    """Feature of the breach answered; `*` answers every breach of the monitor."""
    metric: str = "*"
    decision: DriftResponseDecision
    justification: str = Field(min_length=1)
    role: str
    """Role in which the decision is signed."""
    expires_at: datetime | None = None
    """An acceptance lapses here."""

    check_time = field_validator("expires_at", mode="wrap")(_aware_utc)


class ReviewEscalated(_Attributes):
    """Attributes of `review.escalated`."""

    review: str
    """Id of the overdue review item."""
    rule: str
    """Qualified id of the rule that required the review."""
    roles: list[str] = Field(default_factory=list)
    """Roles that were asked to review."""
    deadline: datetime
    """When the review was due."""
    pending_event: str | None = None
    """Id of the event whose decision waits on the review."""

    check_time = field_validator("deadline", mode="wrap")(_aware_utc)
