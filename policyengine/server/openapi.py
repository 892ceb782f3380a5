"""The API's OpenAPI document: FastAPI's, completed with what it cannot infer.

Handlers read raw bodies (size limits, exact problem pointers) and return prebuilt JSON, so
the schemas live here as pydantic models used only for documentation; a test validates real
responses against them, so they cannot drift from what the server sends. The event schema
is the catalogue's own (`policyengine.events.event_json_schema`), moved into `components`.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from policyengine import __version__
from policyengine.events import event_json_schema
from policyengine.server.problems import PROBLEM_JSON

__all__ = ["WRITE_OPERATIONS", "build_openapi"]

_REF = "#/components/schemas/"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValueModel(_Strict):
    expr: str
    value: Any


class RequirementModel(_Strict):
    expr: str
    status: Literal["pass", "fail", "error"]
    values: list[ValueModel]
    error: str | None = None
    message: str | None = None


class ReviewRequestModel(_Strict):
    roles: list[str] = Field(description="Roles that may answer the review.")
    within: str = Field(description="The rule's review period, e.g. `3d`.")
    deadline: str = Field(description="When the review is due.")


class RuleResultModel(_Strict):
    rule: str = Field(description="Fully qualified rule id, `package.rule`.")
    layer: Literal["privacy", "monitoring", "audit", "oversight"]
    severity: Literal["info", "low", "medium", "high", "critical"]
    enforcement: Literal["advisory", "soft", "hard"]
    status: Literal["pass", "fail", "not_applicable", "error"]
    message: str | None
    requirements: list[RequirementModel]
    refs: list[str]
    override: dict[str, Any] | None = None
    review: ReviewRequestModel | None = Field(
        None, description="Who must review and by when (a failed rule with `review by`)."
    )


class SubjectModel(_Strict):
    kind: str
    id: str


class DecisionEventModel(_Strict):
    id: str
    type: str
    time: str
    subject: SubjectModel


class DecisionModel(_Strict):
    """A decision in its canonical form (`Decision.to_dict()`), as logged."""

    event: DecisionEventModel
    outcome: Literal["allow", "allow_with_warnings", "review_required", "deny"]
    results: list[RuleResultModel] = Field(description="Every triggered rule, with why.")
    bundle_digest: str
    engine_version: str
    evaluated_at: str


class VerdictModel(_Strict):
    event_id: str
    outcome: Literal["allow", "allow_with_warnings", "review_required", "deny"]
    log_index: int | None = Field(description="Leaf index in the decision log; null unlogged.")
    already_recorded: bool = Field(
        description="The log already held a decision for this event id (a retry): that"
        " decision is returned and nothing new is decided or recorded."
    )
    decision: DecisionModel


class EvaluateResponse(VerdictModel):
    bundle_digest: str = Field(description="The bundle that judged this request.")
    recorded: bool = Field(description="Whether the server keeps a decision log.")


class BatchRequest(_Strict):
    events: list[dict[str, Any]] = Field(description="Events, decided in order as one unit.")


class BatchResponse(_Strict):
    bundle_digest: str
    recorded: bool
    decisions: list[VerdictModel]


class IntakeResult(_Strict):
    event_id: str
    outcome: Literal["allow", "allow_with_warnings", "review_required", "deny"]
    log_index: int | None
    already_recorded: bool


class IntakeResponse(_Strict):
    bundle_digest: str
    recorded: bool
    accepted: int
    results: list[IntakeResult]


class StoredDecision(_Strict):
    event_id: str
    log_index: int
    indices: list[int] = Field(description="Every leaf logged for this event id, in order.")
    recorded_at: str
    decision: DecisionModel


class CheckpointInfo(_Strict):
    size: int


class LogInfo(_Strict):
    origin: str | None
    verifier_key: str | None
    size: int
    checkpoint: CheckpointInfo | None


class RuleSummary(_Strict):
    id: str
    layer: str
    severity: str
    enforcement: str
    title: str | None
    on: list[str]


class ReloadStatus(_Strict):
    ok: bool
    reason: str
    at: float
    bundle_digest: str
    diagnostics: list[str] | None = None


class BundleInfo(_Strict):
    digest: str
    engine_version: str
    files: list[str]
    rules: list[RuleSummary]
    last_reload: ReloadStatus | None


class DriftCheck(_Strict):
    feature: str
    kind: str
    metric: str
    condition: str
    threshold: float
    value: float | str | None = Field(description='`"nan"`/`"inf"` when not finite.')
    p_value: float | str | None
    breached: bool
    note: str | None


class MonitorResult(_Strict):
    monitor: str
    title: str | None
    model_version: str | None
    baseline: str | None
    window: str
    rows: dict[str, int]
    breached: bool
    checks: list[DriftCheck]
    actions: dict[str, Any]


class DriftResponse(_Strict):
    bundle_digest: str
    recorded: bool
    breached: bool
    monitors: list[MonitorResult]
    decisions: list[dict[str, Any]]


class ReviewHistoryEntry(_Strict):
    time: str
    action: str = Field(
        description="`opened`, `approved-by`/`rejected-by`/`overridden-by` (a signature),"
        " `recheck`, `approved`/`rejected`/`overridden` (closed), `escalated`."
    )
    actor: str
    event_id: str | None = Field(description="The logged event of this step, if any.")
    detail: str | None


class ReviewItemModel(_Strict):
    """A review item (`policyengine.oversight.reviews.ReviewItem`)."""

    id: str
    subject: SubjectModel
    rule: str = Field(description="The rule whose `review by` clause opened the item.")
    roles: list[str] = Field(description="Roles that may answer it.")
    within: str
    deadline: str
    message: str | None
    status: Literal["open", "approved", "rejected", "overridden"]
    opened_at: str
    closed_at: str | None
    escalated_at: str | None
    pending_event: str = Field(description="Id of the event whose decision waits on review.")
    decision_digest: str
    history: list[ReviewHistoryEntry]
    overdue: bool


class ReviewDetail(ReviewItemModel):
    record_digest: str = Field(
        description="The `record_digest` an approval signed now must carry: the digest of"
        " the subject and its lineage as the server holds them (`attest.signed_digest`)."
    )
    record: dict[str, Any] = Field(
        description="What the signer signs off (`attest.reviewed_record`); an override's"
        ' digest is `esign.record_digest({"record": record, "terms": {...}})`.'
    )


class ReviewList(_Strict):
    now: str = Field(description="The time `overdue` was judged at.")
    reviews: list[ReviewItemModel]


class ReviewActionResponse(_Strict):
    signature: VerdictModel = Field(description="The signed event's decision, as logged.")
    recheck: VerdictModel | None = Field(
        description="The pending event judged again (`<id>~recheck-<n>`); null when the"
        " signature was refused."
    )
    review: ReviewItemModel


class Escalation(_Strict):
    review: ReviewItemModel
    decision: VerdictModel | None = Field(
        description="The `review.escalated` decision (model versions only)."
    )


class EscalateResponse(_Strict):
    now: str
    escalated: list[Escalation]


class DriftRecheck(_Strict):
    review: ReviewItemModel = Field(description="The item as the recheck left it.")
    recheck: VerdictModel = Field(
        description="The item's pending event judged again (`<id>~recheck-<n>`)."
    )


class DriftResponseResult(_Strict):
    decision: VerdictModel = Field(description="The signed drift response's decision, as logged.")
    rechecks: list[DriftRecheck] = Field(
        description="One per item open on the model version; empty when the response was refused."
    )


class Health(_Strict):
    status: Literal["ok"]


class Ready(_Strict):
    status: Literal["ready"]
    bundle_digest: str
    recording: bool


class ProblemError(BaseModel):
    model_config = ConfigDict(extra="allow")
    pointer: str | None = Field(None, description="JSON Pointer (URI fragment) into the body.")
    parameter: str | None = Field(None, description="The query or path parameter at fault.")
    line: int | None = Field(None, description="1-based line of a JSON Lines body.")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="`urn:policyengine:problem:<kind>`; see docs/server.md.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemError] | None = None


#: Operations that need the bearer token when one is configured.
WRITE_OPERATIONS = {
    ("post", "/v1/evaluate"),
    ("post", "/v1/evaluate/batch"),
    ("post", "/v1/events"),
    ("post", "/v1/drift"),
    ("post", "/v1/reviews/{review_id}/signatures"),
    ("post", "/v1/reviews/escalate"),
    ("post", "/v1/models/{model_version}/drift-responses"),
}

_DATA = {
    "oneOf": [
        {"type": "string", "description": "A data file under the server's --data-root."},
        {
            "type": "object",
            "properties": {
                "columns": {
                    "type": "object",
                    "additionalProperties": {"type": "array"},
                    "description": "Column name → values (all of equal length).",
                }
            },
            "required": ["columns"],
            "additionalProperties": False,
        },
    ]
}

_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/reviews/{review_id}/signatures"): {
        "required": True,
        "description": "A signed `approval.recorded` or `override.recorded` event on the item's"
        " subject, with `attributes.review` = the item id, `attributes.record_digest` and"
        " `attributes.signature` (see docs/server.md).",
        "content": {"application/json": {"schema": {"$ref": _REF + "Event"}}},
    },
    ("post", "/v1/models/{model_version}/drift-responses"): {
        "required": True,
        "description": "A signed `drift.response_recorded` event whose subject is this model"
        " version, with `attributes.record_digest` and `attributes.signature` (see"
        " docs/server.md).",
        "content": {"application/json": {"schema": {"$ref": _REF + "Event"}}},
    },
    ("post", "/v1/reviews/escalate"): {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "now": {
                            "type": "string",
                            "format": "date-time",
                            "description": "Escalate as of this time (default: the server's"
                            " clock).",
                        }
                    },
                    "additionalProperties": False,
                }
            }
        },
    },
    ("post", "/v1/drift"): {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "monitor": {"type": "string", "description": "Monitor id or name."},
                        "model": {"type": "string", "description": "Run the monitors of a model."},
                        "model_version": {"type": "string"},
                        "reference": _DATA,
                        "current": _DATA,
                        "time": {"type": "string", "format": "date-time"},
                    },
                    "required": ["model_version", "reference", "current"],
                    "additionalProperties": False,
                }
            }
        },
    },
    ("post", "/v1/evaluate"): {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF + "Event"}}},
    },
    ("post", "/v1/evaluate/batch"): {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"events": {"type": "array", "items": {"$ref": _REF + "Event"}}},
                    "required": ["events"],
                    "additionalProperties": False,
                }
            }
        },
    },
    ("post", "/v1/events"): {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": _REF + "Event"},
                        {"type": "array", "items": {"$ref": _REF + "Event"}},
                    ]
                }
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One event per line (JSON Lines)."}
            },
        },
    },
}

_ERRORS: dict[str, str] = {
    "400": "The body is not JSON (or not UTF-8).",
    "401": "Missing or wrong bearer token.",
    "409": "The event id was already decided for a different event (or, for a review, the"
    " item is closed).",
    "413": "The body is larger than the server's limit.",
    "422": "An event or parameter is invalid; `errors` points at each field.",
    "503": "Not ready, shutting down, or the decision log is unavailable.",
}


def _relocated_event_schema() -> dict[str, dict[str, Any]]:
    """The event schema and its `$defs`, with references rewritten into `components`."""
    schema = copy.deepcopy(event_json_schema())
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (v.replace("#/$defs/", _REF) if k == "$ref" and isinstance(v, str) else fix(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(x) for x in node]
        return node

    out = {"Event": fix(schema)}
    out.update({f"{name}": fix(d) for name, d in defs.items()})
    return out


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus request bodies, problem responses and the bearer scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title="policyengine decision API",
        version=__version__,
        description=(
            "Decide lineage events against a policy bundle, record decisions in a signed"
            " transparency log and serve proofs. See docs/server.md."
        ),
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _relocated_event_schema().items():
        schemas.setdefault(name, schema)
    problem = Problem.model_json_schema(ref_template=_REF + "{model}")
    for name, sub in problem.pop("$defs", {}).items():
        schemas[name] = sub
    schemas["Problem"] = problem
    doc["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Required on write operations when the server has a token.",
        }
    }
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": _REF + "Problem"}}}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            key = (method, path)
            if key in _BODIES:
                op["requestBody"] = _BODIES[key]
            if key in WRITE_OPERATIONS:
                op["security"] = [{"bearer": []}]
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError: we send problems
            for code, text in _ERRORS.items():
                if code in ("401", "409", "413", "400") and key not in WRITE_OPERATIONS:
                    continue
                responses[code] = {"description": text, "content": problem_content}
            responses["default"] = {"description": "Any other error.", "content": problem_content}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = doc
    return doc
