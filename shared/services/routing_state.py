"""The gateway's view of the global routing state, kept so the hot path reads memory, not the store.

- The view (breakers, cooldowns, use counters) is one Query, reloaded in the background at most every
  `refresh` seconds while requests keep coming; a request never waits for it.
- Every write returns the item as stored, and that answer goes into the view at once: an instance that
  sees a failure learns the global breaker state from its own write.
- Writes that only keep state tidy (a success resetting a failure count or a backoff level, use counts)
  run in the background; writes a decision depends on (opening a breaker, claiming the probe, a cooldown,
  a rate-limit slot, a cursor lease) are awaited.
- A store that fails never fails a request: the view stays as it was, and the failure is logged.

Round-robin cursors are leased in blocks (one atomic `ADD` per block): every position is used exactly
once across all instances, so the global distribution stays exact while an instance writes once per
block instead of once per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import anyio.to_thread

from shared.domain.config import Connection
from shared.domain.latency import bucket_of, merge
from shared.domain.quota import AccountQuota, LiveWindow, QuotaCount, counted_window
from shared.domain.routing import (
    Admission,
    BreakerPhase,
    BreakerState,
    Claim,
    Cooldown,
    Policy,
    RateLimit,
    RoutingView,
    StoredReply,
)
from shared.ports import RoutingStore

log = logging.getLogger("omniroute.routing")

T = TypeVar("T")

LATENCY_FLUSH_SECONDS = 30.0
QUOTA_REWRITE = 60.0  # an unchanged quota reading is written again at most this often


class _Lease:
    __slots__ = ("end", "next")

    def __init__(self) -> None:
        self.next = 0
        self.end = 0


class RoutingState:
    def __init__(
        self,
        store: RoutingStore | None,
        *,
        refresh: float = 2.0,
        clock: Callable[[], float] = time.time,
        instance_id: str = "",
    ) -> None:
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self.instance_id = instance_id
        self._view = RoutingView()
        self._generation = 0  # counts this instance's own changes to the view
        self._loading: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._leases: dict[str, _Lease] = {}
        self._lease_lock = asyncio.Lock()
        self._latency: dict[str, dict[int, int]] = {}
        self._latency_flushed = time.monotonic()
        self.store_errors = 0

    @property
    def enabled(self) -> bool:
        return self._store is not None

    def now(self) -> float:
        return self._clock()

    # ----- the view -------------------------------------------------------------------------------

    async def fresh(self, max_age: float) -> RoutingView:
        """The copy, reloaded first when it is older than `max_age` (an instance that sat idle or was frozen
        must not route on what it knew then); otherwise as `view()`."""
        if self._store is not None and self._clock() - self._view.loaded_at >= max_age:
            await self.reload()
        return self.view()

    def view(self) -> RoutingView:
        """The current copy; starts a background reload when it is older than `refresh`."""
        view = self._view
        stale = self._store is not None and self._clock() - view.loaded_at >= self._refresh
        if stale and (self._loading is None or self._loading.done()):
            self._loading = self.spawn(self.reload())
        return view

    async def reload(self) -> None:
        store = self._store
        if store is None:
            return
        now = self._clock()
        generation = self._generation
        try:
            view = await anyio.to_thread.run_sync(store.load, now)
        except Exception:
            self._failed("loading the routing state")
            self._view = replace(self._view, loaded_at=now)  # try again after `refresh`, not at once
            return
        if generation != self._generation:
            # A write of ours landed while the query ran: the query may predate it, and the write's answer
            # is newer. Keep the copy; the next refresh reads again.
            self._view = replace(self._view, loaded_at=now)
            return
        self._view = view

    def _set_breaker(self, state: BreakerState) -> None:
        self._generation += 1
        breakers = dict(self._view.breakers)
        breakers[state.provider] = state
        self._view = replace(self._view, breakers=breakers)

    def _set_cooldown(self, key: tuple[str, str | None], cooldown: Cooldown | None) -> None:
        self._generation += 1
        cooldowns = dict(self._view.cooldowns)
        if cooldown is None:
            cooldowns.pop(key, None)
        else:
            cooldowns[key] = cooldown
        self._view = replace(self._view, cooldowns=cooldowns)

    # ----- breaker ---------------------------------------------------------------------------------

    def _breaker(self, provider: str) -> BreakerState:
        return self._view.breakers.get(provider) or BreakerState(provider)

    async def record_failure(self, provider: str, policy: Policy) -> BreakerState:
        now = self._clock()
        stored = await self._call(
            "recording a failure", self._store.record_failure if self._store else None, provider, now,
            policy.breaker_threshold, policy.breaker_reset,
        )  # fmt: skip
        state = stored or self._breaker(provider).after_failure(now, policy.breaker_threshold, policy.breaker_reset)
        self._set_breaker(state)
        return state

    def record_success(self, provider: str) -> None:
        """A success on a closed breaker that shows failures: reset its count (in the background)."""
        state = self._view.breakers.get(provider)
        if state is None or state.phase is not BreakerPhase.CLOSED or state.failures == 0:
            return
        self._set_breaker(replace(state, failures=0))
        if self._store is not None:
            self.spawn(self._call("recording a success", self._store.record_success, provider))

    async def try_probe(self, provider: str, owner: str, probe_seconds: float) -> bool:
        now = self._clock()
        known = self._breaker(provider)
        won = await self._call(
            "claiming a probe", self._store.try_probe if self._store else None, provider, owner, now, probe_seconds
        )
        if won is None:  # no store, or it failed: this instance decides alone
            probing = known.with_probe(owner, now, probe_seconds)
            if probing is not None:
                self._set_breaker(probing)
            return probing is not None
        if won:
            self._set_breaker(
                replace(known, phase=BreakerPhase.HALF_OPEN, probe_owner=owner, probe_until=now + probe_seconds)
            )
        else:  # another instance probes: look again once its probe is decided
            self._set_breaker(replace(known, open_until=max(known.open_until, now + min(probe_seconds, 5.0))))
        return won

    async def finish_probe(self, provider: str, owner: str, ok: bool, policy: Policy) -> None:
        now = self._clock()
        stored = await self._call(
            "finishing a probe", self._store.finish_probe if self._store else None, provider, owner, ok, now,
            policy.breaker_reset,
        )  # fmt: skip
        self._set_breaker(stored or self._breaker(provider).after_probe(owner, ok, now, policy.breaker_reset))

    async def reset_breaker(self, provider: str) -> None:
        await self._call("resetting a breaker", self._store.reset_breaker if self._store else None, provider)
        breakers = dict(self._view.breakers)
        breakers.pop(provider, None)
        self._view = replace(self._view, breakers=breakers)

    # ----- cooldowns -------------------------------------------------------------------------------

    def cooldown(self, connection_id: str, model: str | None, now: float) -> Cooldown | None:
        """The active cooldown of an account, or of one model of it."""
        found = self._view.cooldowns.get((connection_id, model))
        return found if found is not None and found.active(now) else None

    async def mark_cooldown(
        self, connection_id: str, model: str | None, policy: Policy, hint: float | None, reason: str
    ) -> Cooldown:
        now = self._clock()
        known = self._view.cooldowns.get((connection_id, model))
        if known is not None and known.active(now):
            return known  # already cooling: no re-marking, no level raise (anti-thundering-herd)
        stored = await self._call(
            "marking a cooldown", self._store.mark_cooldown if self._store else None, connection_id, model, now,
            policy, hint, reason,
        )  # fmt: skip
        if stored is None:  # no store (or it failed): cool down in this instance at least
            level = known.level if known is not None else 0
            until = now + max(policy.cooldown(level), hint or 0.0)
            stored = Cooldown(connection_id, model, until, min(level + 1, policy.max_steps), reason)
        self._set_cooldown((connection_id, model), stored)
        return stored

    def clear_cooldown(self, connection_id: str, model: str | None) -> None:
        """A success: a backoff level left from earlier failures drops to 0 (in the background). A cooldown
        active now stays: it was set after this request started, by someone who saw a newer failure."""
        key = (connection_id, model)
        known = self._view.cooldowns.get(key)
        now = self._clock()
        if known is None or known.active(now):
            return
        self._set_cooldown(key, None)
        if self._store is not None:
            self.spawn(self._call("clearing a cooldown", self._store.clear_cooldown, connection_id, model, now))

    async def reset(
        self, provider_ids: Mapping[str, str], provider: str | None, connection: str | None
    ) -> dict[str, int]:
        """Admin reset: breakers (of one provider or all) and cooldowns (of one connection, the connections
        of one provider, or all). `provider_ids` maps connection id → provider."""
        await self.reload()
        view = self._view
        breakers = [p for p in view.breakers if provider is None or p == provider]
        if connection is not None:
            breakers = []
        for name in breakers:
            await self.reset_breaker(name)
        targets: set[str | None]
        if connection is not None:
            targets = {connection}
        elif provider is not None:
            # its connections, and the provider itself (a keyless provider cools down as a whole)
            targets = {provider, *(c for c, p in provider_ids.items() if p == provider)}
        else:
            targets = {None}
        store = self._store
        if store is None:
            kept = {k: v for k, v in self._view.cooldowns.items() if not (None in targets or k[0] in targets)}
            cleared = len(self._view.cooldowns) - len(kept)
            self._generation += 1
            self._view = replace(self._view, cooldowns=kept)
            return {"breakers": len(breakers), "cooldowns": cleared}
        cleared = 0
        for conn in targets:
            cleared += int(await self._call("resetting cooldowns", store.reset_cooldowns, conn) or 0)
        await self.reload()
        return {"breakers": len(breakers), "cooldowns": cleared}

    # ----- counters --------------------------------------------------------------------------------

    async def cursor(self, name: str, block: int) -> int:
        """The next round-robin position of `name`, leased from the store `block` positions at a time."""
        lease = self._leases.setdefault(name, _Lease())
        if lease.next >= lease.end:
            async with self._lease_lock:
                if lease.next >= lease.end:
                    top = await self._call(
                        "leasing a cursor", self._store.advance_cursor if self._store else None, name, block
                    )
                    if top is None:  # no store: count locally
                        top = lease.end + block
                    lease.next, lease.end = int(top) - block, int(top)
        position = lease.next
        lease.next += 1
        return position

    def uses(self, name: str) -> Mapping[str, int]:
        return self._view.uses.get(name, {})

    def count_use(self, name: str, member: str) -> None:
        uses = {k: dict(v) for k, v in self._view.uses.items()}
        counts = uses.setdefault(name, {})
        counts[member] = counts.get(member, 0) + 1
        self._view = replace(self._view, uses=uses)
        if self._store is not None:
            self.spawn(self._call("counting a use", self._store.add_uses, name, member, self._clock(), 1))

    # ----- rate limits -----------------------------------------------------------------------------

    async def acquire(self, key: str, limit: RateLimit, slot_id: str, slot_seconds: float) -> Admission:
        if self._store is None or not limit.configured:
            return Admission(admitted=True)
        now = self._clock()
        admission = await self._call(
            "acquiring a rate limit", self._store.acquire, key, now, limit, slot_id, slot_seconds
        )
        return admission if admission is not None else Admission(admitted=True)  # a failing store admits

    async def release(self, key: str, slot_id: str) -> None:
        """Give a concurrency slot back (awaited: a slot must not wait for a frozen environment to thaw)."""
        if self._store is not None:
            await self._call("releasing a slot", self._store.release, key, slot_id)

    # ----- idempotency and cache ---------------------------------------------------------------------

    async def claim(self, scope: str, owner: str, ttl: float) -> Claim:
        if self._store is None:
            return Claim(owned=True)
        now = self._clock()
        claim = await self._call("claiming an idempotency key", self._store.claim, scope, owner, now, ttl)
        return claim if claim is not None else Claim(owned=True)

    async def complete(self, scope: str, owner: str, reply: StoredReply, ttl: float) -> None:
        if self._store is not None:
            now = self._clock()
            await self._call("storing an idempotent reply", self._store.complete, scope, owner, reply, now, ttl)

    async def abandon(self, scope: str, owner: str) -> None:
        if self._store is not None:
            await self._call("dropping an idempotency claim", self._store.abandon, scope, owner)

    async def cache_get(self, key: str) -> StoredReply | None:
        if self._store is None:
            return None
        return await self._call("reading the response cache", self._store.cache_get, key, self._clock())

    async def cache_put(self, key: str, reply: StoredReply, ttl: float) -> None:
        if self._store is not None:
            await self._call("writing the response cache", self._store.cache_put, key, reply, self._clock(), ttl)

    # ----- latency -----------------------------------------------------------------------------------

    def observe_latency(self, provider: str, ms: float) -> None:
        buckets = self._latency.setdefault(provider, {})
        index = bucket_of(ms)
        buckets[index] = buckets.get(index, 0) + 1
        if time.monotonic() - self._latency_flushed >= LATENCY_FLUSH_SECONDS:
            self.spawn(self.flush_latency())

    async def flush_latency(self) -> None:
        self._latency_flushed = time.monotonic()
        pending, self._latency = self._latency, {}
        if self._store is None or not pending:
            if self._store is None:  # nowhere to flush: keep counting here
                for provider, buckets in pending.items():
                    merge(self._latency.setdefault(provider, {}), buckets)
            return
        minute = int(self._clock() // 60)
        for provider, buckets in pending.items():
            errors = self.store_errors
            await self._call("writing latency", self._store.add_latency, minute, provider, buckets)
            if self.store_errors != errors:
                merge(self._latency.setdefault(provider, {}), buckets)  # try again at the next flush

    async def latency(self, since_minutes: int = 15) -> dict[str, dict[int, int]]:
        """Summed buckets per provider over the last minutes (store) plus what this instance holds."""
        found: dict[str, dict[int, int]] = {}
        if self._store is not None:
            since = int(self._clock() // 60) - since_minutes
            stored = await self._call("reading latency", self._store.load_latency, since)
            for provider, buckets in (stored or {}).items():
                merge(found.setdefault(provider, {}), buckets)
        for provider, buckets in self._latency.items():
            merge(found.setdefault(provider, {}), buckets)
        return found

    # ----- quota windows ---------------------------------------------------------------------------------

    def quota_block(
        self, conn: Connection, now: float, skip_at_percent: float = 100.0, model: str | None = None
    ) -> tuple[LiveWindow, float | None] | None:
        """The window keeping `conn` out at `now` (for `model`) and when it frees up (None: unknown), or
        None. Live windows (the provider's word) and the connection's configured windows (our counts)
        both count."""
        view = self._view
        live = view.quotas.get(conn.id)
        blocking = live.blocking(now, skip_at_percent, model) if live is not None else None
        if blocking is not None:
            return blocking, blocking.resets_at
        for rule in conn.quotas:
            window = counted_window(rule, view.quota_counts.get((conn.id, rule.name)), now)
            if window.limited:
                return window, window.resets_at
        return None

    def note_quota(self, quota: AccountQuota) -> None:
        """A reading this instance made (an answer's headers): into the view at once."""
        self._generation += 1
        quotas = dict(self._view.quotas)
        quotas[quota.connection_id] = quota
        self._view = replace(self._view, quotas=quotas)

    def save_quota(self, quota: AccountQuota) -> None:
        """An answer's reading: into the view now, and to the store in the background unless it says what
        the stored one says (every answer of a subscription carries these headers: most change nothing)."""
        known = self._view.quotas.get(quota.connection_id)
        self.note_quota(quota)
        if self._store is None:
            return
        if known is not None and _same_reading(known, quota) and quota.updated_at - known.updated_at < QUOTA_REWRITE:
            return
        self.spawn(self._call("saving quota windows", self._store.put_quota, quota))

    def note_quota_count(self, connection_id: str, window: str, count: QuotaCount) -> None:
        self._generation += 1
        counts = dict(self._view.quota_counts)
        counts[(connection_id, window)] = count
        self._view = replace(self._view, quota_counts=counts)

    # ----- plumbing ----------------------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[..., T] | None, *args: Any) -> T | None:
        if fn is None:
            return None
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Exception:
            self._failed(what)
            return None

    def _failed(self, what: str) -> None:
        self.store_errors += 1
        log.warning("routing state: %s failed; routing on this instance's copy", what, exc_info=True)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for background writes (before a Lambda environment may freeze, and at shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _same_reading(a: AccountQuota, b: AccountQuota) -> bool:
    """Whether two readings agree on what matters to routing and to the owner's countdowns."""

    def gist(q: AccountQuota) -> set[tuple[str, bool, int | None, int | None]]:
        return {
            (
                w.name,
                w.limited,
                round(w.used_percent) if w.used_percent is not None else None,
                round(w.resets_at / 60) if w.resets_at is not None else None,
            )
            for w in q.windows
        }

    return gist(a) == gist(b)
