"""A linked Kimi Code account through ChatService, against the fake OpenAI Chat upstream over loopback: the call
names Kimi CLI and one steady device per account."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from shared.providers.executors.kimi import CLI_VERSION
from shared.providers.spec import WireFormat
from shared.services.chat import ChatService
from tests.fakes.openai_upstream import create_app
from tests.fakes.server import ServerThread
from tests.shared.providers.executors.helpers import chat_text, json_of, linked, route, streamed

pytestmark = pytest.mark.anyio

TOKEN = "kimi-oauth-access-token"
MODEL = "kc/kimi-for-coding"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hello kimi"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app(api_key=TOKEN)) as srv:
        yield srv


@pytest.fixture
def fake(server: ServerThread[Any]) -> Any:
    state = server.app.state.fake
    state.clear_requests()
    return state


def kimi(server: ServerThread[Any], conn_id: str = "conn_kimi1", **meta: Any) -> Any:
    return route(MODEL, linked("kimi-code", TOKEN, server.base_url + "/v1", meta=meta, conn_id=conn_id))


async def test_the_call_names_kimi_cli_and_the_linked_device(
    chat: ChatService, server: ServerThread[Any], fake: Any
) -> None:
    linked_device = {"deviceId": "5b3f0c9e-device", "deviceName": "work-laptop", "deviceModel": "macOS 15.5 arm64"}
    reply = await chat.complete(BODY, kimi(server, **linked_device, osVersion="24.5.0"), stream=False)
    assert json_of(reply)["choices"][0]["message"]["content"] == "Hello from fake-openai: hello kimi"
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "kimi-for-coding"
    headers = sent["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["user-agent"] == f"KimiCLI/{CLI_VERSION}"
    assert headers["x-msh-platform"] == "kimi_cli" and headers["x-msh-version"] == CLI_VERSION
    assert headers["x-msh-device-id"] == "5b3f0c9e-device"
    assert headers["x-msh-device-name"] == "work-laptop"
    assert headers["x-msh-device-model"] == "macOS 15.5 arm64"
    assert headers["x-msh-os-version"] == "24.5.0"


async def test_an_account_without_a_device_keeps_one_derived_from_its_connection(
    chat: ChatService, server: ServerThread[Any], fake: Any
) -> None:
    for conn_id in ("conn_kimi1", "conn_kimi1", "conn_kimi2"):
        await chat.complete(BODY, kimi(server, conn_id, deviceName="héllo\u2603 box"), stream=False)
    ids = [r["headers"]["x-msh-device-id"] for r in fake.requests]
    assert ids[0] == ids[1] != ids[2]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert fake.requests[0]["headers"]["x-msh-device-name"] == "hllo box"  # header values stay visible ASCII


async def test_a_stream_passes_through(chat: ChatService, server: ServerThread[Any], fake: Any) -> None:
    reply = await chat.complete({**BODY, "stream": True}, kimi(server), stream=True, client=WireFormat.OPENAI)
    assert chat_text(await streamed(reply)) == "Hello from fake-openai: hello kimi"
    assert fake.requests[-1]["headers"]["x-msh-platform"] == "kimi_cli"
    assert reply.outcome.usage is not None
