"""A fake ChatGPT Codex backend (`chatgpt.com/backend-api/codex`) that speaks its wire format over real HTTP.

The Codex CLI's backend for ChatGPT subscriptions is the Responses API with its own rules, and this fake keeps
them (facts from the public reports cited by each rule, and the project notes `oauth-providers.md` §3):

    POST /backend-api/codex/responses   the fake model, streamed only
    GET  /_fake/requests, /_fake/script  the shared control plane (`tests.fakes.control`)

- `Authorization: Bearer <access token>` must be the configured token (401 otherwise), and
  `ChatGPT-Account-Id` the configured account (403 otherwise);
- the body must have `instructions` ("Instructions are required"), `store: false` ("Store must be set to
  false"), `stream: true` ("Stream must be set to true"), a list `input` ("Input must be a list"), no
  `system` message ("System messages are not allowed") and none of `UNSUPPORTED` ("Unsupported parameter:
  max_output_tokens"); every refusal is a 400 `{"detail": "..."}`, the backend's own error shape;
- a model outside `models` is refused as the backend refuses models a ChatGPT account cannot use;
- the answer is the Responses fake's deterministic reply (`responses_upstream.build_reply`: "Hello from
  fake-responses: " + the last user text), streamed as Responses events whose `response.completed`
  carries `"output": []`, as the real backend sends it (the items are only in `response.output_item.done`);
  every answer carries the `x-codex-*` usage headers of `usage_headers()`.

The model `fail-stream` streams part of the answer and then `response.failed`. `usage_limit_reached()` is a
scripted directive for the backend's 429 when the plan's window is used up.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import fake_app
from tests.fakes.openai_upstream import (
    SSE_CONTENT_TYPE,
    FakeAPIError,
    canned_response,
    paced_response,
    pacing_for,
    read_and_record,
)
from tests.fakes.responses_upstream import (
    FAIL_STREAM,
    ResponsesState,
    build_reply,
    cut_point,
    new_response_id,
    resolve_conversation,
    response_object,
    sse_frame,
    stream_events,
    validate_request,
)

JSONObject = dict[str, Any]

PATH: Final = "/backend-api/codex/responses"
DEFAULT_MODELS: Final[tuple[str, ...]] = ("gpt-5.2-codex", "gpt-5.3-codex", "gpt-5.1-codex-max", "gpt-5.2")
UNSUPPORTED: Final[tuple[str, ...]] = (
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tokens",
    "max_completion_tokens",
    "previous_response_id",
    "prompt_cache_retention",
    "safety_identifier",
    "metadata",
    "user",
)


def usage_headers(primary: float = 12.0, secondary: float = 40.0) -> dict[str, str]:
    """The plan's windows as the backend reports them on every answer (5 hours and a week)."""
    return {
        "x-codex-primary-used-percent": str(primary),
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": "9000",
        "x-codex-secondary-used-percent": str(secondary),
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-after-seconds": "300000",
    }


def usage_limit_reached(resets_in: int = 3600) -> JSONObject:
    """A scripted 429 as the backend answers when the plan's window is used up."""
    return {
        "status": 429,
        "headers": usage_headers(primary=100.0) | {"content-type": "application/json"},
        "body": {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_at": int(time.time()) + resets_in,
                "resets_in_seconds": resets_in,
            }
        },
    }


class CodexError(Exception):
    """A refusal in the backend's own shape: `{"detail": "..."}`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> Response:
        return Response(orjson.dumps({"detail": self.detail}), status_code=self.status, media_type="application/json")


@dataclass
class CodexState(ResponsesState):
    """The Responses fake's state plus the account the backend serves."""

    account_id: str | None = None


def _check_body(body: Any, models: Sequence[str]) -> None:
    """The backend's own refusals, before the Responses API's validation."""
    if not isinstance(body, dict):
        raise CodexError(400, "Invalid request body")
    for name in UNSUPPORTED:
        if name in body:
            raise CodexError(400, f"Unsupported parameter: {name}")
    if not isinstance(body.get("instructions"), str):
        raise CodexError(400, "Instructions are required")
    if body.get("store") is not False:
        raise CodexError(400, "Store must be set to false")
    if body.get("stream") is not True:
        raise CodexError(400, "Stream must be set to true")
    items = body.get("input")
    if not isinstance(items, list):
        raise CodexError(400, "Input must be a list")
    if any(isinstance(i, dict) and i.get("role") == "system" for i in items):
        raise CodexError(400, "System messages are not allowed")
    model = body.get("model")
    if model != FAIL_STREAM and model not in models:
        raise CodexError(400, f"The '{model}' model is not supported when using Codex with a ChatGPT account.")


class _Handlers:
    def __init__(self, state: CodexState) -> None:
        self.state = state

    def _check_auth(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.state.api_key:
            raise CodexError(401, "Could not parse your authentication token. Please try signing in again.")
        if self.state.account_id is not None and request.headers.get("chatgpt-account-id") != self.state.account_id:
            raise CodexError(403, "The ChatGPT account does not match the token.")

    async def create(self, request: Request) -> Response:
        body, _ = await read_and_record(request, self.state)
        try:
            return await self._answer(request, body)
        except CodexError as error:
            return error.response()
        except FakeAPIError as error:  # the Responses API's own validation, in OpenAI's shape
            return error.response()

    async def _answer(self, request: Request, body: Any) -> Response:
        directive = self.state.next_directive()
        fault = None
        if directive is not None:
            if directive.status is not None:
                return canned_response(directive, body)
            fault = directive.fault
        self._check_auth(request)
        _check_body(body, self.state.models)
        validated = validate_request(body)
        reply = build_reply(validated, resolve_conversation(self.state, validated))
        response_id = new_response_id()
        created = int(time.time())
        status = "incomplete" if reply.incomplete else "completed"
        final = response_object(
            response_id, created, validated, status=status, output=reply.output, usage=reply.usage()
        )
        initial = response_object(response_id, created, validated, status="in_progress", output=[], usage=None)
        events = stream_events(initial, final, obfuscate=validated.obfuscate)
        events[-1]["response"] = {**final, "output": []}  # the backend leaves the output out of the last event
        if validated.model == FAIL_STREAM:
            events = events[: cut_point(events)]
            failed = response_object(
                response_id,
                created,
                validated,
                status="failed",
                output=[],
                usage=None,
                error={"code": "server_error", "message": "Codex backend failed while answering."},
            )
            events.append({"type": "response.failed", "sequence_number": len(events), "response": failed})
        headers = {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache", **usage_headers()}
        return paced_response([sse_frame(e) for e in events], headers, await pacing_for(fault))


async def _error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, CodexError):
        return exc.response()
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return CodexError(status, "Not Found" if status == 404 else "Method Not Allowed").response()


def create_app(
    access_token: str,
    *,
    account_id: str | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    record: bool = True,
) -> Starlette:
    """A fresh fake Codex backend serving one account: `access_token` (and `account_id`, when given) must come
    with every request. Its state is `app.state.fake` (a `CodexState`; `requests` is the request log)."""
    state = CodexState(api_key=access_token, models=tuple(models), record=record, account_id=account_id)
    handlers = _Handlers(state)
    return fake_app(
        state,
        [Route(PATH, handlers.create, methods=["POST"])],
        error_type=CodexError,
        error_handler=_error_handler,
        bad_request=lambda message: CodexError(400, message),
    )
