"""Live quota windows from the headers of Claude and Codex answers and from the three usage documents, in
the shapes the providers send (see shared/domain/live_quota.py for where each shape was read)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.domain.live_quota import (
    window_name,
    windows_from_claude_usage,
    windows_from_codex_usage,
    windows_from_copilot_user,
    windows_from_headers,
)
from shared.domain.quota import LiveWindow
from tests.fakes.quota_endpoints import (
    claude_usage,
    codex_usage,
    codex_window,
    copilot_free,
    copilot_paid,
    copilot_snapshot,
)

NOW = 1_790_000_000.0
CLAUDE = "anthropic-ratelimit-unified-"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def by_name(windows: tuple[LiveWindow, ...]) -> dict[str, LiveWindow]:
    return {w.name: w for w in windows}


# ----- headers: nothing to read --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json", "x-request-id": "req_1"},
        # An API-key answer: Anthropic's per-minute limits are not subscription windows.
        {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-tokens-remaining": "40000"},
        {"x-ratelimit-remaining-requests": "99", "openai-processing-ms": "12"},
    ],
)
def test_an_answer_without_quota_headers_has_no_windows(headers: dict[str, str]) -> None:
    assert windows_from_headers(headers, NOW) == ()


# ----- headers: Claude -------------------------------------------------------------------------------------------


def test_claude_unified_headers_give_the_5h_and_7d_windows_in_percent() -> None:
    headers = {
        CLAUDE + "status": "allowed",
        CLAUDE + "5h-status": "allowed",
        CLAUDE + "5h-reset": "1790014400",
        CLAUDE + "5h-utilization": "0.42",
        CLAUDE + "7d-status": "allowed_warning",  # close to the limit, not at it
        CLAUDE + "7d-reset": "1790400000",
        CLAUDE + "7d-utilization": "0.91",
        CLAUDE + "representative-claim": "five_hour",
        CLAUDE + "fallback-percentage": "0.5",
        CLAUDE + "reset": "1790014400",
        CLAUDE + "overage-status": "rejected",  # extra usage is off: not a window
        CLAUDE + "overage-disabled-reason": "org_level_disabled",
        "content-type": "text/event-stream",
    }
    assert windows_from_headers(headers, NOW) == (
        LiveWindow("5h", "headers", used_percent=42.0, resets_at=1790014400.0),
        LiveWindow("7d", "headers", used_percent=91.0, resets_at=1790400000.0),
    )


def test_header_names_are_read_case_insensitively() -> None:
    headers = httpx.Headers(
        {"Anthropic-Ratelimit-Unified-5h-Utilization": "0.25", "ANTHROPIC-RATELIMIT-UNIFIED-5H-RESET": "1790014400"}
    )
    assert windows_from_headers(headers, NOW) == (LiveWindow("5h", "headers", 25.0, resets_at=1790014400.0),)
    title_case = {"X-Codex-Primary-Used-Percent": "10", "X-Codex-Primary-Window-Minutes": "300"}
    assert [w.name for w in windows_from_headers(title_case, NOW)] == ["5h"]


@pytest.mark.parametrize(
    ("status", "utilization", "used", "limited"),
    [
        ("rejected", "0.97", 97.0, True),  # the service said no, whatever the figure
        ("allowed", "1.0", 100.0, True),  # used up
        ("allowed", "1.02", 100.0, True),  # over the limit: clamped to 100
        ("allowed_warning", "0.999", 99.9, False),
        ("", "0.5", 50.0, False),  # no status header at all
    ],
)
def test_a_claude_window_is_limited_when_rejected_or_used_up(
    status: str, utilization: str, used: float, limited: bool
) -> None:
    headers = {CLAUDE + "5h-utilization": utilization, CLAUDE + "5h-reset": "1790014400"}
    if status:
        headers[CLAUDE + "5h-status"] = status
    (window,) = windows_from_headers(headers, NOW)
    assert (window.used_percent, window.limited) == (used, limited)


@pytest.mark.parametrize(("fraction", "percent"), [("0.07", 7.0), ("0.123456", 12.35), ("0", 0.0), ("-0.2", 0.0)])
def test_claude_fractions_become_percent_rounded_to_hundredths(fraction: str, percent: float) -> None:
    (window,) = windows_from_headers({CLAUDE + "7d-utilization": fraction}, NOW)
    assert window.used_percent == percent and window.resets_at is None


def test_a_rejected_status_without_a_utilization_still_gives_a_limited_window() -> None:
    headers = {CLAUDE + "5h-status": "rejected", CLAUDE + "5h-reset": "1790014400"}
    assert windows_from_headers(headers, NOW) == (LiveWindow("5h", "headers", resets_at=1790014400.0, limited=True),)


def test_model_scoped_claude_windows_keep_their_model_in_the_name() -> None:
    headers = {
        CLAUDE + "5h-utilization": "0.1",
        CLAUDE + "7d_oi-utilization": "1.0",
        CLAUDE + "7d_oi-status": "rejected",
        CLAUDE + "7d-sonnet-utilization": "0.02",
        CLAUDE + "7d-sonnet-reset": "1790400000",
    }
    windows = by_name(windows_from_headers(headers, NOW))
    assert list(windows) == ["5h", "7d_oi", "7d_sonnet"]
    assert windows["7d_oi"].limited and not windows["5h"].limited
    assert windows["7d_sonnet"] == LiveWindow("7d_sonnet", "headers", 2.0, resets_at=1790400000.0)


def test_a_unified_rejection_without_window_headers_keeps_the_account_out_until_the_unified_reset() -> None:
    headers = {CLAUDE + "status": "rejected", CLAUDE + "reset": "1790014400"}
    assert windows_from_headers(headers, NOW) == (
        LiveWindow("unified", "headers", resets_at=1790014400.0, limited=True),
    )


def test_an_overage_only_rejection_limits_no_window() -> None:
    # 5h and 7d are fine; only pay-as-you-go extra usage is refused (CLIProxyAPI's overage-only case).
    headers = {
        CLAUDE + "status": "rejected",
        CLAUDE + "reset": "1790014400",
        CLAUDE + "5h-status": "allowed",
        CLAUDE + "5h-utilization": "0.3",
        CLAUDE + "7d-status": "allowed",
        CLAUDE + "7d-utilization": "0.6",
        CLAUDE + "overage-status": "rejected",
    }
    windows = windows_from_headers(headers, NOW)
    assert [w.name for w in windows] == ["5h", "7d"]
    assert not any(w.limited for w in windows)


def test_unreadable_claude_values_are_dropped_field_by_field() -> None:
    headers = {
        CLAUDE + "5h-utilization": "lots",
        CLAUDE + "5h-reset": "soon",
        CLAUDE + "7d-utilization": "0.5",
        CLAUDE + "7d-reset": "2026-09-26T06:00:00Z",  # an ISO instant instead of epoch seconds
        CLAUDE + "1h-reset": "1790014400",  # a reset alone says nothing about use
    }
    assert windows_from_headers(headers, NOW) == (LiveWindow("7d", "headers", 50.0, resets_at=at(2026, 9, 26, 6)),)


# ----- headers: Codex ---------------------------------------------------------------------------------------------


def test_codex_headers_name_windows_from_their_length_and_resolve_relative_resets() -> None:
    headers = {
        "x-codex-primary-used-percent": "42",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": "3600",
        "x-codex-secondary-used-percent": "94.5",
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-at": "1790400000",
        "x-codex-plan-type": "plus",
        "x-codex-active-limit": "premium",
        "x-codex-credits-has-credits": "False",
    }
    assert windows_from_headers(headers, NOW) == (
        LiveWindow("5h", "headers", 42.0, resets_at=NOW + 3600),
        LiveWindow("7d", "headers", 94.5, resets_at=1790400000.0),
    )


def test_the_absolute_codex_reset_wins_over_the_relative_one() -> None:
    headers = {
        "x-codex-primary-used-percent": "5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": "1790009000",
        "x-codex-primary-reset-after-seconds": "1234",
    }
    (window,) = windows_from_headers(headers, NOW)
    assert window.resets_at == 1790009000.0


def test_a_codex_plan_reporting_the_weekly_window_as_primary_is_named_by_length() -> None:
    headers = {"x-codex-primary-used-percent": "37", "x-codex-primary-window-minutes": "10080"}
    assert [w.name for w in windows_from_headers(headers, NOW)] == ["7d"]


@pytest.mark.parametrize(("used", "limited"), [("100", True), ("100.0", True), ("150", True), ("99.99", False)])
def test_a_codex_window_is_limited_at_100_percent(used: str, limited: bool) -> None:
    headers = {"x-codex-secondary-used-percent": used, "x-codex-secondary-window-minutes": "10080"}
    (window,) = windows_from_headers(headers, NOW)
    assert window.limited is limited and window.used_percent == min(float(used), 100.0)


def test_codex_windows_of_unknown_or_missing_length() -> None:
    headers = {
        "x-codex-primary-used-percent": "12.5",
        "x-codex-primary-window-minutes": "60",
        "x-codex-secondary-used-percent": "3",
        "x-codex-secondary-window-minutes": "garbage",
    }
    assert [w.name for w in windows_from_headers(headers, NOW)] == ["60m", "secondary"]


def test_other_codex_limit_families_and_empty_windows_are_not_account_windows() -> None:
    headers = {
        # a model's own limit (codex-rs `parse_rate_limit_updates`): it does not keep the account out
        "x-codex-bengalfox-primary-used-percent": "100",
        "x-codex-bengalfox-limit-name": "gpt-5.2-codex-sonic",
        # all zero: codex-rs reads this as "no data"
        "x-codex-primary-used-percent": "0",
        "x-codex-secondary-reset-after-seconds": "60",  # no used percent
    }
    assert windows_from_headers(headers, NOW) == ()


def test_claude_and_codex_headers_on_one_answer_are_both_read() -> None:
    headers = {
        CLAUDE + "5h-utilization": "0.5",
        "x-codex-secondary-used-percent": "7",
        "x-codex-secondary-window-minutes": "10080",
    }
    assert [(w.name, w.used_percent) for w in windows_from_headers(headers, NOW)] == [("5h", 50.0), ("7d", 7.0)]


@pytest.mark.parametrize(
    ("minutes", "name"),
    [(300, "5h"), (299, "5h"), (10080, "7d"), (10079, "7d"), (1440, "1440m"), (0, "x"), (None, "x")],
)
def test_window_names_from_lengths(minutes: float | None, name: str) -> None:
    assert window_name(minutes, "x") == name


# ----- Claude's usage document ------------------------------------------------------------------------------------


def test_claude_usage_document_windows_with_null_siblings_skipped() -> None:
    doc = claude_usage(23.5, 67.0, seven_day_opus=(100.0, "2026-03-05T00:00:00Z"))
    assert windows_from_claude_usage(doc, NOW) == (
        LiveWindow(
            "5h", "poll", 23.5, resets_at=datetime.fromisoformat("2026-03-01T05:00:00.123456+00:00").timestamp()
        ),
        LiveWindow("7d", "poll", 67.0, resets_at=at(2026, 3, 5)),
        LiveWindow("7d_opus", "poll", 100.0, resets_at=at(2026, 3, 5), limited=True),
    )


def test_claude_utilization_is_already_percent_and_extra_usage_is_not_a_window() -> None:
    doc = claude_usage(0.5, None)
    doc["extra_usage"] = {"is_enabled": True, "monthly_limit": 5000, "used_credits": 5000.0, "utilization": 100.0}
    doc["iguana_necktie"] = {"utilization": 12.345, "resets_at": None}
    assert windows_from_claude_usage(doc, NOW) == (
        LiveWindow("5h", "poll", 0.5, resets_at=datetime.fromisoformat("2026-03-01T05:00:00.123456+00:00").timestamp()),
        LiveWindow("iguana_necktie", "poll", 12.35),
    )


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        "five_hour",
        {"five_hour": None, "seven_day": None},
        {"five_hour": {"utilization": None, "resets_at": "2026-03-01T00:00:00Z"}},
        {"five_hour": {"utilization": True}, "seven_day": {"utilization": "much"}, "seven_day_opus": [1, 2]},
        {"limits": [{"kind": "session", "percent": 53}]},
    ],
)
def test_a_claude_document_without_readable_windows_gives_none(doc: Any) -> None:
    assert windows_from_claude_usage(doc, NOW) == ()


def test_an_unreadable_claude_reset_is_dropped_not_fatal() -> None:
    doc = {"five_hour": {"utilization": "40", "resets_at": "next tuesday"}}
    assert windows_from_claude_usage(doc, NOW) == (LiveWindow("5h", "poll", 40.0),)


# ----- Codex's usage document ------------------------------------------------------------------------------------


def test_codex_usage_document_windows() -> None:
    doc = codex_usage(codex_window(8, 18000, 1790006625, 6625), codex_window(15, 604800, 1790054618, 54618))
    assert windows_from_codex_usage(doc, NOW) == (
        LiveWindow("5h", "poll", 8.0, resets_at=1790006625.0),
        LiveWindow("7d", "poll", 15.0, resets_at=1790054618.0),
    )


def test_codex_window_lengths_a_little_short_of_the_round_figure_keep_their_names() -> None:
    # A recorded Pro answer: 17940 s and 604740 s.
    doc = codex_usage(codex_window(8, 17940, 1790006625, 6625), codex_window(15, 604740, 1790054618, 54618))
    assert [w.name for w in windows_from_codex_usage(doc, NOW)] == ["5h", "7d"]


def test_codex_reset_after_is_used_when_reset_at_is_missing() -> None:
    window = {"used_percent": 50, "limit_window_seconds": 18000, "reset_after_seconds": 600}
    assert windows_from_codex_usage(codex_usage(window, None), NOW) == (
        LiveWindow("5h", "poll", 50.0, resets_at=NOW + 600),
    )


def test_codex_limit_reached_below_100_percent_limits_the_fullest_window() -> None:
    doc = codex_usage(
        codex_window(99, 18000, 1790006625, 6625), codex_window(40, 604800, 1790054618, 54618), limit_reached=True
    )
    windows = by_name(windows_from_codex_usage(doc, NOW))
    assert windows["5h"].limited and not windows["7d"].limited


def test_codex_window_at_100_percent_is_limited() -> None:
    doc = codex_usage(codex_window(100, 18000, 1790006625, 6625), None, limit_reached=True)
    assert windows_from_codex_usage(doc, NOW) == (
        LiveWindow("5h", "poll", 100.0, resets_at=1790006625.0, limited=True),
    )


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"plan_type": "free"},
        {"rate_limit": None},
        {"rate_limit": {"primary_window": None, "secondary_window": None}},
        {"rate_limit": {"primary_window": {"used_percent": None}, "secondary_window": "full"}},
        {"rate_limit": [1]},
    ],
)
def test_a_codex_document_without_readable_windows_gives_none(doc: Any) -> None:
    assert windows_from_codex_usage(doc, NOW) == ()


# ----- Copilot's user document ------------------------------------------------------------------------------------

APRIL_1 = at(2026, 4, 1)


def test_copilot_paid_plan_one_window_per_snapshot() -> None:
    windows = windows_from_copilot_user(copilot_paid(240), NOW)
    assert windows == (
        LiveWindow(
            "premium_interactions", "poll", 20.0, used=60, limit=300, remaining=240, unit="requests", resets_at=APRIL_1
        ),
        LiveWindow("chat", "poll", unit="requests", resets_at=APRIL_1),  # unlimited: no percent, never limited
        LiveWindow("completions", "poll", unit="requests", resets_at=APRIL_1),
    )


@pytest.mark.parametrize(
    ("remaining", "overage_permitted", "limited"),
    [(0, False, True), (-3, False, True), (0, True, False), (1, False, False)],
)
def test_copilot_premium_requests_run_out_unless_overage_is_permitted(
    remaining: float, overage_permitted: bool, limited: bool
) -> None:
    doc = copilot_paid(remaining, overage_permitted=overage_permitted)
    premium = by_name(windows_from_copilot_user(doc, NOW))["premium_interactions"]
    assert premium.limited is limited and premium.used_percent == (100.0 if remaining <= 0 else round(299 / 3, 2))


def test_copilot_percent_remaining_is_used_when_counts_are_missing() -> None:
    doc = {"quota_snapshots": {"premium_interactions": {"percent_remaining": 65.5}}, "quota_reset_date": "2026-04-01"}
    assert windows_from_copilot_user(doc, NOW) == (
        LiveWindow("premium_interactions", "poll", 34.5, unit="requests", resets_at=APRIL_1),
    )


def test_copilot_usage_based_billing_has_no_cap_to_run_out_of() -> None:
    doc = {"quota_snapshots": {"premium_interactions": copilot_snapshot(0, 0, quota_id="premium_interactions")}}
    (window,) = windows_from_copilot_user(doc, NOW)
    assert not window.limited and window.used_percent == 0.0 and window.resets_at is None


def test_copilot_free_plan_counts_what_is_left_of_the_monthly_quota() -> None:
    windows = windows_from_copilot_user(copilot_free(410, 4000, reset_date="2026-03-11"), NOW)
    march_11 = at(2026, 3, 11)
    assert windows == (
        LiveWindow("chat", "poll", 18.0, used=90, limit=500, remaining=410, unit="requests", resets_at=march_11),
        LiveWindow("completions", "poll", 0.0, used=0, limit=4000, remaining=4000, unit="requests", resets_at=march_11),
    )
    exhausted = by_name(windows_from_copilot_user(copilot_free(0, 12), NOW))
    assert exhausted["chat"].limited and exhausted["chat"].used_percent == 100.0
    assert not exhausted["completions"].limited


def test_copilot_reset_date_forms() -> None:
    doc = copilot_paid(240)
    doc["quota_reset_date_utc"] = "2026-04-01T08:30:00.000Z"  # more precise than the date: it wins
    assert {w.resets_at for w in windows_from_copilot_user(doc, NOW)} == {at(2026, 4, 1, 8, 30)}
    doc = copilot_free()
    doc["limited_user_reset_date"] = 1_775_000_000_000  # milliseconds
    assert {w.resets_at for w in windows_from_copilot_user(doc, NOW)} == {1_775_000_000.0}


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"login": "octocat"},
        {"quota_snapshots": []},
        {"quota_snapshots": {"chat": None, "completions": "x", "premium_interactions": {"quota_id": "p"}}},
        {"monthly_quotas": {"chat": 50}},  # nothing left to compare with
        {"monthly_quotas": {"chat": 0}, "limited_user_quotas": {"chat": 0}},
        {"monthly_quotas": "x", "limited_user_quotas": {"chat": 1}},
    ],
)
def test_a_copilot_document_without_readable_quotas_gives_none(doc: Any) -> None:
    assert windows_from_copilot_user(doc, NOW) == ()
