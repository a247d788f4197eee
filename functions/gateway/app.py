"""The gateway's FastAPI app: `/v1/chat/completions`, `/v1/models`, and a readiness probe.

Handlers record their phases in `request.state.timing` (sent back as `Server-Timing`) and the request's
`Outcome` in `request.state.outcome` (read by the end-of-request hook for metrics).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from shared.domain.config import ApiKey, ConfigSnapshot
from shared.domain.plan import Leaf, leaves, plan_for
from shared.domain.resolve import list_models
from shared.domain.routing import StoredReply
from shared.errors import GatewayError, NotFound
from shared.formats.anthropic_messages import validate_request as validate_anthropic_request
from shared.formats.errors import ErrorFormat
from shared.formats.openai_chat import parse_json_object, validate_chat_request, wants_stream
from shared.formats.openai_responses import validate_request as validate_responses_request
from shared.providers.spec import WireFormat
from shared.services.accounting import BudgetStatus, build_event, request_log_entry
from shared.services.auth import authenticate, guard_browser_origin, presented_key, require_api_key
from shared.services.chat import JsonReply, Outcome, StreamReply, header_safe
from shared.services.container import Services
from shared.web.disconnect import ClientGone, unless_disconnected
from shared.web.errors import add_error_handlers
from shared.web.request_id import FinishHook, RequestIdMiddleware, Timing
from shared.web.streaming import RelayResponse

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def error_format(request: Request) -> ErrorFormat:
    """Errors in the caller's own shape, told by the route it called."""
    path = request.url.path
    if path.startswith("/v1/messages"):
        return ErrorFormat.ANTHROPIC
    if path.startswith("/v1beta/"):
        return ErrorFormat.GEMINI
    return ErrorFormat.OPENAI


_GEMINI_ACTIONS = {"generateContent": False, "streamGenerateContent": True}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _timing(request: Request) -> Timing:
    timing: Timing = request.state.timing
    return timing


async def _snapshot(request: Request) -> ConfigSnapshot:
    started = time.perf_counter()
    snapshot = await _services(request).config.current()
    _timing(request).since("config", started)
    return snapshot


SnapshotDep = Annotated[ConfigSnapshot, Depends(_snapshot)]


async def _authenticate(request: Request, snapshot: SnapshotDep) -> ApiKey | None:
    started = time.perf_counter()
    settings = _services(request).settings
    required = require_api_key(
        snapshot.settings.require_api_key, default=settings.require_api_key, cloud=settings.cloud
    )
    guard_browser_origin(request.headers.get("origin"), required=required)
    key = authenticate(presented_key(request.headers, request.query_params.get("key")), snapshot, required=required)
    _timing(request).since("auth", started)
    return key


ApiKeyDep = Annotated[ApiKey | None, Depends(_authenticate)]


