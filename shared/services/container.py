"""The services one process uses, built by an entry point's composition root and passed to its apps."""

from __future__ import annotations

from dataclasses import dataclass

from shared.ports import UpstreamClient
from shared.services.admin import ConfigService
from shared.services.chat import ChatService
from shared.services.snapshot import ConfigCache
from shared.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    config: ConfigCache
    admin: ConfigService
    chat: ChatService
    upstream: UpstreamClient
    admin_token: str | None = None

    async def aclose(self) -> None:
        await self.upstream.aclose()
