"""The official `anthropic` SDK (what Claude Code is built on) against `/v1/messages` of a real
`omniroute serve`, whose upstream speaks OpenAI Chat: every request and answer is translated both ways,
streamed and not, tools included."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.harness import Gateway

WEATHER: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


@pytest.fixture
def client(gateway: Gateway) -> Any:
    with anthropic.Anthropic(base_url=gateway.base_url, api_key="any-placeholder", max_retries=0) as c:
        yield c


def test_non_stream_message_translated_from_an_openai_upstream(client: anthropic.Anthropic, fake_state: Any) -> None:
    raw = client.messages.with_raw_response.create(
        model="fake/gpt-4o-mini",
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "ping"}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello from fake-openai: ping"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-omniroute-provider"]
    sent = fake_state.requests[-1]
    assert sent["body"]["model"] == "gpt-4o-mini"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["body"]["max_tokens"] == 256
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_streamed_message_with_the_sdk_stream_helper(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="fake/gpt-4o-mini", max_tokens=256, messages=[{"role": "user", "content": "stream please"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from fake-openai: stream please"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0  # usage from the upstream's last chunk


def test_streamed_tool_use_is_assembled_by_the_sdk(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="fake/gpt-4o-mini",
        max_tokens=256,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool_uses = [b for b in final.content if b.type == "tool_use"]
    assert len(tool_uses) == 1 and tool_uses[0].name == "get_weather"
    assert set(tool_uses[0].input) == {"city", "days"}  # type: ignore[arg-type]


def test_tool_result_round_trip(client: anthropic.Anthropic, fake_state: Any) -> None:
    first = client.messages.create(
        model="fake/gpt-4o-mini", max_tokens=256, tools=[WEATHER], messages=[{"role": "user", "content": "Weather?"}]
    )
    call = next(b for b in first.content if b.type == "tool_use")
    second = client.messages.create(
        model="fake/gpt-4o-mini",
        max_tokens=256,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}]},
        ],
    )
    assert second.content[0].text == "Tool said: Sunny"  # type: ignore[union-attr]
    sent = fake_state.requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "Sunny"}


def test_errors_come_back_in_anthropic_shape(gateway: Gateway) -> None:
    resp = httpx.post(gateway.v1 + "/messages", json={"model": "fake/gpt-4o-mini", "max_tokens": 5})
    assert resp.status_code == 400
    assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "invalid_request_error"
    resp = httpx.post(
        gateway.v1 + "/messages",
        json={"model": "nobody/none", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found_error"


def test_sdk_raises_typed_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="nobody/none", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_count_tokens_is_estimated_for_a_non_anthropic_upstream(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.count_tokens(
        model="fake/gpt-4o-mini", messages=[{"role": "user", "content": "count these few words please"}]
    )
    assert raw.headers["x-omniroute-estimated"] == "true"
    assert 5 <= raw.parse().input_tokens <= 20


def test_owner_settings_rewrite_requests_even_without_translation(tmp_path: Any, fake_upstream: Any) -> None:
    """A global system prompt and a custom thinking budget reach the upstream, same format or not."""
    gw = Gateway(data_dir=tmp_path / "data").start()
    try:
        node = gw.admin_post(
            "/provider-nodes", {"name": "Fake", "prefix": "fake", "baseUrl": fake_upstream.base_url + "/v1"}
        )["node"]
        gw.admin_post("/providers", {"provider": node["id"], "apiKey": UPSTREAM_KEY})
        with gw.admin() as admin:
            resp = admin.patch(
                "/settings",
                json={"systemPrompt": "Answer in French.", "thinkingMode": "custom", "thinkingBudget": 8192},
            )
            assert resp.status_code == 200, resp.text
            bad = admin.patch("/settings", json={"thinkingMode": "sometimes"})
            assert bad.status_code == 400
        state = fake_upstream.app.state.fake
        with httpx.Client(base_url=gw.v1) as http:
            assert http.post("/chat/completions", json={"model": "fake/gpt-4o-mini", "messages": [
                {"role": "user", "content": "hi"}]}).status_code == 200  # fmt: skip
            sent = state.requests[-1]["body"]
            assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
            assert sent["reasoning_effort"] == "medium"  # 8192 tokens
            assert http.post("/messages", json={"model": "fake/gpt-4o-mini", "max_tokens": 50, "messages": [
                {"role": "user", "content": "hi"}]}).status_code == 200  # fmt: skip
            assert state.requests[-1]["body"]["messages"][0]["content"] == "Answer in French."
    finally:
        gw.stop()


def test_an_output_limit_the_upstream_model_refuses_is_dropped_once(
    client: anthropic.Anthropic, fake_state: Any
) -> None:
    """Anthropic clients must send max_tokens (Claude Code asks for 32000); a smaller model refuses it."""
    refusal = {
        "error": {
            "message": "max_tokens is too large: 32000. This model supports at most 16384 completion tokens.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "invalid_value",
        }
    }
    fake_state.add_script([{"status": 400, "body": refusal}])
    with client.messages.stream(  # the SDK streams requests this large, as Claude Code does
        model="fake/gpt-4o-mini", max_tokens=32000, messages=[{"role": "user", "content": "long task"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Hello from fake-openai: long task"  # type: ignore[union-attr]
    first, second = fake_state.requests[-2:]
    assert first["body"]["max_tokens"] == 32000 and "max_tokens" not in second["body"]


def test_other_refusals_are_not_retried(client: anthropic.Anthropic, fake_state: Any) -> None:
    before = len(fake_state.requests)
    refusal = {"error": {"message": "Your prompt violates policy.", "type": "invalid_request_error"}}
    fake_state.add_script([{"status": 400, "body": refusal}])
    with (
        pytest.raises(anthropic.BadRequestError, match="violates policy"),
        client.messages.stream(model="fake/gpt-4o-mini", max_tokens=32000, messages=[{"role": "user", "content": "x"}]),
    ):
        pass
    assert len(fake_state.requests) == before + 1
