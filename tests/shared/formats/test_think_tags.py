"""`<think>` splitting: whole texts, and streams cut at every position."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.formats.think_tags import ThinkTagSplitter, split_think_tags

CASES = [
    ("<think>plan it</think>\nAnswer.", ("plan it", "Answer.")),
    ("  <thinking>deep</thinking>Done", ("deep", "Done")),
    ("No tags here", ("", "No tags here")),
    ("Talk about <think> later</think>", ("", "Talk about <think> later</think>")),
    ("<think>never closed", ("never closed", "")),
    ("<thi", ("", "<thi")),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_texts(text: str, expected: tuple[str, str]) -> None:
    assert split_think_tags(text) == expected


@given(cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8), case=st.sampled_from(CASES))
def test_cutting_the_stream_anywhere_gives_the_same_split(cuts: list[int], case: tuple[str, tuple[str, str]]) -> None:
    text, expected = case
    points = sorted({c % (len(text) + 1) for c in cuts})
    splitter = ThinkTagSplitter()
    pieces = []
    for a, b in zip([0, *points], [*points, len(text)], strict=True):
        pieces += splitter.feed(text[a:b])
    pieces += splitter.flush()
    assert ("".join(t for k, t in pieces if k == "reasoning"), "".join(t for k, t in pieces if k == "text")) == expected


def test_openai_answers_with_think_tags_read_as_reasoning() -> None:
    from shared.formats import openai_chat
    from shared.formats.canonical import Reasoning, Text

    body = {"id": "c", "model": "r1", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "<think>2+2 is 4</think>\nFour."}, "finish_reason": "stop"}]}  # fmt: skip
    assert openai_chat.parse_response(body).parts == (Reasoning(text="2+2 is 4"), Text("Four."))


def test_openai_streams_with_think_tags_split_across_chunks() -> None:
    import json

    from shared.formats.openai_chat_stream import OpenAIStreamDecoder
    from shared.formats.stream import Collector

    decoder, collector = OpenAIStreamDecoder(), Collector()
    for piece in ["<thi", "nk>a b", "</th", "ink>Ans", "wer"]:
        chunk = {"id": "c", "model": "r1", "choices": [{"index": 0, "delta": {"content": piece}}]}
        for event in decoder.feed(json.dumps(chunk).encode()):
            collector.feed(event)
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    for event in decoder.feed(json.dumps(done).encode()) + decoder.feed(b"[DONE]"):
        collector.feed(event)
    assert [(type(p).__name__, getattr(p, "text", "")) for p in collector.response().parts] == [
        ("Reasoning", "a b"),
        ("Text", "Answer"),
    ]
