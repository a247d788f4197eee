"""Incremental Server-Sent Events framing.

`SseFramer.feed(chunk)` returns the complete frames (each ending with its blank line) found so far and keeps
any partial frame for the next call; a frame is returned byte-for-byte as the upstream sent it, so a relay
can forward it untouched. Lines may end in `\\n`, `\\r\\n` or a bare `\\r` (the SSE spec allows all three).

Linear in the stream's size: pending bytes live in one buffer and each call scans only what is new (plus
the few bytes a boundary can straddle). A frame may not grow beyond `max_frame` bytes.
"""

from __future__ import annotations

import re

# Two consecutive line endings end a frame. A bare \r must not be followed by \n (that would be one \r\n).
_EOL = rb"(?:\r\n|\r(?!\n)|\n)"
_BOUNDARY = re.compile(_EOL + _EOL)

DEFAULT_MAX_FRAME = 32 * 1024 * 1024


class FrameTooLarge(Exception):
    pass


class SseFramer:
    __slots__ = ("_buf", "_max", "_scan")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self._scan = 0  # where the next boundary search starts
        self._max = max_frame

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf
        buf += chunk
        frames: list[bytes] = []
        start = 0
        pos = max(0, self._scan - 3)  # a boundary is at most 4 bytes and may straddle the previous chunk
        while True:
            m = _BOUNDARY.search(buf, pos)
            if m is None:
                break
            end = m.end()
            if end == len(buf) and buf.endswith(b"\r"):
                break  # a trailing \r may be the first half of \r\n: wait for the next byte
            frames.append(bytes(buf[start:end]))
            start = pos = end
        if start:
            del buf[:start]
        self._scan = len(buf)
        if len(buf) > self._max:
            raise FrameTooLarge(f"an event-stream frame exceeded {self._max} bytes")
        return frames

    def flush(self) -> bytes:
        """Whatever was left without a terminating blank line (a stream that ended mid-frame)."""
        rest = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        return rest


def frame_data(frame: bytes) -> bytes | None:
    """The joined `data:` payload of a frame, or None if it has none (comments, bare events)."""
    # The spec strips exactly one space after the colon.
    parts = [
        line[6:] if line.startswith(b"data: ") else line[5:] for line in frame.splitlines() if line.startswith(b"data:")
    ]
    if not parts:
        return None
    return b"\n".join(parts)


def event_name(frame: bytes) -> str | None:
    """The frame's `event:` field, or None (then the event type is "message")."""
    for line in frame.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip().decode("utf-8", "replace")
    return None
