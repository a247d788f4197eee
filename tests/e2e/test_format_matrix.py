"""Every client format against every upstream format, through a real `omniroute serve`.

Clients are the official SDKs: `openai` (Chat Completions and Responses), `anthropic`, `google-genai`. Upstreams are
fake servers speaking each provider's wire format (tests/fakes/). Each cell checks, with the SDK's own
helpers: a plain answer, a streamed answer, a streamed tool call assembled by the SDK, and a tool-result
round trip. The cell ids make the matrix readable in the test report: `<client>-from-<upstream>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.genai import types as genai_types

from tests.e2e.harness import Gateway
from tests.e2e.sdk_clients import SdkClient
from tests.fakes.anthropic_upstream import create_app as create_anthropic
from tests.fakes.gemini_upstream import create_app as create_gemini
from tests.fakes.openai_upstream import create_app as create_openai
from tests.fakes.responses_upstream import create_app as create_responses
from tests.fakes.server import ServerThread

KEY = "sk-matrix-upstream-0123456789"
# upstream format → (node prefix, apiType, fake factory, a model the fake serves, the fake's reply prefix)
UPSTREAMS: dict[str, tuple[str, str, Any, str, str]] = {
    "openai": ("oai", "openai", create_openai, "gpt-4o-mini", "Hello from fake-openai: "),
    "anthropic": ("ant", "anthropic", create_anthropic, "claude-sonnet-4-6", "Hello from fake-anthropic: "),
    "gemini": ("gem", "gemini", create_gemini, "gemini-3-flash-preview", "Hello from fake-gemini: "),
    "responses": ("rsp", "responses", create_responses, "gpt-4o-mini", "Hello from fake-responses: "),
}
CLIENTS = ("openai", "responses", "anthropic", "gemini")
BASE_PATHS = {"openai": "v1", "anthropic": "v1", "gemini": "v1beta", "responses": "v1"}
WEATHER_SCHEMA: Any = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
RESPONSES_TOOL: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}


@pytest.fixture(scope="module")
def matrix_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    servers = [ServerThread(factory(api_key=KEY)) for _, _, factory, _, _ in UPSTREAMS.values()]
    for server in servers:
        server.__enter__()
    gw = Gateway(data_dir=tmp_path_factory.mktemp("matrix") / "data").start()
    try:
        for server, (prefix, api_type, _, model, _) in zip(servers, UPSTREAMS.values(), strict=True):
            node = gw.admin_post(
                "/provider-nodes",
                {
                    "name": prefix,
                    "prefix": prefix,
                    "baseUrl": f"{server.base_url}/{BASE_PATHS[api_type]}",
                    "apiType": api_type,
                },
            )["node"]
            gw.admin_post("/providers", {"provider": node["id"], "apiKey": KEY})
            gw.admin_post("/provider-models", {"provider": prefix, "modelId": model})
        yield gw
    finally:
        gw.stop()
        for server in servers:
            server.__exit__(None, None, None)


class Client(SdkClient):
    """One client SDK's way of doing the four things each cell checks."""

    def stream_tool_call(self, model: str) -> tuple[str, dict[str, Any], str]:
        """(name, arguments, call id) of the tool call the model made, assembled by the SDK."""
        prompt = "What is the weather?"
        if self.kind == "responses":
            with self.sdk.responses.stream(model=model, input=prompt, tools=[RESPONSES_TOOL]) as s:
                call = next(i for i in s.get_final_response().output if i.type == "function_call")
            return call.name, json.loads(call.arguments), call.call_id
        if self.kind == "openai":
            tool = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
            with self.sdk.chat.completions.stream(
                model=model, messages=[{"role": "user", "content": prompt}], tools=[tool]
            ) as s:
                call = s.get_final_completion().choices[0].message.tool_calls[0]
            return call.function.name, json.loads(call.function.arguments), call.id
        if self.kind == "anthropic":
            tool = {"name": "get_weather", "input_schema": WEATHER_SCHEMA}
            with self.sdk.messages.stream(
                model=model, max_tokens=256, tools=[tool], messages=[{"role": "user", "content": prompt}]
            ) as s:
                use = next(b for b in s.get_final_message().content if b.type == "tool_use")
            return use.name, dict(use.input), use.id
        config = genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(function_declarations=[self._gemini_function()])],
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
        )
        calls = [
            p.function_call
            for chunk in self.sdk.models.generate_content_stream(model=model, contents=prompt, config=config)
            for c in chunk.candidates or ()
            for p in (c.content.parts if c.content and c.content.parts else ())
            if p.function_call
        ]
        return calls[0].name, dict(calls[0].args or {}), calls[0].id or ""

    @staticmethod
    def _gemini_function() -> Any:
        return genai_types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER_SCHEMA)

    def tool_round_trip(self, model: str) -> str:
        """Ask, get a tool call, send its result back: the final answer text."""
        prompt = "What is the weather?"
        if self.kind == "responses":
            items: list[Any] = [{"role": "user", "content": prompt}]
            first = self.sdk.responses.create(model=model, input=items, tools=[RESPONSES_TOOL])
            call = next(i for i in first.output if i.type == "function_call")
            items += [i.model_dump(exclude_none=True) for i in first.output]
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"})
            return str(self.sdk.responses.create(model=model, input=items, tools=[RESPONSES_TOOL]).output_text)
        if self.kind == "openai":
            tool = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
            messages: list[Any] = [{"role": "user", "content": prompt}]
            first = self.sdk.chat.completions.create(model=model, messages=messages, tools=[tool])
            call = first.choices[0].message.tool_calls[0]
            messages += [first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "Sunny"}]
            final = self.sdk.chat.completions.create(model=model, messages=messages, tools=[tool])
            return str(final.choices[0].message.content)
        if self.kind == "anthropic":
            tool = {"name": "get_weather", "input_schema": WEATHER_SCHEMA}
            turns: list[Any] = [{"role": "user", "content": prompt}]
            first = self.sdk.messages.create(model=model, max_tokens=256, tools=[tool], messages=turns)
            use = next(b for b in first.content if b.type == "tool_use")
            turns += [
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny"}]},
            ]
            final = self.sdk.messages.create(model=model, max_tokens=256, tools=[tool], messages=turns)
            return "".join(b.text for b in final.content if b.type == "text")
        config = genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(function_declarations=[self._gemini_function()])],
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
        )
        contents: list[Any] = [genai_types.Content(role="user", parts=[genai_types.Part(text=prompt)])]
        first = self.sdk.models.generate_content(model=model, contents=contents, config=config)
        call_content = first.candidates[0].content
        call = next(p.function_call for p in call_content.parts if p.function_call)
        response = genai_types.FunctionResponse(id=call.id, name=call.name, response={"result": "Sunny"})
        contents += [
            call_content,
            genai_types.Content(role="user", parts=[genai_types.Part(function_response=response)]),
        ]
        final = self.sdk.models.generate_content(model=model, contents=contents, config=config)
        return str(final.text)


CELLS = [pytest.param(client, upstream, id=f"{client}-from-{upstream}") for client in CLIENTS for upstream in UPSTREAMS]


@pytest.mark.parametrize(("client_kind", "upstream"), CELLS)
def test_matrix_cell(matrix_gateway: Gateway, client_kind: str, upstream: str) -> None:
    prefix, _, _, model_id, reply = UPSTREAMS[upstream]
    model = f"{prefix}/{model_id}"
    client = Client(client_kind, matrix_gateway)

    assert client.text(model, "ping one") == reply + "ping one"
    assert client.stream_text(model, "ping two") == reply + "ping two"

    name, arguments, call_id = client.stream_tool_call(model)
    assert name == "get_weather" and set(arguments) == {"city", "days"} and call_id

    assert client.tool_round_trip(model) == "Tool said: Sunny"


def test_matrix_covers_every_pair() -> None:
    assert {(c.values[0], c.values[1]) for c in CELLS} == {(c, u) for c in CLIENTS for u in UPSTREAMS}
