"""parse_event: the events EventBridge Scheduler (or a manual invoke) sends a scheduled job, and what is refused."""

from datetime import UTC, datetime

import pytest

from functions.scheduled.jobs import BadEvent, ScheduledRun, parse_event

JOB = "usage-rollup"


def test_our_schedule_input_with_scheduler_context_attributes() -> None:
    event = {
        "job": JOB,
        "scheduledTime": "2025-03-01T00:05:00Z",
        "executionId": "c0ffee-1234",
        "attempt": "2",
    }
    assert parse_event(event, JOB) == ScheduledRun(
        job=JOB,
        scheduled_time=datetime(2025, 3, 1, 0, 5, tzinfo=UTC),
        execution_id="c0ffee-1234",
        attempt=2,
    )


def test_a_scheduled_time_with_an_offset_is_converted_to_utc() -> None:
    run = parse_event({"job": JOB, "scheduledTime": "2025-03-01T02:05:00+02:00"}, JOB)
    assert run.scheduled_time == datetime(2025, 3, 1, 0, 5, tzinfo=UTC)
    assert run.scheduled_time.tzinfo is UTC
    assert run.attempt == 1 and run.execution_id is None


def test_schedulers_default_notification() -> None:
    event = {
        "version": "0",
        "id": "9f1b2c3d-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": "2025-03-01T00:05:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/omniroute-usage-rollup"],
        "detail": "{}",
    }
    run = parse_event(event, JOB)
    assert run == ScheduledRun(JOB, datetime(2025, 3, 1, 0, 5, tzinfo=UTC), event["id"], 1)


@pytest.mark.parametrize(
    "event",
    [
        {},  # a manual `aws lambda invoke`
        {"job": JOB},
        {"source": "aws.events", "time": "2001-01-01T00:00:00Z"},  # only Scheduler's `time` is a scheduled time
    ],
)
def test_without_a_scheduled_time_the_run_is_now(event: dict[str, str]) -> None:
    before = datetime.now(UTC)
    run = parse_event(event, JOB)
    after = datetime.now(UTC)
    assert before <= run.scheduled_time <= after
    assert run.job == JOB and run.attempt == 1


@pytest.mark.parametrize("event", [[], "{}", None, 42])
def test_an_event_that_is_not_an_object_is_refused(event: object) -> None:
    with pytest.raises(BadEvent, match="expected a JSON object"):
        parse_event(event, JOB)


def test_an_event_for_another_job_is_refused() -> None:
    with pytest.raises(BadEvent, match="'token-refresh'"):
        parse_event({"job": "token-refresh", "scheduledTime": "2025-03-01T00:05:00Z"}, JOB)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"scheduledTime": "2025-03-01T00:05:00"}, "no time zone"),
        ({"scheduledTime": "yesterday"}, "not ISO 8601"),
        ({"scheduledTime": "2025-13-01T00:05:00Z"}, "not ISO 8601"),
        ({"scheduledTime": 1740787500}, "ISO 8601 string"),
        ({"source": "aws.scheduler", "time": "01/03/2025 00:05"}, "not ISO 8601"),
        ({"attempt": "x"}, "attempt must be a number"),
        ({"attempt": [1]}, "attempt must be a number"),
    ],
)
def test_malformed_fields_are_refused(event: dict[str, object], why: str) -> None:
    with pytest.raises(BadEvent, match=why):
        parse_event({"job": JOB, **event}, JOB)
