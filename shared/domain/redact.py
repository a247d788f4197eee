"""Redaction for the opt-in request log: what is kept of a request or an answer, with secrets removed.

Values under secret-looking keys (`api_key`, `authorization`, `password`, `token`, `secret`, ...) become
"[redacted]"; strings that look like credentials anywhere (OpenAI/Anthropic/Google/GitHub/AWS key shapes,
bearer tokens, JWTs) are masked; images and other base64 payloads become a note of their size; long
strings are cut. The log is for debugging a client's requests, not for keeping its data: it also expires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_STRING = 2_000
MAX_ITEMS = 200
MAX_DEPTH = 12
REDACTED = "[redacted]"

_SECRET_KEYS = re.compile(r"(api[-_]?key|authorization|password|passwd|secret|token|credential|cookie)", re.I)
_SECRET_VALUES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}|sk-ant-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9\-]{10,}|Bearer\s+[A-Za-z0-9._\-]{16,}"
    r"|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})"
)
_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,", re.I)


def redact(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for index, (k, v) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more keys"
                break
            key = str(k)
            # token counts (`max_tokens`, `input_tokens`) are not secrets: only string values are hidden
            out[key] = REDACTED if _SECRET_KEYS.search(key) and isinstance(v, str) else redact(v, depth + 1)
        return out
    if isinstance(value, list | tuple):
        items = [redact(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"… {len(value) - MAX_ITEMS} more items")
        return items
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    match = _DATA_URL.match(text)
    if match:
        return f"[{match.group(1)} data, {len(text)} characters]"
    text = _SECRET_VALUES.sub(REDACTED, text)
    if len(text) > MAX_STRING:
        return text[:MAX_STRING] + f"… [{len(text) - MAX_STRING} more characters]"
    return text
