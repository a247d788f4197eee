"""The fallback loop: walk a plan's targets and accounts until one answers, so coding never stops.

For each target, in the order its combo's strategy gives: order the provider's accounts by the account
strategy, skipping those cooling down (whole account, or just this model) → skip an account whose breaker
is open (or claim the single half-open probe when it is due; accounts share their provider's breaker,
except those with their own base URL) → take a rate-limit slot if the account has limits → call the
upstream through `ChatService`. A failure is classified (`shared.domain.failures`): try the next account,
the next target, or (a refusal of the request itself) no other account of this target; it may cool the
account or model down and count against the breaker. Only failures before the first byte reached the
client move on: a stream is committed once its first real chunk (not a comment) is ready, and a failure
after that ends the stream with an error event in the client's format (ChatService's relays do that).

Everything that must outlive the answer (a slot given back, a breaker's count after a stream) is done
before the answer's last byte is handed over, so a Lambda environment frozen right after it loses nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain.combos import ComboConfig
from shared.domain.config import Connection, GatewaySettings
from shared.domain.failures import FailureKind, Next, Scope, Verdict, classify
from shared.domain.live_quota import windows_from_headers
from shared.domain.plan import ComboNode, Leaf, Node, Plan
from shared.domain.quota import AccountQuota
from shared.domain.resolve import Route
from shared.domain.routing import BreakerPhase, Policy, RateLimit, breaker_key, policy_of, profile_of
from shared.domain.strategies import order_accounts, order_targets
from shared.errors import (
    GatewayBusy,
    GatewayError,
    RateLimited,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
)
from shared.providers.catalog import get_provider
from shared.providers.spec import AuthKind, WireFormat
from shared.services.chat import ChatService, JsonReply, StreamReply
from shared.services.routing_state import RoutingState

log = logging.getLogger("omniroute.router")

SESSION_HEADERS = ("x-session-id", "x-omniroute-session", "session_id")
CURSOR_BLOCK = 8  # round-robin positions leased per store write
SLOT_SECONDS = 960.0  # a concurrency slot outlives the longest request (Lambda's 900 s)
# A half-open probe's claim: long enough for a slow answer; a prober that died frees it after this.
PROBE_SECONDS = 120.0
# An instance idle this long (or frozen between invocations) reloads the routing state before routing.
STALE_VIEW_SECONDS = 30.0

PriceLookup = Callable[[str, str], float | None]


def marginal_price(provider: str, model: str) -> float | None:
    """USD per 1M input tokens a call adds to the bill, where known without a pricing table: nothing for a
    subscription (OAuth) or a local server; unknown (None, tried after every known price) for API keys.
    The pricing table of the usage work replaces this lookup with real per-model prices."""
    spec = get_provider(provider)
    if spec is not None and spec.auth in (AuthKind.OAUTH, AuthKind.NONE):
        return 0.0
    return None


@dataclass(slots=True)
class _Tried:
    """What happened to one candidate, for the final error when nothing answered."""

    label: str
    reason: str
    status: int | None = None
    retry_after: float | None = None
    error: GatewayError | None = None


@dataclass(slots=True)
class _Run:
    """One request's walk: attempts made, candidates tried, the (provider, model, account) already used."""

    body: dict[str, Any]
    stream: bool
    client: WireFormat
    headers: Mapping[str, str] | None
    client_model: str | None
    settings: GatewaySettings
    session: str | None
    owner: str
    attempts: int = 0
    tried: list[_Tried] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    down: set[str] = field(default_factory=set)  # breaker keys that failed provider-wide in this request


@dataclass(slots=True)
class _Account:
    """One account of one target, as its calls need it."""

    route: Route  # the target, narrowed to this account
    conn: Connection | None
    id: str  # what cools down: the connection, or a keyless provider as a whole
    key: str  # the breaker it answers to
    label: str
    policy: Policy
    config: ComboConfig
    probing: bool = False  # its next call is the breaker's one half-open probe


