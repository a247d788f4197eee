"""A linked Grok CLI (xAI OAuth) account through ChatService, against the fake Responses upstream over loopback:
the call names the Grok CLI and always streams; a JSON client still gets a JSON Response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.providers.executors.grok import CLIENT_VERSION
from shared.providers.spec import WireFormat
from shared.services.chat import ChatService
from tests.fakes.responses_upstream import create_app
from tests.fakes.server import ServerThread
from tests.shared.providers.executors.helpers import chat_text, json_of, linked, route, streamed

pytestmark = pytest.mark.anyio

TOKEN = "xai-oauth-access-token"
MODEL = "gk/grok-4"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app(api_key=TOKEN, models=("grok-4",))) as srv:
        yield srv


@pytest.fixture
def fake(server: ServerThread[Any]) -> Any:
    state = server.app.state.fake
    state.clear_requests()
    return state


def grok(server: ServerThread[Any]) -> Any:
    return route(MODEL, linked("grok-cli", TOKEN, server.base_url + "/v1"))


async def test_a_json_client_is_answered_from_a_stream(chat: ChatService, server: ServerThread[Any], fake: Any) -> None:
    body = {"model": MODEL, "input": "hi grok", "prompt_cache_key": "conv-7"}
    reply = await chat.complete(body, grok(server), stream=False, client=WireFormat.RESPONSES)
    response = json_of(reply)
    assert response["object"] == "response"
    assert response["output"][-1]["content"][0]["text"] == "Hello from fake-responses: hi grok"
    assert reply.outcome.usage is not None and reply.outcome.usage.output > 0
    sent = fake.requests[-1]
    assert sent["body"]["stream"] is True and sent["body"]["input"] == "hi grok"  # the body is left as it is
    headers = sent["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-xai-token-auth"] == "xai-grok-cli"
    assert headers["x-grok-client-version"] == CLIENT_VERSION
    assert headers["user-agent"] == f"xai-grok-workspace/{CLIENT_VERSION}"
    assert headers["x-grok-conv-id"] == "conv-7"


async def test_a_chat_client_streams(chat: ChatService, server: ServerThread[Any], fake: Any) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "go"}], "stream": True}
    reply = await chat.complete(body, grok(server), stream=True, client=WireFormat.OPENAI)
    assert chat_text(await streamed(reply)) == "Hello from fake-responses: go"
    assert "x-grok-conv-id" not in fake.requests[-1]["headers"]
