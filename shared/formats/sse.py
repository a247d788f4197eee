"""Incremental Server-Sent Events framing.

`SseFramer.feed(chunk)` returns the complete frames (each ending with a blank line) found so far, with any
partial frame kept for the next call; a frame is yielded byte-for-byte as the upstream sent it, so a relay
can forward it untouched. Both `\n\n` and `\r\n\r\n` end a frame.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"\r?\n\r?\n")


class SseFramer:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        frames: list[bytes] = []
        start = 0
        for m in _BOUNDARY.finditer(buf):
            frames.append(buf[start : m.end()])
            start = m.end()
        self._buf = buf[start:]
        return frames

    def flush(self) -> bytes:
        """Whatever was left without a terminating blank line (a cut stream)."""
        rest, self._buf = self._buf, b""
        return rest


def frame_data(frame: bytes) -> bytes | None:
    """The joined `data:` payload of a frame, or None if it has none (comments, bare events)."""
    parts = [line[5:].lstrip(b" ") for line in frame.splitlines() if line.startswith(b"data:")]
    if not parts:
        return None
    return b"\n".join(parts)
