"""Synthetic workloads shared by the benchmarks (fixed seeds, public-free data)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from policyengine.events import MemoryStateStore, parse_event
from policyengine.events.catalog import entity_from_attributes

T0 = datetime(2026, 3, 1, tzinfo=UTC)

OVERSIGHT_RULE = """
package bench.oversight

const REVIEWER_ROLES = {"qa", "domain_expert"}

/// Production deployment needs two distinct approvers with role qa or domain_expert,
/// none of them the model's author, and PHI training data must be de-identified.
rule production_deploy_oversight {
  layer oversight
  severity critical
  enforce hard
  on model.deploy_requested
  when event.target.environment == "production"
  require count(distinct a.signer for a in subject.approvals
                where a.meaning == "approved"
                  and a.role in REVIEWER_ROLES
                  and a.signer != subject.created_by) >= 2
  require all(d in subject.training_run.inputs where d.classification == "PHI": d.deidentified)
  message "{subject.name} v{subject.version} needs 2 independent approvals and de-identified PHI"
}
"""


def seeded_state(n_models: int = 200, seed: int = 7) -> tuple[MemoryStateStore, list[str]]:
    """Models with 0–4 approvals (some by the author, some rejected) over PHI/non-PHI data."""
    rnd = random.Random(seed)
    state = MemoryStateStore()
    roles = ["qa", "domain_expert", "ml_engineer", "data_steward"]
    meanings = ["approved", "approved", "approved", "rejected", "reviewed"]
    for i in range(40):
        phi = i % 3 == 0
        state.put(
            "dataset",
            f"ds-{i}",
            entity_from_attributes(
                "dataset",
                f"ds-{i}",
                {
                    "name": f"assay-{i}",
                    "classification": "PHI" if phi else "internal",
                    "deidentified": (not phi) or rnd.random() < 0.8,
                },
            ),
        )
    models = []
    for m in range(n_models):
        run = f"run-{m}"
        state.put(
            "training_run",
            run,
            entity_from_attributes(
                "training_run",
                run,
                {
                    "inputs": [f"ds-{rnd.randrange(40)}" for _ in range(rnd.randint(1, 3))],
                    "purpose": "research",
                },
            ),
        )
        author = f"u{rnd.randrange(10)}"
        approvals = [
            {
                "signer": f"u{rnd.randrange(10)}",
                "role": rnd.choice(roles),
                "meaning": rnd.choice(meanings),
                "time": T0 - timedelta(days=rnd.randrange(60)),
            }
            for _ in range(rnd.randint(0, 4))
        ]
        mv = f"mv-{m}"
        state.put(
            "model_version",
            mv,
            entity_from_attributes(
                "model_version",
                mv,
                {
                    "name": f"tox-{m}",
                    "version": "1",
                    "created_by": author,
                    "training_run": run,
                    "approvals": approvals,
                },
            ),
        )
        models.append(mv)
    return state, models


def deploy_events(models: list[str], n: int, seed: int = 11) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        env = "production" if rnd.random() < 0.8 else "staging"
        out.append(
            parse_event(
                {
                    "id": f"ev-{i}",
                    "type": "model.deploy_requested",
                    "time": (T0 + timedelta(seconds=i)).isoformat(),
                    "actor": {"id": "deployer"},
                    "subject": {"kind": "model_version", "id": rnd.choice(models)},
                    "attributes": {"target": {"environment": env}},
                }
            )
        )
    return out


# ---------------------------------------------------------------- larger bundles

_TEMPLATES = [
    # (event type, rule body) — {i} makes each rule distinct.
    (
        "model.deploy_requested",
        'when event.target.environment == "production"\n'
        "  require count(distinct a.signer for a in subject.approvals\n"
        '                where a.meaning == "approved" and a.signer != subject.created_by) >= {k}',
    ),
    (
        "model.deploy_requested",
        'require none(a in subject.approvals where a.meaning == "rejected"'
        " and now - a.time < {k}d)",
    ),
    (
        "model.deploy_requested",
        "require has(subject.training_run) and len(subject.training_run.inputs) >= {k0}",
    ),
    (
        "model.deploy_requested",
        "require all(d in subject.training_run.inputs where d.classification in "
        '{{"PHI", "PII"}}: d.deidentified)',
    ),
    (
        "run.started",
        "require all(d in event.inputs: event.purpose in d.allowed_purposes"
        ' or d.classification == "public" or d.classification == "internal")',
    ),
    (
        "run.started",
        'require has(event.code_commit) and matches(event.code_commit ?? "", "^[0-9a-f]{{7,40}}$")',
    ),
    ("run.started", "require len(event.inputs) <= {k}0"),
    (
        "dataset.accessed",
        'require event.purpose in subject.allowed_purposes or subject.classification == "public"',
    ),
    (
        "dataset.accessed",
        'require not (subject.classification == "PHI" and not subject.deidentified)'
        ' or event.purpose == "treatment"',
    ),
    ("approval.recorded", "require event.signer != subject.created_by"),
    (
        "approval.recorded",
        'require event.role in {{"qa", "domain_expert", "qa_lead"}} or event.meaning == "reviewed"',
    ),
    ("prediction.batch_completed", "require (event.row_count ?? 0) < {k}00000"),
    ("prediction.batch_completed", 'require starts_with(event.endpoint ?? "", "ep-")'),
]

_LAYERS = ["privacy", "monitoring", "audit", "oversight"]
_ENFORCE = ["hard", "advisory", "hard", "hard"]


def bundle_source(n_rules: int, package: str = "bench.generated") -> str:
    """`n_rules` realistic rules cycling through the templates above."""
    out = [f"package {package}\n"]
    for i in range(n_rules):
        etype, body = _TEMPLATES[i % len(_TEMPLATES)]
        k = 1 + (i // len(_TEMPLATES)) % 5
        out.append(
            f"/// Generated rule {i}.\n"
            f"rule r{i:04d} {{\n"
            f"  layer {_LAYERS[i % 4]}\n"
            f"  severity high\n"
            f"  enforce {_ENFORCE[i % 4]}\n"
            f"  on {etype}\n"
            f"  {body.format(k=k, k0=k - 1)}\n"
            f'  message "rule {i} failed for {{event.id}}"\n'
            f"}}\n"
        )
    return "\n".join(out)


def mixed_events(models: list[str], n: int, seed: int = 13) -> list[dict[str, Any]]:
    """A stream mixing every event type the generated rules look at."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = (T0 + timedelta(seconds=i)).isoformat()
        r = rnd.random()
        mv = rnd.choice(models)
        if r < 0.35:
            ev = {
                "type": "model.deploy_requested",
                "subject": {"kind": "model_version", "id": mv},
                "attributes": {"target": {"environment": rnd.choice(["production", "staging"])}},
            }
        elif r < 0.55:
            ev = {
                "type": "run.started",
                "subject": {"kind": "training_run", "id": f"run-x{i}"},
                "attributes": {
                    "inputs": [f"ds-{rnd.randrange(40)}" for _ in range(2)],
                    "purpose": rnd.choice(["research", "treatment"]),
                    "code_commit": rnd.choice(["9fceb02", "main", None]),
                },
            }
        elif r < 0.75:
            ev = {
                "type": "dataset.accessed",
                "subject": {"kind": "dataset", "id": f"ds-{rnd.randrange(40)}"},
                "attributes": {"purpose": rnd.choice(["research", "marketing"])},
            }
        elif r < 0.9:
            ev = {
                "type": "approval.recorded",
                "subject": {"kind": "model_version", "id": mv},
                "attributes": {
                    "signer": f"u{rnd.randrange(10)}",
                    "role": rnd.choice(["qa", "ml_engineer"]),
                    "meaning": "approved",
                },
            }
        else:
            ev = {
                "type": "prediction.batch_completed",
                "subject": {"kind": "prediction_batch", "id": f"pb-{i}"},
                "attributes": {
                    "model_version": mv,
                    "endpoint": rnd.choice(["ep-1", "x"]),
                    "row_count": rnd.randrange(1000),
                },
            }
        ev.update({"id": f"mx-{i}", "time": t, "actor": {"id": "svc"}})
        if ev["attributes"].get("code_commit", 0) is None:
            del ev["attributes"]["code_commit"]
        out.append(parse_event(ev))
    return out
