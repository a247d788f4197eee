"""A linked ChatGPT (Codex) account through ChatService, against the fake Codex backend over loopback: the backend
only streams and refuses what the real one refuses, so every answer here went through the executor's rules."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from shared.errors import UpstreamFailed, UpstreamRejected
from shared.providers.executors.codex import ORIGINATOR
from shared.providers.spec import WireFormat
from shared.services.chat import ChatService, StreamReply
from tests.fakes.codex_backend import PATH, create_app, usage_limit_reached
from tests.fakes.server import ServerThread, fake_states, serving
from tests.shared.providers.executors.helpers import chat_text, json_of, linked, route, sse_events, streamed

pytestmark = pytest.mark.anyio

TOKEN = "codex-access-token-opaque"
ACCOUNT = "acc-6f1d2c"
MODEL = "cx/gpt-5.2-codex"
REFUSED_SAMPLE = {
    "temperature": 0.2,
    "top_p": 0.9,
    "max_output_tokens": 400,
    "metadata": {"k": "v"},
    "user": "someone",
    "safety_identifier": "sid",
    "prompt_cache_retention": "24h",
    "previous_response_id": "resp_previous",
}


def jwt_with_account(account: str) -> str:
    """An access token shaped like ChatGPT's: a JWT whose auth claim names the account (unsigned here)."""

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()

    claims = {"sub": "user-1", "https://api.openai.com/auth": {"chatgpt_account_id": account}}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


JWT = jwt_with_account("acc-from-claim")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ServerThread[Any]]]:
    with serving(
        {"codex": create_app(TOKEN, account_id=ACCOUNT), "claimed": create_app(JWT, account_id="acc-from-claim")}
    ) as running:
        yield running


@pytest.fixture
def fakes(servers: dict[str, ServerThread[Any]]) -> dict[str, Any]:
    return fake_states(servers)


def codex_route(servers: dict[str, ServerThread[Any]], name: str = "codex", **meta: Any) -> Any:
    token = TOKEN if name == "codex" else JWT
    base = servers[name].base_url + "/backend-api/codex"
    return route(MODEL, linked("codex", token, base, meta=meta))


def message_texts(response: dict[str, Any]) -> list[str]:
    return [
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    ]


async def test_a_json_client_gets_the_final_response_read_from_the_stream(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    body = {
        "model": MODEL,
        "input": "hello there",
        "store": True,
        "reasoning": {"effort": "low", "summary": "auto"},
        **REFUSED_SAMPLE,
    }
    reply = await chat.complete(
        body, codex_route(servers, accountId=ACCOUNT), stream=False, client=WireFormat.RESPONSES
    )
    response = json_of(reply)
    assert reply.headers == {"x-omniroute-provider": "codex", "x-omniroute-model": MODEL}
    assert response["object"] == "response" and response["status"] == "completed"
    assert message_texts(response) == ["Hello from fake-responses: hello there"]  # rebuilt: the event had none
    reasoning = [i for i in response["output"] if i["type"] == "reasoning"]
    assert reasoning and reasoning[0]["encrypted_content"].startswith("gAAAAA")
    assert reply.outcome.usage is not None and reply.outcome.usage.input > 0 and reply.outcome.usage.reasoning > 0
    assert {w.name for w in reply.outcome.windows} == {"5h", "7d"}  # read from the x-codex-* headers

    sent = fakes["codex"].requests[-1]
    assert sent["path"] == PATH
    headers = sent["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["chatgpt-account-id"] == ACCOUNT
    assert headers["originator"] == ORIGINATOR and headers["user-agent"].startswith(ORIGINATOR + "/")
    assert headers["openai-beta"] == "responses=experimental"
    assert headers["accept"] == "text/event-stream"
    assert headers["session_id"] == sent["body"]["prompt_cache_key"]
    sent_body = sent["body"]
    assert sent_body["stream"] is True and sent_body["store"] is False and sent_body["instructions"] == ""
    assert sent_body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]}
    ]
    assert sent_body["include"] == ["reasoning.encrypted_content"]
    assert not set(REFUSED_SAMPLE) & set(sent_body)


