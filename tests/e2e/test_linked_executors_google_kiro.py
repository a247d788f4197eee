"""Antigravity (Cloud Code) and Kiro (CodeWhisperer) accounts end to end: the real `omniroute serve`, the accounts
pushed through `POST /api/oauth/link` (as `omniroute login` does) with `baseUrl` on the fakes of both services,
and the official `openai`, `anthropic` and `google-genai` SDKs asking `/v1` for them, streamed and not, tool
calls included.

Every Google and AWS auth host is mapped to a closed loopback port (`OMNIROUTE_OAUTH_HOSTS`), so nothing here
can reach a real provider, whatever a background job of the server decides to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.e2e.harness import Gateway
from tests.e2e.linked import Account, linked_gateway, usage_event
from tests.e2e.sdk_clients import anthropic_sdk, gemini_sdk, openai_sdk
from tests.fakes.cloud_code_upstream import create_app as create_cloud_code
from tests.fakes.kiro_upstream import create_app as create_kiro
from tests.fakes.server import ServerThread, fake_states, serving

pytestmark = pytest.mark.e2e

AG_TOKEN = "ya29.e2e-antigravity-access"
KIRO_TOKEN = "aoa-e2e-kiro-access"
PROJECT = "e2e-project-4242"
AUTH_HOSTS = (
    "https://accounts.google.com",
    "https://oauth2.googleapis.com",
    "https://www.googleapis.com",
    "https://cloudcode-pa.googleapis.com",
    "https://daily-cloudcode-pa.googleapis.com",
    "https://prod.us-east-1.auth.desktop.kiro.dev",
    "https://oidc.us-east-1.amazonaws.com",
    "https://codewhisperer.us-east-1.amazonaws.com",
    "https://q.us-east-1.amazonaws.com",
)
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
AG = "ag/claude-sonnet-4-5"
KR = "kr/claude-sonnet-4.5"
REPLY = {AG: "Hello from fake-gemini: ", KR: "Hello from fake-kiro: "}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, ServerThread[Any]]]:
    with serving({"cloud_code": create_cloud_code(AG_TOKEN, PROJECT), "kiro": create_kiro(KIRO_TOKEN)}) as servers:
        yield servers


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, ServerThread[Any]]) -> Iterator[Gateway]:
    accounts = (
        Account("antigravity", AG_TOKEN, fakes["cloud_code"].base_url + "/v1internal", {"projectId": PROJECT}),
        Account("kiro", KIRO_TOKEN, fakes["kiro"].base_url, {"authMethod": "builder-id", "region": "us-east-1"}),
    )
    with linked_gateway(tmp_path_factory.mktemp("linked-gk") / "data", AUTH_HOSTS, accounts) as gateway:
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


@pytest.fixture
def gemini(gw: Gateway) -> Iterator[genai.Client]:
    client = gemini_sdk(gw)
    yield client
    client.close()


# ----- OpenAI SDK ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [AG, KR])
def test_openai_chat_plain_and_streamed(gw: Gateway, oai: openai.OpenAI, state: dict[str, Any], model: str) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping"}]
    )
    assert raw.parse().choices[0].message.content == REPLY[model] + "ping"
    with oai.chat.completions.stream(model=model, messages=[{"role": "user", "content": "flow"}]) as s:
        assert s.get_final_completion().choices[0].message.content == REPLY[model] + "flow"
    event = usage_event(gw, raw.headers["x-request-id"])
    assert event["inputTokens"] > 0 and event["outputTokens"] > 0
    # Cloud Code counts tokens; CodeWhisperer does not, so the gateway estimates them and says so
    assert event["estimated"] is (model == KR)


def test_the_services_see_their_own_wire_formats(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    oai.chat.completions.create(model=AG, messages=[{"role": "user", "content": "hi"}])
    oai.chat.completions.create(model=KR, messages=[{"role": "user", "content": "hi"}])
    (ag,) = state["cloud_code"].requests
    assert ag["path"] == "/v1internal:generateContent" and ag["body"]["project"] == PROJECT
    assert ag["body"]["userAgent"] == "antigravity" and ag["headers"]["user-agent"].startswith("antigravity/")
    assert ag["headers"]["authorization"] == f"Bearer {AG_TOKEN}"
    (kr,) = state["kiro"].requests
    assert kr["headers"]["x-amz-target"] == "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
    assert kr["body"]["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == "claude-sonnet-4.5"
    assert "profileArn" not in kr["body"]  # a Builder ID login


@pytest.mark.parametrize("model", [AG, KR])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_call_round_trip(oai: openai.OpenAI, model: str, stream: bool) -> None:
    tools: Any = [{"type": "function", "function": WEATHER}]
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    message: Any
    if stream:
        with oai.chat.completions.stream(model=model, messages=messages, tools=tools) as s:
            message = s.get_final_completion().choices[0].message
    else:
        message = oai.chat.completions.create(model=model, messages=messages, tools=tools).choices[0].message
    assert message.tool_calls is not None
    (call,) = message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = oai.chat.completions.create(model=model, messages=messages, tools=tools).choices[0].message
    assert answer.content == "Tool said: sunny"


# ----- Anthropic SDK ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [AG, KR])
def test_anthropic_messages_plain_and_streamed(claude: anthropic.Anthropic, model: str) -> None:
    message = claude.messages.create(model=model, max_tokens=256, messages=[{"role": "user", "content": "ping"}])
    assert [b.text for b in message.content if b.type == "text"] == [REPLY[model] + "ping"]
    with claude.messages.stream(model=model, max_tokens=256, messages=[{"role": "user", "content": "flow"}]) as s:
        assert "".join(s.text_stream) == REPLY[model] + "flow"


@pytest.mark.parametrize("model", [AG, KR])
def test_anthropic_tool_use(claude: anthropic.Anthropic, model: str) -> None:
    tool: Any = {"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}
    ask: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    with claude.messages.stream(model=model, max_tokens=256, messages=ask, tools=[tool]) as s:
        message = s.get_final_message()
    assert message.stop_reason == "tool_use"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert use.name == "get_weather" and "city" in use.input
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}
    follow = [*ask, {"role": "assistant", "content": message.content}, {"role": "user", "content": [result]}]
    answer = claude.messages.create(model=model, max_tokens=256, messages=follow, tools=[tool])
    assert [b.text for b in answer.content if b.type == "text"] == ["Tool said: sunny"]


# ----- google-genai SDK ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["ag/gemini-3-flash", KR])
def test_gemini_generate_plain_and_streamed(gemini: genai.Client, model: str) -> None:
    prefix = REPLY[KR] if model == KR else REPLY[AG]
    assert gemini.models.generate_content(model=model, contents="ping").text == prefix + "ping"
    chunks = gemini.models.generate_content_stream(model=model, contents="flow")
    assert "".join(c.text or "" for c in chunks) == prefix + "flow"


def test_gemini_function_call_through_antigravity(gemini: genai.Client) -> None:
    config = genai_types.GenerateContentConfig(
        tools=[genai_types.Tool(function_declarations=[genai_types.FunctionDeclaration(**WEATHER)])]
    )
    answer = gemini.models.generate_content(model=AG, contents="Weather in Oslo?", config=config)
    (call,) = answer.function_calls or []
    assert call.name == "get_weather" and call.args is not None and "city" in call.args


def test_a_refused_client_version_is_an_error_not_an_answer(oai: openai.OpenAI, state: dict[str, Any]) -> None:
    state["cloud_code"].script.append("outdated")
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(model=AG, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502 and "no longer supported" in str(caught.value.message)
