"""Usage events summed into per-group totals (shared/domain/usage.py)."""

from __future__ import annotations

from shared.domain.usage import Usage, UsageEvent, UsageTotals, merge, summarise, totals_of

USAGE = Usage(input=100, output=20, cached=10, cache_creation=5, reasoning=3)


def event(
    request_id: str = "r1",
    *,
    provider: str = "openai",
    model: str = "openai/gpt-4o",
    conn: str | None = "c1",
    key: str | None = "k1",
    status: int = 200,
    usage: Usage = USAGE,
    cost: float = 0.5,
    estimated: bool = False,
    latency_ms: float = 120.0,
    ttft_ms: float | None = 40.0,
    error: str | None = None,
) -> UsageEvent:
    return UsageEvent(
        request_id=request_id, at=1_800_000_000.0, provider=provider, model=model, requested=model,
        connection_id=conn, key_id=key, combo=None, client="openai-chat", stream=False, status=status,
        usage=usage, estimated=estimated, cost=cost, latency_ms=latency_ms, ttft_ms=ttft_ms, error=error,
    )  # fmt: skip


def test_usage_total_is_input_plus_output() -> None:
    assert Usage(input=100, output=20, cached=10, reasoning=3).total == 120


def test_an_event_fails_on_a_4xx_or_5xx_or_an_error_after_a_200() -> None:
    assert not event(status=200).failed
    assert not event(status=399).failed
    assert event(status=400).failed
    assert event(status=502).failed
    assert event(status=200, error="stream cut").failed


def test_totals_of_one_event_carries_every_count() -> None:
    t = totals_of(event())
    assert t == UsageTotals(
        provider="openai", model="openai/gpt-4o", connection_id="c1", key_id="k1", requests=1, errors=0,
        input=100, output=20, cached=10, cache_creation=5, reasoning=3, cost=0.5, estimated=0,
        latency_ms=120.0, ttft_ms=40.0, ttft_count=1,
    )  # fmt: skip


def test_totals_of_a_failed_estimated_event_without_ttft_or_ids() -> None:
    t = totals_of(event(conn=None, key=None, status=500, estimated=True, ttft_ms=None))
    assert (t.connection_id, t.key_id) == ("", "")
    assert (t.requests, t.errors, t.estimated, t.ttft_ms, t.ttft_count) == (1, 1, 1, 0.0, 0)


def test_plus_adds_every_count_and_keeps_the_left_group() -> None:
    a = UsageTotals("p", "m", "c", "k", 1, 0, 10, 2, 1, 0, 1, 0.25, 0, 100.0, 10.0, 1)
    b = UsageTotals("x", "y", "z", "w", 2, 1, 5, 3, 0, 4, 0, 0.5, 1, 50.0, 0.0, 0)
    assert a.plus(b) == UsageTotals("p", "m", "c", "k", 3, 1, 15, 5, 1, 4, 1, 0.75, 1, 150.0, 10.0, 1)


def test_summarise_sums_per_group_in_sorted_order() -> None:
    events = [
        event("1", provider="openai", conn="c2", cost=0.25),
        event("2", provider="anthropic", model="anthropic/claude", cost=1.0),
        event("3", provider="openai", conn="c2", status=429, ttft_ms=None, cost=0.0),
        event("4", provider="openai", conn="c1"),
    ]
    groups = summarise(events)
    assert [g.group for g in groups] == [
        ("anthropic", "anthropic/claude", "c1", "k1"),
        ("openai", "openai/gpt-4o", "c1", "k1"),
        ("openai", "openai/gpt-4o", "c2", "k1"),
    ]
    c2 = groups[2]
    assert (c2.requests, c2.errors, c2.input, c2.output, c2.cost) == (2, 1, 200, 40, 0.25)
    assert (c2.latency_ms, c2.ttft_ms, c2.ttft_count) == (240.0, 40.0, 1)
    assert groups[1] == totals_of(event("4"))


def test_summarise_of_nothing_is_empty() -> None:
    assert summarise([]) == []


def test_merge_sums_the_same_group_across_periods() -> None:
    hour1 = summarise([event("1"), event("2", key="k2")])
    hour2 = summarise([event("3"), event("4", key="k2"), event("5", key="k3")])
    day = merge(hour1 + hour2)
    assert [g.key_id for g in day] == ["k1", "k2", "k3"]
    assert [g.requests for g in day] == [2, 2, 1]
    assert day[0] == totals_of(event()).plus(totals_of(event()))
    assert day[2] == totals_of(event(key="k3"))


def test_merge_equals_summarising_all_events_at_once() -> None:
    events = [event(str(i), key=f"k{i % 3}", status=200 + 300 * (i % 2)) for i in range(9)]
    assert merge(summarise(events[:4]) + summarise(events[4:])) == summarise(events)
    assert merge([]) == []