async def chat_completions(request: Request, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    body = parse_json_object(await request.body())
    validate_chat_request(body)
    return await _complete(request, snapshot, key, body, WireFormat.OPENAI)


async def responses(request: Request, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    """OpenAI Responses (Codex CLI, the OpenAI SDKs' `responses`), to any upstream."""
    body = parse_json_object(await request.body())
    validate_responses_request(body)
    return await _complete(request, snapshot, key, body, WireFormat.RESPONSES)


async def messages(request: Request, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    """Anthropic Messages (Claude Code and the Anthropic SDKs), to any upstream."""
    body = parse_json_object(await request.body())
    validate_anthropic_request(body)
    return await _complete(request, snapshot, key, body, WireFormat.ANTHROPIC)


async def gemini_generate(target: str, request: Request, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    """Gemini `models/{model}:generateContent` and `:streamGenerateContent` (google-genai and Gemini CLI
    style clients), to any upstream. The model id may contain slashes (`ds/deepseek-chat`)."""
    model, _, action = target.rpartition(":")
    if action not in _GEMINI_ACTIONS or not model:
        raise NotFound(
            f"Unknown Gemini method `{target}`: use models/<model>:generateContent or :streamGenerateContent."
        )
    body = parse_json_object(await request.body())
    return await _complete(request, snapshot, key, body, WireFormat.GEMINI, model=model, stream=_GEMINI_ACTIONS[action])


async def count_tokens(request: Request, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    body = parse_json_object(await request.body())
    validate_anthropic_request(body)
    # A combo or alias counts with its first target: the one a request would try first.
    route = leaves(plan_for(body["model"], snapshot).root)[0].route
    reply = await _services(request).chat.count_tokens(body, route, client_headers=request.headers)
    return Response(reply.body, status_code=reply.status, media_type="application/json", headers=reply.headers)


async def _complete(
    request: Request,
    snapshot: ConfigSnapshot,
    key: ApiKey | None,
    body: dict[str, Any],
    client: WireFormat,
    *,
    model: str | None = None,
    stream: bool | None = None,
) -> Response:
    if stream is None:
        stream = wants_stream(body, request.headers.get("accept"))
    services = _services(request)
    settings = snapshot.settings
    timing = _timing(request)
    started = time.perf_counter()
    requested = model or body["model"]
    plan = plan_for(requested, snapshot)
    timing.since("route", started)
    request.state.provider = plan.root.route.provider_id if isinstance(plan.root, Leaf) else "combo"
    budget = await services.accounting.check_budget(key) if key is not None and key.budget is not None else None
    replay = services.replay
    scope = replay.idempotency_scope(request.headers, key.id if key else None, request.url.path, await request.body())
    owner = secrets.token_hex(8) if scope is not None else ""  # this request, as its claim's holder
    if scope is not None:
        stored = await replay.begin(scope, owner)
        if stored is not None:
            return _stored_response(stored, {"x-omniroute-idempotent": "true"})
    cache_key = replay.cache_key(client, requested, body, settings, request.headers, stream=stream)
    if cache_key is not None:
        cached = await replay.lookup(cache_key)
        if cached is not None:
            if scope is not None:
                await replay.finish(scope, owner, cached)
            return _stored_response(cached, {"x-omniroute-cache": "HIT"})
    started = time.perf_counter()
    began = time.time()
    account = _Accounting(request, services, snapshot, key, body, requested, plan.combo, client, stream, began)
    try:
        call = services.router.complete(
            plan,
            body,
            stream=stream,
            client=client,
            settings=settings,
            client_headers=request.headers,
            client_model=model,
        )
        reply = await unless_disconnected(request.receive, call)
    except ClientGone:
        if scope is not None:
            await replay.finish(scope, owner, None)
        return Response(status_code=499)  # nginx's "client closed request"; nobody is there to read it
    except BaseException as exc:
        if scope is not None:
            await replay.finish(scope, owner, None)
        if isinstance(exc, GatewayError):
            account.failed(exc)
        raise
    finally:
        # to the upstream's first chunk on a stream, its whole answer otherwise, fallbacks included; also
        # when it failed (a 502/504 then shows how long the upstream took to fail)
        timing.since("upstream", started)
    request.state.outcome = reply.outcome
    request.state.provider = reply.outcome.provider
    if plan.combo is not None:
        reply.headers["x-omniroute-combo"] = header_safe(plan.combo)
    # this key's own business: added to the answer only, never to what the shared response cache keeps
    warning = {"x-omniroute-budget-warning": _budget_warning(budget)} if budget and budget.warnings else {}
    if isinstance(reply, JsonReply):
        account.answered(reply)
        if cache_key is not None:
            reply.headers["x-omniroute-cache"] = "MISS"
            await replay.store(cache_key, StoredReply(reply.status, reply.headers, reply.body), settings.cache_ttl)
        elif request.headers.get("x-omniroute-no-cache", "").strip().lower() == "true":
            reply.headers["x-omniroute-cache"] = "MISS"  # asked not to use the cache: not from it
        if scope is not None:
            await replay.finish(scope, owner, StoredReply(reply.status, reply.headers, reply.body))
        headers = {**reply.headers, **warning}
        return Response(reply.body, status_code=reply.status, media_type="application/json", headers=headers)
    progress = request.headers.get("x-omniroute-progress", "").strip().lower() == "true"
    reply = account.streaming(reply)
    chunks = reply.chunks
    if scope is not None:
        outcome = reply.outcome
        chunks = replay.recording(scope, owner, chunks, reply.headers, lambda: outcome.error is not None)
    return RelayResponse(
        chunks,
        on_close=reply.aclose,
        headers={**_SSE_HEADERS, **reply.headers, **warning},
        keepalive=settings.keepalive_interval,
        progress=progress,
    )


class _Accounting:
    """One request's usage event, recorded (queued, never awaited) when the answer is complete: a JSON
    answer at once, a stream when it closes (before its last byte goes out), a failure when it is raised."""

    __slots__ = ("body", "client", "combo", "key", "request", "requested", "services", "snapshot", "started", "stream")

    def __init__(
        self,
        request: Request,
        services: Services,
        snapshot: ConfigSnapshot,
        key: ApiKey | None,
        body: dict[str, Any],
        requested: str,
        combo: str | None,
        client: WireFormat,
        stream: bool,
        started: float,
    ) -> None:
        self.request, self.services, self.snapshot, self.key, self.body = request, services, snapshot, key, body
        self.requested, self.combo, self.client, self.stream, self.started = requested, combo, client, stream, started

    def _record(
        self, outcome: Outcome | None, status: int, ttft: float | None, attempts: int, error: str | None = None,
        answer: bytes | None = None,
    ) -> None:  # fmt: skip
        settings = self.snapshot.settings
        event = build_event(
            outcome,
            request_id=self.request.state.request_id,
            requested=self.requested,
            combo=self.combo,
            key=self.key,
            client=self.client,
            stream=self.stream,
            status=status,
            started=self.started,
            ended=time.time(),
            ttft=ttft,
            attempts=attempts,
            body=self.body,
            prices=self.snapshot.prices,
            error=error,
        )
        conn = self.snapshot.connections_by_id.get(event.connection_id or "")
        entry = request_log_entry(self.request.url.path, self.body, event, answer) if settings.request_logs else None
        self.services.accounting.record(
            event,
            key=self.key,
            conn=conn,
            retention_days=settings.usage_retention_days,
            log_entry=entry,
            log_hours=settings.request_log_hours,
        )

    def answered(self, reply: JsonReply) -> None:
        self._record(reply.outcome, reply.status, time.time(), _attempts(reply.headers), answer=reply.body)

    def failed(self, err: GatewayError) -> None:
        outcome = Outcome(provider=err.provider or "", model=self.requested) if err.provider else None
        self._record(outcome, err.http_status, None, 0, error=err.message[:500])

    def streaming(self, reply: StreamReply) -> StreamReply:
        first_byte = time.time()  # the router returns once the first chunk is ready to go
        inner = reply.aclose

        async def close() -> None:
            try:
                await inner()
            finally:
                self._record(reply.outcome, 200, first_byte, _attempts(reply.headers))

        return replace(reply, aclose=close)


def _budget_warning(budget: BudgetStatus) -> str:
    return ", ".join(f"{p.name} {100 * p.spent / p.limit:.0f}% of ${p.limit:g}" for p in budget.warnings)


def _attempts(headers: Mapping[str, str]) -> int:
    try:
        return int(headers.get("x-omniroute-attempts", "1"))
    except ValueError:
        return 1


def _stored_response(stored: StoredReply, extra: dict[str, str]) -> Response:
    headers = {k: v for k, v in stored.headers.items() if k.lower().startswith("x-omniroute-")}
    headers.update(extra)
    if stored.media_type == "text/event-stream":
        headers.update(_SSE_HEADERS)
    return Response(stored.body, status_code=stored.status, media_type=stored.media_type, headers=headers)


def _model_object(model_id: str, owner: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


async def models(snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    data = [_model_object(mid, owner) for mid, owner in list_models(snapshot)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(model: str, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    """`GET /v1/models/{id}` (ids contain slashes: `ds/deepseek-chat`); 404 when it does not resolve."""
    plan = plan_for(model, snapshot)
    if plan.combo is not None:
        return Response(orjson.dumps(_model_object(plan.combo, "combo")), media_type="application/json")
    root = plan.root
    assert isinstance(root, Leaf)
    return Response(
        orjson.dumps(_model_object(root.route.public_model, root.route.provider_id)), media_type="application/json"
    )


async def healthz() -> Response:
    """Readiness for Lambda Web Adapter and local probes; says nothing about configuration."""
    return Response(b'{"status":"ok"}', media_type="application/json")


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(services: Services, *, on_finish: FinishHook | None = None, lifespan: Lifespan | None = None) -> FastAPI:
    """The gateway app. `on_finish` runs at the end of every request (cloud metrics); `lifespan` wraps the
    process (the cloud entry point preloads configuration and closes upstream connections with it)."""
    app = FastAPI(title="OmniRoute Edge gateway", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.services = services
    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route("/v1/messages", messages, methods=["POST"])
    app.add_api_route("/v1/responses", responses, methods=["POST"])
    app.add_api_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
    app.add_api_route("/v1beta/models/{target:path}", gemini_generate, methods=["POST"])
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/v1/models/{model:path}", retrieve_model, methods=["GET"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    add_error_handlers(app, error_format)
    app.add_middleware(RequestIdMiddleware, on_finish=on_finish)
    return app
