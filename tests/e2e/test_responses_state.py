"""Responses clients that rely on server state, through an upstream that keeps none (OpenAI Chat): the
gateway stores each answer's conversation and rebuilds it for `previous_response_id` and `item_reference`."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.harness import Gateway


@pytest.fixture
def client(gateway: Gateway) -> Any:
    with openai.OpenAI(base_url=gateway.v1, api_key="placeholder", max_retries=0) as c:
        yield c


def test_previous_response_id_continues_the_conversation(client: openai.OpenAI, fake_state: Any) -> None:
    first = client.responses.create(model="fake/gpt-4o-mini", instructions="Be brief.", input="My name is Ada.")
    second = client.responses.create(model="fake/gpt-4o-mini", input="What is my name?", previous_response_id=first.id)
    assert second.output_text == "Hello from fake-openai: What is my name?"
    sent = fake_state.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]  # instructions are not carried over
    assert sent[0]["content"] == "My name is Ada." and sent[1]["content"] == first.output_text


def test_streamed_answers_are_stored_too(client: openai.OpenAI, fake_state: Any) -> None:
    with client.responses.stream(model="fake/gpt-4o-mini", input="Remember 42.") as stream:
        first = stream.get_final_response()
    client.responses.create(model="fake/gpt-4o-mini", input="Which number?", previous_response_id=first.id)
    assert fake_state.requests[-1]["body"]["messages"][0]["content"] == "Remember 42."


def test_item_reference_resolves_to_the_item_the_gateway_returned(client: openai.OpenAI, fake_state: Any) -> None:
    first = client.responses.create(model="fake/gpt-4o-mini", input="Say something.")
    message_id = first.output[-1].id
    client.responses.create(
        model="fake/gpt-4o-mini",
        input=[{"type": "item_reference", "id": message_id}, {"role": "user", "content": "And again?"}],
    )
    sent = fake_state.requests[-1]["body"]["messages"]
    assert sent[0] == {"role": "assistant", "content": first.output_text}


def test_unknown_or_unstored_answers_are_a_clear_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="fake/gpt-4o-mini", input="x", previous_response_id="resp_nowhere")
    assert err.value.code == "previous_response_not_found"
    unstored = client.responses.create(model="fake/gpt-4o-mini", input="secret", store=False)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="fake/gpt-4o-mini", input="x", previous_response_id=unstored.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="fake/gpt-4o-mini", input=[{"type": "item_reference", "id": "msg_nowhere_0"}])
