"""Quota windows: live readings, configured rules and the gateway's own counts (shared/domain/quota.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.quota import AccountQuota, LiveWindow, QuotaCount, QuotaRule, counted_window, parse_quota_rules
from shared.domain.windows import WindowKind

NOW = datetime(2026, 11, 22, 15, tzinfo=UTC).timestamp()
TODAY = datetime(2026, 11, 22, tzinfo=UTC).timestamp()
TOMORROW = TODAY + 86_400


# --- LiveWindow.blocks / AccountQuota.blocking -------------------------------------------------------------
def test_a_limited_window_blocks_until_it_resets() -> None:
    w = LiveWindow("5h", "headers", limited=True, resets_at=NOW + 60)
    assert w.blocks(NOW)
    assert w.blocks(NOW + 59.9)
    assert not w.blocks(NOW + 60)


def test_a_limited_window_without_a_reset_time_blocks() -> None:
    assert LiveWindow("7d", "poll", limited=True).blocks(NOW + 10**9)


def test_used_percent_blocks_at_the_skip_threshold() -> None:
    w = LiveWindow("5h", "headers", used_percent=95.0, resets_at=NOW + 60)
    assert not w.blocks(NOW)
    assert w.blocks(NOW, skip_at_percent=95.0)
    assert not w.blocks(NOW, skip_at_percent=95.1)
    assert LiveWindow("5h", "headers", used_percent=100.0).blocks(NOW)
    assert not LiveWindow("5h", "headers").blocks(NOW, skip_at_percent=0.0)  # nothing known: no block


def test_blocking_is_the_window_resetting_last() -> None:
    soon = LiveWindow("5h", "headers", limited=True, resets_at=NOW + 60)
    later = LiveWindow("7d", "headers", limited=True, resets_at=NOW + 3600)
    free = LiveWindow("daily", "headers", used_percent=10.0, resets_at=NOW + 7200)
    quota = AccountQuota("c1", (soon, later, free), NOW)
    assert quota.blocking(NOW) is later
    assert quota.blocking(NOW + 3600) is None
    assert AccountQuota("c1", (soon, free)).blocking(NOW, skip_at_percent=10.0) is free


def test_a_window_without_reset_time_outlasts_every_other() -> None:
    forever = LiveWindow("premium", "poll", limited=True)
    later = LiveWindow("7d", "headers", limited=True, resets_at=NOW + 3600)
    assert AccountQuota("c1", (later, forever)).blocking(NOW) is forever
    assert AccountQuota("c1").blocking(NOW) is None


# --- parse_quota_rules ------------------------------------------------------------------------------------
def test_parse_rules_reads_windows_and_limits() -> None:
    rules = parse_quota_rules(
        [{"window": "rolling", "hours": 5, "tokens": 1000}, {"window": "daily", "requests": 50, "tokens": 9}]
    )
    assert [(r.name, r.tokens, r.requests) for r in rules] == [("rolling", 1000, None), ("daily", 9, 50)]
    assert rules[0].spec.hours == 5.0
    assert rules[0].to_data() == {"window": "rolling", "hours": 5, "tokens": 1000}
    assert rules[1].to_data() == {
        "window": "daily",
        "resetTime": "00:00",
        "timezone": "UTC",
        "tokens": 9,
        "requests": 50,
    }
    assert parse_quota_rules([]) == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"window": "daily"}, "quotas must be a list of windows"),
        (["daily"], "quotas[0] must be an object"),
        ([{"window": "hourly", "tokens": 1}], "quotas[0]: window must be one of"),
        ([{"window": "daily"}], "quotas[0] needs a limit: tokens and/or requests"),
        ([{"window": "daily", "tokens": None}], "quotas[0] needs a limit: tokens and/or requests"),
        ([{"window": "daily", "tokens": 0}], "quotas[0].tokens must be a positive whole number, got 0"),
        ([{"window": "daily", "tokens": -5}], "quotas[0].tokens must be a positive whole number, got -5"),
        ([{"window": "daily", "requests": 1.5}], "quotas[0].requests must be a positive whole number, got 1.5"),
        ([{"window": "daily", "requests": "10"}], "quotas[0].requests must be a positive whole number, got '10'"),
        ([{"window": "daily", "requests": True}], "quotas[0].requests must be a positive whole number, got True"),
        (
            [{"window": "daily", "tokens": 1}, {"window": "daily", "resetTime": "06:00", "requests": 2}],
            "quotas[1]: only one daily window per connection",
        ),
    ],
)
def test_parse_rules_refuses_naming_entry_and_field(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_quota_rules(value)


# --- counted_window ---------------------------------------------------------------------------------------
DAILY = parse_quota_rules([{"window": "daily", "tokens": 1000, "requests": 10}])[0]
ROLLING = parse_quota_rules([{"window": "rolling", "hours": 5, "tokens": 1000}])[0]


def test_a_count_of_the_current_day_is_shown_with_its_tightest_limit() -> None:
    w = counted_window(DAILY, QuotaCount(TODAY + 60, tokens=500, requests=9), NOW)
    assert w == LiveWindow(
        name="daily", source="counter", used_percent=90.0, used=9, limit=10, remaining=1, unit="requests",
        resets_at=TOMORROW, limited=False,
    )  # fmt: skip
    tokens_tighter = counted_window(DAILY, QuotaCount(TODAY, tokens=950, requests=2), NOW)
    assert (tokens_tighter.unit, tokens_tighter.used, tokens_tighter.limit) == ("tokens", 950, 1000)
    assert (tokens_tighter.used_percent, tokens_tighter.remaining) == (95.0, 50)


def test_a_calendar_count_from_an_earlier_period_has_reset() -> None:
    w = counted_window(DAILY, QuotaCount(TODAY - 1, tokens=5000, requests=10), NOW)
    # nothing used: the first limit (tokens) is shown
    assert (w.used, w.used_percent, w.unit, w.remaining) == (0, 0.0, "tokens", 1000)
    assert (w.limited, w.resets_at) == (False, TOMORROW)


def test_a_calendar_window_without_count_still_resets_at_the_period_end() -> None:
    w = counted_window(DAILY, None, NOW)
    assert (w.used, w.limited, w.resets_at) == (0, False, TOMORROW)


def test_limited_exactly_at_the_limit() -> None:
    assert not counted_window(DAILY, QuotaCount(TODAY, 0, 9), NOW).limited
    at_limit = counted_window(DAILY, QuotaCount(TODAY, 0, 10), NOW)
    assert (at_limit.limited, at_limit.remaining, at_limit.used_percent) == (True, 0, 100.0)
    over = counted_window(DAILY, QuotaCount(TODAY, 1200, 3), NOW)
    assert (over.limited, over.unit, over.remaining, over.used_percent) == (True, "tokens", 0, 120.0)


def test_a_rolling_window_counts_until_five_hours_after_its_start() -> None:
    start = NOW - 4 * 3600
    w = counted_window(ROLLING, QuotaCount(start, tokens=1000, requests=3), NOW)
    assert (w.name, w.used, w.limited, w.resets_at) == ("rolling", 1000, True, start + 5 * 3600)
    assert ROLLING.spec.kind is WindowKind.ROLLING


def test_a_rolling_window_expires_and_then_has_no_reset_time() -> None:
    start = NOW - 5 * 3600
    w = counted_window(ROLLING, QuotaCount(start, tokens=1000, requests=3), NOW)
    assert (w.used, w.limited, w.resets_at, w.remaining) == (0, False, None, 1000)
    assert counted_window(ROLLING, None, NOW).resets_at is None
    # just before expiry it still counts
    assert counted_window(ROLLING, QuotaCount(start + 1, 1000, 3), NOW).limited


def test_rule_name_is_the_window_kind() -> None:
    assert QuotaRule(DAILY.spec, tokens=1).name == "daily"
