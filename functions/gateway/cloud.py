"""The gateway in Lambda: `run.sh` starts uvicorn on `functions.gateway.cloud:app`, and Lambda Web Adapter
relays each Function URL invocation to it as a streamed HTTP request.

Built once per execution environment, at import (Lambda's init phase): settings from the environment,
DynamoDB + KMS + public-only upstreams (`shared.cloud`), JSON logs and one EMF metrics record per /v1
request. The lifespan loads the configuration before uvicorn reports ready, so LWA's readiness check
(`/healthz`) passes only once the first request can be answered without waiting for the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.gateway.app import create_app
from shared.adapters.lambda_extension import FreezeGuard, InvocationTracker
from shared.adapters.telemetry import configure_logging, emit_request_metrics
from shared.cloud import build_cloud_services, cloud_settings
from shared.context import current_lambda_request_id
from shared.services.chat import Outcome
from shared.web.request_id import Timing
from shared.web.settle import SettleBeforeEnd, TrackInvocations

SERVICE = "gateway"
log = logging.getLogger("omniroute.gateway")

configure_logging(SERVICE, os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
# An internal extension, registered now (Lambda's init phase: Lambda Web Adapter asks for the first
# invocation only after the app answers its readiness probe), holds each invocation open after the
# response until its usage writes landed. Without one (registration refused), responses end late instead.
tracker = InvocationTracker()
_runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
extension_held = bool(_runtime_api) and FreezeGuard(tracker=tracker).start(_runtime_api or "")
settings = cloud_settings()
services = build_cloud_services(settings)


def _tokens(outcome: Outcome | None) -> dict[str, int]:
    usage = outcome.usage if outcome is not None else None
    if usage is None:
        return {}
    return {
        "InputTokens": usage.input,
        "OutputTokens": usage.output,
        "CachedTokens": usage.cached,
        "CacheCreationTokens": usage.cache_creation,
        "ReasoningTokens": usage.reasoning,
    }


def record_request(scope: Scope, status: int, seconds: float) -> None:
    """EMF metrics for one /v1 request (readiness probes are not traffic)."""
    if not scope.get("path", "").startswith("/v1"):
        return
    state: dict[str, Any] = scope.get("state", {})
    outcome: Outcome | None = state.get("outcome")
    timing: Timing | None = state.get("timing")
    failed_midstream = outcome is not None and outcome.error is not None
    metadata: dict[str, Any] = {
        "request_id": state.get("request_id"),
        "lambda_request_id": current_lambda_request_id.get(),
        "path": scope.get("path"),
        "status": status,
    }
    if outcome is not None:
        metadata["model"] = outcome.model
        if outcome.error:
            metadata["error"] = outcome.error[:300]
    emit_request_metrics(
        service=SERVICE,
        provider=outcome.provider if outcome is not None else state.get("provider"),
        status=502 if failed_midstream else status,
        latency_ms=seconds * 1000.0,
        ttfb_ms=timing.phases.get("upstream") if timing is not None else None,
        tokens=_tokens(outcome),
        metadata=metadata,
    )


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    try:
        await services.config.current()
    except Exception:
        # Start anyway: the first request tries again and answers 503 if the store is still unreachable.
        log.exception("could not load the configuration at start-up")
    yield
    await services.aclose()


class LambdaRequestContext:
    """Reads the Lambda request id from the `x-amzn-lambda-context` header Lambda Web Adapter adds to each
    request it relays (it replaces any such header a client sent), for logs and metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lambda_rid = None
        for name, value in scope["headers"]:
            if name == b"x-amzn-lambda-context":
                try:
                    context = orjson.loads(value)
                except orjson.JSONDecodeError:
                    break
                if isinstance(context, dict) and isinstance(context.get("request_id"), str):
                    lambda_rid = context["request_id"][:64]
                break
        token = current_lambda_request_id.set(lambda_rid)
        try:
            await self.app(scope, receive, send)
        finally:
            current_lambda_request_id.reset(token)


app = create_app(services, on_finish=record_request, lifespan=lifespan)
# Usage events are written in the background, and a frozen environment must never hold an unwritten one:
# the extension waits for them, or else the response's end does (its content has gone out already).
if extension_held:
    app.add_middleware(TrackInvocations, tracker=tracker, settle=services.settle)
else:
    app.add_middleware(SettleBeforeEnd, settle=services.settle)
app.add_middleware(LambdaRequestContext)
