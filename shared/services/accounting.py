"""Accounting: one usage event per request, budgets per API key, counted quota windows per account.

The hot path only queues: `record` appends the request's event and returns. A flusher task writes the
queue in the background (a batch of events is one BatchWriteItem; a budget or a configured quota window
adds one atomic `ADD` each), so the client never waits for accounting. What keeps an event from being
lost when a Lambda environment freezes right after the answer is the caller's business: locally the
process keeps running and drains the queue at shutdown; in the cloud the gateway holds the end of the
response until the queue is drained (`drain`), or an internal extension holds the freeze (see
functions/gateway/cloud.py). A write that fails is retried with backoff; the event keeps its place.

Budgets are checked before the upstream call (`check_budget`: one consistent read of the key's spend);
the cost is added after the answer. A request already past the check is never stopped, so a budget is
overshot by at most one in-flight request per concurrent caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio.to_thread
import orjson

from shared.domain.budgets import BudgetPeriod, current_periods, with_spend
from shared.domain.config import ApiKey, Connection
from shared.domain.pricing import PriceTable, cost
from shared.domain.quota import QuotaCount
from shared.domain.redact import redact
from shared.domain.routing import RoutingView
from shared.domain.usage import Usage, UsageEvent
from shared.domain.windows import WindowKind, period
from shared.errors import GatewayError, RateLimited
from shared.formats.registry import FORMATS
from shared.formats.tokens import estimate_tokens
from shared.ports import RoutingStore, SpendStore, UsageStore
from shared.providers.spec import WireFormat
from shared.services.chat import Outcome
from shared.services.routing_state import RoutingState

log = logging.getLogger("omniroute.accounting")

RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # backoff between attempts at a failing write; then the last again
MAX_LOGGED_ANSWER = 256 * 1024  # a longer JSON answer is not parsed for the log (cut JSON does not parse)
QUOTA_MEMORY = 86_400.0  # a counted window's item outlives the window's end by a day
INLINE_SLICE = 64  # requests written per turn of the event loop when writing inline (about 0.7 ms)


@dataclass(slots=True)
class _Pending:
    """One request's accounting and which of its writes are done (a retry skips those: `ADD`s are not
    idempotent)."""

    event: UsageEvent
    key: ApiKey | None
    conn: Connection | None
    retention_days: int
    log_entry: Mapping[str, Any] | None = None
    log_hours: float = 24.0
    done: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """The key's budget periods before this request (all under their limits when returned)."""

    periods: list[BudgetPeriod]
    warning_threshold: float

    @property
    def warnings(self) -> list[BudgetPeriod]:
        return [p for p in self.periods if p.status(self.warning_threshold) == "warning"]


