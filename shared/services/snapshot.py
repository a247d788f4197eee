"""Build the in-process configuration snapshot from stored records, and keep it fresh.

Locally the admin API runs in the same process and calls `invalidate()` after each change, so the snapshot
is always current. In the cloud the gateway and admin are different functions, and a gateway instance
bounds how old its copy may be (see `ConfigCache`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import anyio.to_thread

from shared.domain.budgets import parse_budget
from shared.domain.combos import Alias, Combo, FallbackChain, parse_alias, parse_combo, parse_fallback
from shared.domain.config import (
    ApiKey,
    ConfigSnapshot,
    Connection,
    CustomModel,
    GatewaySettings,
    Kind,
    ProviderNode,
    Record,
)
from shared.domain.oauth import OAuthAccount, OAuthTokens, account_from_data
from shared.domain.quota import parse_quota_rules
from shared.domain.routing import RateLimit
from shared.errors import GatewayBusy, GatewayError
from shared.ports import Cipher, ConfigStore, DecryptionFailed
from shared.services.admin_pricing import price_table

log = logging.getLogger(__name__)
T = TypeVar("T")


def secret_context(kind: str, id: str) -> dict[str, str]:
    """Encryption context of a stored secret: the record it belongs to."""
    return {"kind": kind, "id": id}


def oauth_account(record: Record, cipher: Cipher) -> OAuthAccount:
    """A linked account from its `oauth` record; `tokens` is None when the secret does not decrypt."""
    tokens: OAuthTokens | None = None
    secret = record.data.get("secret")
    if isinstance(secret, str):
        try:
            tokens = OAuthTokens.from_json(cipher.decrypt(secret, secret_context(Kind.OAUTH, record.id)))
        except (DecryptionFailed, ValueError):
            log.error("the stored OAuth tokens of connection %s cannot be decrypted; link it again", record.id)
    return account_from_data(record.data, tokens)


def _limit(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def rate_limit(value: object) -> RateLimit:
    """A connection's stored `rateLimit` (`{rpm?, minGapMs?, maxConcurrent?}`); anything unusable is no limit."""
    if not isinstance(value, Mapping):
        return RateLimit()
    return RateLimit(
        rpm=_limit(value.get("rpm")),
        min_gap_ms=_limit(value.get("minGapMs")),
        max_concurrent=_limit(value.get("maxConcurrent")),
    )


def _stored(parse: Callable[[Any], T], value: object, default: T, what: str) -> T:
    """A stored sub-document parsed, or `default` when absent; one that no longer parses (written by hand,
    an older backup) is left out with a log line rather than failing every request."""
    if value is None:
        return default
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        log.error("stored %s is skipped, it does not parse: %s", what, exc)
        return default


def _routing_record(r: Record) -> Combo | Alias | FallbackChain | None:
    """A combo, alias or fallback chain record as the core sees it; one that does not parse (written by
    hand, restored from an older backup) is left out with a log line rather than failing every request."""
    try:
        if r.kind == Kind.COMBO:
            return parse_combo(r.id, r.data)
        if r.kind == Kind.ALIAS:
            return parse_alias(r.id, r.data)
        return parse_fallback(r.id, r.data)
    except (GatewayError, TypeError, ValueError) as exc:
        log.error("stored %s %r is skipped, it does not parse: %s", r.kind, r.id, exc)
        return None