@dataclass(slots=True)
class _Stats:
    """This instance's recent view of one provider or account, for power-of-two-choices."""

    ok: float = 0.0
    failed: float = 0.0
    latency_ms: float = 0.0

    def score(self) -> float:
        """Success rate (0..1) plus a speed term that still tells 2 ms from 20 ms (1/log10(ms + 10): 0.93 at
        2 ms, 0.48 at 110 ms); unknown counts as middling."""
        total = self.ok + self.failed
        success = self.ok / total if total else 0.5
        speed = 1.0 / math.log10(self.latency_ms + 10.0) if self.latency_ms else 0.5
        return success + speed

    def observe(self, ok: bool, latency_ms: float | None = None) -> None:
        self.ok, self.failed = self.ok * 0.95, self.failed * 0.95  # recent results weigh most
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        if latency_ms is not None:
            self.latency_ms = latency_ms if not self.latency_ms else 0.8 * self.latency_ms + 0.2 * latency_ms


class Router:
    def __init__(
        self,
        chat: ChatService,
        state: RoutingState,
        *,
        rng: random.Random | None = None,
        price: PriceLookup = marginal_price,
    ) -> None:
        self._chat = chat
        self._state = state
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._price = price
        self._stats: dict[str, _Stats] = {}

    async def complete(
        self,
        plan: Plan,
        body: dict[str, Any],
        *,
        stream: bool,
        client: WireFormat,
        settings: GatewaySettings,
        client_headers: Mapping[str, str] | None = None,
        client_model: str | None = None,
    ) -> JsonReply | StreamReply:
        session = None
        if client_headers is not None:
            session = next((client_headers[h] for h in SESSION_HEADERS if client_headers.get(h)), None)
        run = _Run(
            body=body,
            stream=stream,
            client=client,
            headers=client_headers,
            client_model=client_model,
            settings=settings,
            session=session,
            owner=f"{self._state.instance_id}:{secrets.token_hex(6)}",  # ours, never the client's request id
        )
        await self._state.fresh(STALE_VIEW_SECONDS)  # waits only when the copy is old; refreshes otherwise
        for node in (plan.root, *plan.fallbacks):
            reply = await self._node(node, run, None)
            if reply is not None:
                return reply
            if run.attempts >= settings.max_attempts:
                break
        raise _final_error(plan, run)

    # ----- targets -------------------------------------------------------------------------------------

    async def _node(self, node: Node, run: _Run, config: ComboConfig | None) -> JsonReply | StreamReply | None:
        if isinstance(node, Leaf):
            return await self._leaf(node, run, config, None)
        combo = node.combo
        for index in await self._target_order(node):
            child = node.children[index]
            target = node.targets[index]
            if combo.strategy == "least-used":
                self._state.count_use(f"combo:{combo.name}", target.model)
            if isinstance(child, ComboNode):
                reply = await self._node(child, run, None)
            else:
                reply = await self._leaf(child, run, combo.config, (combo.name, index))
            if reply is not None:
                return reply
            if run.attempts >= run.settings.max_attempts:
                return None
        return None

    async def _target_order(self, node: ComboNode) -> list[int]:
        combo = node.combo
        n = len(node.children)
        strategy = combo.strategy
        cursor = await self._state.cursor(f"combo:{combo.name}", CURSOR_BLOCK) if strategy == "round-robin" else 0
        uses = self._state.uses(f"combo:{combo.name}") if strategy == "least-used" else {}
        return order_targets(
            strategy,
            n,
            rng=self._rng,
            cursor=cursor,
            weights=[t.weight for t in node.targets],
            uses=[uses.get(t.model, 0) for t in node.targets],
            costs=[self._cost(c) for c in node.children] if strategy == "cost-optimized" else (),
            scores=[self._score(c) for c in node.children] if strategy == "p2c" else (),
        )

    def _cost(self, node: Node) -> float | None:
        if isinstance(node, ComboNode):
            known = [c for c in (self._cost(child) for child in node.children) if c is not None]
            return min(known) if known else None
        return self._price(node.route.provider_id, node.route.upstream_model)

    def _score(self, node: Node) -> float:
        if isinstance(node, ComboNode):
            return max(self._score(child) for child in node.children)
        provider = node.route.provider_id
        breaker = self._state.view().breakers.get(provider)
        if breaker is not None and breaker.phase is BreakerPhase.OPEN:
            return -1.0
        score = self._stats.setdefault(provider, _Stats()).score()
        return score - 0.25 if breaker is not None and breaker.phase is BreakerPhase.HALF_OPEN else score

    # ----- one target ------------------------------------------------------------------------------------

    async def _leaf(
        self, leaf: Leaf, run: _Run, config: ComboConfig | None, slot: tuple[str, int] | None
    ) -> JsonReply | StreamReply | None:
        route = leaf.route
        target_slot: str | None = None
        if config is not None and config.concurrency_per_target and slot is not None:
            key = f"target:{slot[0]}#{slot[1]}"
            admission = await self._state.acquire(
                key, RateLimit(max_concurrent=config.concurrency_per_target), run.owner, SLOT_SECONDS
            )
            if not admission.admitted:
                run.tried.append(
                    _Tried(route.public_model, "target at its concurrency limit", 429, admission.retry_after)
                )
                return None
            target_slot = key if admission.slot_id is not None else None
        try:
            reply = await self._accounts(leaf, run, config or ComboConfig())
        except BaseException:
            if target_slot is not None:
                self._state.spawn(self._state.release(target_slot, run.owner))
            raise
        if target_slot is None:
            return reply
        if reply is None:
            await self._state.release(target_slot, run.owner)
            return None
        return await _on_close(reply, functools.partial(self._state.release, target_slot, run.owner))

    async def _gate(self, key: str, label: str, run: _Run) -> bool | None:
        """The breaker of `key`: False to go ahead, True to go ahead as its one probe, None to skip."""
        now = self._state.now()
        breaker = self._state.view().breakers.get(key)
        if breaker is None or breaker.admits:
            return False
        if breaker.probe_due(now):
            if await self._state.try_probe(key, run.owner, PROBE_SECONDS):
                return True
            # Someone else holds the probe, or our copy is old (the breaker may be closed by now).
            await self._state.reload()
            breaker = self._state.view().breakers.get(key)
            if breaker is None or breaker.admits:
                return False
        wait = max(breaker.open_until - now, 1.0)
        run.tried.append(_Tried(label, f"circuit open for {wait:.0f} s", 503, wait))
        return None

    async def _accounts(self, leaf: Leaf, run: _Run, config: ComboConfig) -> JsonReply | StreamReply | None:
        route = leaf.route
        policy = policy_of(route.provider_id, run.settings.policies)
        now = self._state.now()
        candidates: list[Connection | None] = []
        for conn in route.connections:
            cid = _account_id(route, conn)
            cooling = self._state.cooldown(cid, None, now) or self._state.cooldown(cid, route.upstream_model, now)
            if cooling is not None:
                scope = "account" if cooling.model is None else "model on this account"
                run.tried.append(
                    _Tried(_label(route, conn), f"{scope} cooling down ({cooling.reason})", 429, cooling.until - now)
                )
                continue
            if (route.provider_id, route.upstream_model, cid) in run.seen:
                continue
            if conn is not None and conn.oauth is not None and conn.oauth.expired(now):
                # a linked account serves until its access token expires, also when its grant is gone
                why = "relink needed" if conn.oauth.relink_needed else "refresh pending"
                run.tried.append(_Tried(_label(route, conn), f"access token expired ({why})", 401, None))
                continue
            blocked = (
                self._state.quota_block(conn, now, run.settings.quota_skip_percent, route.upstream_model)
                if conn is not None
                else None
            )
            if blocked is not None:
                window, until = blocked
                wait = until - now if until is not None else None
                run.tried.append(_Tried(_label(route, conn), f"quota window {window.name} used up", 429, wait))
                continue
            candidates.append(conn)
        for conn in await self._account_order(route, candidates, run):
            if run.attempts >= run.settings.max_attempts:
                return None
            acct = _Account(
                route=replace(route, connections=(conn,)),
                conn=conn,
                id=_account_id(route, conn),
                key=breaker_key(route.provider_id, conn.base_url if conn is not None else None),
                label=_label(route, conn),
                policy=policy,
                config=config,
            )
            if acct.key in run.down:
                continue  # it failed provider-wide a moment ago in this very request
            probing = await self._gate(acct.key, acct.label, run)
            if probing is None:
                continue
            acct.probing = probing
            run.seen.add((route.provider_id, route.upstream_model, acct.id))
            slot_key: str | None = None  # set while this request holds a concurrency slot of the account
            if conn is not None and conn.rate_limit.configured:
                limit_key = f"acct:{conn.id}"
                admission = await self._state.acquire(limit_key, conn.rate_limit, run.owner, SLOT_SECONDS)
                if admission.slot_id is not None:
                    slot_key = limit_key
                if not admission.admitted:
                    run.tried.append(
                        _Tried(acct.label, f"account at its {admission.limit} limit", 429, admission.retry_after)
                    )
                    await self._give_back_probe(acct, run)  # this request never called
                    continue
            try:
                outcome = await self._tries(acct, run)
            except BaseException:
                if slot_key is not None:
                    self._state.spawn(self._state.release(slot_key, run.owner))
                # cancelled mid-probe (the client left): let the next request probe at once
                self._state.spawn(self._give_back_probe(acct, run))
                raise
            if not isinstance(outcome, Verdict):
                if slot_key is not None:
                    return await _on_close(outcome, functools.partial(self._state.release, slot_key, run.owner))
                return outcome
            if slot_key is not None:
                await self._state.release(slot_key, run.owner)
            if outcome.breaker:
                run.down.add(acct.key)  # its other accounts on the same endpoint are skipped; others still tried
            elif outcome.next is not Next.NEXT_ACCOUNT:
                return None  # the model or the request is the problem here: the next target
        return None

    async def _give_back_probe(self, acct: _Account, run: _Run) -> None:
        """A probe claimed but not decided by a call: reopen with no wait, so the next request probes."""
        if acct.probing:
            acct.probing = False
            await self._state.finish_probe(acct.key, run.owner, False, replace(acct.policy, breaker_reset=0.0))

    async def _tries(self, acct: _Account, run: _Run) -> JsonReply | StreamReply | Verdict:
        """One account: a call, and again (up to `maxRetries`) after a failure worth retrying in place."""
        attempt = 0
        while True:
            outcome = await self._attempt(acct, run)
            if not isinstance(outcome, Verdict):
                return outcome
            attempt += 1
            breaker = self._state.view().breakers.get(acct.key)
            tripped = breaker is not None and not breaker.admits
            if (
                not outcome.retryable_same_target
                or tripped
                or attempt > acct.config.max_retries
                or run.attempts >= run.settings.max_attempts
            ):
                return outcome
            if acct.config.retry_delay_ms:
                await asyncio.sleep(acct.config.retry_delay_ms / 1000)

    async def _account_order(
        self, route: Route, candidates: list[Connection | None], run: _Run
    ) -> list[Connection | None]:
        if len(candidates) <= 1:
            return candidates
        settings = run.settings
        strategy = settings.account_strategy
        ids = [_account_id(route, c) for c in candidates]
        name = f"acct:{route.provider_id}"
        cursor = await self._state.cursor(name, settings.sticky_limit) if strategy == "round-robin" else 0
        uses = self._state.uses(name) if strategy == "least-used" else {}
        order = order_accounts(
            strategy,
            ids,
            rng=self._rng,
            cursor=cursor,
            sticky=settings.sticky_limit,
            uses=[uses.get(i, 0) for i in ids],
            costs=[0.0 if profile_of(route.provider_id) == "oauth" else 1.0 for _ in ids],
            scores=[self._stats.setdefault(f"acct:{i}", _Stats()).score() for i in ids] if strategy == "p2c" else (),
            session=run.session,
        )
        if strategy == "least-used":
            self._state.count_use(name, ids[order[0]])
        return [candidates[i] for i in order]

    # ----- one call ------------------------------------------------------------------------------------

    async def _attempt(self, acct: _Account, run: _Run) -> JsonReply | StreamReply | Verdict:
        route = acct.route
        provider = route.provider_id
        run.attempts += 1
        settings = run.settings
        started = time.perf_counter()
        first_byte = settings.first_byte_timeout
        if acct.config.first_byte_timeout_ms:
            first_byte = acct.config.first_byte_timeout_ms / 1000
        reply: JsonReply | StreamReply | None = None
        try:
            async with asyncio.timeout(first_byte if run.stream else None):
                reply = await self._chat.complete(
                    run.body,
                    route,
                    stream=run.stream,
                    client=run.client,
                    client_headers=run.headers,
                    client_model=run.client_model,
                    settings=settings,
                    idle_timeout=settings.idle_timeout,
                )
                if isinstance(reply, StreamReply):
                    reply = await _first_chunk(reply)
        except TimeoutError:
            if reply is not None and isinstance(reply, StreamReply):
                await reply.aclose()
            message = f"{route.public_model} sent nothing within {first_byte:g} s (first-byte timeout)."
            return await self._failed(UpstreamTimeout(message, provider=provider), acct, run)
        except (UpstreamRejected, UpstreamFailed, UpstreamTimeout) as exc:
            return await self._failed(exc, acct, run)
        except _CutBeforeFirstByte as cut:
            return await self._failed(UpstreamFailed(cut.message, provider=provider), acct, run)
        except GatewayError:
            await self._give_back_probe(acct, run)  # our own refusal (a request we cannot translate)
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        self._state.observe_latency(provider, latency_ms)
        self._stats.setdefault(provider, _Stats()).observe(True, latency_ms)
        self._stats.setdefault(f"acct:{acct.id}", _Stats()).observe(True, latency_ms)
        if acct.probing:
            acct.probing = False
            await self._state.finish_probe(acct.key, run.owner, True, acct.policy)  # it answered: closed again
        self._state.clear_cooldown(acct.id, None)
        self._state.clear_cooldown(acct.id, route.upstream_model)
        if reply.outcome.windows and acct.conn is not None:
            self._state.save_quota(AccountQuota(acct.conn.id, reply.outcome.windows, self._state.now()))
        reply.headers["x-omniroute-attempts"] = str(run.attempts)
        if isinstance(reply, StreamReply):
            return self._watch_stream(reply, acct.key, acct.policy)
        self._state.record_success(acct.key)
        return reply

    async def _failed(self, err: GatewayError, acct: _Account, run: _Run) -> Verdict:
        route = acct.route
        kind, status, body, headers = _failure_of(err)
        verdict = classify(kind, status, body, headers, self._state.now())
        windows = windows_from_headers(headers, self._state.now()) if headers else ()
        if windows and acct.conn is not None:  # a refusal names the window that is used up, and its reset
            self._state.save_quota(AccountQuota(acct.conn.id, windows, self._state.now()))
        self._stats.setdefault(route.provider_id, _Stats()).observe(not verdict.breaker)
        self._stats.setdefault(f"acct:{acct.id}", _Stats()).observe(False)
        log.info(
            "%s via %s failed (%s, %s): %s next; %.200s",
            route.public_model, acct.id, verdict.reason, status or kind.value, verdict.next.value, err.message,
        )  # fmt: skip
        if acct.probing:
            acct.probing = False  # a probe is one call
            await self._state.finish_probe(acct.key, run.owner, not verdict.breaker, acct.policy)
        elif verdict.breaker:
            await self._state.record_failure(acct.key, acct.policy)
        retry_after: float | None = err.retry_after
        if verdict.scope is not Scope.NONE:
            model = route.upstream_model if verdict.scope is Scope.MODEL else None
            cooldown = await self._state.mark_cooldown(acct.id, model, acct.policy, verdict.cooldown, verdict.reason)
            retry_after = max(cooldown.until - self._state.now(), 0.0)
        elif verdict.cooldown is not None:
            retry_after = verdict.cooldown
        run.tried.append(_Tried(acct.label, verdict.reason, status or err.http_status, retry_after, err))
        return verdict

    def _watch_stream(self, reply: StreamReply, key: str, policy: Policy) -> StreamReply:
        """A stream is a success only once it ended cleanly; one that fails after its first byte cannot move
        on, but counts against the breaker (so a provider that keeps cutting streams does trip it)."""
        outcome = reply.outcome
        state = self._state

        async def close() -> None:
            await reply.aclose()
            if outcome.error is None:
                state.record_success(key)
            else:
                await state.record_failure(key, policy)

        return replace(reply, aclose=close)


