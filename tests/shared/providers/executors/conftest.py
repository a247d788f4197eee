"""Fixtures of the executor tests: a real upstream client and the chat service on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.adapters.upstream import HttpxUpstream
from shared.services.chat import ChatService


@pytest.fixture
async def upstream() -> AsyncIterator[HttpxUpstream]:
    client = HttpxUpstream(connect_timeout=2.0, read_timeout=5.0)
    yield client
    await client.aclose()


@pytest.fixture
def chat(upstream: HttpxUpstream) -> ChatService:
    return ChatService(upstream)
