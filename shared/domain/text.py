"""Small checks on client-supplied text."""

from __future__ import annotations


def has_control_characters(value: str) -> bool:
    """C0 controls or DEL: never valid in a model id, a header value or a URL."""
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
