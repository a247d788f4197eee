"""Scheduled job: roll usage up from hours to days and months (hourly, five minutes past the hour).

Each run works on the hour that closed before its scheduled time, so a late or repeated run covers the
same window (re-running is how a failed hour is redone). Until request accounting lands (the usage
issue) nothing writes hourly items, so this run counts the closed hour's items in the Usage table (its
partition `USAGE#H#<yyyy-mm-ddThh>`) and reports them; the day and month writes arrive with accounting.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from functions.scheduled.jobs import emit_job_metrics, parse_event, start
from shared.settings import Settings

JOB = "usage-rollup"
log = logging.getLogger("omniroute.scheduled.usage_rollup")

start(JOB)
_settings = Settings.from_env()
_client: Any = None


def _dynamodb() -> Any:
    global _client
    if _client is None:
        import botocore.session

        _client = botocore.session.get_session().create_client("dynamodb", region_name=_settings.region)
    return _client


def hour_partition(hour: str) -> str:
    return f"USAGE#H#{hour}"


def handler(event: Any, context: Any) -> dict[str, Any]:
    run = parse_event(event, JOB)
    closed = (run.scheduled_time - timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    pages = (
        _dynamodb()
        .get_paginator("query")
        .paginate(
            TableName=_settings.usage_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": hour_partition(closed)}},
            Select="COUNT",
        )
    )
    items = sum(int(page["Count"]) for page in pages)
    result: dict[str, Any] = {
        "job": JOB,
        "scheduledTime": run.scheduled_time.isoformat(),
        "hour": closed,
        "items": items,
    }
    log.info("usage rollup run", extra=result)
    emit_job_metrics(JOB, {"HourItems": items})
    return result
