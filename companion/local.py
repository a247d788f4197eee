"""Local mode's composition root: embedded DynamoDB, usage and budget spend in SQLite, AES-GCM key file,
gateway + admin in one ASGI app."""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import stat
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.adapters.crypto import AesGcmCipher, KeyFileError
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model, restore_records
from shared.adapters.dynamo.conversations import DynamoConversationStore, bind_conversation_model
from shared.adapters.dynamo.embedded import Backend, EmbeddedDynamo, LockedConfigStore, SnapshotError, read_snapshot
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.spend import DynamoSpendStore
from shared.adapters.dynamo.usage_store import DynamoUsageStore
from shared.adapters.sqlite_usage import SqliteSpendStore, SqliteUsageStore, UsageFileError
from shared.domain.config import Kind, Record
from shared.services.container import Services, assemble
from shared.services.quota_poll import poll_quotas_every
from shared.services.rollup import UsageRollup, roll_up_hourly
from shared.services.snapshot import ConfigCache
from shared.services.token_refresh import refresh_tokens_every
from shared.settings import Settings

ADMIN_TOKEN_FILE = "admin-token"
KEY_FILE = "secret.key"
SNAPSHOT_FILE = "config.json"
LOCK_FILE = "serve.lock"
USAGE_FILE = "usage.sqlite3"  # moto keeps nothing on disk: usage and budget spend must survive a restart


class StartupError(Exception):
    """Local mode cannot start safely; the message says what the owner should do."""


def prepare_data_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, stat.S_IRWXU)  # 0700: it holds the encryption key and the admin token


def lock_data_dir(path: Path) -> int:
    """One `serve` per data dir: two would each keep their own copy and overwrite each other's snapshot.

    The lock is an flock on `serve.lock`, released by the kernel however the process ends (kill -9 too).
    """
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StartupError(
            f"{path} is in use by another `omniroute serve` (pid {holder}); stop it, or use another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def open_cipher(data_dir: Path, records: list[Record], *, new_key: bool) -> AesGcmCipher:
    """The credential key. A missing key file is only created when nothing was encrypted with a previous one
    (or the owner says so): a fresh key would silently make every stored API key unreadable."""
    path = data_dir / KEY_FILE
    sealed = [r.id for r in records if r.kind == Kind.PROVIDER and isinstance(r.data.get("apiKey"), str)]
    linked = [r.id for r in records if r.kind == Kind.OAUTH and isinstance(r.data.get("secret"), str)]
    if not path.exists() and (sealed or linked) and not new_key:
        raise StartupError(
            f"{path} is missing, but {SNAPSHOT_FILE} holds {len(sealed)} API key(s) and {len(linked)} linked "
            f"account(s) encrypted with it. Restore secret.key from a backup of {data_dir}, or start once with "
            "--new-secret-key to continue with a new key, then send those keys again (PATCH /api/providers/<id>) "
            "and link those accounts again (omniroute login <provider> --relink <id>)."
        )
    try:
        return AesGcmCipher.from_key_file(path)
    except KeyFileError as exc:
        if not new_key:
            raise StartupError(
                f"{exc}. Restore secret.key from a backup, or start once with --new-secret-key (the unreadable "
                "file is kept beside it) and send the stored API keys again."
            ) from exc
    kept = path.with_name(f"{KEY_FILE}.unreadable-{int(time.time())}")
    os.replace(path, kept)
    return AesGcmCipher.from_key_file(path)


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
    lock_fd: int
    usage_files: tuple[SqliteUsageStore, SqliteSpendStore] | None = None

    def stop(self) -> None:
        self.dynamo.stop()
        for store in self.usage_files or ():
            store.close()
        os.close(self.lock_fd)

    def unreadable_connections(self) -> list[str]:
        return [c.id for c in self.services.config.snapshot.connections if c.credential_error]


def build_local(settings: Settings, backend: Backend = "inprocess", *, new_secret_key: bool = False) -> LocalRuntime:
    prepare_data_dir(settings.data_dir)
    lock_fd = lock_data_dir(settings.data_dir)
    try:
        return _build(settings, backend, new_secret_key, lock_fd)
    except BaseException:
        os.close(lock_fd)
        raise


def _build(settings: Settings, backend: Backend, new_secret_key: bool, lock_fd: int) -> LocalRuntime:
    token, is_new = admin_token(settings)
    snapshot_path = settings.data_dir / SNAPSHOT_FILE
    try:
        records = read_snapshot(snapshot_path)  # fails loudly on a corrupt file before anything is overwritten
    except SnapshotError as exc:
        raise StartupError(str(exc)) from exc
    cipher = open_cipher(settings.data_dir, records, new_key=new_secret_key)
    try:
        usage_store = SqliteUsageStore(settings.data_dir / USAGE_FILE)
        spend_store = SqliteSpendStore(settings.data_dir / USAGE_FILE)
    except UsageFileError as exc:
        raise StartupError(str(exc)) from exc
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
    cache = ConfigCache(store, cipher, ttl=None)
    cache.reload()
    state_model = bind_conversation_model(settings.state_table, settings.region, dynamo.endpoint)
    # moto's in-process backend is not atomic across threads (DESIGN §7): one lock for its writes
    lock = threading.Lock() if backend == "inprocess" else None
    routing_store = DynamoRoutingStore(settings.state_table, settings.region, dynamo.endpoint, lock=lock)
    on_sqlite = settings.local_usage_store == "sqlite"
    services = assemble(
        settings,
        store,
        cipher,
        cache,
        on_change=cache.invalidate,
        admin_token=token,
        conversations=DynamoConversationStore(state_model),
        reasoning=DynamoConversationStore(state_model, prefix="REASON#"),
        routing_store=routing_store,
        **(
            {"usage_store": usage_store, "spend_store": spend_store}
            if on_sqlite
            else {  # as in the cloud (bench/usage.py counts its DynamoDB calls this way)
                "usage_store": DynamoUsageStore(settings.usage_table, settings.region, dynamo.endpoint, lock=lock),
                "spend_store": DynamoSpendStore(routing_store.items),
            }
        ),
        local_stores=on_sqlite,
    )
    return LocalRuntime(
        services=services, dynamo=dynamo, token_is_new=is_new, lock_fd=lock_fd, usage_files=(usage_store, spend_store)
    )


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
        jobs: list[asyncio.Task[None]] = []
        while True:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                jobs = [asyncio.ensure_future(job) for job in self._scheduled_jobs()]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for job in jobs:
                    job.cancel()
                await self.services.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _scheduled_jobs(self) -> list[Coroutine[Any, Any, None]]:
        """No scheduler locally: the server rolls usage up hourly, polls quota endpoints and refreshes linked
        accounts' tokens (every minute) itself."""
        services = self.services
        jobs: list[Coroutine[Any, Any, None]] = []
        if services.usage is not None:
            jobs.append(roll_up_hourly(UsageRollup(services.usage, time.time), time.time))
        if services.routing_store is not None:
            config = services.config
            jobs.append(
                poll_quotas_every(lambda: config.snapshot, services.upstream, services.routing_store, time.time)
            )
        if services.refresher is not None:
            jobs.append(refresh_tokens_every(services.refresher, time.time))
        return jobs


def create_local_app(services: Services) -> LocalApp:
    from functions.admin.app import create_app as create_admin_app
    from functions.gateway.app import create_app as create_gateway_app

    return LocalApp(create_gateway_app(services), create_admin_app(services), services)
