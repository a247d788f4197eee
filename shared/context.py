"""Per-request context shared by the web layer (which sets it) and logging (which reads it)."""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("omniroute_request_id", default=None)
