"""What every scheduled job shares: reading the EventBridge Scheduler event, settings, logs and metrics.

template.yaml gives each schedule an `Input` naming the job and carrying Scheduler's context attributes:
`{"job": "...", "scheduledTime": "<aws.scheduler.scheduled-time>", "executionId": "...", "attempt": "..."}`.
A schedule without Input delivers Scheduler's default notification (`source: aws.scheduler`, `time`), and
a manual `aws lambda invoke` may send `{}`; all three are accepted, and the run's instant is the
scheduled time when there is one, else now.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from shared.adapters.telemetry import NAMESPACE, configure_logging, write_emf

log = logging.getLogger("omniroute.scheduled")


class BadEvent(ValueError):
    """The event is not one a schedule sends."""


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    job: str
    scheduled_time: datetime
    execution_id: str | None
    attempt: int


def _instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise BadEvent(f"scheduled time must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadEvent(f"scheduled time {value!r} is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise BadEvent(f"scheduled time {value!r} has no time zone")
    return parsed.astimezone(UTC)


def parse_event(event: Any, job: str) -> ScheduledRun:
    if not isinstance(event, dict):
        raise BadEvent(f"expected a JSON object, got {type(event).__name__}")
    named = event.get("job")
    if named is not None and named != job:
        raise BadEvent(f"this function runs {job!r}, but the event is for {named!r}")
    when = event.get("scheduledTime") or (event.get("time") if event.get("source") == "aws.scheduler" else None)
    try:
        attempt = int(event.get("attempt") or 1)
    except (TypeError, ValueError) as exc:
        raise BadEvent(f"attempt must be a number, got {event.get('attempt')!r}") from exc
    return ScheduledRun(
        job=job,
        scheduled_time=_instant(when) if when is not None else datetime.now(UTC),
        execution_id=event.get("executionId") or event.get("id"),
        attempt=attempt,
    )


def start(job: str) -> None:
    """Per environment: JSON logs for this job."""
    configure_logging(f"scheduled-{job}", os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))


def emit_job_metrics(job: str, values: dict[str, int]) -> None:
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=f"scheduled-{job}")
    metrics.add_metric("JobRuns", MetricUnit.Count, 1)
    for name, value in values.items():
        metrics.add_metric(name, MetricUnit.Count, value)
    write_emf(metrics.serialize_metric_set())