async def test_the_account_id_falls_back_to_the_tokens_claim(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    reply = await chat.complete(
        {"model": MODEL, "input": "hi"}, codex_route(servers, "claimed"), stream=False, client=WireFormat.RESPONSES
    )
    assert message_texts(json_of(reply)) == ["Hello from fake-responses: hi"]
    assert fakes["claimed"].requests[-1]["headers"]["chatgpt-account-id"] == "acc-from-claim"


async def test_system_and_developer_messages_become_instructions(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    body = {
        "model": MODEL,
        "input": [
            {"role": "system", "content": "Rule one."},
            {"role": "developer", "content": [{"type": "input_text", "text": "Rule two."}]},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "A late rule."},
            {"role": "user", "content": "and again"},
        ],
    }
    reply = await chat.complete(
        body, codex_route(servers, accountId=ACCOUNT), stream=False, client=WireFormat.RESPONSES
    )
    assert message_texts(json_of(reply)) == ["Hello from fake-responses: and again"]
    sent = fakes["codex"].requests[-1]["body"]
    assert sent["instructions"] == "Rule one.\n\nRule two."
    assert [i["role"] for i in sent["input"]] == ["user", "developer", "user"]  # the backend takes no system role


async def test_a_chat_client_is_translated_and_answered(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping"}],
        "max_tokens": 300,
        "temperature": 0.1,
    }
    reply = await chat.complete(body, codex_route(servers, accountId=ACCOUNT), stream=False, client=WireFormat.OPENAI)
    completion = json_of(reply)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Hello from fake-responses: ping"
    assert completion["usage"]["prompt_tokens"] > 0
    sent = fakes["codex"].requests[-1]["body"]
    assert sent["instructions"] == "Be brief."
    assert "max_output_tokens" not in sent and "temperature" not in sent


async def test_an_anthropic_client_streams_through_translation(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    body = {"model": MODEL, "max_tokens": 256, "system": "Rules.", "messages": [{"role": "user", "content": "yo"}]}
    reply = await chat.complete(body, codex_route(servers, accountId=ACCOUNT), stream=True, client=WireFormat.ANTHROPIC)
    events = sse_events(await streamed(reply))
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta" and "text" in e["delta"])
    assert text == "Hello from fake-responses: yo"
    assert events[-1]["type"] == "message_stop"
    assert reply.outcome.usage is not None and reply.outcome.usage.output > 0
    assert fakes["codex"].requests[-1]["body"]["instructions"] == "Rules."


async def test_a_streaming_responses_client_gets_the_stream_with_its_output_filled_in(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    body = {"model": MODEL, "input": "stream me", "stream": True}
    reply = await chat.complete(body, codex_route(servers, accountId=ACCOUNT), stream=True, client=WireFormat.RESPONSES)
    assert isinstance(reply, StreamReply)
    events = sse_events(await streamed(reply))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))  # passed through, in order
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert events[-1]["response"]["output"] == done  # the backend sent [] here
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "Hello from fake-responses: stream me"
    assert reply.outcome.usage is not None and reply.outcome.usage.output > 0
    assert fakes["codex"].requests[-1]["body"]["stream"] is True


async def test_a_chat_stream_is_translated_from_the_codex_stream(
    chat: ChatService, servers: dict[str, ServerThread[Any]]
) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "tick"}], "stream": True}
    reply = await chat.complete(body, codex_route(servers, accountId=ACCOUNT), stream=True, client=WireFormat.OPENAI)
    assert chat_text(await streamed(reply)) == "Hello from fake-responses: tick"


async def test_the_session_id_stays_with_the_conversation(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    first = {"model": MODEL, "instructions": "Rules.", "input": [{"role": "user", "content": "start A"}]}
    follow_up = {
        **first,
        "input": [
            {"role": "user", "content": "start A"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": "next"},
        ],
    }
    other = {**first, "input": [{"role": "user", "content": "start B"}]}
    keyed = {**first, "prompt_cache_key": "conv-42"}
    r = codex_route(servers, accountId=ACCOUNT)
    for body in (first, follow_up, other, keyed):
        await chat.complete(body, r, stream=False, client=WireFormat.RESPONSES)
    sessions = [req["headers"]["session_id"] for req in fakes["codex"].requests]
    assert sessions[0] == sessions[1] != sessions[2]
    assert sessions[3] == "conv-42"


async def test_a_failed_response_is_an_upstream_failure(
    chat: ChatService, servers: dict[str, ServerThread[Any]]
) -> None:
    from shared.domain.config import ConfigSnapshot
    from shared.domain.resolve import resolve_model

    conn = linked("codex", TOKEN, servers["codex"].base_url + "/backend-api/codex", meta={"accountId": ACCOUNT})
    failing = resolve_model("cx/fail-stream", ConfigSnapshot.build(connections=[conn]))
    with pytest.raises(UpstreamFailed, match="Codex backend failed while answering") as caught:
        await chat.complete({"model": "x", "input": "hi"}, failing, stream=False, client=WireFormat.RESPONSES)
    assert caught.value.provider == "codex"


async def test_usage_limit_reached_is_a_429_with_the_plans_windows(
    chat: ChatService, servers: dict[str, ServerThread[Any]], fakes: dict[str, Any]
) -> None:
    fakes["codex"].add_script([usage_limit_reached(resets_in=1800)])
    with pytest.raises(UpstreamRejected) as caught:
        await chat.complete(
            {"model": MODEL, "input": "hi"},
            codex_route(servers, accountId=ACCOUNT),
            stream=False,
            client=WireFormat.RESPONSES,
        )
    err = caught.value
    assert err.upstream_status == 429 and "usage limit has been reached" in err.message
    relayed = dict(err.headers)
    assert relayed["x-codex-primary-used-percent"] == "100.0"
    assert orjson.loads(err.body)["error"]["type"] == "usage_limit_reached"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"stream": False}, "Stream must be set to true"),
        ({"store": True}, "Store must be set to false"),
        ({"instructions": None}, "Instructions are required"),
        ({"input": "text"}, "Input must be a list"),
        ({"max_output_tokens": 100}, "Unsupported parameter: max_output_tokens"),
        ({"input": [{"role": "system", "content": "x"}]}, "System messages are not allowed"),
    ],
)
def test_the_fake_refuses_what_the_backend_refuses(
    servers: dict[str, ServerThread[Any]], change: dict[str, Any], detail: str
) -> None:
    """Without the executor's rules a request is refused: the tests above are only green because of them."""
    good: dict[str, Any] = {
        "model": "gpt-5.2-codex",
        "instructions": "",
        "input": [{"role": "user", "content": "hi"}],
        "store": False,
        "stream": True,
    }
    body = {k: v for k, v in {**good, **change}.items() if v is not None}
    headers = {"authorization": f"Bearer {TOKEN}", "chatgpt-account-id": ACCOUNT}
    resp = httpx.post(servers["codex"].base_url + PATH, json=body, headers=headers)
    assert (resp.status_code, resp.json()) == (400, {"detail": detail})
    assert httpx.post(servers["codex"].base_url + PATH, json=good, headers=headers).status_code == 200
