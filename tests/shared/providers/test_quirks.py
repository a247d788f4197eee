"""Role rules for OpenAI-format upstreams other than OpenAI, and for models without system messages."""

from __future__ import annotations

from typing import Any

from shared.providers.quirks import normalise_openai_roles

BODY: Any = {
    "model": "m",
    "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ],
}


def test_developer_becomes_system_for_everyone_but_openai() -> None:
    assert normalise_openai_roles(BODY, "deepseek", "deepseek-chat")["messages"][0]["role"] == "system"
    assert normalise_openai_roles(BODY, "openai", "gpt-5") is BODY  # untouched, not even copied
    assert BODY["messages"][0]["role"] == "developer"  # the caller's body is never modified


def test_models_without_system_messages_get_it_in_the_first_user_turn() -> None:
    out = normalise_openai_roles(BODY, "openrouter", "google/gemma-3-27b-it")
    assert out["messages"] == [{"role": "user", "content": "Be brief.\n\nhi"}]
    parts = {"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": [
        {"type": "text", "text": "x"}]}]}  # fmt: skip
    assert normalise_openai_roles(parts, "zhipu", "glm-4.6")["messages"][0]["content"][0] == {
        "type": "text",
        "text": "S",
    }


def test_a_plain_body_is_returned_as_is() -> None:
    plain = {"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}]}
    assert normalise_openai_roles(plain, "groq", "llama-3.3-70b") is plain
