from collections.abc import AsyncIterator

import pytest
from starlette.requests import ClientDisconnect

from shared.web.streaming import RelayResponse

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
