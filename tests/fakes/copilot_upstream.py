"""A fake GitHub Copilot chat API (`api.githubcopilot.com` or a plan host) over real HTTP.

Copilot serves OpenAI Chat Completions at `/chat/completions` (no `/v1`) to editors that present a
short-lived Copilot token and name themselves; this fake keeps those rules (project notes
`oauth-providers.md` §6) and answers with the OpenAI fake's deterministic model ("Hello from fake-openai: "
+ the last user text, streamed or not, tool calls included):

    POST /chat/completions              the fake model
    GET  /_fake/requests, /_fake/script  the shared control plane (`tests.fakes.control`)

- `Authorization: Bearer <copilot token>` must be the configured token (401 otherwise: a GitHub token or an
  expired Copilot token is refused the same way);
- `Copilot-Integration-Id` and `Editor-Version` are required ("bad request: missing Editor-Version header for
  IDE auth");
- content parts may only be `text` or `image_url`, and a request with an image needs
  `Copilot-Vision-Request: true`;
- a GPT-5 or o-series model refuses `max_tokens` ("Use 'max_completion_tokens' instead"), as OpenAI does.

Errors are in OpenAI's envelope. Every request is recorded (headers lowercased, body parsed).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import fake_app
from tests.fakes.openai_upstream import (
    SSE_CONTENT_TYPE,
    FakeAPIError,
    FakeUpstreamState,
    build_reply,
    canned_response,
    completion_object,
    error_payload,
    read_and_record,
    stream_frames,
)

DEFAULT_MODELS: Final[tuple[str, ...]] = ("gpt-5-mini", "gpt-5.2", "claude-sonnet-4.5", "claude-haiku-4.5", "gpt-4.1")
PART_TYPES: Final = ("text", "image_url")
_NEW_TOKEN_LIMIT: Final = re.compile(r"^(gpt-5|o\d)")


def _bad(message: str, param: str | None = None) -> FakeAPIError:
    return FakeAPIError(400, message, "invalid_request_error", param=param)


class _Handlers:
    def __init__(self, state: FakeUpstreamState) -> None:
        self.state = state

    def _check_headers(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.state.api_key:
            raise FakeAPIError(401, "unauthorized: token expired", "invalid_request_error", code="unauthorized")
        if "copilot-integration-id" not in request.headers:
            raise _bad("bad request: missing Copilot-Integration-Id header")
        if "editor-version" not in request.headers:
            raise _bad("bad request: missing Editor-Version header for IDE auth")

    def _check_body(self, request: Request, body: Any) -> tuple[str, list[Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise _bad("messages: a non-empty array is required", "messages")
        model = body.get("model")
        if not isinstance(model, str) or model not in self.state.models:
            raise FakeAPIError(
                400, "The requested model is not supported.", "invalid_request_error", code="model_not_supported"
            )
        image = False
        for index, message in enumerate(body["messages"]):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise _bad(f"messages[{index}]: an object with a role is required", "messages")
            content = message.get("content")
            for part in content if isinstance(content, list) else ():
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in PART_TYPES:
                    raise _bad(f"messages[{index}].content: type has to be either 'image_url' or 'text'", "messages")
                image |= kind == "image_url"
        if image and request.headers.get("copilot-vision-request") != "true":
            raise _bad("missing required Copilot-Vision-Request header for vision requests")
        if _NEW_TOKEN_LIMIT.match(model) and "max_tokens" in body:
            raise _bad(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
            )
        return model, body["messages"]

    async def chat(self, request: Request) -> Response:
        body, _ = await read_and_record(request, self.state)
        directive = self.state.next_directive()
        if directive is not None and directive.status is not None:
            return canned_response(directive, body)
        try:
            self._check_headers(request)
            model, messages = self._check_body(request, body)
            reply = build_reply(body, messages)
        except FakeAPIError as error:
            return error.response()
        completion_id = "chatcmpl-" + os.urandom(12).hex()
        created = int(time.time())
        if body.get("stream") is True:
            options = body.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            frames = b"".join(stream_frames(completion_id, created, model, reply, usage))
            return Response(frames, headers={"cache-control": "no-cache"}, media_type=SSE_CONTENT_TYPE)
        return Response(
            orjson.dumps(completion_object(completion_id, created, model, reply)), media_type="application/json"
        )


async def _error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, FakeAPIError):
        return exc.response()
    status = getattr(exc, "status_code", 500)
    payload = error_payload(f"Invalid URL ({request.method} {request.url.path}).", "invalid_request_error")
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def create_app(copilot_token: str, *, models: tuple[str, ...] = DEFAULT_MODELS, record: bool = True) -> Starlette:
    """A fresh fake Copilot API accepting `copilot_token`. Its state is `app.state.fake` (`requests` is the
    request log, `script` the canned replies)."""
    state = FakeUpstreamState(api_key=copilot_token, models=models, record=record)
    handlers = _Handlers(state)
    return fake_app(
        state,
        [Route("/chat/completions", handlers.chat, methods=["POST"])],
        error_type=FakeAPIError,
        error_handler=_error_handler,
        bad_request=_bad,
    )