class Accountant:
    def __init__(
        self,
        usage: UsageStore | None,
        spend: SpendStore | None,
        routing: RoutingState,
        routing_store: RoutingStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        flush_delay: float = 0.0,
        inline: bool = False,
    ) -> None:
        """`flush_delay`: how long the flusher waits for more events before writing (they share one
        batch). 0 in the cloud, where each invocation drains its own; locally a short delay keeps the
        store's work off the requests that follow. `drain` never waits for it.

        `inline`: the stores answer in microseconds in this process (local mode's SQLite file), so writes
        run on the event loop in slices of `INLINE_SLICE` requests; a worker thread would cost more (its
        hand-offs of the interpreter lock took a sixth of the local server's throughput). Network stores
        (DynamoDB) are always written from a worker thread."""
        self._usage = usage
        self._spend = spend
        self._routing = routing
        self._routing_store = routing_store
        self._clock = clock
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._flush_delay = flush_delay
        self._inline = inline
        self._hurry: asyncio.Event | None = None
        self._local_spend: dict[tuple[str, str], float] = {}  # without a store: this process's own totals
        self.recorded = 0
        self.written = 0
        self.write_errors = 0
        self.budget_check_errors = 0

    @property
    def pending(self) -> int:
        return len(self._queue) + (0 if self._flusher is None or self._flusher.done() else 1)

    # ----- budgets ------------------------------------------------------------------------------------

    async def check_budget(self, key: ApiKey | None) -> BudgetStatus | None:
        """Refuse a request whose key has used up a budget period (429 with Retry-After to the period's
        end); otherwise the periods as they stand (for warnings). None when the key has no budget."""
        if key is None or key.budget is None:
            return None
        now = self._clock()
        periods = current_periods(key.budget, now)
        ids = [p.id for p in periods]
        if self._spend is not None:
            try:
                spent = await anyio.to_thread.run_sync(self._spend.spend, key.id, ids)
            except Exception:
                # A store that cannot answer does not stop the owner's tools (the spend is still added
                # once it answers again); the failure is counted and logged.
                self.budget_check_errors += 1
                log.warning("budget check of key %s failed; letting the request through", key.id, exc_info=True)
                return None
        else:
            spent = {i: self._local_spend.get((key.id, i), 0.0) for i in ids}
        periods = with_spend(periods, spent)
        exceeded = [p for p in periods if p.exceeded]
        if exceeded:
            until = max(p.end for p in exceeded)
            names = ", ".join(f"{p.name} ${p.spent:.4f} of ${p.limit:.2f}" for p in exceeded)
            raise RateLimited(
                f"The budget of API key `{key.name or key.id}` is used up ({names}); it resets in "
                f"{_duration(until - now)}. Raise it with PUT /api/budgets/{key.id}.",
                code="budget_exceeded",
                retry_after=max(until - now, 1.0),
            )
        return BudgetStatus(periods, key.budget.warning_threshold)

    # ----- recording ----------------------------------------------------------------------------------

    def record(
        self,
        event: UsageEvent,
        *,
        key: ApiKey | None,
        conn: Connection | None,
        retention_days: int = 30,
        log_entry: Mapping[str, Any] | None = None,
        log_hours: float = 24.0,
    ) -> None:
        """Queue one request's accounting; returns at once. Once written, the counts of the account's
        configured quota windows go into this instance's routing view (so it stops using an account at its
        limit without waiting for the next reload)."""
        self.recorded += 1
        self._queue.append(_Pending(event, key, conn, retention_days, log_entry, log_hours))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def drain(self) -> None:
        """Wait until everything recorded so far is written (or given up on, after logging it)."""
        while self._flusher is not None and not self._flusher.done():
            if self._hurry is not None:
                self._hurry.set()
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        if self._flush_delay > 0:
            self._hurry = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), self._flush_delay)
            self._hurry = None
        attempt = 0
        while self._queue:
            batch = self._queue[:INLINE_SLICE] if self._inline else self._queue[:]
            try:
                # the view is read here, on the loop: `view()` may start a reload, which needs the loop
                view = self._routing.view()
                if self._inline:
                    counts = self._write(batch, view)
                else:
                    counts = await anyio.to_thread.run_sync(self._write, batch, view)
            except Exception:
                self.write_errors += 1
                if attempt >= len(RETRY_SECONDS):
                    self._give_up(batch)
                    del self._queue[: len(batch)]
                    attempt = 0
                    continue
                log.warning("accounting write failed; retrying (attempt %d)", attempt + 1, exc_info=True)
                await asyncio.sleep(RETRY_SECONDS[attempt])
                attempt += 1
                continue
            attempt = 0
            del self._queue[: len(batch)]
            self.written += len(batch)
            for (conn_id, window), count in counts.items():
                self._routing.note_quota_count(conn_id, window, count)
            if self._inline:
                await asyncio.sleep(0)  # requests go on between slices

    def _give_up(self, batch: list[_Pending]) -> None:
        """The store kept failing: the events go to the log (CloudWatch keeps them), never silently away."""
        for pending in batch:
            log.error("usage event not stored after retries: %s", _event_log(pending.event))

    def _write(self, batch: list[_Pending], view: RoutingView) -> dict[tuple[str, str], QuotaCount]:
        """Runs in a worker thread (or inline). Each step is marked done as it lands, so a retry repeats no
        `ADD`."""
        counts: dict[tuple[str, str], QuotaCount] = {}
        if self._usage is not None:
            todo = [p for p in batch if "event" not in p.done]
            by_retention: dict[int, list[_Pending]] = {}
            for p in todo:
                by_retention.setdefault(p.retention_days, []).append(p)
            for days, group in by_retention.items():
                self._usage.put_events([p.event for p in group], self._clock() + days * 86_400)
                for p in group:
                    p.done.add("event")
        for p in batch:
            self._write_spend(p)
            counts.update(self._write_quotas(p, view))
            if p.log_entry is not None and self._usage is not None and "log" not in p.done:
                at = p.event.at
                self._usage.put_log(at, p.event.request_id, p.log_entry, at + p.log_hours * 3600)
                p.done.add("log")
        return counts

    def _write_spend(self, p: _Pending) -> None:
        key = p.key
        if key is None or key.budget is None or "spend" in p.done or p.event.cost <= 0:
            return
        periods = current_periods(key.budget, p.event.at)
        if self._spend is not None:
            self._spend.add_spend(key.id, [(q.id, q.end) for q in periods], p.event.cost)
        else:
            for q in periods:
                self._local_spend[(key.id, q.id)] = self._local_spend.get((key.id, q.id), 0.0) + p.event.cost
        p.done.add("spend")

    def _write_quotas(self, p: _Pending, view: RoutingView) -> dict[tuple[str, str], QuotaCount]:
        conn, store = p.conn, self._routing_store
        counts: dict[tuple[str, str], QuotaCount] = {}
        if conn is None or not conn.quotas or store is None or p.event.failed:
            return counts
        now = p.event.at
        tokens = p.event.usage.total
        for rule in conn.quotas:
            step = f"quota:{rule.name}"
            if step in p.done:
                continue
            if rule.spec.kind is WindowKind.ROLLING:
                since = now - rule.spec.hours * 3600
                start, ends = now, now + rule.spec.hours * 3600
            else:
                current = period(rule.spec, now)
                since = start = current.start
                ends = current.end
            known = view.quota_counts.get((conn.id, rule.name))
            if known is not None and rule.spec.kind is WindowKind.ROLLING and known.start >= since:
                ends = known.start + rule.spec.hours * 3600
            stored = store.add_quota_use(conn.id, rule.name, start, since, tokens, ends + QUOTA_MEMORY)
            counts[(conn.id, rule.name)] = QuotaCount(*stored)
            p.done.add(step)
        return counts


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 1)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        return f"{hours // 24} days"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def _event_log(e: UsageEvent) -> dict[str, Any]:
    u = e.usage
    return {
        "requestId": e.request_id, "at": e.at, "provider": e.provider, "model": e.model,
        "connectionId": e.connection_id, "keyId": e.key_id, "status": e.status, "input": u.input,
        "output": u.output, "cached": u.cached, "cacheCreation": u.cache_creation, "reasoning": u.reasoning,
        "costUsd": e.cost, "estimated": e.estimated,
    }  # fmt: skip


