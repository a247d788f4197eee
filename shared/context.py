"""Per-request context shared by the web layer (which sets it) and logging (which reads it)."""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("omniroute_request_id", default=None)
# The Lambda invocation serving the request (its id is on Lambda's START/END/REPORT lines), in the cloud.
current_lambda_request_id: ContextVar[str | None] = ContextVar("omniroute_lambda_request_id", default=None)
