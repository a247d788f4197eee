"""Scheduled job: roll usage up from requests to hours, days and months (hourly, five minutes past).

Each run recomputes the two hours that closed before its scheduled time, every day those hours belong to
once the day has closed, and those days' months (`shared.services.rollup`). Rollups replace what was
stored, so a late, retried or repeated run gives the same result; re-running an event is how a failed
hour is redone.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from functions.scheduled.jobs import emit_job_metrics, parse_event, start
from shared.adapters.dynamo.usage_store import DynamoUsageStore
from shared.services.rollup import UsageRollup
from shared.settings import Settings

JOB = "usage-rollup"
log = logging.getLogger("omniroute.scheduled.usage_rollup")

start(JOB)
_settings = Settings.from_env()
_rollup = UsageRollup(DynamoUsageStore(_settings.usage_table, _settings.region), time.time)


def handler(event: Any, context: Any) -> dict[str, Any]:
    run = parse_event(event, JOB)
    report = _rollup.run(run.scheduled_time)
    result: dict[str, Any] = {
        "job": JOB,
        "scheduledTime": run.scheduled_time.isoformat(),
        "hours": report.hours,
        "days": report.days,
        "months": report.months,
    }
    log.info("usage rollup run", extra=result)
    emit_job_metrics(JOB, {"HourItems": sum(report.hours.values()), "DaysRolled": len(report.days)})
    return result
