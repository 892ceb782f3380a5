"""An HTTP receiver for OpenLineage's HTTP transport, as a plain ASGI application.

Producers (the Python and Java clients, and the Airflow, Spark, dbt and Flink integrations
built on them) POST one event per request as JSON to `<url>/api/v1/lineage`, optionally
gzip-compressed (`Content-Encoding: gzip`) and with `Authorization: Bearer <api key>`; they
retry on 5xx and treat any 2xx as delivered. So pointing their transport `url` at a server
that serves this receiver needs no other change. The official Python client has no batch
endpoint; clients that batch post a JSON array to `<endpoint>/batch`, which is served too, and
an array is also accepted on the endpoint itself (for curl and replays), all or nothing.

Every event is validated and translated as the file adapter does it (`Translator`); the
canonical events (already accepted by `policyengine.events.parse_event`) are passed to
`on_events`, which decides and records them. Calls to `on_events` never overlap. Responses:
`201` with `{"received": N, "events": [ids]}`; `400`/`401`/`404`/`405`/`413`/`415`/`500` as
RFC 9457 `application/problem+json`, with an `errors` list whose `pointer` is a JSON Pointer
into the request body (`#/run/runId`) and `field` the same as a dotted path.

Framework-free on purpose (the adapter needs nothing at run time beyond `jsonschema`); in the
FastAPI server: `app.add_route("/api/v1/lineage", receiver, methods=["POST"])` (and the same
for `/api/v1/lineage/batch`), or serve it alone with `uvicorn`.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from policyengine.events import EventError, parse_event

from ._schema import Problem
from ._translate import OpenLineageError, Options, Translator

__all__ = ["DEFAULT_PATH", "MAX_BODY_BYTES", "OnEvents", "OpenLineageReceiver"]

LOGGER = logging.getLogger("policyengine.openlineage.receiver")

DEFAULT_PATH = "/api/v1/lineage"
#: Largest request body, compressed or not (Spark events with column lineage run to MBs).
MAX_BODY_BYTES = 16 * 1024 * 1024

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:policyengine:problem:"

OnEvents = Callable[[list[dict[str, Any]]], Awaitable[None] | None]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _Problem(Exception):
    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class OpenLineageReceiver:
    """ASGI app: `POST /api/v1/lineage` with an OpenLineage event → `on_events(events)`.

    `token`: when set, requests must carry `Authorization: Bearer <token>` (the clients'
    `api_key` auth). `translator`: how events are read (default: `Options.from_env()`).
    `path`: where producers post (the clients' default endpoint); `<path>/batch` takes an
    array."""

    def __init__(
        self,
        on_events: OnEvents,
        *,
        token: str | None = None,
        translator: Translator | None = None,
        path: str = DEFAULT_PATH,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.on_events = on_events
        self._token = token.encode("utf-8") if token else None
        self.translator = translator if translator is not None else Translator(Options.from_env())
        self.path = "/" + path.strip("/")
        self.max_body_bytes = max_body_bytes
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        instance = scope.get("path", "")
        try:
            status, body = await self._handle(scope, receive)
        except _Problem as problem:
            await _send_problem(send, problem, instance)
            return
        await _send(send, status, "application/json", body)

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        route = _route(scope)
        if route not in (self.path, self.path + "/batch"):
            raise _Problem(404, "not-found", "Not Found", f"no route `{scope.get('path')}`")
        if scope.get("method") != "POST":
            raise _Problem(
                405,
                "method-not-allowed",
                "Method Not Allowed",
                f"`{self.path}` accepts POST",
                headers={"Allow": "POST"},
            )
        headers = _headers(scope)
        self._authorize(headers.get("authorization"))
        media = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            raise _Problem(
                415,
                "unsupported-media-type",
                "Unsupported Media Type",
                f"send `application/json`, not `{media}`",
            )
        raw = await self._body(receive, headers.get("content-length"))
        data = self._decode(raw, headers.get("content-encoding", "identity"))
        if route != self.path and not isinstance(data, list):
            raise _Problem(
                400, "bad-request", "Bad Request", f"`{route}` takes a JSON array of events"
            )
        items, batch = (data, True) if isinstance(data, list) else ([data], False)
        events = self._translate(items, batch=batch)
        await self._deliver(events)
        body = {"received": len(items), "events": [e["id"] for e in events]}
        return 201, json.dumps(body, separators=(",", ":")).encode("utf-8")

    def _authorize(self, header: str | None) -> None:
        if self._token is None:
            return
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                value.strip().encode("utf-8"), self._token
            ):
                return
        challenge = 'Bearer realm="policyengine"'
        if header is not None:
            challenge += ', error="invalid_token"'
        raise _Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "send `Authorization: Bearer <token>` (the client's `api_key` auth)"
            if header is None
            else "the bearer token is not valid",
            headers={"WWW-Authenticate": challenge},
        )

    async def _body(self, receive: Receive, declared: str | None) -> bytes:
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Problem(400, "bad-request", "Bad Request", "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _decode(self, raw: bytes, encoding: str) -> Any:
        encoding = encoding.strip().lower()
        if encoding == "gzip":
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                raw = inflater.decompress(raw, self.max_body_bytes)
            except zlib.error as exc:
                detail = f"invalid gzip body: {exc}"
                raise _Problem(400, "bad-request", "Bad Request", detail) from None
            if inflater.unconsumed_tail:
                raise _too_large(self.max_body_bytes)
        elif encoding not in ("identity", ""):
            raise _Problem(
                415,
                "unsupported-media-type",
                "Unsupported Media Type",
                f"content encoding `{encoding}` is not supported; use gzip or none",
            )
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except UnicodeDecodeError:
            raise _Problem(400, "invalid-json", "Invalid JSON", "the body is not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise _Problem(
                400,
                "invalid-json",
                "Invalid JSON",
                f"{exc.msg} (line {exc.lineno}, column {exc.colno})",
            ) from None
        except ValueError as exc:
            raise _Problem(400, "invalid-json", "Invalid JSON", str(exc)) from None

    def _translate(self, items: list[Any], *, batch: bool) -> list[dict[str, Any]]:
        """Translate every event, or refuse the request with every problem in every event."""
        events: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        first: str | None = None
        for index, item in enumerate(items):
            prefix: tuple[int, ...] = (index,) if batch else ()
            try:
                translated = self.translator.translate(item)
            except OpenLineageError as err:
                for p in err.problems:
                    errors.append(_error(p.prefixed(prefix)))
                if first is None:
                    first = _detail(err, prefix)
                continue
            for event in translated:
                try:
                    parse_event(event)
                except EventError as err:
                    # The translation is faithful but the catalogue refuses what it says.
                    where = f"event {index}: " if batch else ""
                    for field, message in [(err.field, err.message), *err.details]:
                        errors.append(
                            {"pointer": _pointer(prefix), "field": field, "detail": message}
                        )
                    if first is None:
                        first = f"{where}translated `{event['type']}`: {err.message}"
                    continue
                events.append(event)
        if errors:
            more = len(errors) - 1
            detail = (first or "invalid event") + (
                f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
            )
            raise _Problem(
                400,
                "invalid-openlineage-event",
                "Invalid OpenLineage event",
                detail,
                errors=errors,
            )
        return events

    def _serial(self) -> asyncio.Lock:
        """A lock for the running loop (one per loop: an asyncio lock cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _deliver(self, events: list[dict[str, Any]]) -> None:
        async with self._serial():
            try:
                if inspect.iscoroutinefunction(self.on_events):
                    await self.on_events(events)
                else:
                    result = await asyncio.to_thread(self.on_events, events)
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                LOGGER.exception("on_events failed for %d events", len(events))
                raise _Problem(
                    500,
                    "internal",
                    "Internal Server Error",
                    "the events could not be recorded; retry later",
                ) from None


def _route(scope: Scope) -> str:
    """The request path below the app's mount point (Starlette keeps the full path in
    `path` and the mount prefix in `root_path`)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return "/" + path.strip("/")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _no_constants(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


def _too_large(limit: int) -> _Problem:
    return _Problem(
        413, "payload-too-large", "Payload Too Large", f"the body exceeds {limit} bytes"
    )


def _pointer(prefix: tuple[int, ...]) -> str:
    return "#/" + "/".join(str(i) for i in prefix) if prefix else "#"


def _error(problem: Problem) -> dict[str, Any]:
    return {"pointer": problem.pointer, "field": problem.path, "detail": problem.message}


def _detail(err: OpenLineageError, prefix: tuple[int, ...]) -> str:
    path = err.problems[0].prefixed(prefix).path
    text = f"`{path}`: {err.problems[0].message}" if path else err.problems[0].message
    return f"{text}; hint: {err.hint}" if err.hint else text


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send(
    send: Send, status: int, media: str, body: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = [
        (b"content-type", media.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
    ]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, problem: _Problem, instance: str) -> None:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.errors:
        body["errors"] = problem.errors[:100]
        if len(problem.errors) > 100:
            body["errors_omitted"] = len(problem.errors) - 100
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await _send(send, problem.status, PROBLEM_JSON, data, problem.headers)