def build_snapshot(records: Iterable[Record], cipher: Cipher) -> ConfigSnapshot:
    records = list(records)
    conns: list[Connection] = []
    nodes: list[ProviderNode] = []
    models: list[CustomModel] = []
    keys: list[ApiKey] = []
    combos: list[Combo] = []
    aliases: list[Alias] = []
    fallbacks: list[FallbackChain] = []
    settings = GatewaySettings()
    linked = {r.id: r for r in records if r.kind == Kind.OAUTH}
    for r in records:
        d = r.data
        if r.kind == Kind.PROVIDER:
            secret = d.get("apiKey")
            api_key, broken = None, False
            account: OAuthAccount | None = None
            if isinstance(secret, str):
                try:
                    api_key = cipher.decrypt(secret, secret_context(r.kind, r.id))
                except DecryptionFailed:
                    broken = True
                    log.error("the stored key of connection %s cannot be decrypted; re-enter it", r.id)
            elif r.id in linked:
                account = oauth_account(linked[r.id], cipher)
                api_key = account.tokens.access_token if account.tokens is not None else None
                broken = account.tokens is None
            conns.append(
                Connection(
                    id=r.id,
                    provider=str(d["provider"]),
                    name=str(d.get("name") or r.id),
                    api_key=api_key,
                    base_url=d.get("baseUrl") or None,
                    priority=int(d.get("priority") or 0),
                    enabled=bool(d.get("enabled", True)),
                    default_model=d.get("defaultModel") or None,
                    rate_limit=rate_limit(d.get("rateLimit")),
                    quotas=_stored(parse_quota_rules, d.get("quotas"), (), f"quotas of connection {r.id}"),
                    credential_error=broken,
                    oauth=account,
                )
            )
        elif r.kind == Kind.NODE:
            nodes.append(
                ProviderNode(
                    id=r.id,
                    name=str(d.get("name") or r.id),
                    prefix=str(d["prefix"]),
                    base_url=str(d["baseUrl"]),
                    api_type=str(d.get("apiType") or "openai"),
                )
            )
        elif r.kind == Kind.MODEL:
            models.append(
                CustomModel(provider=str(d["provider"]), model_id=str(d["modelId"]), name=str(d.get("name") or ""))
            )
        elif r.kind == Kind.APIKEY:
            keys.append(
                ApiKey(
                    id=r.id,
                    name=str(d.get("name") or ""),
                    key_hash=str(d["keyHash"]),
                    display=str(d.get("display") or ""),
                    created_at=str(d.get("createdAt") or r.updated_at),
                    enabled=bool(d.get("enabled", True)),
                    budget=_stored(parse_budget, d.get("budget"), None, f"budget of key {r.id}"),
                )
            )
        elif r.kind == Kind.SETTINGS:
            settings = GatewaySettings.from_data(d)
        elif r.kind in (Kind.COMBO, Kind.ALIAS, Kind.FALLBACK):
            item = _routing_record(r)
            if isinstance(item, Combo):
                combos.append(item)
            elif isinstance(item, Alias):
                aliases.append(item)
            elif isinstance(item, FallbackChain):
                fallbacks.append(item)
    return ConfigSnapshot.build(
        prices=price_table(r for r in records if r.kind == Kind.PRICE),
        connections=conns,
        nodes=nodes,
        models=models,
        api_keys=keys,
        settings=settings,
        combos=combos,
        aliases=aliases,
        fallbacks=fallbacks,
    )


class ConfigCache:
    """Holds the current snapshot. `current()` is a dictionary read on the hot path.

    Locally (`ttl=None`) the admin API shares the process and calls `invalidate()`, so the copy never
    expires. With a TTL (the cloud):
    - younger than `ttl`: served as is;
    - up to `2 * ttl`: still served, while one background task reloads it (stale-while-revalidate), so a
      busy instance never makes a request wait for the store;
    - older (an instance that sat idle, or was frozen between invocations): the request waits for a
      reload, so a revoked key or removed connection never outlives `2 * ttl` of activity;
    - if that reload fails, the old copy is served up to `max_stale` seconds, then the gateway answers 503
      rather than act on configuration it cannot confirm.
    """

    def __init__(self, store: ConfigStore, cipher: Cipher, *, ttl: float | None, max_stale: float = 3600.0) -> None:
        self._store = store
        self._cipher = cipher
        self._ttl = ttl
        self._max_stale = max_stale
        self._snapshot: ConfigSnapshot | None = None
        self._loaded_at = 0.0
        self._load_lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._reload_lock = threading.Lock()

    @property
    def snapshot(self) -> ConfigSnapshot:
        """The copy loaded last, without any freshness check (startup messages, local mode)."""
        if self._snapshot is None:
            return self.reload()
        return self._snapshot

    async def current(self) -> ConfigSnapshot:
        snapshot = self._snapshot
        if snapshot is not None:
            if self._ttl is None:
                return snapshot
            age = time.monotonic() - self._loaded_at
            if age < self._ttl:
                return snapshot
            if age < 2 * self._ttl:
                if self._refresh is None or self._refresh.done():
                    self._refresh = asyncio.create_task(self._reload_in_background())
                return snapshot
        return await self._load_now()

    async def _load_now(self) -> ConfigSnapshot:
        async with self._load_lock:  # single flight: concurrent callers share one reload
            snapshot = self._snapshot
            if snapshot is not None and (self._ttl is None or time.monotonic() - self._loaded_at < self._ttl):
                return snapshot  # another caller just reloaded
            try:
                return await anyio.to_thread.run_sync(self.reload)
            except Exception as exc:
                if snapshot is not None and time.monotonic() - self._loaded_at < self._max_stale:
                    log.exception("configuration reload failed; serving the previous snapshot")
                    return snapshot
                raise GatewayBusy(
                    "The gateway cannot read its configuration right now; retry shortly.",
                    code="config_unavailable",
                    retry_after=5,
                ) from exc

    async def _reload_in_background(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.reload)
        except Exception:
            # Keep serving the last good configuration; the next request past the TTL tries again.
            log.exception("configuration reload failed; serving the previous snapshot")

    def reload(self) -> ConfigSnapshot:
        # One reload at a time: each reads the store as it is when it starts, so the last one to finish
        # always holds every change that completed before it; two racing reloads could otherwise leave
        # the older read in place (locally the copy never expires, so it would stay).
        with self._reload_lock:
            snapshot = build_snapshot(self._store.list_all(), self._cipher)
            self._snapshot = snapshot
            self._loaded_at = time.monotonic()
            return snapshot

    def invalidate(self) -> None:
        """Called after a configuration change in this process: rebuild now, so the next request sees it."""
        self.reload()
