"""Stored Responses conversations in the State table (built from template.yaml), on both moto backends."""

from __future__ import annotations

import base64
import os

import pytest

from shared.adapters.dynamo.conversations import (
    ConversationTooLarge,
    DynamoConversationStore,
    bind_conversation_model,
)
from tests.conftest import REGION


@pytest.fixture
def store(dynamo_endpoint: str | None, table_names: dict[str, str]) -> DynamoConversationStore:
    return DynamoConversationStore(bind_conversation_model(table_names["StateTable"], REGION, dynamo_endpoint))


def test_round_trip_and_unknown_ids(store: DynamoConversationStore) -> None:
    record = {"messages": [{"role": "user", "parts": [{"type": "text", "text": "hi ✓"}]}], "items": [{"id": "msg_1"}]}
    store.save("resp_1", record, 60)
    assert store.load("resp_1") == record
    assert store.load("resp_unknown") is None


def test_expired_records_are_not_returned_even_before_ttl_deletes_them(store: DynamoConversationStore) -> None:
    store.save("resp_old", {"messages": []}, -1)
    assert store.load("resp_old") is None


def test_oversized_conversations_are_refused_not_truncated(store: DynamoConversationStore) -> None:
    noise = base64.b64encode(os.urandom(400_000)).decode()  # compresses to more than an item may hold
    with pytest.raises(ConversationTooLarge):
        store.save("resp_big", {"messages": [noise]}, 60)
    assert store.load("resp_big") is None
