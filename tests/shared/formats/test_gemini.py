"""Gemini generateContent ↔ canonical: every golden folder with Gemini files in both directions, then the
mapping rules and the errors one at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.usage import Usage
from shared.errors import InvalidRequest, NotSupported
from shared.formats import gemini
from shared.formats.canonical import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Image,
    Message,
    OutputFormat,
    Reasoning,
    Role,
    Text,
    Thinking,
    ToolCall,
    ToolChoice,
    ToolResult,
    request_from_json,
    response_from_json,
    to_json,
)
from shared.formats.thinking import budget_for

GOLDEN = Path(__file__).parent / "golden"
MODEL = "gemini-2.5-flash"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _golden(kind: str) -> list[Any]:
    return [
        pytest.param(folder, id=folder.name)
        for folder in sorted(p for p in GOLDEN.iterdir() if p.is_dir())
        if (folder / f"{kind}.gemini.json").exists()
    ]


# ----- golden cases -------------------------------------------------------------------------------------


def test_golden_cases_exist() -> None:
    assert len(_golden("request")) >= 5 and len(_golden("response")) >= 5


@pytest.mark.parametrize("folder", _golden("request"))
def test_golden_request_parses_to_the_canonical_form(folder: Path) -> None:
    raw = _load(folder / "request.canonical.json")
    parsed = gemini.parse_request(_load(folder / "request.gemini.json"), model=raw["model"])
    assert to_json(parsed) == to_json(request_from_json(raw)) == raw


@pytest.mark.parametrize("folder", _golden("request"))
def test_golden_request_renders_to_the_wire_form(folder: Path) -> None:
    canonical = request_from_json(_load(folder / "request.canonical.json"))
    assert gemini.render_request(canonical) == _load(folder / "request.gemini.json")


@pytest.mark.parametrize("folder", _golden("response"))
def test_golden_response_parses_to_the_canonical_form(folder: Path) -> None:
    raw = _load(folder / "response.canonical.json")
    parsed = gemini.parse_response(_load(folder / "response.gemini.json"), model=raw["model"])
    assert to_json(parsed) == to_json(response_from_json(raw)) == raw


@pytest.mark.parametrize("folder", _golden("response"))
def test_golden_response_renders_to_the_wire_form(folder: Path) -> None:
    canonical = response_from_json(_load(folder / "response.canonical.json"))
    assert gemini.render_response(canonical) == _load(folder / "response.gemini.json")


# ----- helpers ------------------------------------------------------------------------------------------


def _req(*contents: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"contents": list(contents), **extra}


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def _model(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


def _answer(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish}], **extra}


def _chat(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=messages, **fields)


def _assistant(*parts: Any) -> Message:
    return Message(Role.ASSISTANT, tuple(parts))


HI = _user({"text": "hi"})


# ----- roles and turns ----------------------------------------------------------------------------------


def test_model_comes_from_the_url_and_is_never_rendered() -> None:
    req = gemini.parse_request(_req(HI), model="gemini-2.5-pro")
    assert req.model == "gemini-2.5-pro" and not req.stream
    assert "model" not in gemini.render_request(req)
    assert gemini.parse_request(_req(HI, model="models/gemini-x")).model == "gemini-x"
    assert gemini.parse_request(_req(HI)).model == ""


def test_a_missing_role_and_the_legacy_function_role_read_as_user() -> None:
    req = gemini.parse_request(_req({"parts": [{"text": "a"}]}, {"role": "function", "parts": [{"text": "b"}]}))
    assert [m.role for m in req.messages] == [Role.USER, Role.USER]


def test_system_and_developer_messages_anywhere_render_into_system_instruction() -> None:
    req = _chat(
        Message(Role.DEVELOPER, (Text("one"),)),
        Message(Role.USER, (Text("hi"),)),
        Message(Role.SYSTEM, (Text("two"),)),
    )
    body = gemini.render_request(req)
    assert body["systemInstruction"] == {"parts": [{"text": "one"}, {"text": "two"}]}
    assert body["contents"] == [HI]
    back = gemini.parse_request(body)
    assert back.messages[0] == Message(Role.SYSTEM, (Text("one"), Text("two")))


def test_a_conversation_of_only_system_messages_renders_as_a_user_turn() -> None:
    body = gemini.render_request(_chat(Message(Role.SYSTEM, (Text("just this"),))))
    assert body == {"contents": [{"role": "user", "parts": [{"text": "just this"}]}]}


def test_tool_results_and_the_next_user_message_share_one_user_turn() -> None:
    call = ToolCall("c1", "f", "{}")
    req = _chat(
        Message(Role.USER, (Text("go"),)),
        _assistant(call),
        Message(Role.TOOL, (ToolResult("c1", (Text("done"),)),)),
        Message(Role.USER, (Text("next"),)),
        Message(Role.USER, (Text("and more"),)),
    )
    contents = gemini.render_request(req)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "user"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"id": "c1", "name": "f", "response": {"result": "done"}}},
        {"text": "next"},
    ]
    assert gemini.parse_request(gemini.render_request(req)).messages == req.messages


def test_a_user_turn_splits_into_user_and_tool_messages_in_order() -> None:
    body = _req(
        _model({"functionCall": {"name": "f", "args": {}}}),
        _user({"text": "before"}, {"functionResponse": {"name": "f", "response": {"result": "r"}}}, {"text": "after"}),
    )
    roles = [m.role for m in gemini.parse_request(body).messages]
    assert roles == [Role.ASSISTANT, Role.USER, Role.TOOL, Role.USER]


# ----- function calls and their results -----------------------------------------------------------------


def test_arguments_are_compact_json_of_args_and_render_back_as_an_object() -> None:
    body = _req(HI, _model({"functionCall": {"name": "f", "args": {"city": "Zürich", "n": [1, 2.5]}}}))
    call = gemini.parse_request(body).messages[1].parts[0]
    assert call == ToolCall("call_f_0", "f", '{"city":"Zürich","n":[1,2.5]}')
    spaced = _chat(_assistant(ToolCall("x", "f", '{ "a" : 1 }')))
    assert gemini.render_request(spaced)["contents"][0]["parts"][0]["functionCall"] == {
        "id": "x",
        "name": "f",
        "args": {"a": 1},
    }
    empty = _chat(_assistant(ToolCall("x", "f", "")))
    assert gemini.render_request(empty)["contents"][0]["parts"][0]["functionCall"]["args"] == {}


def test_our_ids_are_not_rendered_but_gemini_and_client_ids_are() -> None:
    req = _chat(
        _assistant(ToolCall("call_f_3", "f", "{}"), ToolCall("call_g_0", "f", "{}"), ToolCall("toolu_1", "f", "{}")),
        Message(Role.TOOL, (ToolResult("call_f_3", (Text("a"),)),)),
    )
    contents = gemini.render_request(req)["contents"]
    assert [("id" in p["functionCall"]) for p in contents[0]["parts"]] == [False, True, True]
    assert "id" not in contents[1]["parts"][0]["functionResponse"]


def test_an_id_less_result_takes_the_oldest_open_call_of_its_name() -> None:
    body = _req(
        _model({"functionCall": {"id": "g1", "name": "f", "args": {}}}, {"functionCall": {"name": "f", "args": {}}}),
        _user(
            {"functionResponse": {"name": "f", "response": {"result": "1"}}},
            {"functionResponse": {"name": "f", "response": {"result": "2"}}},
            {"functionResponse": {"name": "f", "response": {"result": "orphan"}}},
        ),
    )
    ids = [m.parts[0].call_id for m in gemini.parse_request(body).messages[1:] if isinstance(m.parts[0], ToolResult)]
    assert ids == ["g1", "call_f_0", "call_f_1"]


def test_a_result_with_an_id_closes_that_call() -> None:
    body = _req(
        _model({"functionCall": {"id": "a", "name": "f", "args": {}}}, {"functionCall": {"id": "b", "name": "f"}}),
        _user(
            {"functionResponse": {"id": "b", "name": "f", "response": {}}},
            {"functionResponse": {"name": "f", "response": {}}},
        ),
    )
    messages = gemini.parse_request(body).messages
    assert [m.parts[0].call_id for m in messages[1:]] == ["b", "a"]


@pytest.mark.parametrize(
    ("response", "content", "is_error"),
    [
        ({"result": "plain"}, "plain", False),
        ({"error": "boom"}, "boom", True),
        ({"temp": 20, "unit": "C"}, '{"temp":20,"unit":"C"}', False),
        ({"result": {"nested": True}}, '{"result":{"nested":true}}', False),
        ({"result": "a", "extra": 1}, '{"result":"a","extra":1}', False),
        ({"output": "gemini-cli style"}, '{"output":"gemini-cli style"}', False),
        ({}, "{}", False),
    ],
)
def test_function_response_objects_read_as_text(response: dict[str, Any], content: str, is_error: bool) -> None:
    body = _req(
        _model({"functionCall": {"name": "f"}}), _user({"functionResponse": {"name": "f", "response": response}})
    )
    result = gemini.parse_request(body).messages[1].parts[0]
    assert result == ToolResult("call_f_0", (Text(content),), is_error=is_error)
    rendered = gemini.render_request(gemini.parse_request(body))["contents"][1]["parts"][0]
    assert rendered["functionResponse"]["response"] == response


@pytest.mark.parametrize(
    ("text", "response"),
    [
        ("Sunny", {"result": "Sunny"}),
        ('{"a":1}', {"a": 1}),
        ('{"a": 1}', {"result": '{"a": 1}'}),  # not compact: kept as the client wrote it
        ('{"result":"x"}', {"result": '{"result":"x"}'}),  # would read back as Text("x")
        ("[1,2]", {"result": "[1,2]"}),
        ("{not json", {"result": "{not json"}),
        ("", {"result": ""}),
    ],
)
def test_tool_result_text_renders_as_a_response_object(text: str, response: dict[str, Any]) -> None:
    req = _chat(_assistant(ToolCall("c", "f", "{}")), Message(Role.TOOL, (ToolResult("c", (Text(text),)),)))
    body = gemini.render_request(req)
    assert body["contents"][1]["parts"][0]["functionResponse"]["response"] == response
    if text:
        assert gemini.parse_request(body).messages[1].parts[0] == ToolResult("c", (Text(text),))


def test_tool_result_images_ride_in_function_response_parts() -> None:
    image = Image(data="AAAA", media_type="image/png")
    req = _chat(
        _assistant(ToolCall("c", "f", "{}")),
        Message(Role.TOOL, (ToolResult("c", (Text("see"), image)),)),
    )
    response = gemini.render_request(req)["contents"][1]["parts"][0]["functionResponse"]
    assert response["response"] == {"result": "see"}
    assert response["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]
    assert gemini.parse_request(gemini.render_request(req)).messages == req.messages


def test_multiple_text_parts_of_a_tool_result_are_joined() -> None:
    req = _chat(_assistant(ToolCall("c", "f", "{}")), Message(Role.TOOL, (ToolResult("c", (Text("a"), Text("b"))),)))
    assert gemini.parse_request(gemini.render_request(req)).messages[1].parts[0] == ToolResult("c", (Text("ab"),))


# ----- reasoning and thought signatures -----------------------------------------------------------------


def _model_parts(*parts: Any) -> list[dict[str, Any]]:
    parts_out: list[dict[str, Any]] = gemini.render_request(_chat(_assistant(*parts)))["contents"][0]["parts"]
    return parts_out


def _parsed_parts(*parts: dict[str, Any]) -> tuple[Any, ...]:
    return gemini.parse_request(_req(_model(*parts))).messages[0].parts


def test_a_signed_reasoning_before_a_call_puts_its_signature_on_the_call() -> None:
    parts = (Reasoning("plan", signature="S"), ToolCall("c", "f", "{}"), ToolCall("d", "g", "{}"))
    assert _model_parts(*parts) == [
        {"thought": True, "text": "plan"},
        {"functionCall": {"id": "c", "name": "f", "args": {}}, "thoughtSignature": "S"},
        {"functionCall": {"id": "d", "name": "g", "args": {}}},
    ]
    assert _parsed_parts(*_model_parts(*parts)) == parts


def test_a_signature_on_a_call_after_text_is_a_reasoning_of_its_own() -> None:
    wire = [{"text": "Calling."}, {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S"}]
    parts = _parsed_parts(*wire)
    assert parts == (Text("Calling."), Reasoning(signature="S"), ToolCall("call_f_0", "f", "{}"))
    assert _model_parts(*parts) == wire


def test_a_signed_thought_keeps_its_signature_and_a_second_signature_goes_on_the_call() -> None:
    wire = [
        {"thought": True, "text": "t", "thoughtSignature": "S1"},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S2"},
    ]
    parts = _parsed_parts(*wire)
    assert parts == (Reasoning("t", "S1"), Reasoning(signature="S2"), ToolCall("call_f_0", "f", "{}"))
    assert _model_parts(*parts) == wire


def test_a_signature_on_text_or_media_stays_on_that_part() -> None:
    for wire in (
        [{"text": "answer", "thoughtSignature": "S"}],
        [{"inlineData": {"mimeType": "image/png", "data": "AA"}, "thoughtSignature": "S"}],
        [{"thought": True, "text": "t"}, {"text": "answer", "thoughtSignature": "S"}],
    ):
        parts = _parsed_parts(*wire)
        assert parts[-2] == Reasoning(signature="S")
        assert _model_parts(*parts) == wire


def test_a_signed_thought_before_text_keeps_its_signature() -> None:
    parts = (Reasoning("t", "S"), Text("answer"))
    assert _model_parts(*parts) == [{"thought": True, "text": "t", "thoughtSignature": "S"}, {"text": "answer"}]
    assert _parsed_parts(*_model_parts(*parts)) == parts


def test_a_signed_thought_before_an_unsigned_call_moves_its_signature_to_the_call() -> None:
    """The one documented loss: Gemini validates the signature on the call, so that is where it goes."""
    parts = _parsed_parts({"thought": True, "text": "t", "thoughtSignature": "S"}, {"functionCall": {"name": "f"}})
    assert parts == (Reasoning("t", "S"), ToolCall("call_f_0", "f", "{}"))
    assert _model_parts(*parts)[1]["thoughtSignature"] == "S"


def test_redacted_reasoning_has_no_gemini_form() -> None:
    assert _model_parts(Reasoning(redacted="opaque"), Text("x")) == [{"text": "x"}]


def test_a_lone_signature_part_reads_as_signed_empty_reasoning() -> None:
    assert _parsed_parts({"thoughtSignature": "S"}) == (Reasoning(signature="S"),)
    assert _model_parts(Reasoning(signature="S")) == [{"thought": True, "text": "", "thoughtSignature": "S"}]


# ----- images -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "wire"),
    [
        (Image(data="AA", media_type="image/webp"), {"inlineData": {"mimeType": "image/webp", "data": "AA"}}),
        (Image(data="AA"), {"inlineData": {"mimeType": "image/jpeg", "data": "AA"}}),
        (Image(url="data:image/png;base64,QUJD"), {"inlineData": {"mimeType": "image/png", "data": "QUJD"}}),
        (Image(url="gs://b/cat.PNG?x=1"), {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/cat.PNG?x=1"}}),
        (Image(url="https://x/doc.pdf"), {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/doc.pdf"}}),
        (Image(url="https://x/photo"), {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/photo"}}),
        (
            Image(url="https://x.y/v1/f", media_type="video/mp4"),
            {"fileData": {"mimeType": "video/mp4", "fileUri": "https://x.y/v1/f"}},
        ),
    ],
)
def test_images_render_as_inline_or_file_data(image: Image, wire: dict[str, Any]) -> None:
    body = gemini.render_request(_chat(Message(Role.USER, (image,))))
    assert body["contents"][0]["parts"] == [wire]


def test_file_data_without_a_mime_type_parses() -> None:
    parts = gemini.parse_request(_req(_user({"fileData": {"fileUri": "gs://b/x"}}))).messages[0].parts
    assert parts == (Image(url="gs://b/x"),)


# ----- generation config --------------------------------------------------------------------------------


def _config(req: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = gemini.render_request(req).get("generationConfig", {})
    return config


def _parsed(config: dict[str, Any]) -> ChatRequest:
    return gemini.parse_request(_req(HI, generationConfig=config))


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high", "xhigh"])
def test_an_effort_renders_as_its_budget(effort: str) -> None:
    config = _config(_chat(thinking=Thinking(effort=effort)))
    assert config == {"thinkingConfig": {"thinkingBudget": budget_for(effort), "includeThoughts": True}}


def test_thinking_budget_disabled_and_default() -> None:
    assert _config(_chat(thinking=Thinking(budget_tokens=3000)))["thinkingConfig"] == {
        "thinkingBudget": 3000,
        "includeThoughts": True,
    }
    assert _config(_chat(thinking=Thinking(enabled=False)))["thinkingConfig"] == {"thinkingBudget": 0}
    assert _config(_chat(thinking=Thinking()))["thinkingConfig"] == {"includeThoughts": True}
    assert _parsed({"thinkingConfig": {"thinkingBudget": 0}}).thinking == Thinking(enabled=False)
    assert _parsed({"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}}).thinking == Thinking()
    assert _parsed({"thinkingConfig": {"thinkingBudget": 500, "includeThoughts": True}}).thinking == Thinking(
        budget_tokens=500
    )


@pytest.mark.parametrize(("level", "effort"), [("low", "low"), ("HIGH", "high"), ("minimal", "minimal")])
def test_a_thinking_level_reads_as_an_effort(level: str, effort: str) -> None:
    req = _parsed({"thinkingConfig": {"thinkingLevel": level, "includeThoughts": True}})
    assert req.thinking == Thinking(effort=effort)


def test_include_thoughts_left_out_is_kept_off() -> None:
    req = _parsed({"thinkingConfig": {"thinkingBudget": 2048}})
    assert req.thinking == Thinking(budget_tokens=2048)
    assert _config(req)["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": False}


@pytest.mark.parametrize(
    ("fmt", "config"),
    [
        (OutputFormat("text"), {"responseMimeType": "text/plain"}),
        (OutputFormat("json_object"), {"responseMimeType": "application/json"}),
        (
            OutputFormat("json_schema", schema={"type": "object"}),
            {"responseMimeType": "application/json", "responseSchema": {"type": "object"}},
        ),
    ],
)
def test_output_formats(fmt: OutputFormat, config: dict[str, Any]) -> None:
    assert _config(_chat(output_format=fmt)) == config
    assert _parsed(config).output_format == fmt


def test_a_json_schema_by_response_json_schema_renders_as_response_schema() -> None:
    req = _parsed({"responseMimeType": "application/json", "responseJsonSchema": {"type": "string"}})
    assert req.output_format == OutputFormat("json_schema", schema={"type": "string"})
    assert _config(req)["responseSchema"] == {"type": "string"}


def test_other_mime_types_pass_through_untouched() -> None:
    config = {"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["a", "b"]}}
    req = _parsed(config)
    assert req.output_format is None
    assert _config(req) == config


def test_an_integral_float_top_k_is_an_integer() -> None:
    assert _parsed({"topK": 40.0}).top_k == 40


# ----- tools and tool choice ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "calling"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice(choice: ToolChoice, calling: dict[str, Any]) -> None:
    body = gemini.render_request(_chat(Message(Role.USER, (Text("hi"),)), tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": calling}
    assert gemini.parse_request(body).tool_choice == choice


def test_several_allowed_functions_read_as_required_and_render_back() -> None:
    config = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "g"]}}
    req = gemini.parse_request(_req(HI, toolConfig=config))
    assert req.tool_choice == ToolChoice("required")
    assert gemini.render_request(req)["toolConfig"] == config


def test_parameters_json_schema_reads_as_parameters() -> None:
    tools = [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}]
    req = gemini.parse_request(_req(HI, tools=tools))
    assert req.tools[0].parameters == {"type": "object"}
    assert gemini.render_request(req)["tools"] == [
        {"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}
    ]


# ----- snake_case spellings -----------------------------------------------------------------------------


def test_snake_case_field_names_parse_like_camel_case() -> None:
    snake = {
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [
            _user({"text": "look"}, {"inline_data": {"mime_type": "image/png", "data": "AA"}}),
            _model({"function_call": {"name": "f", "args": {}}, "thought_signature": "S"}),
            _user({"function_response": {"name": "f", "response": {"result": "ok"}}}),
        ],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "generation_config": {
            "max_output_tokens": 10,
            "stop_sequences": ["x"],
            "response_mime_type": "application/json",
            "thinking_config": {"thinking_budget": 100, "include_thoughts": True},
            "candidate_count": 1,
        },
        "safety_settings": [],
    }
    camel = gemini.render_request(gemini.parse_request(snake))
    assert gemini.parse_request(camel) == gemini.parse_request(snake)
    assert camel["generationConfig"]["candidateCount"] == 1 and camel["safetySettings"] == []
    assert camel["contents"][1]["parts"][0]["thoughtSignature"] == "S"


# ----- responses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("STOP", FinishReason.STOP),
        ("MAX_TOKENS", FinishReason.LENGTH),
        ("SAFETY", FinishReason.CONTENT_FILTER),
        ("RECITATION", FinishReason.CONTENT_FILTER),
        ("BLOCKLIST", FinishReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER),
        ("SPII", FinishReason.CONTENT_FILTER),
        ("IMAGE_SAFETY", FinishReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", FinishReason.UNKNOWN),
        ("OTHER", FinishReason.UNKNOWN),
        ("SOMETHING_NEW", FinishReason.UNKNOWN),
    ],
)
def test_finish_reasons_map_and_round_trip(raw: str, finish: FinishReason) -> None:
    resp = gemini.parse_response(_answer({"text": "x"}, finish=raw))
    assert resp.finish_reason is finish
    assert gemini.render_response(resp)["candidates"][0]["finishReason"] == raw


def test_stop_with_function_calls_is_tool_calls_and_renders_as_stop() -> None:
    resp = gemini.parse_response(_answer({"functionCall": {"name": "f", "args": {}}}))
    assert resp.finish_reason is FinishReason.TOOL_CALLS
    assert resp.parts == (ToolCall("call_f_0", "f", "{}"),)
    assert gemini.render_response(resp)["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize(
    ("finish", "raw"),
    [
        (FinishReason.STOP, "STOP"),
        (FinishReason.TOOL_CALLS, "STOP"),
        (FinishReason.LENGTH, "MAX_TOKENS"),
        (FinishReason.CONTENT_FILTER, "SAFETY"),
        (FinishReason.REFUSAL, "SAFETY"),
        (FinishReason.PAUSE, "OTHER"),
        (FinishReason.UNKNOWN, "OTHER"),
    ],
)
def test_canonical_finish_reasons_render(finish: FinishReason, raw: str) -> None:
    resp = ChatResponse(id="r", model=MODEL, parts=(Text("x"),), finish_reason=finish)
    assert gemini.render_response(resp)["candidates"][0]["finishReason"] == raw


def test_usage_maps_cached_and_thoughts() -> None:
    meta = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 10,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 60,
        "totalTokenCount": 140,
    }
    resp = gemini.parse_response(_answer({"text": "x"}, usageMetadata=meta))
    assert resp.usage == Usage(input=100, output=40, cached=60, reasoning=30)
    assert resp.usage.total == 140
    assert not resp.extensions
    assert gemini.render_response(resp)["usageMetadata"] == meta


def test_usage_renders_without_zero_counts_but_keeps_explicit_zeros() -> None:
    resp = ChatResponse(id="", model="", parts=(), finish_reason=FinishReason.STOP, usage=Usage(input=5, output=2))
    assert gemini.render_response(resp) == {
        "candidates": [{"finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
    }
    meta = {"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 0, "totalTokenCount": 7}
    parsed = gemini.parse_response(_answer({"text": "x"}, usageMetadata=meta))
    assert gemini.render_response(parsed)["usageMetadata"] == meta


def test_model_version_wins_over_the_url_model() -> None:
    assert gemini.parse_response(_answer(modelVersion="gemini-2.5-flash-001"), model="alias").model == (
        "gemini-2.5-flash-001"
    )
    assert gemini.parse_response(_answer(), model="alias").model == "alias"


def test_a_candidate_without_parts_keeps_its_content_shape() -> None:
    body = {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}
    resp = gemini.parse_response(body)
    assert resp.parts == () and resp.finish_reason is FinishReason.LENGTH
    assert gemini.render_response(resp) == body


def test_only_the_first_candidate_is_canonical_and_the_rest_survive() -> None:
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "a"}]}, "finishReason": "STOP"},
            {"content": {"role": "model", "parts": [{"text": "b"}]}, "finishReason": "STOP", "index": 1},
        ]
    }
    resp = gemini.parse_response(body)
    assert resp.parts == (Text("a"),)
    assert gemini.render_response(resp) == body


def test_response_parts_of_unknown_kinds_are_skipped() -> None:
    resp = gemini.parse_response(_answer({"executableCode": {"code": "1+1"}}, {"text": "2"}))
    assert resp.parts == (Text("2"),)


def test_render_does_not_alias_canonical_data() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = _chat(Message(Role.USER, (Text("x"),)), output_format=OutputFormat("json_schema", schema=schema))
    gemini.render_request(req)["generationConfig"]["responseSchema"]["properties"]["a"]["type"] = "integer"
    assert schema["properties"]["a"]["type"] == "string"


# ----- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "contents", "missing_required_parameter"),
        ({"contents": "hi"}, "contents", "invalid_type"),
        ({"contents": []}, "contents", "empty_array"),
        ({"contents": ["hi"]}, "contents[0]", "invalid_type"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role", "invalid_value"),
        ({"contents": [{"role": 1, "parts": []}]}, "contents[0].role", "invalid_type"),
        ({"contents": [{"role": "user"}]}, "contents[0].parts", "missing_required_parameter"),
        ({"contents": [{"role": "user", "parts": {"text": "x"}}]}, "contents[0].parts", "invalid_type"),
        ({"contents": [_user("x")]}, "contents[0].parts[0]", "invalid_type"),
        ({"contents": [_user({"text": 5})]}, "contents[0].parts[0].text", "invalid_type"),
        ({"contents": [_user({"text": "x", "thought": "yes"})]}, "contents[0].parts[0].thought", "invalid_type"),
        ({"contents": [_user({"thoughtSignature": 1})]}, "contents[0].parts[0].thoughtSignature", "invalid_type"),
        ({"contents": [_user({"foo": 1})]}, "contents[0].parts[0]", "invalid_value"),
        ({"contents": [_user({"inlineData": {"data": "AA"}})]}, "contents[0].parts[0].inlineData.mimeType", None),
        ({"contents": [_user({"inlineData": "AA"})]}, "contents[0].parts[0].inlineData", "invalid_type"),
        ({"contents": [_user({"fileData": {"mimeType": "image/png"}})]}, "contents[0].parts[0].fileData.fileUri", None),
        ({"contents": [_model({"functionCall": {"args": {}}})]}, "contents[0].parts[0].functionCall.name", None),
        ({"contents": [_model({"functionCall": {"name": ""}})]}, "contents[0].parts[0].functionCall.name", None),
        (
            {"contents": [_model({"functionCall": {"name": "f", "args": "{}"}})]},
            "contents[0].parts[0].functionCall.args",
            "invalid_type",
        ),
        (
            {"contents": [_model({"functionCall": {"name": "f", "id": 3}})]},
            "contents[0].parts[0].functionCall.id",
            "invalid_type",
        ),
        (
            {"contents": [_user({"functionResponse": {"name": "f", "response": "ok"}})]},
            "contents[0].parts[0].functionResponse.response",
            "invalid_type",
        ),
        (
            {"contents": [_user({"functionResponse": {"name": "f", "parts": [{"text": "x"}]}})]},
            "contents[0].parts[0].functionResponse.parts[0]",
            None,
        ),
        ({"contents": [_model({"functionResponse": {"name": "f", "response": {}}})]}, "contents[0]", "invalid_value"),
        ({"contents": [_user({"functionCall": {"name": "f"}})]}, "contents[0]", "invalid_value"),
        ({"contents": [HI], "systemInstruction": "be nice"}, "systemInstruction", "invalid_type"),
        (
            {"contents": [HI], "systemInstruction": {"parts": [{"functionCall": {"name": "f"}}]}},
            "systemInstruction.parts[0]",
            None,
        ),
        ({"contents": [HI], "tools": {}}, "tools", "invalid_type"),
        ({"contents": [HI], "tools": [{"functionDeclarations": [{}]}]}, "tools[0].functionDeclarations[0].name", None),
        (
            {"contents": [HI], "tools": [{"functionDeclarations": [{"name": "f", "parameters": []}]}]},
            "tools[0].functionDeclarations[0].parameters",
            "invalid_type",
        ),
        (
            {"contents": [HI], "toolConfig": {"functionCallingConfig": {"mode": 1}}},
            "toolConfig.functionCallingConfig.mode",
            "invalid_type",
        ),
        ({"contents": [HI], "generationConfig": []}, "generationConfig", "invalid_type"),
        (
            {"contents": [HI], "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
            "invalid_type",
        ),
        ({"contents": [HI], "generationConfig": {"temperature": True}}, "generationConfig.temperature", "invalid_type"),
        ({"contents": [HI], "generationConfig": {"topK": 1.5}}, "generationConfig.topK", "invalid_type"),
        (
            {"contents": [HI], "generationConfig": {"maxOutputTokens": "9"}},
            "generationConfig.maxOutputTokens",
            "invalid_type",
        ),
        (
            {"contents": [HI], "generationConfig": {"stopSequences": "END"}},
            "generationConfig.stopSequences",
            "invalid_type",
        ),
        (
            {"contents": [HI], "generationConfig": {"stopSequences": [1]}},
            "generationConfig.stopSequences[0]",
            "invalid_type",
        ),
        (
            {"contents": [HI], "generationConfig": {"responseMimeType": "application/json", "responseSchema": "x"}},
            "generationConfig.responseSchema",
            "invalid_type",
        ),
        (
            {"contents": [HI], "generationConfig": {"thinkingConfig": {"thinkingBudget": "big"}}},
            "generationConfig.thinkingConfig.thinkingBudget",
            "invalid_type",
        ),
        (
            {"contents": [HI], "generationConfig": {"thinkingConfig": {"includeThoughts": 1}}},
            "generationConfig.thinkingConfig.includeThoughts",
            "invalid_type",
        ),
    ],
)
def test_bad_requests_name_the_param(body: dict[str, Any], param: str, code: str | None) -> None:
    with pytest.raises(InvalidRequest) as exc:
        gemini.parse_request(body)
    assert exc.value.param == param
    if code is not None:
        assert exc.value.code == code
    assert exc.value.message


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidRequest) as exc:
        gemini.parse_request([])
    assert exc.value.code == "invalid_type"


@pytest.mark.parametrize("kind", ["executableCode", "codeExecutionResult"])
def test_untranslatable_part_kinds_are_not_supported(kind: str) -> None:
    with pytest.raises(NotSupported) as exc:
        gemini.parse_request(_req(_model({kind: {}})))
    assert exc.value.param == "contents[0].parts[0]"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"candidates": {}}, "candidates"),
        ({"candidates": [{"content": {"parts": [{"text": 1}]}}]}, "candidates[0].content.parts[0].text"),
        ({"candidates": [{"finishReason": 1}]}, "candidates[0].finishReason"),
        ({"usageMetadata": {"promptTokenCount": "5"}}, "usageMetadata.promptTokenCount"),
        ({"usageMetadata": {"promptTokenCount": -1}}, "usageMetadata.promptTokenCount"),
        ({"modelVersion": 2}, "modelVersion"),
    ],
)
def test_bad_responses_name_the_param(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as exc:
        gemini.parse_response(body)
    if param is not None:
        assert exc.value.param == param


def test_a_tool_result_without_its_call_cannot_render() -> None:
    req = _chat(Message(Role.TOOL, (ToolResult("lost", (Text("x"),)),)))
    with pytest.raises(InvalidRequest) as exc:
        gemini.render_request(req)
    assert exc.value.param == "messages[0]" and "lost" in exc.value.message


@pytest.mark.parametrize("arguments", ["{bad", "[1,2]", '"text"'])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        gemini.render_request(_chat(_assistant(ToolCall("c", "f", arguments))))
    assert exc.value.param == "messages[0].parts[0].arguments"


def test_an_image_needs_a_url_or_data() -> None:
    with pytest.raises(InvalidRequest):
        gemini.render_request(_chat(Message(Role.USER, (Image(),))))
