"""What the opt-in request log keeps: secrets removed, payloads summarised, sizes bounded
(shared/domain/redact.py)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.redact import MAX_DEPTH, REDACTED, redact, redact_text

OPENAI_KEY = "sk-proj-abcdefghijklmnopqrstuvwx"
ANTHROPIC_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwx"
GOOGLE_KEY = "AIza" + "B" * 35
GITHUB_TOKEN = "ghu_" + "a1B2c3D4e5" * 3 + "f6G7h8"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    "key", ["api_key", "apiKey", "x-api-key", "Authorization", "password", "refresh_token", "client_secret", "Cookie"]
)
def test_string_values_under_secret_keys_are_redacted(key: str) -> None:
    assert redact({key: "hunter2", "model": "gpt-4o"}) == {key: REDACTED, "model": "gpt-4o"}


def test_token_counts_are_not_secrets() -> None:
    body = {"max_tokens": 1024, "max_completion_tokens": 64, "usage": {"input_tokens": 5, "output_tokens": 7}}
    assert redact(body) == body


def test_secret_keys_are_found_at_any_depth() -> None:
    body = {"headers": [{"authorization": "Bearer x"}], "extra": {"nested": {"password": "p"}}}
    assert redact(body) == {"headers": [{"authorization": REDACTED}], "extra": {"nested": {"password": REDACTED}}}


@pytest.mark.parametrize("secret", [OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, GITHUB_TOKEN, JWT, "Bearer " + "t0k3n" * 4])
def test_credential_shaped_text_is_masked_inside_a_string(secret: str) -> None:
    assert redact_text(f"please use {secret} for this") == f"please use {REDACTED} for this"
    assert redact({"messages": [{"role": "user", "content": f"key={secret}"}]}) == {
        "messages": [{"role": "user", "content": f"key={REDACTED}"}]
    }


def test_short_look_alikes_are_kept() -> None:
    text = "sk-short, ghu_abc, AIzaShort, Bearer abc, eyJ.x.y"
    assert redact_text(text) == text


def test_a_data_url_becomes_a_note_of_its_size() -> None:
    url = "data:image/png;base64," + "A" * 1000
    assert redact_text(url) == f"[image/png data, {len(url)} characters]"
    part = {"type": "image_url", "image_url": {"url": url}}
    assert redact(part)["image_url"]["url"] == "[image/png data, 1022 characters]"


def test_long_strings_are_cut_at_two_thousand_characters() -> None:
    assert redact_text("a" * 2000) == "a" * 2000
    assert redact_text("a" * 2500) == "a" * 2000 + "… [500 more characters]"


def test_masking_happens_before_cutting() -> None:
    text = OPENAI_KEY + " " + "b" * 2100
    assert (
        redact_text(text)
        == (REDACTED + " " + "b" * 2100)[:2000] + f"… [{len(REDACTED) + 1 + 2100 - 2000} more characters]"
    )


def test_lists_keep_two_hundred_items_and_say_how_many_more() -> None:
    assert redact(list(range(200))) == list(range(200))
    assert redact(list(range(205))) == [*range(200), "… 5 more items"]
    assert redact(("a", OPENAI_KEY)) == ["a", REDACTED]


def test_dicts_keep_two_hundred_keys_and_say_how_many_more() -> None:
    data = {f"k{i:03d}": i for i in range(203)}
    out = redact(data)
    assert list(out)[:200] == [f"k{i:03d}" for i in range(200)]
    assert out["…"] == "3 more keys"
    assert len(out) == 201


def test_nesting_deeper_than_the_limit_is_cut() -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH + 2):
        value = {"a": value}
    out = redact(value)
    for _ in range(MAX_DEPTH + 1):
        out = out["a"]
    assert out == "[nested too deep]"
    shallow: Any = "leaf"
    for _ in range(MAX_DEPTH):
        shallow = {"a": shallow}
    assert redact(shallow) == shallow


def test_other_values_pass_through() -> None:
    assert redact({"n": 1, "f": 0.5, "b": True, "none": None}) == {"n": 1, "f": 0.5, "b": True, "none": None}
