"""The HTTP decision API (FastAPI on Starlette): `create_app(settings)` builds it.

Routes are versioned under `/v1` (metrics at `/metrics`, where Prometheus looks). Handlers
read raw bodies so size limits hold before anything is parsed and every error can point at
the exact field (RFC 9457 problem details, see `problems.py`); all deciding happens in
`DecisionService`, the same code an embedding application would call.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyengine import __version__
from policyengine.events import EventError, parse_event
from policyengine.events.pseudonym import Pseudonymiser, load_pseudonym_key, require_pseudonymised
from policyengine.log.errors import LogError
from policyengine.log.records import parse_record
from policyengine.log.tlog import TransparencyLog
from policyengine.runtime.values import format_timestamp
from policyengine.server import openapi as docs
from policyengine.server.drift import gauge_value, parse_drift_request, run_drift
from policyengine.server.jsonlog import LOGGER
from policyengine.server.metrics import CONTENT_TYPE, Metrics
from policyengine.server.problems import PROBLEM_JSON, Problem, event_errors
from policyengine.server.reviews import ReviewDesk, parse_flag, parse_now, parse_status
from policyengine.server.service import Decided, DecisionService, Where
from policyengine.server.settings import ServerSettings

__all__ = ["create_app"]

JSON = "application/json"
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-seq")
TEXT = "text/plain; charset=utf-8"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# ---------------------------------------------------------------- responses


def _json(obj: Any, status: int = 200) -> Response:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type=JSON)


def _problem_response(problem: Problem, instance: str | None = None) -> Response:
    return Response(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


# ---------------------------------------------------------------- request bodies


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes before reading them when it can."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise Problem(
                400, "invalid-request", "Bad request", "`Content-Length` is not a number"
            ) from None
        if length > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "body-too-large",
        "Request body too large",
        f"the request body is larger than this server's limit of {limit} bytes; send fewer"
        " events per request",
        max_bytes=limit,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number `{text}` is out of range")
    return value


def _parse_json(data: bytes, line: int | None = None) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, finite numbers (what canonical JSON can log)."""
    where: dict[str, Any] = {"pointer": "#"}
    if line is not None:
        where["line"] = line
    try:
        return json.loads(
            data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite
        )
    except UnicodeDecodeError as exc:
        detail = f"the request body is not UTF-8 (byte {exc.start})"
    except json.JSONDecodeError as exc:
        detail = f"the request body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        if line is not None:
            detail = f"line {line} is not JSON: {exc.msg} at column {exc.colno}"
    except ValueError as exc:
        detail = f"the request body is not accepted JSON: {exc}"
    raise Problem(
        400, "invalid-json", "Malformed JSON", detail, errors=[{**where, "detail": detail}]
    )


def _invalid(errors: list[dict[str, Any]], n_events: int) -> Problem:
    first = errors[0]["detail"]
    more = len(errors) - 1
    detail = first if not more else f"{first} (and {more} more problem{'s' if more > 1 else ''})"
    if n_events > 1:
        detail = f"the request was rejected whole, nothing was decided: {detail}"
    return Problem(422, "invalid-event", "Invalid event", detail, errors=errors)


