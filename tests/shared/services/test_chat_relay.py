"""The stream relay, fed recorded-shape upstream bytes: exactly one [DONE], truncation reported, usage
captured and the extra usage chunk dropped, whatever the framing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson
import pytest

from shared.errors import UpstreamFailed
from shared.services.chat import Outcome, _relay

pytestmark = pytest.mark.anyio

HEAD = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
TEXT = (HEAD + '"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}').encode()
FINISH = (HEAD + '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}').encode()
USAGE = (HEAD + '"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}').encode()
FILTER = (HEAD + '"choices":[],"usage":null,"prompt_filter_results":[]}').encode()


def sse(*payloads: bytes, tail: bytes = b"\n\n") -> bytes:
    return b"\n\n".join(b"data: " + p for p in payloads) + tail


class FakeResponse:
    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.closed = False
        self.status = 200
        self.headers: Mapping[str, str] = {"content-type": "text/event-stream"}

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c
        if self.error:
            raise self.error

    async def aread(self) -> bytes:
        return b"".join(self.chunks)

    async def aclose(self) -> None:
        self.closed = True


async def relay(
    chunks: list[bytes], *, wants_usage: bool = False, error: Exception | None = None
) -> tuple[str, Outcome, FakeResponse]:
    resp = FakeResponse(chunks, error)
    outcome = Outcome(provider="p", model="p/m")
    out = b"".join([part async for part in _relay(resp, wants_usage, outcome)])
    return out.decode(), outcome, resp


async def test_normal_stream_passes_verbatim() -> None:
    body = sse(TEXT, FINISH, b"[DONE]")
    text, outcome, resp = await relay([body])
    assert text == body.decode() and resp.closed and outcome.error is None


async def test_usage_chunk_dropped_unless_asked_and_always_recorded() -> None:
    body = sse(TEXT, FINISH, USAGE, b"[DONE]")
    text, outcome, _ = await relay([body])
    assert '"usage":{' not in text and text.endswith("data: [DONE]\n\n")
    assert outcome.usage is not None and (outcome.usage.input, outcome.usage.output) == (3, 2)
    asked, _, _ = await relay([body], wants_usage=True)
    assert '"prompt_tokens":3' in asked


async def test_last_frame_without_blank_line_is_still_inspected() -> None:
    text, outcome, _ = await relay([sse(TEXT, FINISH, USAGE, b"[DONE]", tail=b"")])
    assert text.count("[DONE]") == 1
    assert '"usage":{' not in text
    text, outcome, _ = await relay([sse(TEXT, FINISH, USAGE, tail=b"")])
    assert outcome.usage is not None and '"usage":{' not in text
    assert text.count("[DONE]") == 1  # added after the finish_reason


async def test_duplicate_done_and_anything_after_it_are_dropped() -> None:
    text, _, _ = await relay([sse(TEXT, FINISH, b"[DONE]", b"[DONE]", TEXT)])
    assert text.count("[DONE]") == 1 and text.count('"content":"hi"') == 1


async def test_stream_ending_without_finish_is_reported_not_completed() -> None:
    text, outcome, resp = await relay([sse(TEXT)])
    assert "data: [DONE]" not in text
    last = orjson.loads(text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last["error"]["code"] == "upstream_error" and "before finishing" in last["error"]["message"]
    assert outcome.error and resp.closed


async def test_null_usage_chunks_pass() -> None:
    text, _, _ = await relay([sse(FILTER, TEXT, FINISH, b"[DONE]")])
    assert "prompt_filter_results" in text


async def test_failures_become_one_error_event_and_close_the_upstream() -> None:
    text, _, resp = await relay([sse(TEXT)], error=UpstreamFailed("cut"))
    assert text.endswith('"code":"upstream_error"}}\n\n') and '"message":"cut"' in text and resp.closed
    text, _, resp = await relay([sse(TEXT)], error=RuntimeError("secret-ish internals"))
    assert "secret-ish" not in text and "failed while relaying" in text and resp.closed


async def test_crlf_and_bare_cr_upstreams() -> None:
    body = sse(TEXT, FINISH, b"[DONE]").replace(b"\n", b"\r\n")
    text, _, _ = await relay([body[i : i + 7] for i in range(0, len(body), 7)])
    assert text.replace("\r\n", "\n") == sse(TEXT, FINISH, b"[DONE]").decode()
    cr = sse(TEXT, FINISH, b"[DONE]").replace(b"\n", b"\r")
    text, _, _ = await relay([cr])
    assert text.count("[DONE]") == 1
