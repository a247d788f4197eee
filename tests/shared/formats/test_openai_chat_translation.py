"""OpenAI answers for strictly typed clients."""

from __future__ import annotations

from shared.formats.openai_chat import sanitise_response

STANDARD = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "logprobs": None, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_a_standard_answer_is_left_alone() -> None:
    assert sanitise_response(STANDARD) is None
    with_reasoning = {**STANDARD, "choices": [{**STANDARD["choices"][0], "message": {
        "role": "assistant", "content": "hi", "reasoning_content": "because"}}]}  # fmt: skip
    assert sanitise_response(with_reasoning) is None


def test_vendor_extras_are_removed_everywhere() -> None:
    groq = {
        **STANDARD,
        "x_groq": {"id": "req_1"},
        "usage": {**STANDARD["usage"], "queue_time": 0.1, "usage_breakdown": {}},
        "choices": [{**STANDARD["choices"][0], "stop_reason": None, "message": {"role": "assistant", "content": "hi",
                     "executed_tools": []}}],
    }  # fmt: skip
    assert sanitise_response(groq) == STANDARD
    assert "x_groq" in groq  # the caller's document is not modified