def _validate(
    items: list[tuple[Any, Where]],
    limit: int,
    pseudonyms: Pseudonymiser | None = None,
    storing: bool = False,
) -> tuple[list[dict[str, Any]], list[Where]]:
    """Validate every event (reporting all problems at once) and refuse repeated ids."""
    if not items:
        raise Problem(
            422,
            "invalid-request",
            "No events",
            "the request holds no events",
            errors=[{"pointer": "#", "detail": "at least one event is needed"}],
        )
    if len(items) > limit:
        raise Problem(
            422,
            "too-many-events",
            "Too many events",
            f"the request holds {len(items)} events; this server takes at most {limit} per request",
            errors=[{"pointer": "#", "detail": f"at most {limit} events"}],
            max_events=limit,
        )
    events: list[dict[str, Any]] = []
    where: list[Where] = []
    errors: list[dict[str, Any]] = []
    first_seen: dict[str, str] = {}
    for obj, (base, line) in items:
        try:
            event = parse_event(obj)
            if pseudonyms is not None or storing:
                # before anything is judged, logged or echoed back: patient identifiers
                # never reach the decision, the log or the response
                event = require_pseudonymised(event, pseudonyms)
        except EventError as err:
            errors.extend(event_errors(err, base, line))
            continue
        event_id = str(event["id"])
        if event_id in first_seen:
            entry: dict[str, Any] = {
                "pointer": base.rstrip("/") + "/id",
                "detail": f"`id`: `{event_id}` appears twice in this request (first at"
                f" {first_seen[event_id]})",
            }
            if line is not None:
                entry["line"] = line
            errors.append(entry)
            continue
        first_seen[event_id] = base if line is None else f"line {line}"
        events.append(event)
        where.append((base, line))
    if errors:
        raise _invalid(errors, len(items))
    return events, where


