import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from starlette.requests import ClientDisconnect

from shared.web import streaming
from shared.web.streaming import KEEPALIVE_FRAME, RelayResponse

pytestmark = pytest.mark.anyio


class Upstream:
    def __init__(self) -> None:
        self.closed = 0
        self.started = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        yield b"data: 1\n\n"

    async def aclose(self) -> None:
        self.closed += 1


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_upstream_closed_when_the_response_cannot_even_start() -> None:
    up = Upstream()

    async def send(message: dict[str, object]) -> None:
        raise OSError("client went away")

    response = RelayResponse(up.chunks(), on_close=up.aclose, headers={})
    with pytest.raises(ClientDisconnect):  # Starlette's name for an OSError from send
        await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)  # type: ignore[arg-type]
    assert not up.started  # the generator never ran, so its own cleanup could not have run
    assert up.closed == 1


async def test_upstream_closed_after_a_normal_relay() -> None:
    up = Upstream()
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    response = RelayResponse(up.chunks(), on_close=up.aclose, headers={"x-a": "b"})
    await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body", "http.response.body"]
    assert up.closed == 1


async def paced(*items: tuple[float, bytes]) -> AsyncIterator[bytes]:
    for pause, chunk in items:
        await asyncio.sleep(pause)
        yield chunk


async def relayed(chunks: AsyncIterator[bytes], **options: Any) -> list[bytes]:
    up = Upstream()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    response = RelayResponse(chunks, on_close=up.aclose, headers={}, **options)
    await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)  # type: ignore[arg-type]
    assert up.closed == 1 and sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    return [m["body"] for m in sent[1:-1]]


async def test_a_lively_stream_passes_unchanged() -> None:
    assert await relayed(paced((0, b"a"), (0, b"b")), keepalive=5.0) == [b"a", b"b"]


async def test_silence_longer_than_the_interval_sends_keepalive_comments() -> None:
    out = await relayed(paced((0, b"a"), (0.35, b"b")), keepalive=0.1)
    assert out[0] == b"a" and out[-1] == b"b"
    assert 2 <= out.count(KEEPALIVE_FRAME) <= 4 and len(out) == out.count(KEEPALIVE_FRAME) + 2


async def test_progress_frames_report_time_and_a_final_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "PROGRESS_SECONDS", 0.1)
    out = await relayed(paced((0, b"data: 1\n\n"), (0.25, b"data: 2\n\n")), keepalive=10.0, progress=True)
    frames = [orjson.loads(c.split(b"data: ", 1)[1]) for c in out if c.startswith(b"event: progress")]
    assert len(frames) >= 2 and frames[-1]["done"] is True and frames[-1]["chunks_relayed"] == 2
    assert all(not f["done"] for f in frames[:-1]) and frames[-1]["elapsed_ms"] >= 200
    assert out.index(b"data: 2\n\n") < len(out) - 1  # the final progress frame comes after the data


async def test_an_upstream_failure_still_closes_the_upstream() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        raise RuntimeError("cut")

    up = Upstream()

    async def send(message: dict[str, Any]) -> None:
        pass

    response = RelayResponse(failing(), on_close=up.aclose, headers={}, keepalive=0.05)
    with pytest.raises(RuntimeError, match="cut"):
        await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)  # type: ignore[arg-type]
    assert up.closed == 1
