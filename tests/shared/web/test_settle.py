"""The end of a response waits for the writes its request left behind (SettleBeforeEnd), or an internal
extension does (TrackInvocations): shared/web/settle.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.responses import Response

from shared.adapters.lambda_extension import InvocationTracker
from shared.web.settle import SettleBeforeEnd, TrackInvocations
from shared.web.streaming import RelayResponse

pytestmark = pytest.mark.anyio

LWA_CONTEXT = (b"x-amzn-lambda-context", b'{"request_id":"abc"}')


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


def scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"spec_version": "2.4"}, "path": path, "headers": headers or []}


class Writes:
    """Pending writes that land when released; records when the response's last message went out."""

    def __init__(self) -> None:
        self.landed = asyncio.Event()
        self.log: list[str] = []

    async def settle(self) -> None:
        self.log.append("settle started")
        await self.landed.wait()
        self.log.append("writes landed")


async def run(app: Any, path: str, writes: Writes, headers: list[tuple[bytes, bytes]] | None = None) -> list[Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            writes.log.append("last message" if not message.get("more_body") else f"body {message['body']!r}")

    task = asyncio.ensure_future(app(scope(path, headers), receive, send))
    await asyncio.sleep(0.05)
    assert not task.done() or path != "/v1/chat/completions"  # held while the writes are pending
    writes.landed.set()
    await task
    return sent


async def test_a_json_answer_goes_out_whole_and_only_its_end_waits_for_the_writes() -> None:
    writes = Writes()
    app = SettleBeforeEnd(Response(b'{"ok":true}', media_type="application/json"), writes.settle)
    sent = await run(app, "/v1/chat/completions", writes)
    assert writes.log == ["body b'{\"ok\":true}'", "settle started", "writes landed", "last message"]
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_stream_ends_only_after_the_writes() -> None:
    async def chunks() -> Any:
        yield b"data: 1\n\n"

    async def nothing() -> None:
        return None

    writes = Writes()
    app = SettleBeforeEnd(RelayResponse(chunks(), on_close=nothing, headers={}), writes.settle)
    await run(app, "/v1/chat/completions", writes)
    assert writes.log == ["body b'data: 1\\n\\n'", "settle started", "writes landed", "last message"]


async def test_other_paths_are_not_held() -> None:
    writes = Writes()
    app = SettleBeforeEnd(Response(b"ok"), writes.settle)
    await run(app, "/healthz", writes)
    assert writes.log == ["last message"]


async def test_a_failing_settle_still_ends_the_response() -> None:
    async def broken() -> None:
        raise RuntimeError("store down")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await SettleBeforeEnd(Response(b"{}"), broken)(scope("/v1/messages"), receive, send)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_with_an_extension_the_response_ends_at_once_and_the_tracker_waits_for_the_writes() -> None:
    tracker = InvocationTracker()
    writes = Writes()
    app = TrackInvocations(Response(b"{}"), tracker, writes.settle)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope("/v1/chat/completions", [LWA_CONTEXT]), receive, send)
    assert sent[-1].get("more_body", False) is False  # ended without waiting
    assert tracker.requests_started == 1 and tracker.in_flight == 0 and tracker.pending_work == 1
    assert not await asyncio.to_thread(tracker.wait_settled, 1, 0.05)  # the extension would keep waiting
    writes.landed.set()
    assert await asyncio.to_thread(tracker.wait_settled, 1, 2.0)
    assert tracker.pending_work == 0


async def test_the_readiness_probe_is_not_an_invocation() -> None:
    tracker = InvocationTracker()
    writes = Writes()

    async def send(message: dict[str, Any]) -> None:
        return None

    await TrackInvocations(Response(b"ok"), tracker, writes.settle)(scope("/healthz"), receive, send)
    assert tracker.requests_started == 0 and tracker.pending_work == 0 and writes.log == []
