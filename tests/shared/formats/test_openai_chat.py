from typing import Any

import pytest

from shared.errors import InvalidRequest
from shared.formats.openai_chat import parse_json_object, usage_from_openai, validate_chat_request, wants_stream

OK: dict[str, Any] = {"model": "ds/deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}


def test_valid_request_passes() -> None:
    validate_chat_request({**OK, "stream": True, "temperature": 0, "max_tokens": 5, "tools": [{"type": "function"}]})


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"{bad", "invalid_json"), (b"", "invalid_json"), (b"[1,2]", "invalid_type"), (b'"s"', "invalid_type")],
)
def test_body_must_be_a_json_object(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_json_object(raw)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("patch", "param", "code"),
    [
        ({"model": None}, "model", "missing_required_parameter"),
        ({"model": 5}, "model", "invalid_type"),
        ({"messages": None}, "messages", "invalid_type"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": ["hi"]}, "messages[0]", "invalid_type"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"temperature": True}, "temperature", "invalid_type"),
        ({"max_tokens": 1.5}, "max_tokens", "invalid_type"),
        ({"tools": {}}, "tools", "invalid_type"),
        ({"tools": [1]}, "tools[0]", "invalid_type"),
        ({"tool_choice": 3}, "tool_choice", "invalid_type"),
    ],
)
def test_wrong_fields_name_the_param(patch: dict[str, Any], param: str, code: str) -> None:
    body = {**OK, **patch}
    if patch.get("model", 0) is None:
        del body["model"]
    with pytest.raises(InvalidRequest) as exc:
        validate_chat_request(body)
    assert (exc.value.param, exc.value.code) == (param, code)


def test_missing_messages_key() -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_chat_request({"model": "x"})
    assert exc.value.code == "missing_required_parameter"


def test_stream_flag_wins_over_accept_header() -> None:
    assert wants_stream({"stream": True}, None)
    assert not wants_stream({"stream": False}, "text/event-stream")
    assert wants_stream({}, "text/event-stream")
    assert not wants_stream({}, "application/json")


def test_usage_maps_cached_and_reasoning_details() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 10,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 3},
        }
    )
    assert usage is not None
    assert (usage.input, usage.output, usage.cached, usage.reasoning, usage.total) == (10, 7, 4, 3, 17)
    assert usage_from_openai(None) is None


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "n/a", "completion_tokens": [1]},
        {"prompt_tokens": True, "completion_tokens": -5, "prompt_tokens_details": "x"},
        {"prompt_tokens_details": {"cached_tokens": "lots"}, "completion_tokens_details": None},
    ],
)
def test_malformed_usage_counts_as_zero_instead_of_failing(usage: dict[str, Any]) -> None:
    got = usage_from_openai(usage)
    assert got is not None and got.total == 0 and got.cached == 0
