"""A model registry's promotion endpoint, guarded by policyengine in-process with one call.

    pip install 'policyengine[server]'
    uvicorn examples.fastapi_guard:app

The embedding pattern (docs/server.md):

- compile the policy bundle once, at start-up: compiling takes milliseconds to seconds,
  deciding takes microseconds, and a `Bundle` is immutable, so one serves every request;
- share one `Engine` between threads: it keeps entity state (registrations, approvals,
  overrides) and serialises evaluations on a lock. FastAPI runs `def` endpoints in its
  threadpool, which is what the engine wants; from `async def` code, call it through
  `starlette.concurrency.run_in_threadpool` (mandatory with a decision log: appends fsync);
- inject the clock: the engine judges each event at the event's own time, and this app
  stamps events with `now()`, which tests replace with fixed instants.

Lineage events reach the same engine through `POST /lineage`, so the guard sees the
approvals and drift reviews recorded before a promotion is requested.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import policyengine

POLICIES = Path(__file__).resolve().parent.parent / "policies"


class PromotionRequest(BaseModel):
    to_stage: str
    requested_by: str
    roles: list[str] = []


def create_app(
    policies: str | Path = POLICIES,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    recorder: policyengine.DecisionRecorder | None = None,
) -> FastAPI:
    """The registry app. Pass `recorder=DecisionRecorder(TransparencyLog.open(...))` to log
    every decision, signed, before the endpoint answers."""
    engine = policyengine.Engine(
        policyengine.load_bundle(policies), clock=policyengine.event_time, recorder=recorder
    )
    stages: dict[str, str] = {}
    app = FastAPI(title="model registry (guarded by policyengine)")

    @app.post("/lineage")
    def lineage(event: dict[str, Any]) -> dict[str, str]:
        """Catalogues, trainers and signing tools post their lineage events here."""
        try:
            decision = engine.evaluate(event)
        except policyengine.EventError as err:
            raise HTTPException(422, detail=err.message) from None
        return {"event_id": decision.event_id, "outcome": decision.outcome.value}

    @app.post("/models/{model_id}/promote")
    def promote(model_id: str, request: PromotionRequest) -> dict[str, Any]:
        decision = engine.evaluate(  # the guard: one call, µs without a log
            {
                "id": f"promote-{uuid.uuid4()}",
                "type": "model.promotion_requested",
                "time": now().isoformat(),
                "actor": {"id": request.requested_by, "roles": request.roles},
                "subject": {"kind": "model_version", "id": model_id},
                "attributes": {"to_stage": request.to_stage},
            }
        )
        if decision.outcome.blocking:
            raise HTTPException(
                403,
                detail={
                    "outcome": decision.outcome.value,
                    "bundle_digest": decision.bundle_digest,
                    "failures": [{"rule": r.rule, "message": r.message} for r in decision.failures],
                },
            )
        stages[model_id] = request.to_stage  # the registry's own work, once allowed
        return {
            "model_id": model_id,
            "stage": request.to_stage,
            "outcome": decision.outcome.value,
            "bundle_digest": decision.bundle_digest,
        }

    return app


app = create_app()
