"""Every error rendered in the caller's own wire format, in one place.

OpenAI:    {"error": {"message", "type", "param", "code"}}
Anthropic: {"type": "error", "error": {"type", "message"}}
Gemini:    {"error": {"code": <http status>, "message", "status": <google.rpc code name>}}
"""

from __future__ import annotations

import math
from enum import StrEnum

import orjson

from shared.errors import GatewayError, UpstreamRejected


class ErrorFormat(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}

_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_headers(err: GatewayError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(err, UpstreamRejected):
        headers.update(err.headers)
    if err.retry_after is not None:
        # rounded up: a client that comes back after a rounded-down wait would find it still cooling
        headers["retry-after"] = str(max(0, math.ceil(err.retry_after - 1e-6)))
    if err.provider is not None:
        # Tells a client whether a 401/429 came from an upstream or from the gateway itself.
        headers["x-omniroute-provider"] = err.provider
    return headers


def openai_error_object(err: GatewayError) -> dict[str, object]:
    return {"message": err.message, "type": err.type, "param": err.param, "code": err.code}


def render_error(err: GatewayError, fmt: ErrorFormat = ErrorFormat.OPENAI) -> tuple[int, bytes]:
    """(HTTP status, body) for `err` in `fmt`. Upstream 4xx bodies already in the caller's shape pass as-is."""
    status = err.http_status
    if isinstance(err, UpstreamRejected) and fmt is ErrorFormat.OPENAI and _is_openai_error(err.body):
        return status, err.body
    if isinstance(err, UpstreamRejected) and fmt is ErrorFormat.ANTHROPIC and _is_anthropic_error(err.body):
        return status, err.body
    if fmt is ErrorFormat.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return status, orjson.dumps({"type": "error", "error": {"type": kind, "message": err.message}})
    if fmt is ErrorFormat.GEMINI:
        google = _GOOGLE_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return status, orjson.dumps({"error": {"code": status, "message": err.message, "status": google}})
    return status, orjson.dumps({"error": openai_error_object(err)})


def _is_openai_error(body: bytes) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict) and "message" in doc["error"]


def _is_anthropic_error(body: bytes) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("type") == "error" and isinstance(doc.get("error"), dict)


def upstream_error_message(provider: str, status: int, body: bytes) -> str:
    """A readable message for an upstream failure, taken from whatever error shape the upstream used."""
    detail = ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        detail = body[:300].decode("utf-8", "replace").strip()
    else:
        if isinstance(doc, dict):
            inner = doc.get("error", doc)
            if isinstance(inner, dict):
                detail = str(inner.get("message") or inner.get("detail") or "")
            elif isinstance(inner, str):
                detail = inner
    suffix = f": {detail}" if detail else ""
    return f"Upstream {provider} answered HTTP {status}{suffix}"
