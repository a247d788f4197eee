"""A fake Google Cloud Code Assist upstream (`…/v1internal`), as Antigravity and the Gemini CLI call it.

    POST /v1internal:generateContent                  one wrapped answer
    POST /v1internal:streamGenerateContent?alt=sse     wrapped SSE frames (`data: {...}\\r\\n\\r\\n`, no [DONE])

What it checks (project notes `oauth-providers.md` §4, §5): `Authorization: Bearer <access token>` (else 401 in
Google's envelope); the envelope `{model, project, request: {contents, ...}}` with the project the account was
onboarded to (else 403); the client's own fields: Antigravity's `userAgent: "antigravity"`, `requestType`,
`requestId: "agent-…"` and `request.sessionId`, or the Gemini CLI's `user_prompt_id` and `request.session_id`.
The Gemini body inside is validated and answered by the Gemini fake's deterministic model
(`gemini_upstream.validate_body` / `build_reply`: "Hello from fake-gemini: <last user text>", the first
declared function called when tools are given), each answer wrapped `{response, traceId}`.

Antigravity's version gate, as the real service does it: a `User-Agent: antigravity/<version> ...` below
`min_version` is answered 200 with the refusal as the model's text ("This version of Antigravity is no longer
supported..."), word by word when streamed. Scripted replies (`state.script`, one per request):
    "outdated"       the refusal, whatever the version
    "no-response"    200 with `{traceId}` and no `response`
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.gemini_upstream import (
    GeminiAPIError,
    build_reply,
    new_response_id,
    response_object,
    stream_chunks,
    validate_body,
)

REFUSAL = "This version of Antigravity is no longer supported. Please upgrade to receive the latest features."
SCRIPTS = ("outdated", "no-response")
_ANTIGRAVITY_UA = re.compile(r"^antigravity/(\d+)\.(\d+)\.(\d+) \w+/\w+$")
_GEMINI_CLI_UA = re.compile(r"^GeminiCLI/[\d.]+/(?P<model>[\w.-]+) \(\w+; \w+\)$")


@dataclass
class CloudCodeState:
    access_token: str
    project: str
    min_version: tuple[int, int, int] = (2, 9, 0)
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: deque[str] = field(default_factory=deque)

    def clear_requests(self) -> None:
        self.requests.clear()

    def clear_script(self) -> None:
        self.script.clear()


def _bad(message: str) -> GeminiAPIError:
    return GeminiAPIError(400, message)


def _check_client(body: dict[str, Any], headers: dict[str, str], model: str) -> str:
    """Which client sent the envelope ("antigravity" or "gemini-cli"), checking its fields and User-Agent."""
    request = body["request"]
    if body.get("userAgent") == "antigravity":
        if body.get("requestType") not in ("agent", "image_gen", "web_search"):
            raise _bad(f"Invalid value at 'request_type': {body.get('requestType')!r}")
        if not str(body.get("requestId", "")).startswith("agent-"):
            raise _bad("requestId must be set.")
        if not isinstance(request.get("sessionId"), str) or not request["sessionId"]:
            raise _bad("request.sessionId must be set.")
        if not _ANTIGRAVITY_UA.match(headers.get("user-agent", "")):
            raise _bad("Unrecognised client.")
        return "antigravity"
    if "userAgent" in body or "requestType" in body:
        raise _bad("Unknown client fields.")
    if not isinstance(body.get("user_prompt_id"), str) or not isinstance(request.get("session_id"), str):
        raise _bad("user_prompt_id and request.session_id must be set.")
    ua = _GEMINI_CLI_UA.match(headers.get("user-agent", ""))
    if ua is None or ua["model"] != model:
        raise _bad("Unrecognised client.")
    return "gemini-cli"


def _outdated(state: CloudCodeState, headers: dict[str, str]) -> bool:
    ua = _ANTIGRAVITY_UA.match(headers.get("user-agent", ""))
    return ua is not None and tuple(int(n) for n in ua.groups()) < state.min_version


def _refusal_chunks(model: str) -> list[dict[str, Any]]:
    words = re.findall(r"\S+\s*", REFUSAL)
    chunks: list[dict[str, Any]] = []
    for i, word in enumerate(words):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": word}]}}
        if i == len(words) - 1:
            candidate["finishReason"] = "STOP"
        chunks.append({"candidates": [candidate], "modelVersion": model})
    return chunks


def _wrap(response: object) -> bytes:
    return orjson.dumps({"response": response, "traceId": secrets.token_hex(8)})


def _sse(chunks: list[bytes]) -> StreamingResponse:
    async def body() -> Any:
        for chunk in chunks:
            yield b"data: " + chunk + b"\r\n\r\n"

    return StreamingResponse(body(), media_type="text/event-stream")


def create_app(access_token: str, project: str) -> Starlette:
    state = CloudCodeState(access_token=access_token, project=project)

    async def generate(request: Request) -> Response:
        stream = request.url.path.endswith(":streamGenerateContent")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        state.requests.append({"path": request.url.path, "query": request.url.query, "headers": headers, "body": body})
        try:
            if headers.get("authorization") != f"Bearer {state.access_token}":
                raise GeminiAPIError(401, "Request had invalid authentication credentials.")
            if stream and request.query_params.get("alt") != "sse":
                raise _bad("The fake Cloud Code serves SSE streams only.")
            if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
                raise _bad("Invalid JSON payload received. Expected an envelope with `request`.")
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise _bad("model must be set.")
            if body.get("project") != state.project:
                raise GeminiAPIError(403, f"Permission denied on resource project {body.get('project')}.")
            client = _check_client(body, headers, model)
            inner = {k: v for k, v in body["request"].items() if k not in ("sessionId", "session_id")}
            gemini_body, contents = validate_body(inner, model)
        except GeminiAPIError as error:
            return error.response()
        scripted = state.script.popleft() if state.script else None
        if scripted == "no-response":
            return Response(orjson.dumps({"traceId": secrets.token_hex(8)}), media_type="application/json")
        if scripted == "outdated" or (client == "antigravity" and _outdated(state, headers)):
            chunks = _refusal_chunks(model)
            if stream:
                return _sse([_wrap(c) for c in chunks])
            whole = {
                "candidates": [{"content": {"role": "model", "parts": [{"text": REFUSAL}]}, "finishReason": "STOP"}]
            }
            return Response(_wrap(whole), media_type="application/json")
        reply = build_reply(gemini_body, contents, model)
        response_id = new_response_id()
        if stream:
            return _sse([_wrap(c) for c in stream_chunks(reply, model, response_id)])
        return Response(_wrap(response_object(reply, model, response_id)), media_type="application/json")

    app = Starlette(
        routes=[
            Route("/v1internal:generateContent", generate, methods=["POST"]),
            Route("/v1internal:streamGenerateContent", generate, methods=["POST"]),
        ]
    )
    app.state.fake = state
    return app
