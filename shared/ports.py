"""Protocols the core needs from the outside world. Adapters in `shared.adapters` implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from shared.domain.config import Record
from shared.domain.quota import AccountQuota
from shared.domain.routing import Admission, BreakerState, Claim, Cooldown, Policy, RateLimit, RoutingView, StoredReply
from shared.domain.usage import UsageEvent, UsageTotals


class ConfigStore(Protocol):
    """Durable configuration records (the Config table). Synchronous: callers run it off the event loop."""

    def list_all(self) -> list[Record]: ...

    def list(self, kind: str) -> list[Record]: ...

    def get(self, kind: str, id: str) -> Record | None: ...

    def create(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        """Store a new record; raises `Conflict` if one with that id exists."""
        ...

    def update(self, kind: str, id: str, data: Mapping[str, Any], expected_version: int) -> Record:
        """Replace a record's data; raises `Conflict` on a stale version and `NotFound` if it is gone."""
        ...

    def put(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        """Create or replace unconditionally (single documents such as settings)."""
        ...

    def delete(self, kind: str, id: str) -> bool: ...


class DecryptionFailed(Exception):
    """A stored secret does not decrypt: the key is not the one it was sealed with, or the record moved."""


class Cipher(Protocol):
    """Encrypts stored credentials. `context` names the record, so a ciphertext moved to another record fails.

    `decrypt` raises `DecryptionFailed` for a ciphertext it cannot open.
    """

    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str: ...

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str: ...


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    """Sends one HTTP request upstream and returns as soon as the status line and headers arrived."""

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        stream: bool,
        read_timeout: float | None = None,
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class ConversationStore(Protocol):
    """Stored Responses conversations by response id (State table). Synchronous, like ConfigStore."""

    def save(self, response_id: str, conversation: dict[str, Any], ttl_seconds: int) -> None: ...

    def load(self, response_id: str) -> dict[str, Any] | None: ...


class RoutingStore(Protocol):
    """Routing state shared by every gateway instance (State table). Synchronous, like ConfigStore; every
    method is one DynamoDB call unless it says otherwise, and every write is atomic (conditional or `ADD`),
    so concurrent instances never lose an update. Times are epoch seconds passed in by the caller (`now`),
    compared in the write conditions too, because TTL deletes expired items late.
    """

    def load(self, now: float) -> RoutingView:
        """Breakers, cooldowns (only those still active at `now`) and use counters: one Query."""
        ...

    # --- circuit breaker, one item per provider, every transition conditioned on the version read ---
    def record_failure(self, provider: str, now: float, threshold: int, reset_seconds: float) -> BreakerState:
        """Count one failure. The call whose count reaches `threshold` on a closed breaker opens it (a
        versioned conditional write: exactly one opener). A failure while half-open is the probe's
        business (`finish_probe`). Returns the state as stored afterwards."""
        ...

    def record_success(self, provider: str) -> BreakerState:
        """Reset a closed breaker's failure count (the caller only calls when its copy shows failures)."""
        ...

    def try_probe(self, provider: str, owner: str, now: float, probe_seconds: float) -> bool:
        """Claim the single half-open probe: succeeds for exactly one caller when the breaker is open and
        `open_until <= now`, or half-open with a lapsed `probe_until`."""
        ...

    def finish_probe(self, provider: str, owner: str, ok: bool, now: float, reset_seconds: float) -> BreakerState:
        """A probe's result: any prober's success closes a half-open breaker; a failure opens it again for
        `reset_seconds`, only from the current owner (a stale owner's failure changes nothing)."""
        ...

    def reset_breaker(self, provider: str) -> None: ...

    # --- cooldowns of accounts and of one model of an account ---
    def mark_cooldown(
        self, connection_id: str, model: str | None, now: float, policy: Policy, hint: float | None, reason: str
    ) -> Cooldown:
        """Cool the account (or model) down: until = now + max(policy.cooldown(level), hint), level + 1.
        Anti-thundering-herd: when a cooldown is already active, it is returned untouched (no re-marking,
        no level raise), so N concurrent 429s raise the level once."""
        ...

    def clear_cooldown(self, connection_id: str, model: str | None, now: float) -> None:
        """After a success: the backoff level drops to 0, unless a cooldown is active at `now` (another
        instance cooled the account down after this request started: that decision stands)."""
        ...

    def reset_cooldowns(self, connection_id: str | None = None) -> int:
        """Remove all cooldowns (of one connection, or every one); returns how many. Admin reset."""
        ...

    # --- counters ---
    def advance_cursor(self, name: str, by: int) -> int:
        """Atomically add `by` to a round-robin cursor and return the new value (this caller owns the
        `by` positions before it)."""
        ...

    def add_uses(self, name: str, member: str, now: float, by: int = 1) -> None:
        """Count uses of a member (combo target, account) for least-used in the hour of `now`; `load` sees
        the current hour's counts, so a member added later catches up within the hour."""
        ...

    # --- global rate limits per key (an account, or a combo target) ---
    def acquire(self, key: str, now: float, limit: RateLimit, slot_id: str, slot_seconds: float) -> Admission:
        """Admit one request under `limit` or say when to retry. RPM: fixed one-minute windows; min gap:
        time since the last admitted request; concurrency: slots that lapse after `slot_seconds` so a
        crashed instance cannot leak them. At most one write per configured kind of limit."""
        ...

    def release(self, key: str, slot_id: str) -> None:
        """Give back a concurrency slot."""
        ...

    # --- idempotency (5 s claims, scoped per API key by the caller's `scope`) ---
    def claim(self, scope: str, owner: str, now: float, ttl: float) -> Claim:
        """Claim the key for `owner` (a token of the request) unless someone holds it unexpired."""
        ...

    def complete(self, scope: str, owner: str, reply: StoredReply, now: float, ttl: float) -> None:
        """Store the answer, only while `owner` still holds the claim (a claim that lapsed and was taken
        over belongs to the newer request); too large to store: the claim is dropped."""
        ...

    def abandon(self, scope: str, owner: str) -> None:
        """Drop `owner`'s claim after its request failed, so a retry is not refused."""
        ...

    # --- exact response cache ---
    def cache_get(self, key: str, now: float) -> StoredReply | None: ...

    def cache_put(self, key: str, reply: StoredReply, now: float, ttl: float) -> None: ...

    # --- latency histograms per provider per minute (bucket index → count), written with ADD ---
    def add_latency(self, minute: int, provider: str, buckets: Mapping[int, int]) -> None: ...

    def load_latency(self, since_minute: int) -> dict[str, dict[int, int]]:
        """Summed bucket counts per provider from `since_minute` on."""
        ...

    # --- quota windows of accounts (in the routing view, so routing skips an account at its limit) ---
    def put_quota(self, quota: AccountQuota) -> None:
        """Replace an account's live windows (read from an answer's headers or the provider's usage endpoint)."""
        ...

    def add_quota_use(
        self, connection_id: str, window: str, start: float, live_since: float, tokens: int, expires_at: float
    ) -> tuple[float, int, int]:
        """Count one request and its tokens in an account's configured window `window`, atomically: added
        to the stored count when the stored window started at or after `live_since` (still running), else
        the window restarts at `start` with this request. Returns (window start, tokens, requests) as stored."""
        ...


class UsageStore(Protocol):
    """The Usage table: one item per request, rollups per hour/day/month, opt-in request logs.
    Synchronous, like ConfigStore. Periods are UTC: hours `2026-11-22T10`, days `2026-11-22`, months `2026-11`."""

    def put_events(self, events: Sequence[UsageEvent], expires_at: float) -> None:
        """Store events (batched); a request id stored twice is one item (a retried write cannot count twice)."""
        ...

    def events(self, day: str, hour_prefix: str = "") -> list[UsageEvent]:
        """Every event of a UTC day (or of the hours starting with `hour_prefix`, e.g. `2026-11-22T10`)."""
        ...

    def recent_events(self, day: str, limit: int, before: str | None = None) -> tuple[list[UsageEvent], str | None]:
        """Up to `limit` events of one day, newest first, older than the position `before`; the position of
        the last one returned when more may follow."""
        ...

    def put_rollup(self, level: str, period: str, groups: Sequence[UsageTotals], expires_at: float | None) -> None:
        """Replace a period's rollup (`level` H, D or M) with `groups`: idempotent, groups gone are removed."""
        ...

    def rollup(self, level: str, period: str) -> list[UsageTotals] | None:
        """A period's groups, or None when it was never rolled up."""
        ...

    def hour_rollups(self, day: str) -> dict[str, list[UsageTotals]]:
        """The rolled-up hours of a UTC day (`"00"`..`"23"` → groups), in one call."""
        ...

    def put_log(self, at: float, request_id: str, entry: Mapping[str, Any], expires_at: float) -> None: ...

    def logs(self, day: str, limit: int, before: str | None = None) -> tuple[list[dict[str, Any]], str | None]: ...


class SpendStore(Protocol):
    """Budget counters per API key and period (State table), written with atomic `ADD`."""

    def add_spend(self, key_id: str, periods: Sequence[tuple[str, float]], usd: float) -> dict[str, float]:
        """Add `usd` to each (period id, expires_at) of the key; returns the stored totals by period id."""
        ...

    def spend(self, key_id: str, period_ids: Sequence[str]) -> dict[str, float]:
        """The key's totals for these periods, read consistently (absent: 0)."""
        ...


class QuotaSink(Protocol):
    """Where the scheduled quota poll keeps each account's latest windows (the State table's ROUTE partition,
    beside the cooldowns routing already reads). Synchronous, one store call: callers run it off the loop."""

    def put_quota(self, quota: AccountQuota) -> None: ...


class LeaseStore(Protocol):
    """Short exclusive leases shared by every instance (State table), e.g. "one refresher per account".

    Synchronous, like ConfigStore. A lease lapses at `now + seconds` on its own (a holder that crashed
    cannot keep it), and the expiry is compared in the write's condition: TTL deletes late.
    """

    def acquire(self, name: str, owner: str, now: float, seconds: float) -> bool:
        """Take the lease for `owner` until `now + seconds`: one conditional write that succeeds when nobody
        holds it or its holder's lease lapsed before `now`. False: someone else holds it."""
        ...

    def release(self, name: str, owner: str) -> bool:
        """Give the lease back, only if `owner` still holds it (a lapsed lease taken over stays with its new
        holder). True when it was deleted."""
        ...
