"""A linked GitHub Copilot account through ChatService, against the fake Copilot API over loopback (it refuses
missing editor headers, foreign content parts, images without the vision header and `max_tokens` on GPT-5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.providers.spec import WireFormat
from shared.services.chat import ChatService
from tests.fakes.copilot_upstream import create_app
from tests.fakes.server import ServerThread
from tests.shared.providers.executors.helpers import chat_text, json_of, linked, route, sse_events, streamed

pytestmark = pytest.mark.anyio

COPILOT_TOKEN = "tid=abc;exp=1900000000;sku=copilot_individual;8kp=1:deadbeef"
GITHUB_TOKEN = "ghu_fakeGitHubUserToken0123456789"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app(COPILOT_TOKEN)) as srv:
        yield srv


@pytest.fixture
def fake(server: ServerThread[Any]) -> Any:
    state = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    return state


def gh(server: ServerThread[Any], model: str) -> Any:
    # the plan host comes with the token; the GitHub token is the refresh token, never sent to the API
    return route(f"gh/{model}", linked("github", COPILOT_TOKEN, server.base_url, refresh_token=GITHUB_TOKEN))


async def test_the_call_carries_the_editor_identity_and_a_request_id(
    chat: ChatService, server: ServerThread[Any], fake: Any
) -> None:
    body = {"model": "gh/gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        reply = await chat.complete(body, gh(server, "gpt-4.1"), stream=False, client=WireFormat.OPENAI)
        assert json_of(reply)["choices"][0]["message"]["content"] == "Hello from fake-openai: hi"
    first, second = (r["headers"] for r in fake.requests)
    assert first["authorization"] == f"Bearer {COPILOT_TOKEN}"
    assert GITHUB_TOKEN not in str(fake.requests)
    assert first["copilot-integration-id"] == "vscode-chat"
    assert first["editor-version"].startswith("vscode/") and first["editor-plugin-version"].startswith("copilot-chat/")
    assert first["user-agent"].startswith("GitHubCopilotChat/")
    assert first["openai-intent"] == "conversation-panel"
    assert first["x-initiator"] == "user"
    assert uuid.UUID(first["x-request-id"]) != uuid.UUID(second["x-request-id"])
    assert "copilot-vision-request" not in first
    assert fake.requests[0]["path"] == "/chat/completions"


async def test_a_tool_result_turn_is_the_agents(chat: ChatService, server: ServerThread[Any], fake: Any) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": "{}"}}
    body = {
        "model": "gh/gpt-4.1",
        "messages": [
            {"role": "user", "content": "read it"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "file body"},
        ],
    }
    reply = await chat.complete(body, gh(server, "gpt-4.1"), stream=False, client=WireFormat.OPENAI)
    assert json_of(reply)["choices"][0]["message"]["content"] == "Tool said: file body"
    assert fake.requests[-1]["headers"]["x-initiator"] == "agent"


async def test_foreign_content_parts_are_flattened_and_images_flagged(
    chat: ChatService, server: ServerThread[Any], fake: Any
) -> None:
    body = {
        "model": "gh/gpt-4.1",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "a chart", "signature": "sig"},
                    {"type": "text", "text": "ok"},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "a.pdf"}},
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "42"}]},
                    {"type": "text", "text": "and this"},
                ],
            },
        ],
    }
    reply = await chat.complete(body, gh(server, "gpt-4.1"), stream=True, client=WireFormat.OPENAI)
    answer = chat_text(await streamed(reply))  # the fake repeats every text part of the last user message
    assert answer == "Hello from fake-openai: [file omitted: not supported by GitHub Copilot] 42 and this"
    sent = fake.requests[-1]
    assert sent["headers"]["copilot-vision-request"] == "true"
    messages = sent["body"]["messages"]
    assert messages[0]["content"] == [{"type": "text", "text": "look"}, IMAGE]
    assert messages[1]["content"] == [{"type": "text", "text": "a chart"}, {"type": "text", "text": "ok"}]
    third = messages[2]["content"]
    assert [p["type"] for p in third] == ["text", "text", "text"]
    assert third[0]["text"].startswith("[file omitted") and "JVBERi0" not in third[0]["text"]
    assert third[1]["text"] == "42" and third[2]["text"] == "and this"


async def test_claude_models_get_no_reasoning_fields(chat: ChatService, server: ServerThread[Any], fake: Any) -> None:
    body = {
        "model": "gh/claude-sonnet-4.5",
        "max_tokens": 1024,
        "thinking": {"type": "enabled", "budget_tokens": 512},
        "messages": [{"role": "user", "content": "think"}],
    }
    reply = await chat.complete(body, gh(server, "claude-sonnet-4.5"), stream=False, client=WireFormat.ANTHROPIC)
    answer = json_of(reply)
    assert answer["type"] == "message" and answer["content"][-1]["text"] == "Hello from fake-openai: think"
    sent = fake.requests[-1]["body"]
    assert not {"thinking", "reasoning", "reasoning_effort"} & set(sent)
    assert sent["max_tokens"] == 1024  # Claude models keep the classic limit


async def test_gpt5_models_get_max_completion_tokens(chat: ChatService, server: ServerThread[Any], fake: Any) -> None:
    body = {"model": "gh/gpt-5-mini", "max_tokens": 200, "messages": [{"role": "user", "content": "short"}]}
    reply = await chat.complete(body, gh(server, "gpt-5-mini"), stream=False, client=WireFormat.OPENAI)
    assert json_of(reply)["choices"][0]["message"]["content"] == "Hello from fake-openai: short"
    sent = fake.requests[-1]["body"]
    assert sent["max_completion_tokens"] == 200 and "max_tokens" not in sent


async def test_an_anthropic_client_streams_from_copilot(
    chat: ChatService, server: ServerThread[Any], fake: Any
) -> None:
    body = {"model": "gh/gpt-5-mini", "max_tokens": 300, "messages": [{"role": "user", "content": "stream it"}]}
    reply = await chat.complete(body, gh(server, "gpt-5-mini"), stream=True, client=WireFormat.ANTHROPIC)
    events = sse_events(await streamed(reply))
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "Hello from fake-openai: stream it"
    assert reply.outcome.usage is not None and reply.outcome.usage.output > 0
    assert fake.requests[-1]["body"]["max_completion_tokens"] == 300


@pytest.mark.parametrize(
    ("drop", "change", "detail"),
    [
        ("editor-version", {}, "missing Editor-Version header"),
        ("copilot-integration-id", {}, "missing Copilot-Integration-Id header"),
        (None, {"messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}]}, "type has to be"),
        (None, {"messages": [{"role": "user", "content": [IMAGE]}]}, "Copilot-Vision-Request"),
        (None, {"model": "gpt-5-mini", "max_tokens": 10}, "max_completion_tokens"),
    ],
)
def test_the_fake_refuses_what_copilot_refuses(
    server: ServerThread[Any], drop: str | None, change: dict[str, Any], detail: str
) -> None:
    headers = {
        "authorization": f"Bearer {COPILOT_TOKEN}",
        "copilot-integration-id": "vscode-chat",
        "editor-version": "vscode/1.110.0",
    }
    good = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    sent = {k: v for k, v in headers.items() if k != drop}
    resp = httpx.post(server.base_url + "/chat/completions", json={**good, **change}, headers=sent)
    assert resp.status_code == 400 and detail in resp.json()["error"]["message"]
    assert httpx.post(server.base_url + "/chat/completions", json=good, headers=headers).status_code == 200
    wrong = {**headers, "authorization": f"Bearer {GITHUB_TOKEN}"}
    assert httpx.post(server.base_url + "/chat/completions", json=good, headers=wrong).status_code == 401
