"""Quota and budget windows: parsing, calendar periods across DST and month ends, rolling windows."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.windows import (
    Period,
    WindowKind,
    WindowSpec,
    calendar_period,
    parse_window,
    period,
    rolling_period,
)

HOUR = 3600.0
LORD_HOWE = "Australia/Lord_Howe"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return utc(year, month, day, hour, minute).timestamp()


def daily(reset: str, zone: str) -> WindowSpec:
    return parse_window({"window": "daily", "resetTime": reset, "timezone": zone})


def bounds(found: Period) -> tuple[datetime, datetime]:
    return datetime.fromtimestamp(found.start, UTC), datetime.fromtimestamp(found.end, UTC)


def hours(found: Period) -> float:
    return (found.end - found.start) / HOUR


# --- daily -----------------------------------------------------------------------------------------------


def test_daily_reset_is_local_wall_clock_in_winter() -> None:
    found = calendar_period(daily("10:00", "Europe/Copenhagen"), ts(2026, 1, 15, 12))
    assert bounds(found) == (utc(2026, 1, 15, 9), utc(2026, 1, 16, 9))
    assert found.id == "daily:2026-01-15"


def test_daily_reset_is_local_wall_clock_in_summer() -> None:
    found = calendar_period(daily("10:00", "Europe/Copenhagen"), ts(2026, 7, 15, 12))
    assert bounds(found) == (utc(2026, 7, 15, 8), utc(2026, 7, 16, 8))
    assert found.id == "daily:2026-07-15"


def test_before_todays_reset_time_is_still_yesterdays_period() -> None:
    found = calendar_period(daily("10:00", "Europe/Copenhagen"), ts(2026, 7, 15, 7, 59))
    assert bounds(found) == (utc(2026, 7, 14, 8), utc(2026, 7, 15, 8))
    assert found.id == "daily:2026-07-14"


def test_daily_10_00_copenhagen_period_spanning_spring_forward_lasts_23_hours() -> None:
    found = calendar_period(daily("10:00", "Europe/Copenhagen"), ts(2026, 3, 28, 12))
    assert bounds(found) == (utc(2026, 3, 28, 9), utc(2026, 3, 29, 8))
    assert hours(found) == 23


def test_daily_10_00_copenhagen_period_spanning_fall_back_lasts_25_hours() -> None:
    found = calendar_period(daily("10:00", "Europe/Copenhagen"), ts(2026, 10, 24, 12))
    assert bounds(found) == (utc(2026, 10, 24, 8), utc(2026, 10, 25, 9))
    assert hours(found) == 25


@pytest.mark.parametrize(
    ("zone", "now", "start", "end", "length", "period_id"),
    [
        ("Europe/Copenhagen", utc(2026, 3, 29, 12), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23, "2026-03-29"),
        ("Europe/Copenhagen", utc(2026, 10, 25, 12), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25, "2026-10-25"),
        ("America/New_York", utc(2026, 3, 8, 12), utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23, "2026-03-08"),
        ("America/New_York", utc(2026, 11, 1, 12), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25, "2026-11-01"),
        # Lord Howe shifts by 30 minutes: +11:00 in summer, +10:30 in winter
        ("Australia/Lord_Howe", utc(2026, 4, 5, 0), utc(2026, 4, 4, 13), utc(2026, 4, 5, 13, 30), 24.5, "2026-04-05"),
        (
            "Australia/Lord_Howe",
            utc(2026, 10, 4, 0),
            utc(2026, 10, 3, 13, 30),
            utc(2026, 10, 4, 13),
            23.5,
            "2026-10-04",
        ),
    ],
)
def test_midnight_reset_on_dst_change_days(
    zone: str, now: datetime, start: datetime, end: datetime, length: float, period_id: str
) -> None:
    found = calendar_period(daily("00:00", zone), now.timestamp())
    assert bounds(found) == (start, end)
    assert hours(found) == length
    assert found.id == f"daily:{period_id}"


@pytest.mark.parametrize(
    ("zone", "reset", "day", "expected"),
    [
        # 02:30 does not exist in Copenhagen on 2026-03-29: it is read as 02:30 CET, i.e. 03:30 CEST
        ("Europe/Copenhagen", "02:30", utc(2026, 3, 29, 12), utc(2026, 3, 29, 1, 30)),
        ("America/New_York", "02:30", utc(2026, 3, 8, 12), utc(2026, 3, 8, 7, 30)),
        # Lord Howe jumps 02:00 → 02:30; 02:15 is read at +10:30, i.e. 02:45 at +11:00
        ("Australia/Lord_Howe", "02:15", utc(2026, 10, 4, 12), utc(2026, 10, 3, 15, 45)),
    ],
)
def test_reset_time_in_the_spring_gap_is_shifted_forward_by_the_gap(
    zone: str, reset: str, day: datetime, expected: datetime
) -> None:
    found = calendar_period(daily(reset, zone), day.timestamp())
    assert bounds(found)[0] == expected


def test_copenhagen_gap_reset_period_lengths() -> None:
    spec = daily("02:30", "Europe/Copenhagen")
    before = calendar_period(spec, ts(2026, 3, 29, 1, 29))
    after = calendar_period(spec, ts(2026, 3, 29, 1, 30))
    # 02:30 CET → (03:30 CEST =) 02:30 CET a day later: 24 h, then 03:30 CEST → 02:30 CEST: 23 h
    assert bounds(before) == (utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30))
    assert bounds(after) == (utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30))
    assert (before.id, after.id) == ("daily:2026-03-28", "daily:2026-03-29")


@pytest.mark.parametrize(
    ("zone", "day", "first_occurrence", "second_occurrence"),
    [
        ("Europe/Copenhagen", utc(2026, 10, 25, 12), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)),
        ("America/New_York", utc(2026, 11, 1, 12), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),
    ],
)
def test_reset_time_in_the_fall_overlap_happens_at_its_first_occurrence(
    zone: str, day: datetime, first_occurrence: datetime, second_occurrence: datetime
) -> None:
    spec = daily("01:30" if zone == "America/New_York" else "02:30", zone)
    found = calendar_period(spec, day.timestamp())
    assert bounds(found)[0] == first_occurrence
    # the wall clock shows the reset time again an hour later; that is not a second reset
    assert calendar_period(spec, second_occurrence.timestamp()) == found
    assert hours(found) == 25


def test_kolkata_resets_at_local_midnight_every_day_without_dst() -> None:
    spec = daily("00:00", "Asia/Kolkata")
    found = calendar_period(spec, ts(2026, 6, 30, 20))  # 01:30 on 1 July in Kolkata
    assert bounds(found) == (utc(2026, 6, 30, 18, 30), utc(2026, 7, 1, 18, 30))
    assert found.id == "daily:2026-07-01"
    for day in (utc(2026, 3, 29, 12), utc(2026, 10, 25, 12), utc(2026, 3, 8, 12)):
        assert hours(calendar_period(spec, day.timestamp())) == 24


@pytest.mark.parametrize(
    ("zone", "now", "start"),
    [
        ("Pacific/Auckland", utc(2026, 11, 21, 12), utc(2026, 11, 21, 11)),  # 01:00 NZDT on the 22nd
        ("Asia/Tokyo", utc(2026, 11, 21, 16), utc(2026, 11, 21, 15)),  # 01:00 JST on the 22nd
    ],
)
def test_period_id_is_the_local_date_not_the_utc_date(zone: str, now: datetime, start: datetime) -> None:
    found = calendar_period(daily("00:00", zone), now.timestamp())
    assert bounds(found)[0] == start
    assert found.id == "daily:2026-11-22"


def test_now_exactly_at_the_reset_belongs_to_the_new_period() -> None:
    spec = daily("10:00", "Europe/Copenhagen")
    reset = ts(2026, 11, 22, 9)
    found = calendar_period(spec, reset)
    assert (found.start, found.id) == (reset, "daily:2026-11-22")
    previous = calendar_period(spec, reset - 0.001)
    assert (previous.end, previous.id) == (reset, "daily:2026-11-21")


def test_a_skipped_day_yields_no_empty_period() -> None:
    # Samoa skipped 2011-12-30: the resets of the 30th and the 31st are the same instant
    spec = daily("10:00", "Pacific/Apia")
    found = calendar_period(spec, ts(2011, 12, 30, 20))
    assert bounds(found) == (utc(2011, 12, 30, 20), utc(2011, 12, 31, 20))
    assert found.id == "daily:2011-12-31"
    assert calendar_period(spec, found.start - 1).end == found.start


def test_a_repeated_day_does_not_reset_twice() -> None:
    # Sitka moved from Russian to American time on 1867-10-18, living 18/19 October and then 18 October again
    spec = daily("10:00", "America/Sitka")
    now = ts(1867, 10, 19, 3)  # 17:58 on the second 18 October
    found = calendar_period(spec, now)
    assert found.start <= now < found.end
    assert found.id == "daily:1867-10-19"
    assert hours(found) == 48


# --- weekly ----------------------------------------------------------------------------------------------


def test_weekly_monday_period_crosses_the_year_boundary() -> None:
    spec = parse_window({"window": "weekly", "weekday": "Monday"})
    found = calendar_period(spec, ts(2027, 1, 1, 12))
    assert bounds(found) == (utc(2026, 12, 28), utc(2027, 1, 4))
    assert found.id == "weekly:2026-12-28"


@pytest.mark.parametrize(
    ("now", "start", "end", "length", "period_id"),
    [
        (utc(2026, 3, 29, 12), utc(2026, 3, 22, 23), utc(2026, 3, 29, 22), 167, "weekly:2026-03-23"),
        (utc(2026, 10, 25, 12), utc(2026, 10, 18, 22), utc(2026, 10, 25, 23), 169, "weekly:2026-10-19"),
    ],
)
def test_weekly_period_across_dst_keeps_the_local_reset_time(
    now: datetime, start: datetime, end: datetime, length: int, period_id: str
) -> None:
    spec = parse_window({"window": "weekly", "weekday": "mon", "timezone": "Europe/Copenhagen"})
    found = calendar_period(spec, now.timestamp())
    assert bounds(found) == (start, end)
    assert hours(found) == length
    assert found.id == period_id


def test_weekly_on_a_later_weekday_and_time() -> None:
    spec = parse_window({"window": "weekly", "weekday": "FRI", "resetTime": "18:00", "timezone": "America/New_York"})
    # Friday 2026-11-20 17:00 EST is before the reset: the period began on Friday the 13th
    found = calendar_period(spec, ts(2026, 11, 20, 22))
    assert bounds(found) == (utc(2026, 11, 13, 23), utc(2026, 11, 20, 23))
    assert found.id == "weekly:2026-11-13"


# --- monthly ---------------------------------------------------------------------------------------------


def monthly(day: int, zone: str = "UTC") -> WindowSpec:
    return parse_window({"window": "monthly", "dayOfMonth": day, "timezone": zone})


@pytest.mark.parametrize(
    ("now", "start", "end", "period_id"),
    [
        (utc(2028, 2, 15), utc(2028, 1, 31), utc(2028, 2, 29), "monthly:2028-01"),  # leap year
        (utc(2028, 3, 1), utc(2028, 2, 29), utc(2028, 3, 31), "monthly:2028-02"),
        (utc(2027, 2, 28), utc(2027, 2, 28), utc(2027, 3, 31), "monthly:2027-02"),
        (utc(2027, 2, 27, 23, 59), utc(2027, 1, 31), utc(2027, 2, 28), "monthly:2027-01"),
        (utc(2026, 4, 30, 12), utc(2026, 4, 30), utc(2026, 5, 31), "monthly:2026-04"),
        (utc(2026, 4, 29), utc(2026, 3, 31), utc(2026, 4, 30), "monthly:2026-03"),
    ],
)
def test_monthly_day_31_resets_on_the_last_day_of_shorter_months(
    now: datetime, start: datetime, end: datetime, period_id: str
) -> None:
    found = calendar_period(monthly(31), now.timestamp())
    assert bounds(found) == (start, end)
    assert found.id == period_id


def test_monthly_day_1_in_a_zone_follows_local_months() -> None:
    found = calendar_period(monthly(1, "Europe/Copenhagen"), ts(2026, 11, 15))
    assert bounds(found) == (utc(2026, 10, 31, 23), utc(2026, 11, 30, 23))
    assert found.id == "monthly:2026-11"
    # 2026-11-30 15:30 UTC is already 1 December in Tokyo
    tokyo = calendar_period(monthly(1, "Asia/Tokyo"), ts(2026, 11, 30, 15, 30))
    assert bounds(tokyo) == (utc(2026, 11, 30, 15), utc(2026, 12, 31, 15))
    assert tokyo.id == "monthly:2026-12"


# --- every calendar window tiles time --------------------------------------------------------------------

ZONES = (
    "UTC",
    "Europe/Copenhagen",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Asia/Tokyo",
    "America/Santiago",  # DST changes at midnight
    "America/Havana",  # DST changes at midnight
    "Pacific/Apia",  # skipped a whole day
)

calendar_specs = st.builds(
    WindowSpec,
    kind=st.sampled_from([WindowKind.DAILY, WindowKind.WEEKLY, WindowKind.MONTHLY]),
    reset_time=st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])),
    timezone=st.sampled_from(ZONES),
    weekday=st.integers(0, 6),
    day_of_month=st.sampled_from([1, 2, 15, 28, 29, 30, 31]),
)


@settings(max_examples=3000, deadline=None)
@given(spec=calendar_specs, now=st.floats(ts(1990, 1, 1), ts(2060, 1, 1)))
def test_calendar_periods_hold_now_and_tile_time(spec: WindowSpec, now: float) -> None:
    found = calendar_period(spec, now)
    assert found.start <= now < found.end
    following = calendar_period(spec, found.end)
    assert following.start == found.end
    assert following.id != found.id
    preceding = calendar_period(spec, found.start - 0.001)
    assert preceding.end == found.start
    assert preceding.id != found.id


def test_calendar_period_refuses_a_rolling_window() -> None:
    with pytest.raises(ValueError, match="rolling"):
        calendar_period(WindowSpec(WindowKind.ROLLING), ts(2026, 1, 1))


# --- rolling ---------------------------------------------------------------------------------------------

FIVE_HOURS = parse_window({"window": "rolling"})
NOW = ts(2026, 11, 22, 12)


def test_rolling_window_opens_now_without_a_first_use() -> None:
    found = rolling_period(FIVE_HOURS, None, NOW)
    assert found == Period(start=NOW, end=NOW + 5 * HOUR, id=f"rolling:{int(NOW)}")


def test_rolling_window_inside_keeps_its_first_use() -> None:
    first_use = NOW - 4 * HOUR
    assert rolling_period(FIVE_HOURS, first_use, NOW) == Period(
        first_use, first_use + 5 * HOUR, f"rolling:{int(first_use)}"
    )


def test_rolling_window_exactly_at_expiry_opens_a_new_one() -> None:
    first_use = NOW - 5 * HOUR
    found = rolling_period(FIVE_HOURS, first_use, NOW)
    assert (found.start, found.end) == (NOW, NOW + 5 * HOUR)
    assert found.id != rolling_period(FIVE_HOURS, first_use, NOW - 1).id


def test_period_dispatches_on_kind() -> None:
    assert period(FIVE_HOURS, NOW, first_use=NOW - HOUR).end == NOW + 4 * HOUR
    assert period(FIVE_HOURS, NOW).end == NOW + 5 * HOUR
    spec = daily("10:00", "Europe/Copenhagen")
    assert period(spec, NOW) == calendar_period(spec, NOW)
    assert period(spec, NOW, first_use=NOW - HOUR).end == ts(2026, 11, 23, 9)


# --- parsing, serialising, labels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "spec", "label"),
    [
        ({"window": "rolling"}, WindowSpec(WindowKind.ROLLING, hours=5.0), "5 h rolling"),
        ({"window": "rolling", "hours": 1.5}, WindowSpec(WindowKind.ROLLING, hours=1.5), "1.5 h rolling"),
        (
            {"window": "daily", "resetTime": "10:00", "timezone": "Europe/Copenhagen"},
            WindowSpec(WindowKind.DAILY, reset_time=time(10), timezone="Europe/Copenhagen"),
            "daily at 10:00 Europe/Copenhagen",
        ),
        ({"window": "weekly"}, WindowSpec(WindowKind.WEEKLY), "weekly (Monday 00:00 UTC)"),
        (
            {"window": "weekly", "weekday": "sun", "resetTime": "9:05"},
            WindowSpec(WindowKind.WEEKLY, weekday=6, reset_time=time(9, 5)),
            "weekly (Sunday 09:05 UTC)",
        ),
        ({"window": "monthly"}, WindowSpec(WindowKind.MONTHLY), "monthly (day 1, 00:00 UTC)"),
    ],
)
def test_parse_applies_defaults_and_labels_read_naturally(data: dict[str, Any], spec: WindowSpec, label: str) -> None:
    assert parse_window(data) == spec
    assert spec.label == label
    assert parse_window(spec.to_data()) == spec


def test_to_data_keeps_only_the_fields_of_its_kind() -> None:
    assert WindowSpec(WindowKind.ROLLING, timezone="Asia/Tokyo").to_data() == {"window": "rolling", "hours": 5}
    assert WindowSpec(WindowKind.MONTHLY, day_of_month=31, weekday=3).to_data() == {
        "window": "monthly",
        "resetTime": "00:00",
        "timezone": "UTC",
        "dayOfMonth": 31,
    }
    assert WindowSpec(WindowKind.WEEKLY, weekday=2).to_data()["weekday"] == "wednesday"


def test_parse_ignores_the_callers_own_fields_and_fields_of_other_kinds() -> None:
    data = {"window": "Daily", "tokens": 100_000, "requests": 50, "dailyUsd": 2.5, "hours": -1, "weekday": "x"}
    assert parse_window(data) == WindowSpec(WindowKind.DAILY)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({}, r"window must be one of rolling, daily, weekly, monthly; got None"),
        ({"window": "hourly"}, r"window must be one of .*; got 'hourly'"),
        ({"window": "rolling", "hours": 0}, r"hours must be more than 0 and at most 720"),
        ({"window": "rolling", "hours": 721}, r"hours must be more than 0 and at most 720"),
        ({"window": "rolling", "hours": "5"}, r"hours must be a number of hours.*got '5'"),
        ({"window": "rolling", "hours": True}, r"hours must be a number"),
        ({"window": "rolling", "hours": float("nan")}, r"hours must be a number"),
        ({"window": "daily", "resetTime": "24:00"}, r"resetTime must be a 24-hour local time HH:MM.*got '24:00'"),
        ({"window": "daily", "resetTime": "10:60"}, r"resetTime must be .*HH:MM"),
        ({"window": "daily", "resetTime": "10am"}, r"resetTime must be .*HH:MM"),
        ({"window": "daily", "resetTime": 10}, r"resetTime must be .*HH:MM"),
        ({"window": "daily", "timezone": "Mars/Olympus"}, r"timezone must be an IANA time zone name.*'Mars/Olympus'"),
        ({"window": "daily", "timezone": "../../etc/passwd"}, r"timezone must be an IANA time zone name"),
        ({"window": "daily", "timezone": ""}, r"timezone must be an IANA time zone name"),
        ({"window": "weekly", "weekday": "funday"}, r"weekday must be a day name, monday to sunday.*'funday'"),
        ({"window": "weekly", "weekday": 0}, r"weekday must be a day name"),
        ({"window": "monthly", "dayOfMonth": 0}, r"dayOfMonth must be a whole number from 1 to 31.*got 0"),
        ({"window": "monthly", "dayOfMonth": 32}, r"dayOfMonth must be a whole number from 1 to 31"),
        ({"window": "monthly", "dayOfMonth": "1"}, r"dayOfMonth must be a whole number"),
    ],
)
def test_parse_rejects_bad_fields_naming_the_field_and_what_is_allowed(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(data)