def estimate_usage(body: Mapping[str, Any], client: WireFormat, output_chars: int, known: Usage | None) -> Usage:
    """Usage when the upstream reported none (or no output): the request's tokens estimated from its
    text, the answer's from the characters relayed (about four per token)."""
    input_tokens = known.input if known is not None and known.input else 0
    if not input_tokens:
        try:
            input_tokens = estimate_tokens(FORMATS[client].parse_request(dict(body)))
        except (GatewayError, ValueError, TypeError, KeyError):
            input_tokens = 0  # a body we cannot read (it was refused anyway): nothing to estimate
    output = math.ceil(output_chars / 4)
    if known is not None:
        return replace(known, input=input_tokens, output=max(known.output, output))
    return Usage(input=input_tokens, output=output)


def build_event(
    outcome: Outcome | None,
    *,
    request_id: str,
    requested: str,
    combo: str | None,
    key: ApiKey | None,
    client: WireFormat,
    stream: bool,
    status: int,
    started: float,
    ended: float,
    ttft: float | None,
    attempts: int,
    body: Mapping[str, Any],
    prices: PriceTable,
    error: str | None = None,
) -> UsageEvent:
    """The request's event, its cost computed here and nowhere else. `started`/`ended`/`ttft`: epoch
    seconds (ttft: when the first byte of the answer was ready)."""
    usage = outcome.usage if outcome is not None else None
    answered = status < 400 and outcome is not None
    estimated = False
    if answered and outcome is not None and (usage is None or (usage.output == 0 and outcome.output_chars)):
        usage = estimate_usage(body, client, outcome.output_chars, usage)
        estimated = True
    usage = usage or Usage()
    provider = outcome.provider if outcome is not None else ""
    price = prices.lookup(provider, outcome.upstream_model) if outcome is not None and provider else None
    return UsageEvent(
        request_id=request_id,
        at=ended,
        provider=provider,
        model=outcome.model if outcome is not None else requested,
        requested=requested,
        connection_id=outcome.connection_id if outcome is not None else None,
        key_id=key.id if key is not None else None,
        combo=combo,
        client=client.value,
        stream=stream,
        status=status,
        usage=usage,
        estimated=estimated,
        cost=cost(usage, price),
        latency_ms=(ended - started) * 1000,
        ttft_ms=(ttft - started) * 1000 if ttft is not None else None,
        attempts=attempts,
        error=error if error is not None else (outcome.error if outcome is not None else None),
    )


def request_log_entry(path: str, body: Mapping[str, Any], event: UsageEvent, answer: bytes | None) -> dict[str, Any]:
    """What the opt-in request log keeps of one request: the request and the (JSON) answer, redacted;
    a stream's answer is summarised by its usage (the log never holds a second copy of a whole stream)."""
    entry: dict[str, Any] = {
        "requestId": event.request_id,
        "at": event.at,
        "path": path,
        "requested": event.requested,
        "provider": event.provider,
        "model": event.model,
        "connectionId": event.connection_id,
        "keyId": event.key_id,
        "stream": event.stream,
        "status": event.status,
        "error": event.error,
        "usage": _event_log(event),
        "request": redact(dict(body)),
    }
    if answer is not None:
        try:
            entry["response"] = redact(orjson.loads(answer[:MAX_LOGGED_ANSWER]))
        except orjson.JSONDecodeError:
            entry["response"] = f"[{len(answer)} bytes, not shown]"
    return entry
