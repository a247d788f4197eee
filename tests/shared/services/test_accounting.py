"""Accounting (shared/services/accounting.py): events, budgets and counted quota windows, with real stores
on moto's server (the flusher writes from worker threads while routing reloads from others)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.spend import DynamoSpendStore
from shared.adapters.dynamo.usage_store import DynamoUsageStore
from shared.domain.budgets import parse_budget
from shared.domain.config import ApiKey, Connection
from shared.domain.pricing import Price, PriceTable
from shared.domain.quota import QuotaCount, parse_quota_rules
from shared.domain.redact import REDACTED
from shared.domain.usage import Usage, UsageEvent
from shared.errors import RateLimited
from shared.providers.spec import WireFormat
from shared.services import accounting
from shared.services.accounting import Accountant, build_event, request_log_entry
from shared.services.chat import Outcome
from shared.services.routing_state import RoutingState

pytestmark = pytest.mark.anyio

REGION = "us-east-1"
NOW = datetime(2026, 11, 22, 15, tzinfo=UTC).timestamp()
DAY = "2026-11-22"
DAY_START = datetime(2026, 11, 22, tzinfo=UTC).timestamp()
DAY_END = datetime(2026, 11, 23, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounting, "RETRY_SECONDS", (0.01, 0.01, 0.01, 0.01, 0.01))


@pytest.fixture
def stores(state_table: str, moto_endpoint: str, atomic_moto_writes: None) -> dict[str, Any]:
    routing = DynamoRoutingStore(state_table, REGION, moto_endpoint)
    return {
        "usage": DynamoUsageStore(f"Usage-{state_table}", REGION, moto_endpoint),
        "spend": DynamoSpendStore(routing.items),
        "routing": routing,
    }


def make(stores: Mapping[str, Any], usage: Any = None) -> tuple[Accountant, RoutingState]:
    state = RoutingState(stores["routing"], clock=lambda: NOW)
    accountant = Accountant(
        usage if usage is not None else stores["usage"], stores["spend"], state, stores["routing"], clock=lambda: NOW
    )
    return accountant, state


def api_key(**budget: Any) -> ApiKey:
    return ApiKey("k1", "team", "hash", "sk-…abcd", "2026-11-01T00:00:00Z", True, budget=parse_budget(budget))


def connection(quotas: list[dict[str, Any]]) -> Connection:
    return Connection("c1", "openai", "main", None, None, 1, True, quotas=parse_quota_rules(quotas))


def event(request_id: str, cost: float = 0.0, status: int = 200, tokens: int = 30) -> UsageEvent:
    return UsageEvent(
        request_id=request_id, at=NOW, provider="openai", model="openai/gpt-4o", requested="gpt-4o",
        connection_id="c1", key_id="k1", combo=None, client="openai", stream=False, status=status,
        usage=Usage(input=tokens - 10, output=10), estimated=False, cost=cost, latency_ms=5.0, ttft_ms=2.0,
    )  # fmt: skip


# --- recording ---------------------------------------------------------------------------------------------
async def test_record_returns_at_once_and_drain_writes(stores: dict[str, Any]) -> None:
    accountant, _ = make(stores)
    accountant.record(event("r1"), key=None, conn=None)
    accountant.record(event("r2"), key=None, conn=None)
    assert (accountant.recorded, accountant.written, accountant.pending) == (2, 0, 3)
    assert stores["usage"].events(DAY) == []  # nothing written before the loop gave the flusher a turn
    await accountant.drain()
    assert sorted(e.request_id for e in stores["usage"].events(DAY)) == ["r1", "r2"]
    assert (accountant.written, accountant.pending, accountant.write_errors) == (2, 0, 0)


async def test_a_request_log_is_written_with_the_event(stores: dict[str, Any]) -> None:
    accountant, _ = make(stores)
    # logs expire `log_hours` after the request; reading hides expired ones by the real clock
    accountant.record(event("r1"), key=None, conn=None, log_entry={"path": "/v1/chat/completions"}, log_hours=10**6)
    await accountant.drain()
    assert stores["usage"].logs(DAY, 10) == ([{"path": "/v1/chat/completions"}], None)


# --- budgets -----------------------------------------------------------------------------------------------
async def test_no_budget_no_check(stores: dict[str, Any]) -> None:
    accountant, _ = make(stores)
    assert await accountant.check_budget(None) is None
    assert await accountant.check_budget(ApiKey("k1", "", "h", "", "", True)) is None


async def test_budget_warns_then_refuses_until_the_period_ends(stores: dict[str, Any]) -> None:
    accountant, _ = make(stores)
    key = api_key(dailyLimitUsd=1.0, monthlyLimitUsd=100.0, warningThreshold=0.5)
    status = await accountant.check_budget(key)
    assert status is not None
    assert [(p.name, p.spent) for p in status.periods] == [("daily", 0.0), ("monthly", 0.0)]
    assert status.warnings == []

    accountant.record(event("r1", cost=0.625), key=key, conn=None)
    await accountant.drain()
    status = await accountant.check_budget(key)
    assert status is not None
    assert [(p.name, p.spent) for p in status.warnings] == [("daily", 0.625)]

    accountant.record(event("r2", cost=0.375), key=key, conn=None)
    await accountant.drain()
    with pytest.raises(RateLimited) as caught:
        await accountant.check_budget(key)
    assert caught.value.code == "budget_exceeded"
    assert caught.value.status == 429
    assert caught.value.retry_after == DAY_END - NOW == 9 * 3600
    assert stores["spend"].spend("k1", ["daily:2026-11-22", "monthly:2026-11"]) == {
        "daily:2026-11-22": 1.0,
        "monthly:2026-11": 1.0,
    }


async def test_a_failed_free_request_adds_no_spend(stores: dict[str, Any]) -> None:
    accountant, _ = make(stores)
    key = api_key(dailyLimitUsd=1.0)
    accountant.record(event("r1", cost=0.0, status=500), key=key, conn=None)
    await accountant.drain()
    assert stores["spend"].spend("k1", ["daily:2026-11-22"]) == {}


# --- retries -----------------------------------------------------------------------------------------------
class Flaky:
    """The real usage store, but `method` raises its first `failures` calls."""

    def __init__(self, store: DynamoUsageStore, method: str, failures: int) -> None:
        self._store = store
        self._method = method
        self.failures = failures
        self.calls: dict[str, int] = {}

    def _maybe_fail(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == self._method and self.failures > 0:
            self.failures -= 1
            raise ConnectionError(f"{name} failed")

    def put_events(self, events: Sequence[UsageEvent], expires_at: float) -> None:
        self._maybe_fail("put_events")
        self._store.put_events(events, expires_at)

    def put_log(self, at: float, request_id: str, entry: Mapping[str, Any], expires_at: float) -> None:
        self._maybe_fail("put_log")
        self._store.put_log(at, request_id, entry, expires_at)


async def test_a_failing_event_write_is_retried_and_written_once(stores: dict[str, Any]) -> None:
    flaky = Flaky(stores["usage"], "put_events", failures=2)
    accountant, _ = make(stores, flaky)
    key = api_key(dailyLimitUsd=10.0)
    accountant.record(event("r1", cost=0.25), key=key, conn=None)
    await accountant.drain()
    assert [e.request_id for e in stores["usage"].events(DAY)] == ["r1"]
    assert (flaky.calls["put_events"], accountant.write_errors, accountant.written) == (3, 2, 1)
    assert stores["spend"].spend("k1", ["daily:2026-11-22"]) == {"daily:2026-11-22": 0.25}


async def test_a_retry_repeats_no_add(stores: dict[str, Any]) -> None:
    # the log is the last step: when it fails, the event, the spend and the quota count have landed
    flaky = Flaky(stores["usage"], "put_log", failures=2)
    accountant, _ = make(stores, flaky)
    key = api_key(dailyLimitUsd=10.0)
    conn = connection([{"window": "daily", "requests": 5}])
    accountant.record(event("r1", cost=0.25), key=key, conn=conn, log_entry={"n": 1}, log_hours=10**6)
    await accountant.drain()
    assert (flaky.calls, accountant.write_errors) == ({"put_events": 1, "put_log": 3}, 2)
    assert stores["spend"].spend("k1", ["daily:2026-11-22"]) == {"daily:2026-11-22": 0.25}
    assert stores["routing"].load(NOW).quota_counts[("c1", "daily")] == QuotaCount(DAY_START, 30, 1)
    assert stores["usage"].logs(DAY, 10) == ([{"n": 1}], None)


async def test_a_store_that_keeps_failing_is_given_up_on(stores: dict[str, Any]) -> None:
    flaky = Flaky(stores["usage"], "put_events", failures=100)
    accountant, _ = make(stores, flaky)
    accountant.record(event("r1"), key=None, conn=None)
    await accountant.drain()
    assert (flaky.calls["put_events"], accountant.write_errors, accountant.written, accountant.pending) == (6, 6, 0, 0)


# --- counted quota windows ---------------------------------------------------------------------------------
async def test_configured_windows_are_counted_and_block_at_the_limit(stores: dict[str, Any]) -> None:
    accountant, state = make(stores)
    conn = connection([{"window": "daily", "requests": 2}, {"window": "rolling", "hours": 5, "tokens": 1000}])
    assert state.quota_block(conn, NOW) is None
    accountant.record(event("r1"), key=None, conn=conn)
    accountant.record(event("failed", status=502), key=None, conn=conn)  # a failed request is not counted
    await accountant.drain()
    assert state.quota_block(conn, NOW) is None
    assert state.view().quota_counts[("c1", "daily")] == QuotaCount(DAY_START, 30, 1)

    accountant.record(event("r2"), key=None, conn=conn)
    await accountant.drain()
    blocked = state.quota_block(conn, NOW)
    assert blocked is not None
    window, resets_at = blocked
    assert (window.name, window.used, window.limit, window.unit, window.limited) == ("daily", 2, 2, "requests", True)
    assert resets_at == DAY_END
    stored = stores["routing"].load(NOW).quota_counts
    assert stored == {("c1", "daily"): QuotaCount(DAY_START, 60, 2), ("c1", "rolling"): QuotaCount(NOW, 60, 2)}
    assert state.quota_block(conn, DAY_END) is None  # the next day starts afresh


# --- build_event / request_log_entry -----------------------------------------------------------------------
PRICES = PriceTable({("openai", "gpt-4o"): Price(input=2.5, output=10.0)})
BODY = {"model": "fast", "messages": [{"role": "user", "content": "x" * 40}]}


def built(outcome: Outcome | None, status: int = 200, **overrides: Any) -> UsageEvent:
    kwargs: dict[str, Any] = dict(
        request_id="r1", requested="fast", combo="fast", key=api_key(dailyLimitUsd=1), client=WireFormat.OPENAI,
        stream=True, status=status, started=NOW, ended=NOW + 1.5, ttft=NOW + 0.25, attempts=2, body=BODY,
        prices=PRICES,
    )  # fmt: skip
    kwargs.update(overrides)
    return build_event(outcome, **kwargs)


def answered(usage: Usage | None, output_chars: int = 0) -> Outcome:
    return Outcome(
        provider="openai", model="openai/gpt-4o", connection_id="c1", status=200, usage=usage,
        upstream_model="gpt-4o", output_chars=output_chars,
    )  # fmt: skip


def test_build_event_prices_the_reported_usage() -> None:
    e = built(answered(Usage(input=1000, output=500)))
    assert e == UsageEvent(
        request_id="r1", at=NOW + 1.5, provider="openai", model="openai/gpt-4o", requested="fast",
        connection_id="c1", key_id="k1", combo="fast", client="openai", stream=True, status=200,
        usage=Usage(input=1000, output=500), estimated=False, cost=0.0075, latency_ms=1500.0, ttft_ms=250.0,
        attempts=2, error=None,
    )  # fmt: skip


def test_build_event_estimates_when_the_upstream_reports_no_usage() -> None:
    e = built(answered(None, output_chars=10))
    # input: 4 for the message's framing + 40 characters / 4; output: ceil(10 / 4)
    assert (e.usage, e.estimated) == (Usage(input=14, output=3), True)
    assert e.cost == (14 * 2.5 + 3 * 10.0) / 1e6


def test_build_event_estimates_only_the_missing_output() -> None:
    e = built(answered(Usage(input=500, output=0, cached=100), output_chars=41))
    assert (e.usage, e.estimated) == (Usage(input=500, output=11, cached=100), True)


def test_build_event_of_a_failed_request() -> None:
    e = built(None, status=502, ttft=None, error="upstream down")
    assert (e.provider, e.model, e.connection_id, e.status, e.error) == ("", "fast", None, 502, "upstream down")
    assert (e.usage, e.estimated, e.cost, e.ttft_ms, e.failed) == (Usage(), False, 0.0, None, True)


def test_build_event_does_not_estimate_a_refused_answer() -> None:
    outcome = answered(None, output_chars=100)
    e = built(outcome, status=429)
    assert (e.usage, e.estimated, e.cost, e.failed) == (Usage(), False, 0.0, True)
    errored = built(Outcome(provider="openai", upstream_model="gpt-4o", error="cut"), status=200)
    assert errored.error == "cut"


def test_request_log_entry_redacts_the_request_and_the_answer() -> None:
    body = {"model": "fast", "api_key": "hunter2", "max_tokens": 64, "messages": [{"content": "sk-" + "a" * 30}]}
    answer = orjson.dumps({"id": "x", "token": "secret", "usage": {"total_tokens": 9}})
    e = built(answered(Usage(input=1, output=2)))
    entry = request_log_entry("/v1/chat/completions", body, e, answer)
    assert entry["request"] == {
        "model": "fast",
        "api_key": REDACTED,
        "max_tokens": 64,
        "messages": [{"content": REDACTED}],
    }
    assert entry["response"] == {"id": "x", "token": REDACTED, "usage": {"total_tokens": 9}}
    assert (entry["requestId"], entry["path"], entry["keyId"], entry["status"]) == (
        "r1",
        "/v1/chat/completions",
        "k1",
        200,
    )
    assert entry["usage"]["costUsd"] == e.cost
    assert "hunter2" not in orjson.dumps(entry).decode()


def test_request_log_entry_of_a_non_json_or_missing_answer() -> None:
    e = built(answered(Usage(input=1, output=2)))
    assert request_log_entry("/v1/x", {}, e, b"data: {}\n\n")["response"] == "[10 bytes, not shown]"
    assert "response" not in request_log_entry("/v1/x", {}, e, None)
    assert math.isclose(request_log_entry("/v1/x", {}, e, None)["at"], NOW + 1.5)


async def test_inline_writes_go_in_slices_and_let_requests_run_between_them(tmp_path: Any) -> None:
    import asyncio

    from shared.adapters.sqlite_usage import SqliteSpendStore, SqliteUsageStore

    usage = SqliteUsageStore(tmp_path / "usage.sqlite3")
    accountant = Accountant(
        usage, SqliteSpendStore(tmp_path / "usage.sqlite3"), RoutingState(None), None, clock=lambda: NOW, inline=True
    )
    key = api_key(dailyLimitUsd=100)
    for n in range(150):
        accountant.record(event(f"r{n}", cost=0.01), key=key, conn=None)
    seen: set[int] = set()

    async def request_running_meanwhile() -> None:
        while True:
            seen.add(accountant.written)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(request_running_meanwhile())
    await accountant.drain()
    other.cancel()
    assert len(usage.events(DAY)) == 150 and accountant.written == 150
    assert {64, 128} <= seen  # the loop ran between the slices (64, 64, 22)
    assert await accountant.check_budget(key) is not None  # the spend landed too: $1.50 of $100
    periods = (await accountant.check_budget(key)).periods  # type: ignore[union-attr]
    assert math.isclose(periods[0].spent, 1.5, abs_tol=1e-9)
