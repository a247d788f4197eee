"""Linked subscription accounts end to end: the real `omniroute serve`, accounts pushed through
`POST /api/oauth/link` (as `omniroute login` does) with `baseUrl` on fakes of each service, and the official
`openai` and `anthropic` SDKs asking `/v1` for them like for any model.

Every auth and token host is mapped to a closed loopback port (`OMNIROUTE_OAUTH_HOSTS`), so nothing here can
reach a real provider, whatever a background job of the server decides to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.harness import Gateway
from tests.e2e.linked import Account, linked_gateway, usage_event
from tests.e2e.sdk_clients import anthropic_sdk, openai_sdk
from tests.fakes.claude_oauth import ClaudeOAuthUpstream
from tests.fakes.codex_backend import create_app as create_codex
from tests.fakes.copilot_upstream import create_app as create_copilot
from tests.fakes.server import ServerThread, fake_states, serving

pytestmark = pytest.mark.e2e

CODEX_TOKEN = "codex-e2e-access-token"
CODEX_ACCOUNT = "acc-e2e-1"
CLAUDE_TOKEN = "sk-ant-oat01-e2e-access"
COPILOT_TOKEN = "tid=e2e;exp=1900000000;8kp=1:cafe"
AUTH_HOSTS = (
    "https://auth.openai.com",
    "https://platform.claude.com",
    "https://console.anthropic.com",
    "https://api.anthropic.com",
    "https://github.com",
    "https://api.github.com",
    "https://chatgpt.com",
)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, ServerThread[Any]]]:
    apps = {
        "codex": create_codex(CODEX_TOKEN, account_id=CODEX_ACCOUNT),
        "claude": ClaudeOAuthUpstream(CLAUDE_TOKEN),
        "copilot": create_copilot(COPILOT_TOKEN),
    }
    with serving(apps) as servers:
        yield servers


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, ServerThread[Any]]) -> Iterator[Gateway]:
    accounts = (
        Account("codex", CODEX_TOKEN, fakes["codex"].base_url + "/backend-api/codex", {"accountId": CODEX_ACCOUNT}),
        Account("claude", CLAUDE_TOKEN, fakes["claude"].base_url + "/v1"),
        Account("github", COPILOT_TOKEN, fakes["copilot"].base_url),
    )
    with linked_gateway(tmp_path_factory.mktemp("linked") / "data", AUTH_HOSTS, accounts) as gateway:
        yield gateway


@pytest.fixture
def state(fakes: dict[str, ServerThread[Any]]) -> dict[str, Any]:
    return fake_states(fakes)


@pytest.fixture
def oai(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai_sdk(gw) as client:
        yield client


@pytest.fixture
def claude(gw: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic_sdk(gw) as client:
        yield client


# ----- Codex (ChatGPT subscription) ------------------------------------------------------------------------


def test_codex_answers_a_chat_client_and_records_usage(gw: Gateway, oai: openai.OpenAI, state: dict[str, Any]) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="cx/gpt-5.2-codex",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping"}],
        max_tokens=200,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from fake-responses: ping"
    sent = state["codex"].requests[-1]
    assert sent["headers"]["chatgpt-account-id"] == CODEX_ACCOUNT
    assert sent["body"]["instructions"] == "Be brief." and sent["body"]["stream"] is True
    event = usage_event(gw, raw.headers["x-request-id"])
    assert event["provider"] == "codex" and event["inputTokens"] > 0 and event["outputTokens"] > 0


def test_codex_streams_to_a_chat_client(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    with oai.chat.completions.stream(model="cx/gpt-5.2-codex", messages=[{"role": "user", "content": "flow"}]) as s:
        assert s.get_final_completion().choices[0].message.content == "Hello from fake-responses: flow"


def test_codex_answers_a_responses_client_with_json(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    response = oai.responses.create(
        model="cx/gpt-5.2-codex", input="json please", temperature=0.5, max_output_tokens=300, store=True
    )
    assert response.output_text == "Hello from fake-responses: json please"
    assert response.usage is not None and response.usage.output_tokens > 0
    sent = state["codex"].requests[-1]["body"]
    assert sent["store"] is False and "temperature" not in sent and "max_output_tokens" not in sent


def test_codex_streams_to_a_responses_client_with_the_final_output(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    """The SDK's stream helper reads the answer from `response.completed`, which the backend sends empty."""
    with oai.responses.stream(model="cx/gpt-5.2-codex", input="stream please", reasoning={"effort": "low"}) as s:
        final = s.get_final_response()
    assert final.output_text == "Hello from fake-responses: stream please"
    assert any(item.type == "reasoning" for item in final.output)
    assert state["codex"].requests[-1]["body"]["include"] == ["reasoning.encrypted_content"]


