import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from shared.web.request_id import RequestIdMiddleware, Timing


def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.request_id)


@pytest.fixture
def client() -> TestClient:
    app = Starlette(routes=[Route("/", echo)])
    return TestClient(RequestIdMiddleware(app))


def test_generated_when_absent_and_seen_by_the_app(client: TestClient) -> None:
    resp = client.get("/")
    rid = resp.headers["x-request-id"]
    assert rid.startswith("req_") and len(rid) == 36
    assert resp.text == rid
    assert client.get("/").headers["x-request-id"] != rid


@pytest.mark.parametrize("sent", ["abc-123", "trace:1.2_3", "x" * 128])
def test_client_id_kept_when_safe(client: TestClient, sent: str) -> None:
    assert client.get("/", headers={"x-request-id": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "<script>", "a\tb"])
def test_unsafe_client_id_replaced(client: TestClient, sent: str) -> None:
    got = client.get("/", headers={"x-request-id": sent}).headers["x-request-id"]
    assert got.startswith("req_")
    assert got != sent


# ----- Server-Timing and the end-of-request hook ---------------------------------------------------------


def timed(request: Request) -> PlainTextResponse:
    started = time.perf_counter()
    request.state.timing.since("auth", started)
    request.state.timing.since("upstream", started)
    return PlainTextResponse("ok")


def server_timing(header: str) -> list[tuple[str, float]]:
    phases = []
    for part in header.split(", "):
        name, _, dur = part.partition(";dur=")
        phases.append((name, float(dur)))
    return phases


def test_server_timing_lists_recorded_phases_then_total() -> None:
    app = Starlette(routes=[Route("/", timed), Route("/plain", echo)])
    client = TestClient(RequestIdMiddleware(app))
    phases = server_timing(client.get("/").headers["server-timing"])
    assert [name for name, _ in phases] == ["auth", "upstream", "total"]
    assert all(dur >= 0 for _, dur in phases)
    assert [name for name, _ in server_timing(client.get("/plain").headers["server-timing"])] == ["total"]


def test_a_phase_recorded_twice_accumulates() -> None:
    timing = Timing()
    a_second_ago = time.perf_counter() - 1.0
    timing.since("db", a_second_ago)
    timing.since("db", a_second_ago)
    assert list(timing.phases) == ["db"]
    assert timing.phases["db"] >= 2000.0
    assert timing.header(12.345).decode() == f"db;dur={timing.phases['db']:.2f}, total;dur=12.35"


class Recorder:
    """Records what reaches the server (messages sent) and the hook's calls, in one ordered list."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.fail = fail

    def on_finish(self, scope: Scope, status: int, seconds: float) -> None:
        assert scope["path"] == "/"
        assert isinstance(seconds, float) and seconds >= 0
        self.events.append(("finish", status))
        if self.fail:
            raise RuntimeError("metrics backend down")

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.events.append(("start", message["status"]))
        else:
            self.events.append(("body", message.get("body", b""), message.get("more_body", False)))

    @property
    def finishes(self) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == "finish"]


def http_scope() -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}


async def receive() -> Message:
    """A GET has nothing to read: the client stays connected until cancelled (a receive that returned at once
    would keep StreamingResponse's disconnect listener spinning)."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def streamed(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    return StreamingResponse(chunks(), media_type="text/plain")


def failing(request: Request) -> PlainTextResponse:
    raise RuntimeError("handler bug")


@pytest.mark.anyio
async def test_on_finish_runs_once_with_the_status_before_the_last_body_chunk() -> None:
    rec = Recorder()
    await RequestIdMiddleware(Starlette(routes=[Route("/", echo)]), on_finish=rec.on_finish)(
        http_scope(), receive, rec.send
    )
    assert [e[0] for e in rec.events] == ["start", "finish", "body"]
    assert rec.finishes == [("finish", 200)]


@pytest.mark.anyio
async def test_on_finish_runs_before_the_end_of_a_stream() -> None:
    rec = Recorder()
    app = Starlette(routes=[Route("/", streamed)])
    await RequestIdMiddleware(app, on_finish=rec.on_finish)(http_scope(), receive, rec.send)
    assert rec.events == [
        ("start", 200),
        ("body", b"a", True),
        ("body", b"b", True),
        ("finish", 200),
        ("body", b"", False),
    ]


@pytest.mark.anyio
async def test_on_finish_runs_once_when_the_app_raises_after_answering_500() -> None:
    rec = Recorder()
    app = Starlette(routes=[Route("/", failing)])  # ServerErrorMiddleware answers 500, then re-raises
    with pytest.raises(RuntimeError, match="handler bug"):
        await RequestIdMiddleware(app, on_finish=rec.on_finish)(http_scope(), receive, rec.send)
    assert rec.events[0] == ("start", 500)
    assert rec.finishes == [("finish", 500)]


@pytest.mark.anyio
async def test_on_finish_runs_once_when_the_app_raises_before_any_response() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("no response at all")

    rec = Recorder()
    with pytest.raises(RuntimeError, match="no response at all"):
        await RequestIdMiddleware(broken, on_finish=rec.on_finish)(http_scope(), receive, rec.send)
    assert rec.events == [("finish", 0)]  # 0: no status was ever sent


@pytest.mark.anyio
async def test_on_finish_runs_once_when_a_stream_breaks_off() -> None:
    async def cut(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise OSError("upstream went away")

    rec = Recorder()
    with pytest.raises(OSError, match="upstream went away"):
        await RequestIdMiddleware(cut, on_finish=rec.on_finish)(http_scope(), receive, rec.send)
    assert rec.events == [("start", 200), ("body", b"partial", True), ("finish", 200)]


def test_on_finish_through_a_real_client_for_each_kind_of_response() -> None:
    calls: list[int] = []
    app = Starlette(routes=[Route("/", echo), Route("/stream", streamed), Route("/fail", failing)])
    client = TestClient(
        RequestIdMiddleware(app, on_finish=lambda scope, status, seconds: calls.append(status)),
        raise_server_exceptions=False,
    )
    assert client.get("/").status_code == 200
    assert client.get("/stream").text == "ab"
    assert client.get("/fail").status_code == 500
    assert client.get("/missing").status_code == 404
    assert calls == [200, 200, 500, 404]


@pytest.mark.anyio
@pytest.mark.parametrize(("route", "body"), [(timed, b"ok"), (streamed, b"ab")])
async def test_a_failing_hook_is_logged_and_never_breaks_the_response(
    route: Any, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(fail=True)
    with caplog.at_level(logging.ERROR, logger="shared.web.request_id"):
        await RequestIdMiddleware(Starlette(routes=[Route("/", route)]), on_finish=rec.on_finish)(
            http_scope(), receive, rec.send
        )
    bodies = [e for e in rec.events if e[0] == "body"]
    assert b"".join(e[1] for e in bodies) == body
    assert bodies[-1][2] is False  # the response was completed
    assert len(rec.finishes) == 1
    (record,) = [r for r in caplog.records if r.name == "shared.web.request_id"]
    assert record.getMessage() == "the end-of-request hook failed"
    assert record.exc_info is not None and "metrics backend down" in str(record.exc_info[1])


@pytest.mark.anyio
async def test_non_http_scopes_pass_through_without_the_hook() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    rec = Recorder()
    await RequestIdMiddleware(app, on_finish=rec.on_finish)({"type": "lifespan"}, receive, rec.send)
    assert seen == ["lifespan"]
    assert rec.events == []
