"""Small JSON documents the gateway keeps between requests, in the State table: pk = `<prefix><id>`,
zlib-compressed JSON, with an expiry the reads check themselves (DynamoDB's TTL deletes late).

Two uses, each with its own key prefix (the gateway's IAM policy allows exactly these): `RESP#` for
Responses conversations (`previous_response_id`, `item_reference` with upstreams that keep no state) and
`REASON#` for the signed reasoning before a tool call (restored when a client returns the call without it).
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import orjson
from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

MAX_STORED = 350_000  # bytes after compression; a DynamoDB item holds at most 400 KB


class _ConversationItem(Model):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = BinaryAttribute(legacy_encoding=False)
    expires_at = NumberAttribute()


def bind_conversation_model(table_name: str, region: str, host: str | None) -> type[_ConversationItem]:
    meta = type("Meta", (), {"table_name": table_name, "region": region, "host": host, "max_retry_attempts": 3})
    return type("ConversationItem", (_ConversationItem,), {"Meta": meta, "__module__": __name__})


class ConversationTooLarge(Exception):
    pass


class DynamoConversationStore:
    def __init__(self, model: type[_ConversationItem], prefix: str = "RESP#") -> None:
        self._model = model
        self._prefix = prefix

    def save(self, response_id: str, conversation: dict[str, Any], ttl_seconds: int) -> None:
        blob = zlib.compress(orjson.dumps(conversation), 6)
        if len(blob) > MAX_STORED:
            raise ConversationTooLarge(f"{len(blob)} bytes compressed")
        expires_at = int(time.time()) + ttl_seconds
        self._model(self._prefix + response_id, "conversation", data=blob, expires_at=expires_at).save()

    def load(self, response_id: str) -> dict[str, Any] | None:
        try:
            item = self._model.get(self._prefix + response_id, "conversation", consistent_read=True)
        except self._model.DoesNotExist:
            return None
        if item.expires_at < time.time():
            return None
        loaded: dict[str, Any] = orjson.loads(zlib.decompress(item.data))
        return loaded
