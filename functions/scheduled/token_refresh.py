"""Scheduled job: keep linked OAuth accounts' access tokens fresh (every 5 minutes).

The cloud owns the tokens once the companion has pushed them. Each run refreshes every account whose token
has less than its provider's lead time plus one schedule period left (`shared.services.token_refresh`:
a lease per account, a consistent re-read and a version-conditioned write, so a rotating refresh token is
sent exactly once however many runs overlap). It reads the `oauth` records (one Query), decrypts and seals
tokens with KMS, takes leases in the State table's LEASE partition and calls the providers' token
endpoints. Metrics: how many accounts were refreshed, skipped (not due), busy (another run held the lease),
failed (transient, retried later) and need relinking (the owner must run `omniroute login --relink`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from functions.scheduled.jobs import emit_job_metrics, parse_event, start
from shared.adapters.dynamo.leases import DynamoLeaseStore
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.kms import KmsCipher
from shared.adapters.upstream import HttpxUpstream
from shared.cloud import cloud_settings, config_store
from shared.ports import Cipher, ConfigStore, LeaseStore
from shared.services.token_refresh import CLOUD_SCHEDULE_SECONDS, Outcome, RefreshReport, TokenRefresher
from shared.settings import Settings

JOB = "token-refresh"
log = logging.getLogger("omniroute.scheduled.token_refresh")

start(JOB)
_settings = cloud_settings()
_store = config_store(_settings)
assert _settings.kms_key_id is not None  # cloud_settings refuses an environment without it
_cipher = KmsCipher(_settings.kms_key_id, _settings.region)
_leases: LeaseStore = DynamoLeaseStore(DynamoRoutingStore(_settings.state_table, _settings.region).items)

_METRICS = {
    Outcome.REFRESHED: "TokensRefreshed",
    Outcome.SKIPPED: "RefreshSkipped",
    Outcome.BUSY: "RefreshBusy",
    Outcome.FAILED: "RefreshFailed",
    Outcome.RELINK_NEEDED: "RelinkNeeded",
}


async def _refresh(
    settings: Settings, store: ConfigStore, cipher: Cipher, leases: LeaseStore, time_left: float | None
) -> RefreshReport:
    # A client per run: each invocation runs its own event loop, and a client's connections belong to one.
    upstream = HttpxUpstream(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=16,
        public_only=not settings.allow_private_upstreams,
    )
    refresher = TokenRefresher(
        store,
        cipher,
        leases,
        upstream,
        time.time,
        period=CLOUD_SCHEDULE_SECONDS,
        owner="scheduled",
        public_urls_only=not settings.allow_private_upstreams,
    )
    try:
        # Due is judged now, whatever the scheduled time: a late run must not think it has time left.
        return await refresher.refresh_due(time.time(), time_left=time_left)
    finally:
        await upstream.aclose()


def handler(event: Any, context: Any) -> dict[str, Any]:
    run = parse_event(event, JOB)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    # Accounts that could not finish before Lambda stops the function wait for the next run.
    time_left = remaining() / 1000 - 5 if callable(remaining) else None
    report = asyncio.run(_refresh(_settings, _store, _cipher, _leases, time_left))
    counts = report.counts()
    result: dict[str, Any] = {
        "job": JOB,
        "scheduledTime": run.scheduled_time.isoformat(),
        "oauthAccounts": len(report.results),
        "refreshed": counts[Outcome.REFRESHED],
        "skipped": counts[Outcome.SKIPPED],
        "busy": counts[Outcome.BUSY],
        "failed": counts[Outcome.FAILED],
        "relinkNeeded": counts[Outcome.RELINK_NEEDED],
        # what happened to each account that was not simply left alone (never a token)
        "accounts": [r.to_json() for r in report.results if r.outcome is not Outcome.SKIPPED or r.detail != "not due"],
    }
    log.info("token refresh run", extra=result)
    emit_job_metrics(JOB, {"OAuthAccounts": len(report.results), **{_METRICS[o]: counts[o] for o in Outcome}})
    return result
