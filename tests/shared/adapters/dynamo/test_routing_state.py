"""Contract of the DynamoDB RoutingStore, on moto's in-process backend and on its server."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.domain.routing import BreakerPhase, Claim, Policy, RateLimit, StoredReply

REGION = "us-east-1"
T = 1_800_000_010.0  # ten seconds into a minute, so rpm windows are easy to reason about
POLICY = Policy(cooldown_base=2.0, max_steps=2, breaker_threshold=3, breaker_reset=30.0)


@pytest.fixture
def store(table_names: dict[str, str], dynamo_endpoint: str | None) -> DynamoRoutingStore:
    return DynamoRoutingStore(table_names["StateTable"], REGION, dynamo_endpoint)


@pytest.fixture
def raw(table_names: dict[str, str], dynamo_endpoint: str | None) -> Any:
    """Reads one State item as DynamoDB stores it, to check what a call left behind."""
    client = botocore.session.get_session().create_client("dynamodb", region_name=REGION, endpoint_url=dynamo_endpoint)

    def get(pk: str, sk: str) -> dict[str, Any] | None:
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        item: dict[str, Any] | None = client.get_item(
            TableName=table_names["StateTable"], Key=key, ConsistentRead=True
        ).get("Item")
        return item

    return get


# --- circuit breaker ------------------------------------------------------------------------------------
def test_breaker_opens_exactly_at_threshold(store: DynamoRoutingStore) -> None:
    for count in (1, 2):
        state = store.record_failure("groq", T, 3, 30.0)
        assert (state.phase, state.failures, state.version) == (BreakerPhase.CLOSED, count, 0)
    state = store.record_failure("groq", T + 1, 3, 30.0)
    assert (state.phase, state.failures, state.version) == (BreakerPhase.OPEN, 0, 1)
    assert (state.opened_at, state.open_until) == (T + 1, T + 31)
    assert store.load(T + 1).breakers["groq"] == state


def test_success_resets_the_failure_count(store: DynamoRoutingStore) -> None:
    store.record_failure("groq", T, 3, 30.0)
    store.record_failure("groq", T, 3, 30.0)
    assert store.record_success("groq").failures == 0
    assert store.record_failure("groq", T, 3, 30.0).failures == 1


def test_success_on_an_unknown_breaker_writes_nothing(store: DynamoRoutingStore) -> None:
    state = store.record_success("groq")
    assert (state.provider, state.phase, state.failures) == ("groq", BreakerPhase.CLOSED, 0)
    assert store.load(T).breakers == {}


def test_failures_while_open_or_half_open_are_not_counted(store: DynamoRoutingStore) -> None:
    opened = store.record_failure("groq", T, 1, 30.0)
    assert opened.phase is BreakerPhase.OPEN
    assert store.record_failure("groq", T + 1, 1, 30.0) == opened
    assert store.try_probe("groq", "me", T + 30, 5.0)
    half = store.record_failure("groq", T + 31, 1, 30.0)
    assert (half.phase, half.failures, half.version, half.probe_owner) == (BreakerPhase.HALF_OPEN, 0, 2, "me")


def test_probe_only_once_open_until_has_passed_and_only_once(store: DynamoRoutingStore) -> None:
    store.record_failure("groq", T, 1, 30.0)
    assert not store.try_probe("groq", "a", T + 29.9, 5.0)
    assert store.try_probe("groq", "a", T + 30, 5.0)
    assert not store.try_probe("groq", "b", T + 30, 5.0)
    state = store.load(T + 30).breakers["groq"]
    assert (state.phase, state.probe_owner, state.probe_until) == (BreakerPhase.HALF_OPEN, "a", T + 35)


def test_no_probe_on_a_closed_or_unknown_breaker(store: DynamoRoutingStore) -> None:
    assert not store.try_probe("groq", "a", T, 5.0)
    store.record_failure("groq", T, 3, 30.0)
    assert not store.try_probe("groq", "a", T + 100, 5.0)


def test_a_lapsed_probe_can_be_reclaimed_and_its_first_owners_failure_is_then_ignored(
    store: DynamoRoutingStore,
) -> None:
    store.record_failure("groq", T, 1, 30.0)
    assert store.try_probe("groq", "a", T + 30, 5.0)
    assert not store.try_probe("groq", "b", T + 35, 5.0)  # probe_until is T+35: not lapsed yet
    assert store.try_probe("groq", "b", T + 35.5, 5.0)
    stale = store.finish_probe("groq", "a", False, T + 36, 30.0)
    assert (stale.phase, stale.probe_owner, stale.version) == (BreakerPhase.HALF_OPEN, "b", 3)


def test_a_successful_probe_closes_the_breaker(store: DynamoRoutingStore) -> None:
    store.record_failure("groq", T, 1, 30.0)
    store.try_probe("groq", "a", T + 30, 5.0)
    state = store.finish_probe("groq", "a", True, T + 31, 30.0)
    assert (state.phase, state.failures, state.probe_owner, state.probe_until, state.version) == (
        BreakerPhase.CLOSED, 0, None, 0.0, 3,
    )  # fmt: skip
    assert store.record_failure("groq", T + 32, 2, 30.0).failures == 1  # counting again


def test_a_failed_probe_opens_the_breaker_again(store: DynamoRoutingStore) -> None:
    store.record_failure("groq", T, 1, 30.0)
    store.try_probe("groq", "a", T + 30, 5.0)
    state = store.finish_probe("groq", "a", False, T + 31, 60.0)
    assert (state.phase, state.opened_at, state.open_until, state.probe_owner) == (
        BreakerPhase.OPEN, T + 31, T + 91, None,
    )  # fmt: skip
    assert not store.try_probe("groq", "b", T + 90, 5.0)
    assert store.try_probe("groq", "b", T + 91, 5.0)


def test_finish_probe_by_someone_who_never_probed_changes_nothing(store: DynamoRoutingStore) -> None:
    opened = store.record_failure("groq", T, 1, 30.0)
    assert store.finish_probe("groq", "nobody", True, T + 1, 30.0) == opened
    assert store.finish_probe("other", "nobody", True, T + 1, 30.0).phase is BreakerPhase.CLOSED
    assert "other" not in store.load(T).breakers


def test_reset_breaker_forgets_it(store: DynamoRoutingStore) -> None:
    store.record_failure("groq", T, 1, 30.0)
    store.reset_breaker("groq")
    assert store.load(T).breakers == {}
    store.reset_breaker("never-seen")


# --- cooldowns ----------------------------------------------------------------------------------------
def test_cooldown_level_doubles_then_caps(store: DynamoRoutingStore) -> None:
    now, seen = T, []
    for _ in range(4):
        cooldown = store.mark_cooldown("acct", None, now, POLICY, None, "rate_limited")
        seen.append((cooldown.until - now, cooldown.level))
        now = cooldown.until  # lapsed exactly: `until <= now`
    assert seen == [(2.0, 1), (4.0, 2), (8.0, 2), (8.0, 2)]


def test_a_hint_longer_than_the_backoff_wins(store: DynamoRoutingStore) -> None:
    cooldown = store.mark_cooldown("acct", None, T, POLICY, 30.0, "rate_limited")
    assert (cooldown.until, cooldown.level) == (T + 30, 1)
    later = store.mark_cooldown("acct", None, T + 30, POLICY, 1.0, "rate_limited")
    assert (later.until, later.level) == (T + 34, 2)  # backoff 4 s beats the 1 s hint


def test_an_active_cooldown_is_returned_untouched(store: DynamoRoutingStore) -> None:
    first = store.mark_cooldown("acct", "gpt", T, POLICY, None, "rate_limited")
    again = store.mark_cooldown("acct", "gpt", T + 1, POLICY, 60.0, "quota")
    assert again == first
    assert (first.connection_id, first.model, first.reason) == ("acct", "gpt", "rate_limited")


def test_account_and_model_cooldowns_are_separate(store: DynamoRoutingStore) -> None:
    store.mark_cooldown("acct", None, T, POLICY, None, "auth")
    store.mark_cooldown("acct", "gpt", T, POLICY, 10.0, "rate_limited")
    cooldowns = store.load(T).cooldowns
    assert set(cooldowns) == {("acct", None), ("acct", "gpt")}
    assert cooldowns[("acct", "gpt")].until == T + 10 and cooldowns[("acct", None)].until == T + 2


def test_load_drops_lapsed_cooldowns_but_keeps_their_levels(store: DynamoRoutingStore) -> None:
    store.mark_cooldown("leveled", None, T, POLICY, None, "rate_limited")
    store.mark_cooldown("levelless", None, T, Policy(1.0, 0, 3, 30.0), None, "rate_limited")  # level stays 0
    active = store.load(T + 0.5).cooldowns
    assert set(active) == {("leveled", None), ("levelless", None)}
    assert all(c.active(T + 0.5) for c in active.values())
    lapsed = store.load(T + 100).cooldowns
    assert set(lapsed) == {("leveled", None)}
    assert not lapsed[("leveled", None)].active(T + 100) and lapsed[("leveled", None)].level == 1


def test_a_level_is_forgotten_a_day_after_its_cooldown(store: DynamoRoutingStore) -> None:
    first = store.mark_cooldown("acct", None, T, POLICY, None, "rate_limited")
    day_later = first.until + 86_400 + 1
    assert store.load(day_later).cooldowns == {}
    assert store.mark_cooldown("acct", None, day_later, POLICY, None, "rate_limited").level == 1


def test_clear_cooldown_resets_the_level(store: DynamoRoutingStore) -> None:
    store.mark_cooldown("acct", None, T, POLICY, None, "rate_limited")
    store.mark_cooldown("acct", None, T + 2, POLICY, None, "rate_limited")
    store.clear_cooldown("acct", None, T + 10_000)
    assert store.load(T + 10).cooldowns == {}
    assert store.mark_cooldown("acct", None, T + 10, POLICY, None, "rate_limited").level == 1
    store.clear_cooldown("never-seen", "model", T)


def test_reset_cooldowns_of_one_connection_or_all(store: DynamoRoutingStore) -> None:
    for connection, model in (("a", None), ("a", "m1"), ("ab", None), ("b", "m2")):
        store.mark_cooldown(connection, model, T, POLICY, None, "rate_limited")
    store.record_failure("groq", T, 5, 30.0)
    assert store.reset_cooldowns("a") == 2
    assert set(store.load(T).cooldowns) == {("ab", None), ("b", "m2")}
    assert store.reset_cooldowns() == 2
    view = store.load(T)
    assert view.cooldowns == {} and set(view.breakers) == {"groq"}


# --- counters -----------------------------------------------------------------------------------------
def test_advance_cursor_returns_the_running_total(store: DynamoRoutingStore) -> None:
    assert store.advance_cursor("combo", 1) == 1
    assert store.advance_cursor("combo", 5) == 6
    assert store.advance_cursor("other", 2) == 2


def test_uses_are_counted_and_loaded_and_cursors_are_not(store: DynamoRoutingStore) -> None:
    store.add_uses("combo", "x", T)
    store.add_uses("combo", "x", T, 2)
    store.add_uses("combo", "y.with#odd chars", T)
    store.add_uses("accounts", "acct-1", T)
    store.advance_cursor("combo", 1)
    view = store.load(T)
    assert view.uses == {"combo": {"x": 3, "y.with#odd chars": 1}, "accounts": {"acct-1": 1}}
    assert view.loaded_at == T


def test_load_follows_every_page() -> None:
    class PagedClient:
        calls: list[dict[str, Any]] = []  # noqa: RUF012

        def query(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            hour = int(T // 3600)
            if "ExclusiveStartKey" not in kwargs:
                item = {"sk": {"S": f"U#{hour}#a"}, "uses": {"M": {"x": {"N": "1"}}}}
                return {"Items": [item], "LastEvaluatedKey": {"pk": {"S": "ROUTE"}, "sk": {"S": f"U#{hour}#a"}}}
            return {"Items": [{"sk": {"S": f"U#{hour}#b"}, "uses": {"M": {"y": {"N": "2"}}}}]}

    client = PagedClient()
    view = DynamoRoutingStore("State", REGION, client=client).load(T)
    assert view.uses == {"a": {"x": 1}, "b": {"y": 2}}
    assert len(client.calls) == 2 and client.calls[0]["KeyConditionExpression"] == "#pk = :pk"


def test_every_call_holds_the_given_lock(table_names: dict[str, str], dynamo_endpoint: str | None) -> None:
    lock = threading.Lock()
    store = DynamoRoutingStore(table_names["StateTable"], REGION, dynamo_endpoint, lock=lock)
    done = threading.Event()
    with lock:
        worker = threading.Thread(target=lambda: (store.advance_cursor("c", 1), done.set()))
        worker.start()
        assert not done.wait(0.3)
    assert done.wait(10)
    worker.join()


# --- rate limits --------------------------------------------------------------------------------------
def test_rpm_admits_up_to_the_limit_per_minute_window(store: DynamoRoutingStore) -> None:
    limit = RateLimit(rpm=2)
    assert store.acquire("k", T, limit, "s1", 60).admitted
    assert store.acquire("k", T + 20, limit, "s2", 60).admitted
    refused = store.acquire("k", T + 30, limit, "s3", 60)
    assert (refused.admitted, refused.limit, refused.retry_after) == (False, "rpm", 20.0)
    assert store.acquire("k", T + 50, limit, "s4", 60).admitted  # the next minute's window
    assert store.acquire("other", T + 30, limit, "s5", 60).admitted  # limits are per key


def test_rpm_without_other_limits_takes_no_slot(store: DynamoRoutingStore, raw: Any) -> None:
    admission = store.acquire("k", T, RateLimit(rpm=5), "s1", 60)
    assert admission.admitted and admission.slot_id is None
    assert raw("RL#k", "G") is None
    assert raw("RL#k", f"W#{int(T // 60)}")["count"] == {"N": "1"}


def test_min_gap_between_admitted_requests(store: DynamoRoutingStore) -> None:
    limit = RateLimit(min_gap_ms=500)
    assert store.acquire("k", T, limit, "s1", 60).admitted
    refused = store.acquire("k", T + 0.2, limit, "s2", 60)
    assert (refused.admitted, refused.limit) == (False, "gap")
    assert refused.retry_after == pytest.approx(0.3)
    assert store.acquire("k", T + 0.5, limit, "s3", 60).admitted
    assert not store.acquire("k", T + 0.9, limit, "s4", 60).admitted  # measured from the last admitted one


def test_concurrency_slots_are_held_until_released(store: DynamoRoutingStore) -> None:
    limit = RateLimit(max_concurrent=2)
    first = store.acquire("k", T, limit, "s1", 60)
    assert first.admitted and first.slot_id == "s1"
    assert store.acquire("k", T, limit, "s2", 60).admitted
    refused = store.acquire("k", T + 1, limit, "s3", 60)
    assert (refused.admitted, refused.limit, refused.retry_after) == (False, "concurrency", 1.0)
    store.release("k", "s1")
    assert store.acquire("k", T + 2, limit, "s3", 60).slot_id == "s3"


def test_concurrency_retry_after_is_the_first_slot_to_lapse(store: DynamoRoutingStore) -> None:
    limit = RateLimit(max_concurrent=1)
    store.acquire("k", T, limit, "s1", 0.5)
    refused = store.acquire("k", T + 0.25, limit, "s2", 0.5)
    assert refused.limit == "concurrency" and refused.retry_after == pytest.approx(0.25)


def test_a_slot_lapses_after_slot_seconds_when_never_released(store: DynamoRoutingStore, raw: Any) -> None:
    limit = RateLimit(max_concurrent=2)
    store.acquire("k", T, limit, "crashed-1", 10)
    store.acquire("k", T + 1, limit, "crashed-2", 10)
    assert not store.acquire("k", T + 9.9, limit, "s3", 10).admitted
    assert store.acquire("k", T + 10, limit, "s3", 10).admitted  # crashed-1's slot lapsed at T+10
    assert set(raw("RL#k", "G")["slots"]["M"]) == {"crashed-2", "s3"}  # and was swept


def test_release_of_an_unknown_slot_is_harmless(store: DynamoRoutingStore, raw: Any) -> None:
    store.release("never-limited", "s1")
    assert raw("RL#never-limited", "G") is None
    store.acquire("k", T, RateLimit(max_concurrent=1), "s1", 60)
    store.release("k", "s1")
    store.release("k", "s1")
    assert store.acquire("k", T, RateLimit(max_concurrent=1), "s2", 60).admitted


def test_an_rpm_refusal_takes_no_slot_and_moves_no_gap(store: DynamoRoutingStore, raw: Any) -> None:
    limit = RateLimit(rpm=1, min_gap_ms=1000, max_concurrent=5)
    assert store.acquire("k", T, limit, "s1", 60).admitted
    assert store.acquire("k", T + 2, limit, "s2", 60).limit == "rpm"
    gate = raw("RL#k", "G")
    assert set(gate["slots"]["M"]) == {"s1"} and float(gate["last_at"]["N"]) == T


def test_a_gap_or_concurrency_refusal_gives_its_rpm_count_back(store: DynamoRoutingStore, raw: Any) -> None:
    limit = RateLimit(rpm=2, min_gap_ms=1000, max_concurrent=1)
    assert store.acquire("k", T, limit, "s1", 60).admitted
    assert store.acquire("k", T + 0.5, limit, "s2", 60).limit == "gap"
    assert store.acquire("k", T + 1.5, limit, "s2", 60).limit == "concurrency"
    assert raw("RL#k", f"W#{int(T // 60)}")["count"] == {"N": "1"}
    store.release("k", "s1")
    assert store.acquire("k", T + 2, limit, "s2", 60).admitted  # the second of two rpm in this minute


def test_no_configured_limit_admits_without_a_write(store: DynamoRoutingStore, raw: Any) -> None:
    admission = store.acquire("k", T, RateLimit(), "s1", 60)
    assert admission.admitted and admission.slot_id is None
    assert raw("RL#k", "G") is None


# --- idempotency --------------------------------------------------------------------------------------
REPLY = StoredReply(status=201, headers={"content-type": "application/json", "x-a": "ü"}, body=b'{"ok": true}' * 50)


def test_the_first_claim_owns_later_ones_see_pending_then_the_reply(store: DynamoRoutingStore) -> None:
    assert store.claim("key:abc", "me", T, 5).owned
    pending = store.claim("key:abc", "me", T + 1, 5)
    assert not pending.owned and pending.reply is None
    store.complete("key:abc", "me", REPLY, T + 2, 5)
    done = store.claim("key:abc", "me", T + 3, 5)
    assert not done.owned and done.reply == REPLY
    assert store.claim("key:other", "me", T + 3, 5).owned  # scopes are separate


def test_a_claim_expires_after_its_ttl(store: DynamoRoutingStore) -> None:
    assert store.claim("s", "me", T, 5).owned
    assert not store.claim("s", "me", T + 4.9, 5).owned
    assert store.claim("s", "me", T + 5, 5).owned
    store.complete("s", "me", REPLY, T + 6, 5)
    assert store.claim("s", "me", T + 11, 5).owned  # a stored reply expires too


def test_abandon_lets_a_retry_claim_again(store: DynamoRoutingStore) -> None:
    assert store.claim("s", "me", T, 5).owned
    store.abandon("s", "me")
    assert store.claim("s", "me", T + 1, 5).owned
    store.abandon("never-claimed", "me")


def test_a_reply_too_large_to_keep_drops_the_claim(store: DynamoRoutingStore) -> None:
    assert store.claim("s", "me", T, 5).owned
    store.complete("s", "me", StoredReply(200, {}, os.urandom(360_000)), T + 1, 5)
    assert store.claim("s", "me", T + 2, 5).owned


def test_a_large_compressible_reply_is_kept(store: DynamoRoutingStore) -> None:
    big = StoredReply(200, {"content-type": "text/event-stream"}, b"data: {}\n\n" * 100_000, "text/event-stream")
    store.claim("s", "me", T, 5)
    store.complete("s", "me", big, T + 1, 5)
    assert store.claim("s", "me", T + 2, 5).reply == big


# --- response cache -----------------------------------------------------------------------------------
def test_cache_put_get_and_expiry(store: DynamoRoutingStore) -> None:
    assert store.cache_get("h1", T) is None
    store.cache_put("h1", REPLY, T, 60)
    assert store.cache_get("h1", T + 59) == REPLY
    assert store.cache_get("h1", T + 60) is None
    empty = StoredReply(204, {}, b"", "text/plain")
    store.cache_put("h2", empty, T, 60)
    assert store.cache_get("h2", T) == empty


def test_a_reply_too_large_is_not_cached(store: DynamoRoutingStore) -> None:
    store.cache_put("h", StoredReply(200, {}, os.urandom(360_000)), T, 60)
    assert store.cache_get("h", T) is None


# --- latency ------------------------------------------------------------------------------------------
def test_latency_buckets_add_up_per_provider(store: DynamoRoutingStore) -> None:
    minute = int(time.time() // 60)
    store.add_latency(minute, "groq", {0: 1, 3: 2})
    store.add_latency(minute, "groq", {3: 1, 7: 4, 9: 0})
    store.add_latency(minute - 1, "groq", {3: 10})
    store.add_latency(minute - 1, "openai", {12: 1})
    store.add_latency(minute - 5, "groq", {3: 100})  # before `since`
    store.add_latency(minute, "empty", {})
    assert store.load_latency(minute - 1) == {"groq": {0: 1, 3: 13, 7: 4}, "openai": {12: 1}}


def test_latency_reads_at_most_the_last_hour(store: DynamoRoutingStore) -> None:
    minute = int(time.time() // 60)
    store.add_latency(minute - 61, "groq", {1: 1})
    store.add_latency(minute - 58, "groq", {1: 2})
    assert store.load_latency(minute - 120) == {"groq": {1: 2}}


def test_a_success_does_not_clear_a_cooldown_that_is_still_active(store: DynamoRoutingStore) -> None:
    store.mark_cooldown("acct", None, T, POLICY, 30.0, "rate_limited")
    store.clear_cooldown("acct", None, T + 1)  # a request that started before the 429 succeeded
    assert store.load(T + 1).cooldowns[("acct", None)].active(T + 1)
    store.clear_cooldown("acct", None, T + 31)
    assert store.load(T + 31).cooldowns == {}


def test_use_counts_start_over_every_hour_and_expire(store: DynamoRoutingStore, table_names: dict[str, str]) -> None:
    store.add_uses("combo", "old", T)
    next_hour = (int(T // 3600) + 1) * 3600.0
    store.add_uses("combo", "new", next_hour)
    assert store.load(T).uses == {"combo": {"old": 1}}
    assert store.load(next_hour).uses == {"combo": {"new": 1}}  # a member added later is not years behind
    item = store._items.get("ROUTE", f"U#{int(T // 3600)}#combo")
    assert item is not None and item["expires_at"] == (int(T // 3600) + 2) * 3600


def test_a_map_created_for_a_first_slot_carries_the_item_expiry(store: DynamoRoutingStore) -> None:
    assert store.acquire("acct", T, RateLimit(max_concurrent=2), "s1", 60).admitted
    item = store._items.get("RL#acct", "G")
    assert item is not None and item["expires_at"] >= T + 60


def test_only_the_claims_owner_completes_or_abandons_it(store: DynamoRoutingStore) -> None:
    assert store.claim("s", "first", T, 5).owned
    assert store.claim("s", "second", T + 6, 5).owned  # the first claim lapsed; a retry took it over
    store.abandon("s", "first")  # the first request failed late: the retry's claim stays
    store.complete("s", "first", REPLY, T + 7, 5)  # nor does its late answer replace the retry's
    assert store.claim("s", "third", T + 7, 5) == Claim(owned=False, reply=None)
    store.complete("s", "second", REPLY, T + 8, 5)
    assert store.claim("s", "third", T + 9, 5).reply == REPLY


def test_a_lapsed_probers_success_still_closes_the_breaker(store: DynamoRoutingStore) -> None:
    store.record_failure("groq", T, 1, 10.0)
    assert store.try_probe("groq", "slow", T + 10, 5.0)
    assert store.try_probe("groq", "next", T + 16, 5.0)  # the slow probe's claim lapsed
    assert store.finish_probe("groq", "slow", True, T + 17, 10.0).phase is BreakerPhase.CLOSED
    assert store.finish_probe("groq", "next", False, T + 18, 10.0).phase is BreakerPhase.CLOSED  # too late
