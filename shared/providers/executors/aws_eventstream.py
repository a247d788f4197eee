"""The AWS event-stream framing (`application/vnd.amazon.eventstream`), decoded incrementally.

Kiro's `generateAssistantResponse` answers in it, not in SSE. One message on the wire:

    prelude   total length (u32) | headers length (u32) | CRC32 of those 8 bytes (u32)
    headers   repeated: name length (u8) | name (UTF-8) | value type (u8) | value
    payload   the rest: total - headers - 16 bytes (Kiro: a JSON object)
    trailer   CRC32 of everything before it (u32)

Integers are big-endian; the CRC is zlib's (IEEE 802.3). Header value types: 0 true, 1 false, 2 byte, 3 short,
4 int, 5 long, 6 bytes and 7 string (both with a u16 length), 8 timestamp (ms since the epoch, i64), 9 uuid
(16 bytes). A message may arrive split across any number of network chunks, several may arrive in one.

Pure: bytes in, messages out.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

PRELUDE = 12  # total length, headers length, prelude CRC
TRAILER = 4  # message CRC
MAX_MESSAGE = 16 * 1024 * 1024  # the service's own limit on one message
MAX_HEADERS = 128 * 1024

HeaderValue = bool | int | bytes | str | UUID

_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}  # value type → struct format


class EventStreamError(ValueError):
    """The bytes are not a well-formed event stream (a CRC mismatch, an impossible length, a bad header)."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    headers: Mapping[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str | None:
        """A string header's value, or None."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str:
        """`event`, `exception` or `error` (`:message-type`; an event when absent)."""
        return self.header(":message-type") or "event"

    @property
    def event_type(self) -> str:
        return self.header(":event-type") or ""


def parse_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(raw)
    try:
        while pos < end:
            size = raw[pos]
            if size == 0:
                raise EventStreamError("an event-stream header has an empty name")
            name = raw[pos + 1 : pos + 1 + size].decode("utf-8")
            pos += 1 + size
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED:
                fmt = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, raw, pos)
                pos += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", raw, pos)
                data = raw[pos + 2 : pos + 2 + length]
                if len(data) != length:
                    raise EventStreamError("an event-stream header value runs past the headers")
                value = data.decode("utf-8") if kind == 7 else bytes(data)
                pos += 2 + length
            elif kind == 9:
                data = raw[pos : pos + 16]
                if len(data) != 16:
                    raise EventStreamError("an event-stream uuid header is truncated")
                value = UUID(bytes=bytes(data))
                pos += 16
            else:
                raise EventStreamError(f"unknown event-stream header value type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed event-stream headers ({exc})") from exc
    if pos != end:
        raise EventStreamError("event-stream headers overrun their declared length")
    return headers


class EventStreamDecoder:
    """Feed network chunks, get whole messages; a partial message waits for the next chunk."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message held back (not 0 when the stream ends: it was cut)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[EventMessage]:
        buf = self._buf
        buf += chunk
        messages: list[EventMessage] = []
        start = 0
        while len(buf) - start >= PRELUDE:
            total, header_len, prelude_crc = struct.unpack_from(">III", buf, start)
            # The prelude is checked first, so a corrupt length is caught before we wait for its bytes.
            if zlib.crc32(buf[start : start + 8]) != prelude_crc:
                raise EventStreamError("event-stream prelude CRC mismatch")
            if total < PRELUDE + TRAILER + header_len or total > MAX_MESSAGE or header_len > MAX_HEADERS:
                raise EventStreamError(f"impossible event-stream lengths (total {total}, headers {header_len})")
            if len(buf) - start < total:
                break
            end = start + total
            (message_crc,) = struct.unpack_from(">I", buf, end - TRAILER)
            if zlib.crc32(buf[start : end - TRAILER]) != message_crc:
                raise EventStreamError("event-stream message CRC mismatch")
            body = start + PRELUDE
            headers = parse_headers(bytes(buf[body : body + header_len]))
            messages.append(EventMessage(headers, bytes(buf[body + header_len : end - TRAILER])))
            start = end
        if start:
            del buf[:start]
        return messages
