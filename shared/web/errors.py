"""Exception handlers that answer every failure in the app's wire format (one place, not per route)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import GatewayError, InvalidRequest, MethodNotAllowed, NotFound
from shared.formats.errors import ErrorFormat, error_headers, render_error

log = logging.getLogger("omniroute")


def error_response(err: GatewayError, fmt: ErrorFormat = ErrorFormat.OPENAI) -> Response:
    status, body = render_error(err, fmt)
    return Response(body, status_code=status, media_type="application/json", headers=error_headers(err))


def add_error_handlers(app: FastAPI, fmt: ErrorFormat | Callable[[Request], ErrorFormat] = ErrorFormat.OPENAI) -> None:
    """Answer every failure in the caller's format: one for the app, or chosen per request (by path)."""
    format_of: Callable[[Request], ErrorFormat] = fmt if callable(fmt) else (lambda _request: fmt)

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        if exc.provider is not None or exc.http_status >= 500:
            # Upstream trouble is what an owner looks for in the log; client mistakes stay quiet.
            log.warning(
                "%s %s %s -> %d %s (provider=%s): %.300s",
                request.scope.get("state", {}).get("request_id", "-"),
                request.method,
                request.url.path,
                exc.http_status,
                exc.code,
                exc.provider or "-",
                exc.message,
            )
        return error_response(exc, format_of(request))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            return error_response(
                MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}."), format_of(request)
            )
        if exc.status_code == 404:
            return error_response(NotFound(f"Unknown route: {request.method} {request.url.path}."), format_of(request))
        return error_response(InvalidRequest(str(exc.detail)), format_of(request))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        detail = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        msg = f"Invalid `{where}`: {detail}." if where else detail
        return error_response(InvalidRequest(msg, param=where, code="invalid_value"), format_of(request))

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Never echo the exception text: it may carry upstream bodies or credentials.
        rid = request.scope.get("state", {}).get("request_id", "-")
        log.exception("%s unhandled error on %s %s", rid, request.method, request.url.path)
        response = error_response(
            GatewayError(f"The gateway hit an internal error (request {rid}); see its log."), format_of(request)
        )
        # This response is sent outside the request-id middleware, so it adds the header itself.
        response.headers["x-request-id"] = rid
        return response

    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