def _ndjson_items(data: bytes) -> list[tuple[Any, Where]]:
    items: list[tuple[Any, Where]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            items.append((_parse_json(raw, number), ("#", number)))
    return items


# ---------------------------------------------------------------- middleware


class _Observe:
    """Per request: a request id, one JSON log line, HTTP metrics, and a 500 problem for any
    unexpected exception (logged with its traceback, never with the request body)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logging.getLogger(LOGGER + ".access")
        self.errors = logging.getLogger(LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500
        sent = 0
        response_started = False
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, sent, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, observing_send)
        except Exception as exc:
            self.errors.error(
                "unhandled error",
                exc_info=exc,
                extra={"fields": {"event": "unhandled_error", "request_id": request_id}},
            )
            if not response_started:
                problem = Problem(
                    500,
                    "internal-error",
                    "Internal error",
                    f"an unexpected error occurred; it was logged with request id {request_id}",
                )
                await _send_problem(observing_send, problem, scope.get("path"))
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope["method"]
            seconds = time.perf_counter() - started
            self.metrics.observe_request(method, route, status, seconds)
            if self.logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                self.logger.info(
                    "request",
                    extra={
                        "fields": {
                            "event": "http_request",
                            "request_id": request_id,
                            "method": method,
                            "route": route,
                            "path": scope.get("path"),
                            "status": status,
                            "duration_ms": round(seconds * 1000, 3),
                            "bytes_in": received,
                            "bytes_out": sent,
                            "client": client[0] if client else None,
                        }
                    },
                )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


async def _send_problem(send: Send, problem: Problem, instance: str | None) -> None:
    body = problem.body(instance)
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- the app


class _Raw(APIRoute):
    """A route FastAPI documents like any other but calls with the bare `Request`.

    Handlers parse their own input (size limits first, problem pointers into the body), so
    FastAPI's per-request dependency resolution would be pure overhead on the hot path;
    parameters are documented through `openapi_extra` instead.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return handler


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    """An OpenAPI path parameter of type string (routes take them raw; see `_Raw`)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_EVENT_ID = _path_parameter("event_id", "The id of the event the decision judged.")
_INDEX = {
    "name": "index",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
    "description": "A specific leaf among the event's decisions (default: the latest).",
}
_DIGITS = re.compile(r"[0-9]{1,18}")
_REVIEW_ID = _path_parameter("review_id", "The review item's id (`rv-…`).")
_MODEL_VERSION = _path_parameter(
    "model_version", "The model version the drift response is about (its entity id)."
)
_REVIEW_QUERY = [
    {
        "name": "status",
        "in": "query",
        "required": False,
        "schema": {
            "type": "string",
            "enum": ["open", "approved", "rejected", "overridden", "all"],
            "default": "open",
        },
    },
    {
        "name": "overdue",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False},
        "description": "Only open items past their deadline.",
    },
    {
        "name": "now",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"},
        "description": "Judge `overdue` at this time (default: the server's clock).",
    },
]


def _index_param(request: Request) -> int | None:
    raw = request.query_params.get("index")
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise Problem(
            422,
            "invalid-parameter",
            "Invalid parameter",
            f"`index` must be a non-negative integer, got `{raw}`",
            errors=[{"parameter": "index", "detail": "must be a non-negative integer"}],
        )
    return int(raw)


OPENLINEAGE_PATH = "/api/v1/lineage"


def _openlineage_receiver(
    decide: Callable[[list[tuple[Any, Where]]], Coroutine[Any, Any, Decided]],
    token: str | None,
) -> ASGIApp | None:
    """The OpenLineage receiver when its adapter package is installed (it ships with
    policyengine; a trimmed install may leave it out)."""
    try:
        from policyengine_openlineage.receiver import OpenLineageReceiver
    except ImportError:
        return None

    async def on_events(events: list[dict[str, Any]]) -> None:
        await decide([(e, (f"#/{i}", None)) for i, e in enumerate(events)])

    receiver: ASGIApp = OpenLineageReceiver(on_events, token=token, path=OPENLINEAGE_PATH)
    return receiver


def create_app(settings: ServerSettings, *, service: DecisionService | None = None) -> FastAPI:
    """The ASGI app. Pure: nothing is compiled, opened or started until the app's lifespan
    starts (or pass a `service` that is already open, as `policyengine serve` does so that
    start-up errors are reported before it binds a port)."""
    svc = service if service is not None else DecisionService(settings)
    limit = settings.max_body_bytes
    max_events = settings.max_batch_events
    token = settings.token.encode("utf-8") if settings.token is not None else None
    pseudonyms = (
        load_pseudonym_key(settings.pseudonym_key_path)
        if settings.pseudonym_key_path is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not svc.opened:
            await run_in_threadpool(svc.open)
        svc.start()
        loop = asyncio.get_running_loop()
        hup = getattr(signal, "SIGHUP", None)
        handling = False
        if hup is not None and threading.current_thread() is threading.main_thread():
            try:
                loop.add_signal_handler(hup, svc.request_reload)
                handling = True
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            yield
        finally:
            if handling and hup is not None:
                loop.remove_signal_handler(hup)
            await run_in_threadpool(svc.close)

    app = FastAPI(
        title="policyengine decision API",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url=None,  # Swagger UI loads scripts from a CDN: not in a validated system
        redoc_url=None,
    )
    app.state.service = svc
    desk = ReviewDesk(svc)
    app.router.route_class = _Raw
    app.add_middleware(_Observe, metrics=svc.metrics)

    def authorize(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            given = value.strip().encode("utf-8")
            if scheme.lower() == "bearer" and hmac.compare_digest(given, token):
                return
        challenge = 'Bearer realm="policyengine"'
        if header is not None:
            challenge += ', error="invalid_token"'
        raise Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "this endpoint needs `Authorization: Bearer <token>`"
            if header is None
            else "the bearer token is not valid",
            headers={"WWW-Authenticate": challenge},
        )

    def ready(strict: bool = True) -> None:
        reasons = svc.readiness(strict=strict)
        if reasons:
            raise Problem(
                503,
                "not-ready",
                "Not ready",
                "; ".join(reasons),
                headers={"Retry-After": "1"},
            )

    def need_log() -> TransparencyLog:
        if svc.log is None:
            raise Problem(
                404,
                "no-log",
                "No decision log",
                "this server keeps no decision log; start it with `--log` and `--key` to record"
                " decisions and read them back",
            )
        return svc.log

    async def decide(items: list[tuple[Any, Where]]) -> Decided:
        events, where = _validate(items, max_events, pseudonyms, settings.log_path is not None)
        ready(strict=False)
        return await svc.decide(events, where)

    # ------------------------------------------------------------ handlers

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return _problem_response(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kinds = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed")}
        kind, title = kinds.get(exc.status_code, ("http-error", "HTTP error"))
        detail = (
            f"no route `{request.method} {request.url.path}`; the API lives under `/v1` (see"
            " `/v1/openapi.json`)"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        problem = Problem(exc.status_code, kind, title, detail, headers=exc.headers or {})
        return _problem_response(problem, request.url.path)

    @app.post(
        "/v1/evaluate",
        response_model=docs.EvaluateResponse,
        summary="Decide one event",
        tags=["decisions"],
    )
    async def evaluate(request: Request) -> Response:
        """Decide one lineage event with the serving bundle, update entity state (unless
        denied) and, with a log, record the decision before answering. The response carries
        the full decision with every triggered rule's explanation."""
        authorize(request)
        body = _parse_json(await _read_body(request, limit))
        one: list[tuple[Any, Where]] = [(body, ("#", None))]
        decided = await decide(one)
        verdict = decided.verdicts[0]
        return _json(
            {"bundle_digest": decided.bundle_digest, "recorded": decided.recorded}
            | verdict.to_dict()
        )

    @app.post(
        "/v1/evaluate/batch",
        response_model=docs.BatchResponse,
        summary="Decide a batch of events",
        tags=["decisions"],
    )
    async def evaluate_batch(request: Request) -> Response:
        """Decide `{"events": [...]}` in order as one unit: every event is validated first
        (one invalid event rejects the batch, nothing decided), later events see the state
        earlier ones left, and all decisions are recorded in one durable append."""
        authorize(request)
        body = _parse_json(await _read_body(request, limit))
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise Problem(
                422,
                "invalid-request",
                "Invalid batch",
                'a batch is a JSON object `{"events": [...]}`',
                errors=[
                    {
                        "pointer": "#/events" if isinstance(body, dict) else "#",
                        "detail": "expected an array of events under `events`",
                    }
                ],
            )
        extra = sorted(set(body) - {"events"})
        if extra:
            raise Problem(
                422,
                "invalid-request",
                "Invalid batch",
                f"unknown field `{extra[0]}` in the batch object",
                errors=[{"pointer": f"#/{extra[0]}", "detail": "unknown field"}],
            )
        items: list[tuple[Any, Where]] = [
            (e, (f"#/events/{i}", None)) for i, e in enumerate(body["events"])
        ]
        decided = await decide(items)
        return _json(
            {
                "bundle_digest": decided.bundle_digest,
                "recorded": decided.recorded,
                "decisions": [v.to_dict() for v in decided.verdicts],
            }
        )

    @app.post(
        "/v1/events",
        response_model=docs.IntakeResponse,
        summary="Post lineage events (intake)",
        tags=["lineage"],
    )
    async def post_events(request: Request) -> Response:
        """Lineage intake: one event, a JSON array of events, or JSON Lines
        (`Content-Type: application/x-ndjson`). Events are decided and recorded like a
        batch; the answer is a compact acknowledgement per event, without explanations."""
        authorize(request)
        data = await _read_body(request, limit)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        items: list[tuple[Any, Where]]
        if ctype in NDJSON_TYPES:
            items = _ndjson_items(data)
        else:
            body = _parse_json(data)
            if isinstance(body, list):
                items = [(e, (f"#/{i}", None)) for i, e in enumerate(body)]
            else:
                items = [(body, ("#", None))]
        decided = await decide(items)
        return _json(
            {
                "bundle_digest": decided.bundle_digest,
                "recorded": decided.recorded,
                "accepted": len(decided.verdicts),
                "results": [
                    {
                        "event_id": v.event_id,
                        "outcome": v.outcome,
                        "log_index": v.log_index,
                        "already_recorded": v.already_recorded,
                    }
                    for v in decided.verdicts
                ],
            }
        )

    def stored(event_id: str, index: int | None) -> tuple[int, list[int]]:
        log = need_log()
        indices: list[int] = log.find(event_id)
        if not indices:
            raise Problem(
                404,
                "decision-not-found",
                "Decision not found",
                f"the decision log holds no decision for event id `{event_id}`",
            )
        if index is None:
            return indices[-1], indices
        if index not in indices:
            raise Problem(
                404,
                "decision-not-found",
                "Decision not found",
                f"leaf {index} is not a decision on event `{event_id}` (its leaves:"
                f" {', '.join(map(str, indices))})",
                errors=[{"parameter": "index", "detail": "not a leaf of this event"}],
            )
        return index, indices

    @app.get(
        "/v1/decisions/{event_id:path}/proof",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "A tlog-proof."}},
        summary="Inclusion proof of a decision",
        tags=["log"],
        openapi_extra={"parameters": [_EVENT_ID, _INDEX]},
    )
    async def get_proof(request: Request) -> Response:
        """A C2SP tlog-proof (text) of the decision's leaf against the latest signed
        checkpoint: leaf bytes, inclusion proof and checkpoint in one file, checkable offline
        with `policyengine log verify-proof` and the log's verifier key."""
        event_id, index = request.path_params["event_id"], _index_param(request)

        def read() -> str:
            leaf, _ = stored(event_id, index)
            try:
                text: str = need_log().prove(leaf).to_text()
            except LogError as exc:
                raise Problem(409, "not-provable", "Not provable yet", str(exc)) from None
            return text

        return Response(await run_in_threadpool(read), media_type=TEXT)

    @app.get(
        "/v1/decisions/{event_id:path}",
        response_model=docs.StoredDecision,
        summary="Read a recorded decision",
        tags=["log"],
        openapi_extra={"parameters": [_EVENT_ID, _INDEX]},
    )
    async def get_decision(request: Request) -> Response:
        """The decision recorded for an event id (the latest, or the leaf `index`), read
        back from the decision log."""
        event_id, index = request.path_params["event_id"], _index_param(request)

        def read() -> dict[str, Any]:
            leaf, indices = stored(event_id, index)
            rec = parse_record(need_log().leaf(leaf), leaf)
            return {
                "event_id": event_id,
                "log_index": leaf,
                "indices": indices,
                "recorded_at": rec["time"],
                "decision": rec.get("decision"),
            }

        return _json(await run_in_threadpool(read))

    @app.post(
        "/v1/drift",
        response_model=docs.DriftResponse,
        summary="Run a drift monitor",
        tags=["monitoring"],
    )
    async def post_drift(request: Request) -> Response:
        """Run the serving bundle's monitor (by `monitor` id or the `model` it watches) over
        `reference` and `current` data — inline `{"columns": {...}}` or paths under the
        server's `--data-root` — about `model_version`. Every check becomes a
        `drift.evaluated` event, decided and (with a log) recorded before the answer, so an
        open breach blocks promotion through the ordinary rules."""
        authorize(request)
        body = _parse_json(await _read_body(request, limit))
        parsed = parse_drift_request(body, settings.data_root)
        runs, events = await run_in_threadpool(run_drift, svc.bundle, parsed)
        for run in runs:
            svc.metrics.drift_runs.labels(run.monitor.id, "breach" if run.breached else "ok").inc()
            for check in run.checks:
                labels = (run.monitor.id, check.feature, check.condition.metric)
                svc.metrics.drift_value.labels(
                    run.monitor.id, parsed.model_version, check.feature, check.condition.metric
                ).set(gauge_value(check.value))
                if check.breached:
                    svc.metrics.drift_breaches.labels(*labels).inc()
        items: list[tuple[Any, Where]] = [
            (e, (f"#/events/{i}", None)) for i, e in enumerate(events)
        ]
        decided = await decide(items)
        return _json(
            {
                "bundle_digest": decided.bundle_digest,
                "recorded": decided.recorded,
                "breached": any(r.breached for r in runs),
                "monitors": [r.to_dict() for r in runs],
                "decisions": [v.to_dict() for v in decided.verdicts],
            }
        )

    @app.get("/v1/log", response_model=docs.LogInfo, summary="Decision log status", tags=["log"])
    async def get_log(_request: Request) -> Response:
        """The log's origin, verifier key (for checking proofs), size and signed size."""

        def read() -> dict[str, Any]:
            log = need_log()
            cp = log.latest_checkpoint()
            return {
                "origin": log.origin,
                "verifier_key": log.verifier_key,
                "size": log.size(),
                "checkpoint": None if cp is None else {"size": cp.size},
            }

        return _json(await run_in_threadpool(read))

    @app.get(
        "/v1/log/checkpoint",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "A signed note."}},
        summary="Latest signed checkpoint",
        tags=["log"],
    )
    async def get_checkpoint(_request: Request) -> Response:
        """The latest signed checkpoint (a C2SP signed note, text)."""

        def read() -> str:
            cp = need_log().latest_checkpoint()
            if cp is None:
                raise Problem(
                    404, "no-checkpoint", "No checkpoint", "the log has no signed checkpoint yet"
                )
            return cp.note

        return Response(await run_in_threadpool(read), media_type=TEXT)

    @app.get("/v1/bundle", response_model=docs.BundleInfo, summary="Serving bundle", tags=["ops"])
    async def get_bundle(_request: Request) -> Response:
        """The bundle serving now and the outcome of the last reload attempt."""
        b = svc.bundle
        rules = [
            {
                "id": r.id,
                "layer": r.layer,
                "severity": r.severity,
                "enforcement": r.enforcement,
                "title": r.title,
                "on": list(r.on),
            }
            for r in sorted(b.rules.values(), key=lambda r: r.id)
        ]
        return _json(
            {
                "digest": b.digest,
                "engine_version": b.engine_version,
                "files": sorted(b.files),
                "rules": rules,
                "last_reload": svc.last_reload,
            }
        )

    def review_time(request: Request) -> datetime:
        now = parse_now(request.query_params.get("now"), {"parameter": "now"})
        return now if now is not None else svc.review_now()

    @app.get(
        "/v1/reviews",
        response_model=docs.ReviewList,
        summary="List review items",
        tags=["reviews"],
        openapi_extra={"parameters": _REVIEW_QUERY},
    )
    async def list_reviews(request: Request) -> Response:
        """Review items by opening time: `status` (default `open`, or `all`), and with
        `overdue=true` only open items past their deadline."""
        status = parse_status(request.query_params.get("status"))
        overdue = parse_flag("overdue", request.query_params.get("overdue"))
        now = review_time(request)
        items = await run_in_threadpool(desk.listing, status, overdue, now)
        return _json({"now": format_timestamp(now), "reviews": items})

    @app.post(
        "/v1/reviews/escalate",
        response_model=docs.EscalateResponse,
        summary="Escalate overdue reviews",
        tags=["reviews"],
    )
    async def escalate_reviews(request: Request) -> Response:
        """Escalate every open item past its deadline that was not escalated yet, as
        `policyengine review escalate` does: a `review.escalated` event per item (model
        versions), judged (a denial of the review process) and logged; items stay open for
        signatures. Run it on a schedule; optional body `{"now": TIMESTAMP}`."""
        authorize(request)
        data = await _read_body(request, limit)
        body = _parse_json(data) if data.strip() else {}
        if not isinstance(body, dict) or set(body) - {"now"}:
            raise Problem(
                422,
                "invalid-request",
                "Invalid request",
                'the body is empty or `{"now": TIMESTAMP}`',
                errors=[{"pointer": "#", "detail": "only `now` is accepted"}],
            )
        now = parse_now(body.get("now"), {"pointer": "#/now"}) or svc.review_now()
        ready(strict=False)
        escalated = await run_in_threadpool(desk.escalate, now)
        return _json({"now": format_timestamp(now), "escalated": escalated})

    @app.get(
        "/v1/reviews/{review_id}",
        response_model=docs.ReviewDetail,
        summary="Read a review item",
        tags=["reviews"],
        openapi_extra={"parameters": [_REVIEW_ID, _REVIEW_QUERY[2]]},
    )
    async def get_review(request: Request) -> Response:
        """One item with its history (signatures, rechecks, escalation), plus the
        `record_digest` a signature on its subject must carry now and the `record` it
        covers: what a client needs to sign without the server holding any key."""
        rid = request.path_params["review_id"]
        now = review_time(request)
        return _json(await run_in_threadpool(desk.show, rid, now))

    @app.post(
        "/v1/reviews/{review_id}/signatures",
        response_model=docs.ReviewActionResponse,
        summary="Sign a review item",
        tags=["reviews"],
        openapi_extra={"parameters": [_REVIEW_ID]},
    )
    async def sign_review(request: Request) -> Response:
        """Answer an open item with a signed `approval.recorded` (approve or reject) or
        `override.recorded` event on its subject naming it in `attributes.review`. The
        signature is verified against the signer registry, judged and logged; unless the
        policies refuse it, the pending event is judged again and the item closed by that
        outcome (`allow` approves, `deny` rejects, `review_required` leaves it open).
        `409` for a closed item, `404` for an unknown one, `422` for an event that does
        not answer it."""
        authorize(request)
        rid = request.path_params["review_id"]
        body = _parse_json(await _read_body(request, limit))
        events, _where = _validate([(body, ("#", None))], 1, pseudonyms, storing=True)
        ready(strict=False)
        return _json(await run_in_threadpool(desk.sign, rid, events[0]))

    @app.post(
        "/v1/models/{model_version}/drift-responses",
        response_model=docs.DriftResponseResult,
        summary="Record a signed drift response",
        tags=["reviews"],
        openapi_extra={"parameters": [_MODEL_VERSION]},
    )
    async def respond_to_drift(request: Request) -> Response:
        """Record a signed `drift.response_recorded` (accept a breach until a date, or
        require retraining) on this model version, as `policyengine review drift` does: the
        signature is verified against the signer registry, judged and logged; unless the
        policies refuse it, every open review item of the model is judged again and closed
        by that outcome. `422` for an event on another subject or of another type."""
        authorize(request)
        model_version = request.path_params["model_version"]
        body = _parse_json(await _read_body(request, limit))
        events, _where = _validate([(body, ("#", None))], 1, pseudonyms, storing=True)
        ready(strict=False)
        return _json(await run_in_threadpool(desk.respond_to_drift, model_version, events[0]))

    receiver = _openlineage_receiver(decide, settings.token)
    if receiver is not None:
        # OpenLineage's HTTP transport posts here unchanged (Airflow, Spark, dbt, …); the
        # events are decided and recorded like `POST /v1/events`.
        for path in (OPENLINEAGE_PATH, OPENLINEAGE_PATH + "/batch"):
            app.router.routes.append(
                Route(path, endpoint=receiver, methods=["POST"], include_in_schema=False)
            )

    @app.get("/v1/health", response_model=docs.Health, summary="Liveness", tags=["ops"])
    async def health(_request: Request) -> Response:
        """200 while the process serves HTTP."""
        return _json({"status": "ok"})

    @app.get("/v1/ready", response_model=docs.Ready, summary="Readiness", tags=["ops"])
    async def readiness(_request: Request) -> Response:
        """200 when decisions can be taken (bundle loaded, log writable); 503 otherwise."""
        ready()
        return _json(
            {"status": "ready", "bundle_digest": svc.bundle.digest, "recording": svc.recording}
        )

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text."}},
        summary="Prometheus metrics",
        tags=["ops"],
    )
    async def metrics(_request: Request) -> Response:
        """Prometheus text exposition of the service's metrics."""
        # off the event loop: the review gauges read SQLite
        return Response(await run_in_threadpool(svc.metrics.render), media_type=CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        return docs.build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
