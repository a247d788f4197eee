"""The official `openai` SDK against a real `omniroute serve`, routed to a fake OpenAI upstream on loopback."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.harness import Gateway

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


@pytest.fixture
def client(gateway: Gateway) -> Any:
    with OpenAI(base_url=gateway.v1, api_key="any-placeholder", max_retries=0) as c:
        yield c


def test_non_stream_completion_through_catalogue_provider(client: OpenAI, fake_state: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="ds/deepseek-chat", messages=[{"role": "user", "content": "ping"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from fake-openai: ping"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-omniroute-provider"] == "deepseek"
    assert raw.headers["x-omniroute-model"] == "ds/deepseek-chat"
    assert raw.headers["x-request-id"].startswith("req_")
    phases = dict(p.split(";dur=") for p in raw.headers["server-timing"].split(", "))
    assert list(phases) == ["config", "auth", "route", "upstream", "total"]
    assert float(phases["total"]) >= float(phases["upstream"]) > 0
    sent = fake_state.requests[-1]
    assert sent["body"]["model"] == "deepseek-chat"  # prefix stripped
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"  # decrypted from storage
    assert "stream_options" not in sent["body"]


def test_client_request_id_is_echoed(gateway: Gateway) -> None:
    resp = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "fake/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-request-id": "my-trace-123"},
    )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "my-trace-123"


def test_custom_node_route_and_unknown_fields_pass_through(client: OpenAI, fake_state: Any) -> None:
    completion = client.chat.completions.create(
        model="fake/gpt-4o-mini",
        messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        extra_body={"vendor_flag": {"keep": True}},
        temperature=0.2,
    )
    assert completion.choices[0].message.content == "Hello from fake-openai: hello there"
    body = fake_state.requests[-1]["body"]
    assert body["vendor_flag"] == {"keep": True}
    assert body["temperature"] == 0.2
    # developer is OpenAI's own role: any other OpenAI-compatible upstream gets it as system
    assert body["messages"][0] == {"role": "system", "content": "be brief"}


def test_stream_text_and_usage_only_when_asked(client: OpenAI, fake_state: Any) -> None:
    chunks = list(
        client.chat.completions.create(
            model="ds/deepseek-chat", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake-openai: stream me"
    assert all(c.choices for c in chunks), "usage-only chunk leaked to a client that did not ask for it"
    assert fake_state.requests[-1]["body"]["stream_options"] == {"include_usage": True}

    with_usage = list(
        client.chat.completions.create(
            model="ds/deepseek-chat",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.total_tokens > 0


def test_stream_ends_with_exactly_one_done(gateway: Gateway) -> None:
    with httpx.stream(
        "POST",
        gateway.v1 + "/chat/completions",
        json={"model": "fake/gpt-4o-mini", "messages": [{"role": "user", "content": "a b c"}], "stream": True},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        body = resp.read().decode()
    assert body.count("data: [DONE]") == 1
    assert body.rstrip().endswith("data: [DONE]")


def test_accept_header_asks_for_a_stream(gateway: Gateway) -> None:
    resp = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "fake/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={"accept": "text/event-stream"},
    )
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert "data: [DONE]" in resp.text


def test_stream_is_relayed_as_it_arrives(gateway: Gateway) -> None:
    """With 300 ms between upstream chunks, the first chunk reaches the client long before the last."""
    arrivals: list[float] = []
    start = time.monotonic()
    with httpx.stream(
        "POST",
        gateway.v1 + "/chat/completions",
        json={"model": "fake/drip-300", "messages": [{"role": "user", "content": "one two three"}], "stream": True},
        timeout=30,
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= 4
    assert arrivals[-1] - arrivals[0] >= 0.6, arrivals  # spread out, not delivered in one burst


@pytest.mark.anyio
async def test_async_client_stream_and_non_stream(gateway: Gateway) -> None:
    async with AsyncOpenAI(base_url=gateway.v1, api_key="x", max_retries=0) as aclient:
        completion = await aclient.chat.completions.create(
            model="fake/gpt-4o-mini", messages=[{"role": "user", "content": "async"}]
        )
        assert completion.choices[0].message.content == "Hello from fake-openai: async"
        stream = await aclient.chat.completions.create(
            model="ds/deepseek-chat", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(parts) == "Hello from fake-openai: async stream"


def test_streamed_tool_call_assembled_by_the_sdk_stream_helper(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="ds/deepseek-chat",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(deltas) >= 3  # arguments arrived in pieces and were relayed as such
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test", "days": 1}


def test_parallel_tool_calls_streamed(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="fake/gpt-4o-mini",
        messages=[{"role": "user", "content": "parallel please"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].function.arguments) == {"zone": "test"}


def test_tool_result_round_trip(client: OpenAI) -> None:
    first = client.chat.completions.create(
        model="ds/deepseek-chat", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    second = client.chat.completions.create(
        model="ds/deepseek-chat",
        messages=[
            {"role": "user", "content": "weather?"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert second.choices[0].message.content == "Tool said: sunny, 21C"


def test_models_lists_configured_ids(client: OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"ds/deepseek-chat", "ds/deepseek-reasoner", "fake/gpt-4o-mini"} <= ids
    assert not any(i.startswith("groq/") for i in ids)


def test_sdk_errors_are_typed(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="nobody/none", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError) as rl:
        client.chat.completions.create(model="fake/error-429", messages=[{"role": "user", "content": "x"}])
    assert rl.value.response.headers["retry-after"] == "1"


def test_retrieve_model_by_prefixed_id(client: OpenAI) -> None:
    model = client.models.retrieve("ds/deepseek-chat")
    assert (model.id, model.owned_by) == ("ds/deepseek-chat", "deepseek")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nobody/none")
