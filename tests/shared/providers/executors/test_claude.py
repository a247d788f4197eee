"""A linked Claude Pro/Max account through ChatService, against the fake Anthropic API answering an OAuth token
(`tests.fakes.claude_oauth`) over loopback: what goes out (URL, headers, system blocks), and that the answer comes
back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from shared.domain.resolve import Route
from shared.errors import UpstreamRejected
from shared.providers.executors.claude import PREAMBLE, REQUIRED_BETAS
from shared.providers.spec import AuthHeader, WireFormat
from shared.services.chat import ChatService
from tests.fakes.claude_oauth import ClaudeOAuthUpstream
from tests.fakes.server import ServerThread
from tests.shared.providers.executors.helpers import chat_text, json_of, linked, route, streamed

pytestmark = pytest.mark.anyio

TOKEN = "sk-ant-oat01-fake-access-token"
MODEL = "cc/claude-sonnet-4-6"
BILLING = "x-anthropic-billing-header: cc_version=2.1.177.3bf; cc_entrypoint=cli;"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[ClaudeOAuthUpstream]]:
    with ServerThread(ClaudeOAuthUpstream(TOKEN)) as srv:
        yield srv


@pytest.fixture
def fake(server: ServerThread[ClaudeOAuthUpstream]) -> Any:
    state = server.app.state.fake
    state.clear_requests()
    state.clear_script()
    return state


def claude_route(server: ServerThread[ClaudeOAuthUpstream]) -> Any:
    return route(MODEL, linked("claude", TOKEN, server.base_url + "/v1"))


def messages_body(system: Any = None, text: str = "hello") -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    if system is not None:
        body["system"] = system
    return body


async def test_oauth_call_has_claude_code_betas_then_the_clients(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any
) -> None:
    reply = await chat.complete(
        messages_body(),
        claude_route(server),
        stream=False,
        client=WireFormat.ANTHROPIC,
        client_headers={"anthropic-beta": "context-1m-2025-08-07, oauth-2025-04-20"},
    )
    assert json_of(reply)["content"][0]["text"] == "Hello from fake-anthropic: hello"
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/messages" and sent["query"] == "beta=true"
    assert sent["headers"]["anthropic-beta"].split(",") == [*REQUIRED_BETAS, "context-1m-2025-08-07"]
    assert sent["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert "x-api-key" not in sent["headers"]
    assert sent["headers"]["user-agent"].startswith("claude-cli/")
    assert sent["headers"]["x-app"] == "cli"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"


async def test_preamble_is_added_once_before_the_clients_system(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any
) -> None:
    await chat.complete(messages_body("Be terse."), claude_route(server), stream=False, client=WireFormat.ANTHROPIC)
    assert fake.requests[-1]["body"]["system"] == [
        {"type": "text", "text": PREAMBLE},
        {"type": "text", "text": "Be terse."},
    ]


@pytest.mark.parametrize(
    "system",
    [
        PREAMBLE + "\n\nMore rules.",
        [
            {"type": "text", "text": PREAMBLE},
            {"type": "text", "text": "Long prompt", "cache_control": {"type": "ephemeral"}},
        ],
        [
            {"type": "text", "text": BILLING},
            {"type": "text", "text": PREAMBLE},
            {"type": "text", "text": "Long prompt"},
        ],
    ],
    ids=["string", "blocks", "after-billing-header"],
)
async def test_claude_codes_own_preamble_is_not_repeated(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any, system: Any
) -> None:
    await chat.complete(messages_body(system), claude_route(server), stream=False, client=WireFormat.ANTHROPIC)
    assert fake.requests[-1]["body"]["system"] == system


async def test_a_billing_header_without_preamble_gets_it_right_after(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any
) -> None:
    system = [{"type": "text", "text": BILLING}, {"type": "text", "text": "Other agent"}]
    await chat.complete(messages_body(system), claude_route(server), stream=False, client=WireFormat.ANTHROPIC)
    assert [b["text"] for b in fake.requests[-1]["body"]["system"]] == [BILLING, PREAMBLE, "Other agent"]


async def test_an_openai_client_reaches_the_account_through_translation(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any
) -> None:
    body = {"model": MODEL, "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}]}
    reply = await chat.complete(body, claude_route(server), stream=True, client=WireFormat.OPENAI)
    text = await streamed(reply)
    assert chat_text(text) == "Hello from fake-anthropic: hi"
    assert text.rstrip().endswith(b"data: [DONE]")
    sent = fake.requests[-1]
    assert sent["query"] == "beta=true" and sent["body"]["stream"] is True
    assert [b["text"] for b in sent["body"]["system"]] == [PREAMBLE, "Be kind."]
    assert reply.outcome.usage is not None and reply.outcome.usage.output > 0


async def test_count_tokens_goes_to_the_account_with_the_same_identity(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any
) -> None:
    reply = await chat.count_tokens(
        messages_body("Be terse.", "count these words"),
        claude_route(server),
        client_headers={"anthropic-beta": "token-counting-2024-11-01"},
    )
    assert orjson.loads(reply.body)["input_tokens"] > 0
    assert "x-omniroute-estimated" not in reply.headers
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/messages/count_tokens" and sent["query"] == "beta=true"
    assert sent["headers"]["anthropic-beta"].split(",") == [*REQUIRED_BETAS, "token-counting-2024-11-01"]
    assert "x-api-key" not in sent["headers"] and sent["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert sent["body"]["system"][0] == {"type": "text", "text": PREAMBLE}


async def test_without_the_executor_the_token_is_refused(
    chat: ChatService, server: ServerThread[ClaudeOAuthUpstream], fake: Any
) -> None:
    """The same Bearer call from a provider without the executor lacks the OAuth beta, and the API says no."""
    account = linked("claude", TOKEN, server.base_url + "/v1")
    plain = Route(
        provider_id="plain-anthropic",
        prefix="plain",
        wire_format=WireFormat.ANTHROPIC,
        auth_header=AuthHeader.BEARER,
        extra_headers=(("anthropic-version", "2023-06-01"),),
        base_url=server.base_url + "/v1",
        upstream_model="claude-sonnet-4-6",
        connections=(account,),
    )
    with pytest.raises(UpstreamRejected, match="OAuth authentication is currently not supported"):
        await chat.complete(messages_body(), plain, stream=False, client=WireFormat.ANTHROPIC)
    assert fake.requests == []
