"""The AWS event-stream decoder, against the fake Kiro service's encoder: round trips of every header type,
messages split at every byte, several in one chunk, and corrupt or cut streams refused."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest

from shared.providers.executors.aws_eventstream import EventMessage, EventStreamDecoder, EventStreamError
from tests.fakes.kiro_upstream import Header, encode_message, event, exception

EVERY_TYPE: dict[str, Header] = {
    "yes": True,
    "no": False,
    "byte": (2, -7),
    "short": (3, 1234),
    "int": 70000,
    "long": (5, 2**40),
    "raw": b"\x00\x01\xff",
    ":event-type": "assistantResponseEvent",
    "when": (8, 1_732_300_000_000),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}


def decode_all(data: bytes, *, step: int | None = None) -> tuple[list[EventMessage], int]:
    decoder = EventStreamDecoder()
    if step is None:
        return decoder.feed(data), decoder.pending
    messages: list[EventMessage] = []
    for i in range(0, len(data), step):
        messages += decoder.feed(data[i : i + step])
    return messages, decoder.pending


def test_every_header_type_round_trips() -> None:
    (message,), pending = decode_all(encode_message(EVERY_TYPE, b'{"content":"hi"}'))
    assert pending == 0
    assert dict(message.headers) == {
        "yes": True,
        "no": False,
        "byte": -7,
        "short": 1234,
        "int": 70000,
        "long": 2**40,
        "raw": b"\x00\x01\xff",
        ":event-type": "assistantResponseEvent",
        "when": 1_732_300_000_000,
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    }
    assert message.payload == b'{"content":"hi"}'
    assert message.event_type == "assistantResponseEvent" and message.message_type == "event"  # the default
    assert message.header("int") is None  # only string headers are read as text


def test_messages_split_at_every_byte_and_packed_together() -> None:
    data = event("assistantResponseEvent", {"content": "Hello "}) + exception("ThrottlingException", "slow down")
    data += encode_message({}, b"")  # the smallest message: 16 bytes, no headers, no payload
    whole, _ = decode_all(data)
    assert [m.message_type for m in whole] == ["event", "exception", "event"]
    for step in (1, 2, 3, 5, 7, 11, 13, 16, len(data) - 1):
        messages, pending = decode_all(data, step=step)
        assert messages == whole and pending == 0, step


def test_a_cut_stream_leaves_bytes_pending() -> None:
    data = event("assistantResponseEvent", {"content": "Hello"})
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:-1]) == [] and decoder.pending == len(data) - 1
    assert len(decoder.feed(data[-1:])) == 1 and decoder.pending == 0


def test_a_wrong_message_crc_is_refused() -> None:
    data = bytearray(event("assistantResponseEvent", {"content": "Hello"}))
    data[-6] ^= 0x01  # a payload byte: the message CRC no longer matches
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(data))


def test_a_wrong_prelude_crc_is_refused_before_the_rest_arrives() -> None:
    data = bytearray(event("assistantResponseEvent", {"content": "Hello"}))
    data[3] ^= 0x40  # the total length
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="prelude CRC"):
        decoder.feed(bytes(data[:12]))


def framed(headers: bytes, payload: bytes = b"", *, header_len: int | None = None) -> bytes:
    """A message with hand-made header bytes (and, optionally, a lying header length), CRCs correct."""
    declared = len(headers) if header_len is None else header_len
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, declared)
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


@pytest.mark.parametrize(
    ("headers", "header_len", "error"),
    [
        (b"\x01x\x0a", None, "unknown event-stream header value type 10"),
        (b"\x01x\x07\x00\x09ab", None, "runs past"),
        (b"\x00", None, "empty name"),
        (b"\x01x\x07\x00\x02ab", 3, "malformed|overrun"),
        (b"\x01x\x09" + b"\x00" * 4, None, "uuid"),
        (b"\x01x\x05\x00", None, "malformed"),
    ],
)
def test_malformed_headers_are_refused(headers: bytes, header_len: int | None, error: str) -> None:
    with pytest.raises(EventStreamError, match=error):
        EventStreamDecoder().feed(framed(headers, b"{}", header_len=header_len))


def test_impossible_lengths_are_refused() -> None:
    prelude = struct.pack(">II", 15, 0)  # shorter than prelude + trailer
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
    prelude = struct.pack(">II", 32, 20)  # headers longer than the message
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
