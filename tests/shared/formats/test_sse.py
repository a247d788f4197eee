from hypothesis import given
from hypothesis import strategies as st

from shared.formats.sse import SseFramer, frame_data

STREAM = b'data: {"a":1}\n\n: keepalive\n\nevent: message\ndata: {"b":2}\n\ndata: {"c":\r\n\r\ndata: [DONE]\n\n'


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
    assert [frame_data(f) for f in frames] == [b'{"a":1}', None, b'{"b":2}', b'{"c":', b"[DONE]"]


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
    assert frame_data(b"data: one\ndata:two\n\n") == b"one\ntwo"
