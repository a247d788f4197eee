import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.formats.sse import FrameTooLarge, SseFramer, frame_data

STREAM = (
    b'data: {"a":1}\n\n'
    b": keepalive\n\n"
    b'event: message\ndata: {"b":2}\n\n'
    b'data: {"c":\r\n\r\n'
    b'data: {"d":4}\r\r'
    b'data: {"e":5}\r\n\n'
    b"data: [DONE]\n\n"
)


def frames_of(chunks: list[bytes]) -> list[bytes]:
    framer = SseFramer()
    out: list[bytes] = []
    for c in chunks:
        out.extend(framer.feed(c))
    assert framer.flush() == b""
    return out


def test_whole_stream_yields_each_frame_verbatim() -> None:
    frames = frames_of([STREAM])
    assert b"".join(frames) == STREAM
    assert [frame_data(f) for f in frames] == [
        b'{"a":1}',
        None,
        b'{"b":2}',
        b'{"c":',
        b'{"d":4}',
        b'{"e":5}',
        b"[DONE]",
    ]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_split_at_any_bytes_gives_the_same_frames(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert frames_of(chunks) == frames_of([STREAM])


def test_partial_frame_is_kept_until_complete_and_flush_returns_a_cut_tail() -> None:
    framer = SseFramer()
    assert framer.feed(b'data: {"x"') == []
    assert framer.feed(b":1}\n") == []
    assert framer.feed(b"\ndata: tail") == [b'data: {"x":1}\n\n']
    assert framer.flush() == b"data: tail"


def test_multiline_data_is_joined_with_newlines() -> None:
    assert frame_data(b"data: one\ndata:two\ndata:  three\n\n") == b"one\ntwo\n three"


def test_trailing_cr_waits_for_a_possible_lf() -> None:
    framer = SseFramer()
    assert framer.feed(b"data: x\r\n\r") == []  # the last \r may be the start of \r\n
    assert framer.feed(b"\ndata: y") == [b"data: x\r\n\r\n"]


def test_a_frame_beyond_the_limit_is_refused() -> None:
    framer = SseFramer(max_frame=1000)
    framer.feed(b"data: " + b"x" * 900)
    with pytest.raises(FrameTooLarge):
        framer.feed(b"x" * 200)


def test_many_small_chunks_of_one_large_frame() -> None:
    framer = SseFramer()
    payload = b"data: " + b"y" * 300_000
    out: list[bytes] = []
    for i in range(0, len(payload), 1000):
        out += framer.feed(payload[i : i + 1000])
    out += framer.feed(b"\n\n")
    assert out == [payload + b"\n\n"]
