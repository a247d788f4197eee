"""Scheduled job: read every subscription account's quota from its provider (every 15 minutes).

Answers keep the windows of busy accounts current (their headers); this run covers the idle ones and the
providers whose answers carry none (Copilot), so routing skips an account at its limit before calling it
and takes it back once the window resets. The accounts are the provider connections of the Config table
(one Query, credentials decrypted by KMS); each reading replaces the account's windows in the State
table's ROUTE partition. One account failing (expired token, 5xx) is reported and never stops the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from functions.scheduled.jobs import emit_job_metrics, parse_event, start
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.kms import KmsCipher
from shared.adapters.upstream import HttpxUpstream
from shared.cloud import cloud_settings, config_store
from shared.domain.config import ConfigSnapshot, Kind
from shared.ports import QuotaSink
from shared.services.quota_poll import PollReport, poll_quotas
from shared.services.snapshot import build_snapshot
from shared.settings import Settings

JOB = "quota-poll"
log = logging.getLogger("omniroute.scheduled.quota_poll")

start(JOB)
_settings = cloud_settings()
_store = config_store(_settings)
assert _settings.kms_key_id is not None  # cloud_settings refuses an environment without it
_cipher = KmsCipher(_settings.kms_key_id, _settings.region)
_sink: QuotaSink = DynamoRoutingStore(_settings.state_table, _settings.region)


def load_accounts() -> ConfigSnapshot:
    # Only the connections: one Query of the `provider` partition, not the whole table.
    return build_snapshot(_store.list(Kind.PROVIDER), _cipher)


async def _poll(settings: Settings, snapshot: ConfigSnapshot, sink: QuotaSink, now: float) -> PollReport:
    # A client per run: each invocation runs its own event loop, and a client's connections belong to one.
    upstream = HttpxUpstream(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=16,
        public_only=not settings.allow_private_upstreams,
    )
    try:
        return await poll_quotas(snapshot, upstream, sink, now)
    finally:
        await upstream.aclose()


def handler(event: Any, context: Any) -> dict[str, Any]:
    run = parse_event(event, JOB)
    snapshot = load_accounts()
    # The readings are taken now, whatever the scheduled time: relative resets count from here.
    report = asyncio.run(_poll(_settings, snapshot, _sink, time.time()))
    result: dict[str, Any] = {
        "job": JOB,
        "scheduledTime": run.scheduled_time.isoformat(),
        "accounts": report.polled,
        "updated": report.updated,
        "failed": [{"connection": cid, "reason": reason} for cid, reason in report.failed],
    }
    log.info("quota poll run", extra=result)
    emit_job_metrics(
        JOB,
        {"PolledAccounts": report.polled, "UpdatedAccounts": report.updated, "FailedAccounts": len(report.failed)},
    )
    return result
