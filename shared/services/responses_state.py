"""Responses API state for upstreams that keep none (everything but a Responses upstream).

Clients of the Responses API may send only the new turn and name the previous answer
(`previous_response_id`), or point at earlier items (`item_reference`), expecting the server to remember.
The gateway keeps, per answer it gave, the conversation up to and including that answer (canonical
messages, without the instructions, which OpenAI does not carry over either) and the output items it
returned, for `ttl` seconds (30 days, as OpenAI keeps stored responses), unless the request said
`store: false`. A name it does not know is a clear 400/404 in the Responses error shape, never a silent
drop of the earlier turns.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import anyio.to_thread

from shared.errors import InvalidRequest, NotFound
from shared.formats.canonical import ChatRequest, ChatResponse, Message, Part, Role, message_from_json, to_json
from shared.ports import ConversationStore

log = logging.getLogger("omniroute.responses_state")

_EXT = "responses."
_ITEM_ID = re.compile(r"^(?:rs|msg|fc|ctc)_(.+)_(\d+)$")
DEFAULT_TTL = 30 * 86400


class ResponsesState:
    def __init__(self, store: ConversationStore, *, ttl_seconds: int = DEFAULT_TTL) -> None:
        self._store = store
        self._ttl = ttl_seconds

    async def _load(self, response_id: str) -> dict[str, Any] | None:
        return await anyio.to_thread.run_sync(self._store.load, response_id)

    async def resolve_item_references(self, body: dict[str, Any]) -> dict[str, Any]:
        """`item_reference` inputs replaced by the items they name (from answers this gateway stored)."""
        items = body.get("input")
        if not isinstance(items, list) or not any(
            isinstance(i, dict) and i.get("type") == "item_reference" for i in items
        ):
            return body
        resolved: list[Any] = []
        loaded: dict[str, dict[str, Any] | None] = {}  # one read per stored answer, however many items it gave
        for i, item in enumerate(items):
            if not (isinstance(item, dict) and item.get("type") == "item_reference"):
                resolved.append(item)
                continue
            item_id = str(item.get("id") or "")
            found = await self._find_item(item_id, loaded)
            if found is None:
                raise NotFound(
                    f"Item with id '{item_id}' not found. Items are only kept for answers stored by this gateway "
                    "(`store` not false) and for 30 days.",
                    param=f"input[{i}]",
                )
            resolved.append(found)
        return {**body, "input": resolved}

    async def _find_item(self, item_id: str, loaded: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
        match = _ITEM_ID.match(item_id)
        if match is None:
            return None
        for response_id in (f"resp_{match.group(1)}", match.group(1)):
            if response_id not in loaded:
                loaded[response_id] = await self._load(response_id)
            stored = loaded[response_id]
            if stored is not None:
                for item in stored.get("items", ()):
                    if isinstance(item, dict) and item.get("id") == item_id:
                        return item
        return None

    async def expand(self, request: ChatRequest) -> ChatRequest:
        """The request with the stored conversation of `previous_response_id` before its new input."""
        previous = request.extensions.get(_EXT + "previous_response_id")
        if not previous:
            return request
        stored = await self._load(str(previous))
        if stored is None:
            raise InvalidRequest(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = tuple(message_from_json(m) for m in stored.get("messages", ()))
        instructions = tuple(m for m in request.messages if m.role in (Role.SYSTEM, Role.DEVELOPER))
        rest = tuple(m for m in request.messages if m.role not in (Role.SYSTEM, Role.DEVELOPER))
        return replace(request, messages=(*instructions, *history, *rest))

    async def save(self, request: ChatRequest, answer: ChatResponse, output_items: list[Any]) -> None:
        """Keep the conversation this answer ends, unless the client asked not to (`store: false`)."""
        if request.extensions.get(_EXT + "store") is False or not answer.id:
            return
        kept: list[Part] = list(answer.parts)
        conversation = [m for m in request.messages if m.role not in (Role.SYSTEM, Role.DEVELOPER)]
        conversation.append(Message(Role.ASSISTANT, tuple(kept)))
        record = {"messages": [to_json(m) for m in conversation], "items": output_items}
        try:
            await anyio.to_thread.run_sync(self._store.save, answer.id, record, self._ttl)
        except Exception:
            # The answer itself is fine; only continuing it by id will not work. Say so in the log.
            log.exception("could not store response %s for previous_response_id", answer.id)


def stored_items(rendered: Mapping[str, Any]) -> list[Any]:
    output = rendered.get("output")
    return list(output) if isinstance(output, list) else []
