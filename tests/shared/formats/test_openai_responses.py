"""OpenAI Responses requests and answers through the canonical model.

The golden checks here mirror test_golden.py for the `responses` files until the format is in the
registry (test_golden.py then runs them too). Codex captures are real request bodies of `codex exec`
(Codex CLI 0.169, second turns: after a function call and after a freeform apply_patch call), with every
long text of Codex's own (its instructions, its patch grammar) replaced by a short stand-in and local
paths neutralised: the structure is what the tests need, and the prose is not ours to ship.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import Response

from shared.domain.usage import Usage
from shared.errors import InvalidRequest, NotSupported
from shared.formats import anthropic_messages, openai_chat
from shared.formats.canonical import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Image,
    Message,
    Reasoning,
    Role,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    request_from_json,
    response_from_json,
    to_json,
)
from shared.formats.openai_responses import (
    echo,
    parse_request,
    parse_response,
    render_request,
    render_response,
    unwrap_custom_input,
    wrap_custom_input,
)

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
CAPTURES = sorted((HERE / "captures").glob("codex-request-*.json"))
# What a Responses file cannot say (see the module docstring); only ever dropped, never invented.
LOSSY = {"request": {"stop", "top_k"}, "response": {"stop_sequence"}}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _canonical(scenario: Path, kind: str) -> Any:
    raw = _load(scenario / f"{kind}.canonical.json")
    return request_from_json(raw) if kind == "request" else response_from_json(raw)


GOLDEN_CASES = [
    pytest.param(path.parent, path.name.split(".")[0], id=f"{path.parent.name}-{path.name.split('.')[0]}")
    for path in sorted(GOLDEN.glob("*/*.responses.json"))
]


def test_golden_responses_files_exist_in_shared_and_own_scenarios() -> None:
    names = {p.values[0].name for p in GOLDEN_CASES}
    assert {"tools-round-trip", "text-with-system", "images", "anthropic-thinking-and-cache"} <= names
    assert any(n.startswith("responses-") for n in names)


@pytest.mark.parametrize(("scenario", "kind"), GOLDEN_CASES)
def test_golden_parse_gives_the_canonical_form(scenario: Path, kind: str) -> None:
    wire = _load(scenario / f"{kind}.responses.json")
    parsed = parse_request(wire) if kind == "request" else parse_response(wire)
    expected = {k: v for k, v in to_json(_canonical(scenario, kind)).items() if k not in LOSSY[kind]}
    assert to_json(parsed) == expected


@pytest.mark.parametrize(("scenario", "kind"), GOLDEN_CASES)
def test_golden_render_gives_the_wire_form(scenario: Path, kind: str) -> None:
    canonical = _canonical(scenario, kind)
    rendered = render_request(canonical) if kind == "request" else render_response(canonical)
    assert rendered == _load(scenario / f"{kind}.responses.json")


@pytest.mark.parametrize(
    "scenario", [p.values[0] for p in GOLDEN_CASES if p.values[1] == "response"], ids=lambda p: p.name
)
def test_the_official_sdk_parses_every_rendered_response(scenario: Path) -> None:
    body = render_response(_canonical(scenario, "response"))
    response = Response.model_validate(body)
    assert response.id == body["id"] and len(response.output) == len(body["output"])
    texts = [p.text for p in _canonical(scenario, "response").parts if isinstance(p, Text)]
    assert response.output_text == "".join(texts)


# ----- Codex captures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_codex_requests_parse_and_render_to_chat_and_anthropic(path: Path) -> None:
    body = _load(path)
    req = parse_request(body)
    assert req.stream and req.parallel_tool_calls is True and req.tool_choice == ToolChoice("auto")
    chat = openai_chat.render_request(req)
    anthropic = anthropic_messages.render_request(req)
    assert chat["messages"][0]["role"] == "developer" and anthropic["system"]
    names = {t["function"]["name"] for t in chat["tools"]}
    assert "exec_command" in names and {t["name"] for t in anthropic["tools"]} == names
    # the tool call and its result survive into both formats
    assert any(m.get("tool_calls") for m in chat["messages"]) and any(m["role"] == "tool" for m in chat["messages"])
    # and back to Responses, item for item, apart from the item ids Codex puts on its input
    back = render_request(req)
    assert back["input"] == [_without_ids(item) for item in body["input"]]
    assert {k: v for k, v in back.items() if k != "input"} == {k: v for k, v in body.items() if k != "input"}


def _without_ids(item: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: v for k, v in item.items() if k not in ("status", "content") and (k != "id" or item["type"] == "reasoning")
    }
    if item["type"] == "message":
        out["content"] = [{k: v for k, v in c.items() if k != "annotations"} for c in item["content"]]
    return out


def test_codex_hosted_and_freeform_tools_are_kept_for_a_responses_upstream_and_translated_for_others() -> None:
    req = parse_request(_load(HERE / "captures" / "codex-request-apply-patch-turn.json"))
    tools = {t.name: t for t in req.tools}
    assert "web_search" not in tools and "tool_search" not in tools  # run by OpenAI's servers only
    patch = tools["apply_patch"]
    assert (
        patch.parameters["required"] == ["input"]
        and "grammar" in patch.parameters["properties"]["input"]["description"]
    )
    assistant = next(m for m in req.messages if m.role is Role.ASSISTANT)
    call = next(p for p in assistant.parts if isinstance(p, ToolCall))
    assert call.name == "apply_patch" and unwrap_custom_input(call.arguments).startswith("*** Begin Patch")
    assert json.loads(call.arguments) == {"input": unwrap_custom_input(call.arguments)}
    rendered = render_request(req)
    assert [t["type"] for t in rendered["tools"]][-2:] == ["tool_search", "web_search"]
    assert any(i["type"] == "custom_tool_call_output" for i in rendered["input"])


def test_codex_namespace_members_are_flat_functions_and_calls_name_them() -> None:
    req = parse_request(_load(HERE / "captures" / "codex-request-function-call-turn.json"))
    assert "multi_agent_v1__spawn_agent" in {t.name for t in req.tools}
    answer = ChatResponse(
        "resp_x",
        "m",
        (ToolCall("c1", "multi_agent_v1__spawn_agent", "{}"),),
        FinishReason.TOOL_CALLS,
        extensions=echo(req),
    )
    item = render_response(answer)["output"][0]
    assert (item["namespace"], item["name"]) == ("multi_agent_v1", "spawn_agent")
    assert parse_response(render_response(answer)).parts == answer.parts


# ----- requests -------------------------------------------------------------------------------------------


def _req(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-5", "input": "hi", **fields}


def test_input_string_and_instructions() -> None:
    req = parse_request(_req(instructions="Be brief."))
    assert req.messages == (Message(Role.SYSTEM, (Text("Be brief."),)), Message(Role.USER, (Text("hi"),)))
    assert render_request(req) == _req(instructions="Be brief.")


def test_a_leading_developer_message_stays_an_input_item_and_later_system_messages_too() -> None:
    req = ChatRequest(
        "m",
        (
            Message(Role.DEVELOPER, (Text("d"),)),
            Message(Role.SYSTEM, (Text("s"),)),
            Message(Role.USER, (Text("u"),)),
        ),
    )
    body = render_request(req)
    assert "instructions" not in body and [i["role"] for i in body["input"]] == ["developer", "system", "user"]
    assert parse_request(body).messages == req.messages


def test_a_system_message_in_several_parts_becomes_one_instructions_text() -> None:
    req = ChatRequest("m", (Message(Role.SYSTEM, (Text("a"), Text("b"))), Message(Role.USER, (Text("u"),))))
    assert render_request(req)["instructions"] == "a\n\nb"


def test_assistant_items_in_a_row_are_one_turn_and_outputs_are_tool_messages() -> None:
    body = _req(
        input=[
            {"role": "user", "content": "go"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "x"}, {"type": "refusal", "refusal": "no"}],
            },
            {"type": "function_call", "id": "fc_9", "call_id": "c1", "name": "f", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [
                    {"type": "input_text", "text": "r"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                ],
            },
        ]
    )
    req = parse_request(body)
    assert req.messages[1] == Message(
        Role.ASSISTANT, (Reasoning("a\n\nb"), Text("x"), Text("no"), ToolCall("c1", "f", "{}"))
    )
    assert req.messages[2] == Message(
        Role.TOOL, (ToolResult("c1", (Text("r"), Image(url="https://x/y.png", detail="low"))),)
    )
    assert req.extensions["responses.reasoning_ids"] == ["rs_1"]


def test_reasoning_ids_survive_a_round_trip_and_unreplayable_reasoning_is_left_out() -> None:
    body = _req(
        input=[
            {"role": "user", "content": "go"},
            {"type": "reasoning", "summary": [], "encrypted_content": "enc"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "t"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
        ]
    )
    assert render_request(parse_request(body)) == {**body, "input": [_norm(i) for i in body["input"]]}
    foreign = ChatRequest("m", (Message(Role.ASSISTANT, (Reasoning("thought, no signature"), Text("a"))),))
    assert [i["type"] for i in render_request(foreign)["input"]] == ["message"]


def _norm(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("role") == "user":
        return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": item["content"]}]}
    return item


def test_images_by_url_and_data_url_and_auto_detail() -> None:
    body = _req(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "high"},
                ],
            }
        ]
    )
    req = parse_request(body)
    assert req.messages[0].parts == (
        Image(data="AAAA", media_type="image/png"),
        Image(url="https://x/y.png", detail="high"),
    )
    assert render_request(req)["input"][0]["content"] == body["input"][0]["content"]


def test_parameters_and_extensions() -> None:
    body = _req(
        max_output_tokens=100,
        temperature=0.1,
        top_p=0.5,
        user="u",
        stream=True,
        parallel_tool_calls=False,
        tool_choice={"type": "function", "name": "f"},
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        reasoning={"effort": "high", "summary": "detailed"},
        text={"format": {"type": "json_object"}, "verbosity": "high"},
        store=True,
        previous_response_id="resp_1",
        include=["reasoning.encrypted_content"],
        metadata={"a": "b"},
        prompt_cache_key="k",
        service_tier="priority",
        truncation="auto",
        safety_identifier="s",
    )
    req = parse_request(body)
    assert (req.max_tokens, req.temperature, req.top_p, req.user, req.stream) == (100, 0.1, 0.5, "u", True)
    assert req.tool_choice == ToolChoice("tool", "f") and req.tools == (Tool("f", None, {"type": "object"}, True),)
    assert req.thinking == Thinking(effort="high") and req.output_format is not None
    assert req.extensions["responses.previous_response_id"] == "resp_1"
    assert req.extensions["responses.reasoning_summary"] == "detailed"
    assert req.extensions["responses.text"] == {"verbosity": "high"}
    assert render_request(req) == body
    # other formats see the canonical fields and ignore the responses.* extensions
    chat = openai_chat.render_request(req)
    assert chat["reasoning_effort"] == "high" and chat["max_tokens"] == 100 and "previous_response_id" not in chat


def test_strict_false_or_absent_is_canonical_none_and_renders_false() -> None:
    tools = [
        {"type": "function", "name": "f", "parameters": {}},
        {"type": "function", "name": "g", "parameters": {}, "strict": False},
    ]
    req = parse_request(_req(tools=tools))
    assert [t.strict for t in req.tools] == [None, None]
    assert [t["strict"] for t in render_request(req)["tools"]] == [False, False]


@pytest.mark.parametrize(
    ("thinking", "reasoning"),
    [
        (Thinking(effort="low"), {"effort": "low"}),
        (Thinking(budget_tokens=20000), {"effort": "high"}),
        (Thinking(enabled=False), {"effort": "none"}),
    ],
)
def test_thinking_renders_as_reasoning_effort(thinking: Thinking, reasoning: dict[str, str]) -> None:
    body = render_request(ChatRequest("m", (Message(Role.USER, (Text("q"),)),), thinking=thinking))
    assert body["reasoning"] == reasoning
    assert parse_request(body).thinking in (thinking, Thinking(effort=reasoning["effort"]))


def test_canonical_features_responses_lacks_are_dropped_not_sent() -> None:
    req = ChatRequest(
        "m",
        (Message(Role.USER, (Text("q"),), name="ana"),),
        stop=("END",),
        top_k=5,
        extensions={"openai.seed": 1},
    )
    assert render_request(req) == {"model": "m", "input": "q"}


@pytest.mark.parametrize(
    ("patch", "error", "param"),
    [
        ({"model": None}, InvalidRequest, "model"),
        ({"model": 3}, InvalidRequest, "model"),
        ({"input": 3}, InvalidRequest, "input"),
        ({"input": ["hi"]}, InvalidRequest, "input[0]"),
        ({"input": [{"role": "robot", "content": "x"}]}, InvalidRequest, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, InvalidRequest, "input[0].call_id"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, NotSupported, "input[0]"),
        ({"input": [{"type": "local_shell_call", "call_id": "c"}]}, NotSupported, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            NotSupported,
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            NotSupported,
            "input[0].content[0]",
        ),
        ({"tools": [{"type": "local_shell"}]}, NotSupported, "tools[0]"),
        ({"tools": [{"type": "function"}]}, InvalidRequest, "tools[0].name"),
        (
            {"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "custom", "name": "c"}]}]},
            NotSupported,
            "tools[0].tools[0]",
        ),
        ({"tool_choice": {"type": "web_search"}}, NotSupported, "tool_choice"),
        ({"tool_choice": "sometimes"}, InvalidRequest, "tool_choice"),
        ({"text": {"format": {"type": "yaml"}}}, InvalidRequest, "text.format.type"),
        ({"temperature": "hot"}, InvalidRequest, "temperature"),
        ({"max_output_tokens": True}, InvalidRequest, "max_output_tokens"),
        ({"stream": "yes"}, InvalidRequest, "stream"),
    ],
)
def test_wrong_or_untranslatable_requests_name_the_param(
    patch: dict[str, Any], error: type[InvalidRequest], param: str
) -> None:
    body = {**_req(), **patch}
    if body.get("model") is None:
        del body["model"]
    with pytest.raises(error) as exc:
        parse_request(body)
    assert exc.value.param == param and type(exc.value) is error


def test_web_search_records_in_the_input_are_dropped() -> None:
    req = parse_request(
        _req(input=[{"role": "user", "content": "q"}, {"type": "web_search_call", "id": "ws_1", "status": "completed"}])
    )
    assert len(req.messages) == 1


def test_model_may_come_from_outside_the_body() -> None:
    assert parse_request({"input": "hi"}, model="routed").model == "routed"


def test_freeform_input_wrapping_is_exact_and_tolerant() -> None:
    for text in ("", 'line\n"quoted" \\ é ☃', "*** Begin Patch\n"):
        assert unwrap_custom_input(wrap_custom_input(text)) == text
    assert wrap_custom_input("é") == '{"input":"é"}'
    assert unwrap_custom_input("not json") == "not json" and unwrap_custom_input('{"x":1}') == '{"x":1}'


# ----- responses ------------------------------------------------------------------------------------------


def test_response_items_have_deterministic_ids_and_statuses() -> None:
    answer = ChatResponse(
        "resp_abc",
        "m",
        (Reasoning("r", "sig"), Text("t"), ToolCall("call_1", "f", "{}")),
        FinishReason.TOOL_CALLS,
        Usage(input=10, output=5, cached=2, cache_creation=1, reasoning=3),
        created=7,
    )
    body = render_response(answer)
    assert [i["id"] for i in body["output"]] == ["rs_abc_0", "msg_abc_1", "fc_abc_2"]
    assert body["status"] == "completed" and body["incomplete_details"] is None
    assert body["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 1},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 15,
    }
    assert parse_response(body) == answer
    Response.model_validate(body)


@pytest.mark.parametrize(
    ("finish", "status", "reason", "back"),
    [
        (FinishReason.STOP, "completed", None, FinishReason.STOP),
        (FinishReason.LENGTH, "incomplete", "max_output_tokens", FinishReason.LENGTH),
        (FinishReason.CONTENT_FILTER, "incomplete", "content_filter", FinishReason.CONTENT_FILTER),
        (FinishReason.PAUSE, "completed", None, FinishReason.STOP),
        (FinishReason.UNKNOWN, "completed", None, FinishReason.STOP),
    ],
)
def test_finish_reasons_as_status(finish: FinishReason, status: str, reason: str | None, back: FinishReason) -> None:
    body = render_response(ChatResponse("r", "m", (Text("x"),), finish))
    assert body["status"] == status and (body["incomplete_details"] or {}).get("reason") == reason
    assert parse_response(body).finish_reason is back


def test_parsing_a_real_looking_openai_response() -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": "gpt-5",
        "output": [
            {"id": "ws_1", "type": "web_search_call", "status": "completed"},
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
        ],
        "usage": {"input_tokens": "many", "output_tokens": 3},
        "store": True,
        "tools": [{"type": "web_search"}],
    }  # fmt: skip
    answer = parse_response(body)
    assert answer.parts == (Text("I can't help with that."),) and answer.finish_reason is FinishReason.REFUSAL
    assert answer.usage == Usage(input=0, output=3)
    assert answer.extensions["responses.store"] is True and answer.extensions["responses.item_ids"] == {"0": "msg_1"}
    assert render_response(answer)["output"][0]["id"] == "msg_1"


def test_a_response_without_output_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_response({"id": "r", "status": "completed"})


def test_echo_carries_the_request_fields_a_response_repeats() -> None:
    req = parse_request(
        _req(
            instructions="i",
            tools=[{"type": "custom", "name": "apply_patch"}],
            reasoning={"effort": "low"},
            metadata={"k": "v"},
            store=False,
        )
    )
    extensions = echo(req)
    assert extensions["responses.instructions"] == "i"
    assert extensions["responses.reasoning"] == {"effort": "low", "summary": None}
    assert extensions["responses.tools"] == [{"type": "custom", "name": "apply_patch"}]
    answer = ChatResponse(
        "resp_e",
        "m",
        (ToolCall("c", "apply_patch", wrap_custom_input("patch")),),
        FinishReason.TOOL_CALLS,
        extensions=extensions,
    )
    body = render_response(answer)
    assert body["output"][0] == {
        "id": "ctc_e_0",
        "type": "custom_tool_call",
        "call_id": "c",
        "name": "apply_patch",
        "input": "patch",
    }
    assert body["metadata"] == {"k": "v"} and body["store"] is False and body["instructions"] == "i"
    response = Response.model_validate(body)
    assert response.tools[0].type == "custom"