class _CutBeforeFirstByte(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _first_chunk(reply: StreamReply) -> StreamReply:
    """Wait for the stream's first real chunk. SSE comments before it (OpenRouter's `: OPENROUTER
    PROCESSING`) are held back with it, so a stream whose first event is its failure (the upstream closed,
    or sent only an error) has not reached the client, and the router may still move on."""
    held: list[bytes] = []
    try:
        while True:
            chunk = await reply.chunks.__anext__()
            held.append(chunk)
            if reply.outcome.error is not None or not _only_comments(chunk):
                break
    except StopAsyncIteration:
        await reply.aclose()
        raise _CutBeforeFirstByte("The upstream ended the stream before sending anything.") from None
    except BaseException:
        await reply.aclose()
        raise
    if reply.outcome.error is not None:
        message = reply.outcome.error
        await reply.aclose()
        failure = reply.outcome.failure
        if isinstance(failure, UpstreamRejected | UpstreamFailed | UpstreamTimeout):
            raise failure  # judged as that failure (a 429 cools the account down), not as a cut stream
        raise _CutBeforeFirstByte(message)
    return replace(reply, chunks=_prepend(b"".join(held), reply.chunks))


def _only_comments(chunk: bytes) -> bool:
    """Whether a chunk holds nothing but SSE comment lines (and blank lines)."""
    return all(not line.strip() or line.startswith(b":") for line in chunk.split(b"\n"))


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _on_close(reply: JsonReply | StreamReply, done: Callable[[], Awaitable[None]]) -> JsonReply | StreamReply:
    """Run `done` when the reply is finished: now for JSON, when the stream is released otherwise (before
    its last byte goes out: see RelayResponse)."""
    if isinstance(reply, JsonReply):
        await done()
        return reply
    inner: Callable[[], Awaitable[None]] = reply.aclose

    async def close() -> None:
        try:
            await inner()
        finally:
            await done()

    return replace(reply, aclose=close)


def _failure_of(exc: GatewayError) -> tuple[FailureKind, int | None, str, dict[str, str]]:
    if isinstance(exc, UpstreamRejected):
        return FailureKind.HTTP, exc.upstream_status, _text(exc.body) or exc.message, dict(exc.headers)
    if isinstance(exc, UpstreamTimeout):
        return FailureKind.TIMEOUT, None, exc.message, {}
    assert isinstance(exc, UpstreamFailed)
    if exc.upstream_status is not None:
        return FailureKind.HTTP, exc.upstream_status, _text(exc.body) or exc.message, dict(exc.headers)
    if exc.code in ("upstream_unreachable", "upstream_address_refused"):
        return FailureKind.CONNECT, None, exc.message, {}
    return FailureKind.CUT, None, exc.message, {}


def _text(body: bytes) -> str:
    return body[:8192].decode("utf-8", "replace")


def _account_id(route: Route, conn: Connection | None) -> str:
    return conn.id if conn is not None else route.provider_id  # keyless providers cool down as a whole


def _label(route: Route, conn: Connection | None) -> str:
    return f"{route.public_model} ({conn.name})" if conn is not None else route.public_model


def _final_error(plan: Plan, run: _Run) -> GatewayError:
    """Nothing answered. One target that failed on its own: its error as it was. Otherwise a summary of
    everything tried, as 429 when everything is rate limited or cooling down (with the earliest time
    something frees up as Retry-After), 503 when breakers or limits kept every target out, else 502/504."""
    tried = run.tried
    if not tried:
        return GatewayBusy(
            f"No account can serve `{plan.requested}` right now.", code="no_account_available", retry_after=5
        )
    called = [t for t in tried if t.error is not None]
    if len(tried) == 1 and called:
        assert called[0].error is not None
        return called[0].error
    refusals = [t for t in called if t.reason == "bad_request"]
    if refusals and len(refusals) == len(called) and refusals[0].error is not None:
        return refusals[0].error  # every target refused the request itself: the first refusal, as it was
    waits = [t.retry_after for t in tried if t.retry_after is not None and t.retry_after > 0]
    retry_after = max(1.0, min(waits)) if waits else None
    summary = "; ".join(f"{t.label}: {t.reason}" for t in tried[:12])
    if len(tried) > 12:
        summary += f"; and {len(tried) - 12} more"
    what = f"combo `{plan.combo}`" if plan.combo else f"`{plan.requested}`"
    message = f"Every target of {what} failed or is unavailable ({summary})."
    if all(t.status == 429 for t in tried):
        return RateLimited(message, code="all_accounts_rate_limited", retry_after=retry_after)
    if all(t.error is None for t in tried):
        return GatewayBusy(message, code="provider_circuit_open", retry_after=retry_after)
    last = called[-1].error
    if isinstance(last, UpstreamTimeout) and all(isinstance(t.error, UpstreamTimeout) for t in called):
        return UpstreamTimeout(message, retry_after=retry_after)
    return UpstreamFailed(message, code="all_targets_failed", retry_after=retry_after)
