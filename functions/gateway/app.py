"""The gateway's FastAPI app: `/v1/chat/completions`, `/v1/models`, and a readiness probe."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from shared.domain.config import ApiKey, ConfigSnapshot
from shared.domain.resolve import list_models, resolve_model
from shared.formats.openai_chat import parse_json_object, validate_chat_request, wants_stream
from shared.services.auth import authenticate, guard_browser_origin, presented_key, require_api_key
from shared.services.chat import JsonReply
from shared.services.container import Services
from shared.web.disconnect import ClientGone, unless_disconnected
from shared.web.errors import add_error_handlers
from shared.web.request_id import RequestIdMiddleware
from shared.web.streaming import RelayResponse

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _snapshot(request: Request) -> ConfigSnapshot:
    return await _services(request).config.current()


SnapshotDep = Annotated[ConfigSnapshot, Depends(_snapshot)]


async def _authenticate(request: Request, snapshot: SnapshotDep) -> ApiKey | None:
    settings = _services(request).settings
    required = require_api_key(
        snapshot.settings.require_api_key, default=settings.require_api_key, cloud=settings.cloud
    )
    guard_browser_origin(request.headers.get("origin"), required=required)
    return authenticate(presented_key(request.headers, request.query_params.get("key")), snapshot, required=required)


ApiKeyDep = Annotated[ApiKey | None, Depends(_authenticate)]


async def chat_completions(request: Request, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    body = parse_json_object(await request.body())
    validate_chat_request(body)
    stream = wants_stream(body, request.headers.get("accept"))
    route = resolve_model(body["model"], snapshot)
    try:
        reply = await unless_disconnected(request.receive, _services(request).chat.complete(body, route, stream=stream))
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request"; nobody is there to read it
    if isinstance(reply, JsonReply):
        return Response(reply.body, status_code=reply.status, media_type="application/json", headers=reply.headers)
    return RelayResponse(reply.chunks, on_close=reply.aclose, headers={**_SSE_HEADERS, **reply.headers})


def _model_object(model_id: str, owner: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


async def models(snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    data = [_model_object(mid, owner) for mid, owner in list_models(snapshot)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(model: str, snapshot: SnapshotDep, key: ApiKeyDep) -> Response:
    """`GET /v1/models/{id}` (ids contain slashes: `ds/deepseek-chat`); 404 when it does not resolve."""
    route = resolve_model(model, snapshot)
    return Response(orjson.dumps(_model_object(route.public_model, route.provider_id)), media_type="application/json")


async def healthz() -> Response:
    """Readiness for Lambda Web Adapter and local probes; says nothing about configuration."""
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="OmniRoute Edge gateway", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/v1/models/{model:path}", retrieve_model, methods=["GET"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    add_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    return app
