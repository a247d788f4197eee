"""The cloud's public-only upstream guard: HttpxUpstream(public_only=True) against a real server on loopback,
and PublicOnlyBackend's resolve-check-connect order with a recording inner backend (no internet here, so a
public address can only be reached through a fake inner backend)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

import anyio
import httpcore
import pytest

from shared.adapters.upstream import AddressRefused, HttpxUpstream, PublicOnlyBackend
from shared.errors import UpstreamFailed
from tests.fakes.openai_upstream import create_app
from tests.fakes.server import ServerThread

pytestmark = pytest.mark.anyio
BODY = b'{"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}'
JSON = {"content-type": "application/json"}


@pytest.fixture
def fake() -> Iterator[ServerThread]:
    with ServerThread(create_app()) as server:
        yield server


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",  # an address literal
        "localhost",  # a name that is never public, refused before any lookup
        "127.1",  # an ordinary-looking name that only resolution shows to be loopback
    ],
)
async def test_public_only_refuses_a_loopback_upstream_before_connecting(fake: ServerThread, host: str) -> None:
    upstream = HttpxUpstream(connect_timeout=2, read_timeout=5, public_only=True)
    try:
        with pytest.raises(UpstreamFailed) as exc:
            await upstream.send("POST", f"http://{host}:{fake.port}/v1/chat/completions", JSON, BODY, stream=False)
    finally:
        await upstream.aclose()
    assert exc.value.code == "upstream_address_refused"
    assert exc.value.http_status == 502
    assert "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS" in exc.value.message
    assert fake.app.state.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_without_public_only_the_same_upstream_is_reached(fake: ServerThread, host: str) -> None:
    upstream = HttpxUpstream(connect_timeout=2, read_timeout=5, public_only=False)
    try:
        resp = await upstream.send("POST", f"http://{host}:{fake.port}/v1/chat/completions", JSON, BODY, stream=False)
    finally:
        await upstream.aclose()
    assert resp.status == 200
    assert [r["path"] for r in fake.app.state.requests] == ["/v1/chat/completions"]


# ----- PublicOnlyBackend --------------------------------------------------------------------------------


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """An inner backend that records where it is asked to connect; `fail` lists addresses that refuse."""

    def __init__(self, fail: Iterable[str] = ()) -> None:
        self.calls: list[tuple[str, int, float | None]] = []
        self.fail = set(fail)
        self.stream = object()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        self.calls.append((host, port, timeout))
        if host in self.fail:
            raise httpcore.ConnectError(f"{host} refused")
        return self.stream

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("never asked for a unix socket")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[tuple[str, int]]:
    """Make anyio.getaddrinfo answer `addresses` (in order, with duplicates as given); returns the lookups."""
    lookups: list[tuple[str, int]] = []

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        lookups.append((host, port))
        infos = []
        for a in addresses:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            sockaddr = (a, port, 0, 0) if family == socket.AF_INET6 else (a, port)
            infos.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return infos

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)
    return lookups


async def test_connects_the_inner_backend_to_the_resolved_address_not_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups = resolving_to(monkeypatch, "93.184.216.34", "93.184.216.34")
    inner = RecordingBackend()
    stream = await PublicOnlyBackend(inner).connect_tcp("example.com", 443, timeout=3.0)
    assert stream is inner.stream
    assert lookups == [("example.com", 443)]
    assert inner.calls == [("93.184.216.34", 443, 3.0)]  # the checked address, once despite the duplicate


async def test_falls_back_to_the_next_public_address_when_one_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    resolving_to(monkeypatch, "2606:2800:220:1::1", "93.184.216.34")
    inner = RecordingBackend(fail={"2606:2800:220:1::1"})
    assert await PublicOnlyBackend(inner).connect_tcp("example.com", 443) is inner.stream
    assert [c[0] for c in inner.calls] == ["2606:2800:220:1::1", "93.184.216.34"]


async def test_the_last_connect_error_is_raised_when_every_address_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    resolving_to(monkeypatch, "93.184.216.34", "93.184.216.35")
    inner = RecordingBackend(fail={"93.184.216.34", "93.184.216.35"})
    with pytest.raises(httpcore.ConnectError, match=r"93\.184\.216\.35 refused"):
        await PublicOnlyBackend(inner).connect_tcp("example.com", 443)
    assert len(inner.calls) == 2


@pytest.mark.parametrize(
    "addresses",
    [
        ("93.184.216.34", "10.0.0.7"),  # one private answer spoils the lot (DNS rebinding)
        ("169.254.169.254",),
        ("::ffff:127.0.0.1",),
        (),  # resolves to nothing
    ],
)
async def test_any_non_public_answer_refuses_without_connecting(
    monkeypatch: pytest.MonkeyPatch, addresses: tuple[str, ...]
) -> None:
    resolving_to(monkeypatch, *addresses)
    inner = RecordingBackend()
    with pytest.raises(AddressRefused, match="not a public address"):
        await PublicOnlyBackend(inner).connect_tcp("example.com", 443)
    assert inner.calls == []


async def test_names_that_are_never_public_are_refused_without_a_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = resolving_to(monkeypatch, "93.184.216.34")
    inner = RecordingBackend()
    for host in ("localhost", "metadata.google.internal", "169.254.169.254"):
        with pytest.raises(AddressRefused):
            await PublicOnlyBackend(inner).connect_tcp(host, 80)
    assert lookups == [] and inner.calls == []


async def test_a_failed_lookup_is_a_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)
    inner = RecordingBackend()
    with pytest.raises(httpcore.ConnectError, match=r"cannot resolve nowhere\.example"):
        await PublicOnlyBackend(inner).connect_tcp("nowhere.example", 443)
    assert inner.calls == []


async def test_a_lookup_past_the_connect_timeout_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> Any:
        await anyio.sleep_forever()

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)
    inner = RecordingBackend()
    with pytest.raises(httpcore.ConnectTimeout, match=r"resolving slow\.example timed out"):
        await PublicOnlyBackend(inner).connect_tcp("slow.example", 443, timeout=0.05)
    assert inner.calls == []


async def test_unix_sockets_are_never_upstreams() -> None:
    with pytest.raises(AddressRefused):
        await PublicOnlyBackend(RecordingBackend()).connect_unix_socket("/var/run/docker.sock")
