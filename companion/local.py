"""Local mode's composition root: embedded DynamoDB, AES-GCM key file, gateway + admin in one ASGI app."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model, restore_records
from shared.adapters.dynamo.embedded import Backend, EmbeddedDynamo, LockedConfigStore, read_snapshot
from shared.adapters.upstream import HttpxUpstream
from shared.services.admin import ConfigService
from shared.services.chat import ChatService
from shared.services.container import Services
from shared.services.snapshot import ConfigCache
from shared.settings import Settings

ADMIN_TOKEN_FILE = "admin-token"
KEY_FILE = "secret.key"
SNAPSHOT_FILE = "config.json"


def prepare_data_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, stat.S_IRWXU)  # 0700: it holds the encryption key and the admin token


def admin_token(settings: Settings) -> tuple[str, bool]:
    """(token, newly generated). The environment wins; otherwise a 0600 file in the data dir, made once."""
    if settings.admin_token:
        return settings.admin_token, False
    path = settings.data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    token = "omni-admin-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


@dataclass
class LocalRuntime:
    services: Services
    dynamo: EmbeddedDynamo
    token_is_new: bool

    def stop(self) -> None:
        self.dynamo.stop()


def build_local(settings: Settings, backend: Backend = "inprocess") -> LocalRuntime:
    prepare_data_dir(settings.data_dir)
    token, is_new = admin_token(settings)
    snapshot_path = settings.data_dir / SNAPSHOT_FILE
    records = read_snapshot(snapshot_path)  # fails loudly on a corrupt file before anything is overwritten
    names = {
        "ConfigTable": settings.config_table,
        "StateTable": settings.state_table,
        "UsageTable": settings.usage_table,
    }
    dynamo = EmbeddedDynamo(names, settings.region, backend)
    dynamo.start()
    model = bind_config_model(settings.config_table, settings.region, dynamo.endpoint)
    if records:
        restore_records(model, records)
    store = LockedConfigStore(DynamoConfigStore(model), snapshot_path)
    cipher = AesGcmCipher.from_key_file(settings.data_dir / KEY_FILE)
    cache = ConfigCache(store, cipher, ttl=None)
    cache.reload()
    upstream = HttpxUpstream(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=settings.upstream_max_connections,
    )
    services = Services(
        settings=settings,
        config=cache,
        admin=ConfigService(store, cipher, on_change=cache.invalidate),
        chat=ChatService(upstream),
        upstream=upstream,
        admin_token=token,
    )
    return LocalRuntime(services=services, dynamo=dynamo, token_is_new=is_new)


class LocalApp:
    """One ASGI app for local mode: `/api/*` goes to the admin app, everything else to the gateway."""

    def __init__(self, gateway: ASGIApp, admin: ASGIApp, services: Services) -> None:
        self.gateway = gateway
        self.admin = admin
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            await self.admin(scope, receive, send)
        else:
            await self.gateway(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.services.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_local_app(services: Services) -> LocalApp:
    from functions.admin.app import create_app as create_admin_app
    from functions.gateway.app import create_app as create_gateway_app

    return LocalApp(create_gateway_app(services), create_admin_app(services), services)