def test_codex_conversations_continue_by_previous_response_id(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    """The backend keeps nothing (`store: false`), so the gateway keeps the conversation and sends it whole."""
    first = oai.responses.create(model="cx/gpt-5.2-codex", input="my number is 42")
    with oai.responses.stream(model="cx/gpt-5.2-codex", input="which number?", previous_response_id=first.id) as s:
        second = s.get_final_response()
    third = oai.responses.create(model="cx/gpt-5.2-codex", input="and now?", previous_response_id=second.id)
    assert third.previous_response_id == second.id
    sent = state["codex"].requests[-1]["body"]
    assert "previous_response_id" not in sent
    texts = [
        part.get("text")
        for item in sent["input"]
        if item.get("type", "message") == "message"
        for part in (item["content"] if isinstance(item["content"], list) else [{"text": item["content"]}])
    ]
    assert texts == [
        "my number is 42",
        "Hello from fake-responses: my number is 42",
        "which number?",
        "Hello from fake-responses: which number?",
        "and now?",
    ]


# ----- Claude (Pro/Max subscription) -----------------------------------------------------------------------


def test_claude_answers_the_anthropic_sdk(claude: anthropic.Anthropic, state: dict[str, Any]) -> None:
    message = claude.messages.create(
        model="cc/claude-sonnet-4-6",
        max_tokens=128,
        system="Be kind.",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert message.content[0].type == "text" and message.content[0].text == "Hello from fake-anthropic: hi"
    sent = state["claude"].requests[-1]
    assert sent["query"] == "beta=true" and "x-api-key" not in sent["headers"]
    assert "oauth-2025-04-20" in sent["headers"]["anthropic-beta"]
    assert sent["headers"]["anthropic-beta"].endswith(",context-1m-2025-08-07")
    assert sent["body"]["system"][0]["text"].startswith("You are Claude Code")


def test_claude_streams_and_counts_tokens(claude: anthropic.Anthropic, state: dict[str, Any]) -> None:
    with claude.messages.stream(
        model="cc/claude-sonnet-4-6", max_tokens=128, messages=[{"role": "user", "content": "stream"}]
    ) as s:
        assert "".join(s.text_stream) == "Hello from fake-anthropic: stream"
    counted = claude.messages.count_tokens(
        model="cc/claude-sonnet-4-6", messages=[{"role": "user", "content": "a b c"}]
    )
    assert counted.input_tokens > 0
    paths = [(r["path"], r["query"]) for r in state["claude"].requests]
    assert paths == [("/v1/messages", "beta=true"), ("/v1/messages/count_tokens", "beta=true")]


# ----- GitHub Copilot --------------------------------------------------------------------------------------


def test_copilot_answers_a_chat_client_with_an_image(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    completion = oai.chat.completions.create(
        model="gh/gpt-5-mini",
        max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": "what is this"}, image]}],
    )
    assert completion.choices[0].message.content == "Hello from fake-openai: what is this"
    sent = state["copilot"].requests[-1]
    assert sent["headers"]["copilot-vision-request"] == "true" and sent["headers"]["x-initiator"] == "user"
    assert sent["headers"]["authorization"] == f"Bearer {COPILOT_TOKEN}"
    assert sent["body"]["max_completion_tokens"] == 100


def test_codex_requests_that_keep_no_state_pass_through_untouched(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    """`store: false` and nothing to look up (what the Codex CLI sends): only the executor's rules change the
    body, so fields the gateway's model does not know still reach the backend."""
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "plain"}]}]
    oai.responses.create(
        model="cx/gpt-5.2-codex",
        input=items,
        store=False,
        extra_body={"client_metadata": {"x-trace": "t-1"}},  # type: ignore[arg-type]
    )
    sent = state["codex"].requests[-1]["body"]
    assert sent["input"] == items  # as sent: a round trip through the gateway's model would reshape it
    assert sent["client_metadata"] == {"x-trace": "t-1"} and sent["store"] is False
