"""Per-key spending limits and their current periods (shared/domain/budgets.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.budgets import Budget, BudgetPeriod, current_periods, parse_budget


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


# --- parse_budget -----------------------------------------------------------------------------------------
def test_parse_reads_limits_and_defaults() -> None:
    budget = parse_budget({"dailyLimitUsd": 5, "monthlyLimitUsd": 50.5})
    assert budget == Budget(
        limits={"daily": 5.0, "monthly": 50.5}, warning_threshold=0.8, timezone="UTC", reset_time="00:00"
    )
    assert isinstance(budget.limits["daily"], float)


def test_parse_reads_every_field() -> None:
    data = {
        "dailyLimitUsd": 5, "weeklyLimitUsd": 20, "monthlyLimitUsd": 50, "warningThreshold": 0.5,
        "timezone": "Europe/Copenhagen", "resetTime": "06:30",
    }  # fmt: skip
    budget = parse_budget(data)
    assert budget.limits == {"daily": 5.0, "weekly": 20.0, "monthly": 50.0}
    assert (budget.warning_threshold, budget.timezone, budget.reset_time) == (0.5, "Europe/Copenhagen", "06:30")


def test_to_data_round_trips() -> None:
    data = {
        "dailyLimitUsd": 5.0, "weeklyLimitUsd": 20.0, "warningThreshold": 0.9,
        "timezone": "America/New_York", "resetTime": "09:00",
    }  # fmt: skip
    budget = parse_budget(data)
    assert budget.to_data() == data
    assert parse_budget(budget.to_data()) == budget


def test_a_zero_limit_is_allowed() -> None:
    assert parse_budget({"weeklyLimitUsd": 0}).limits == {"weekly": 0.0}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "budget must be a JSON object"),
        ({}, "a budget needs at least one of dailyLimitUsd, weeklyLimitUsd, monthlyLimitUsd"),
        ({"dailyLimitUsd": None}, "a budget needs at least one of"),
        ({"dailyLimitUsd": -1}, "dailyLimitUsd must be a non-negative number of US dollars, got -1"),
        ({"weeklyLimitUsd": "5"}, "weeklyLimitUsd must be a non-negative number of US dollars, got '5'"),
        ({"monthlyLimitUsd": True}, "monthlyLimitUsd must be a non-negative number of US dollars, got True"),
        ({"dailyLimitUsd": 1, "warningThreshold": 0}, "warningThreshold must be a fraction in (0, 1], got 0"),
        ({"dailyLimitUsd": 1, "warningThreshold": 1.5}, "warningThreshold must be a fraction in (0, 1], got 1.5"),
        ({"dailyLimitUsd": 1, "warningThreshold": True}, "warningThreshold must be a fraction in (0, 1], got True"),
        ({"dailyLimitUsd": 1, "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"dailyLimitUsd": 1, "resetTime": "25:00"}, "25:00"),
    ],
)
def test_parse_refuses_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_budget(data)


def test_a_threshold_of_one_is_allowed() -> None:
    assert parse_budget({"dailyLimitUsd": 1, "warningThreshold": 1}).warning_threshold == 1.0


# --- current_periods --------------------------------------------------------------------------------------
COPENHAGEN = parse_budget(
    {"dailyLimitUsd": 5, "weeklyLimitUsd": 20, "monthlyLimitUsd": 50, "timezone": "Europe/Copenhagen"}
)


def test_periods_across_spring_forward_in_copenhagen() -> None:
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; that day lasts 23 hours
    now = utc(2026, 3, 29, 12)
    daily, weekly, monthly = current_periods(COPENHAGEN, now)
    assert daily == BudgetPeriod("daily", 5.0, 0.0, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), "daily:2026-03-29")
    assert daily.end - daily.start == 23 * 3600
    # the week began Monday 23 March at 00:00 CET and ends Monday 30 March at 00:00 CEST
    assert weekly == BudgetPeriod("weekly", 20.0, 0.0, utc(2026, 3, 22, 23), utc(2026, 3, 29, 22), "weekly:2026-03-23")
    assert monthly == BudgetPeriod("monthly", 50.0, 0.0, utc(2026, 2, 28, 23), utc(2026, 3, 31, 22), "monthly:2026-03")


def test_the_local_day_names_the_period_not_the_utc_day() -> None:
    # 23:30 UTC on the 29th is 01:30 CEST on the 30th: a new day and a new week in Copenhagen
    daily, weekly, monthly = current_periods(COPENHAGEN, utc(2026, 3, 29, 23, 30))
    assert (daily.id, weekly.id, monthly.id) == ("daily:2026-03-30", "weekly:2026-03-30", "monthly:2026-03")
    assert (daily.start, daily.end) == (utc(2026, 3, 29, 22), utc(2026, 3, 30, 22))


def test_only_periods_with_a_limit_are_listed_and_reset_time_applies() -> None:
    budget = parse_budget({"weeklyLimitUsd": 3, "timezone": "UTC", "resetTime": "06:00"})
    (weekly,) = current_periods(budget, utc(2026, 11, 23, 5))  # Monday before 06:00: last week's period
    assert (weekly.name, weekly.id) == ("weekly", "weekly:2026-11-16")
    assert (weekly.start, weekly.end) == (utc(2026, 11, 16, 6), utc(2026, 11, 23, 6))


def test_spend_is_mapped_by_period_id() -> None:
    spent = {"daily:2026-03-29": 1.25, "monthly:2026-03": 7.5, "daily:2026-03-28": 99.0}
    daily, weekly, monthly = current_periods(COPENHAGEN, utc(2026, 3, 29, 12), spent)
    assert (daily.spent, weekly.spent, monthly.spent) == (1.25, 0.0, 7.5)


def test_exceeded_at_the_limit_not_below() -> None:
    assert not BudgetPeriod("daily", 5.0, 4.999, 0, 1, "d").exceeded
    assert BudgetPeriod("daily", 5.0, 5.0, 0, 1, "d").exceeded
    assert BudgetPeriod("daily", 5.0, 6.0, 0, 1, "d").exceeded
    assert BudgetPeriod("daily", 0.0, 0.0, 0, 1, "d").exceeded


@pytest.mark.parametrize(
    ("spent", "status"), [(0.0, "ok"), (3.99, "ok"), (4.0, "warning"), (4.99, "warning"), (5.0, "exceeded")]
)
def test_status_ok_warning_exceeded(spent: float, status: str) -> None:
    assert BudgetPeriod("daily", 5.0, spent, 0, 1, "d").status(0.8) == status
