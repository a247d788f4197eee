"""Scheduled job: keep linked OAuth accounts' access tokens fresh (every 5 minutes).

The cloud owns the tokens once the companion has pushed them. This run finds the OAuth-linked
connections in the configuration; the refresh itself (lease per account, consistent re-read,
version-conditioned write, `invalid_grant` → "relink needed") arrives with OAuth linking in the companion
issue, until which no OAuth connection can exist and every run reports zero accounts.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.scheduled.jobs import emit_job_metrics, parse_event, start
from shared.cloud import cloud_settings, config_store
from shared.domain.config import Kind
from shared.providers.catalog import get_provider
from shared.providers.spec import AuthKind

JOB = "token-refresh"
log = logging.getLogger("omniroute.scheduled.token_refresh")

start(JOB)
_settings = cloud_settings()
_store = config_store(_settings)


def handler(event: Any, context: Any) -> dict[str, Any]:
    run = parse_event(event, JOB)
    oauth = []
    for record in _store.list(Kind.PROVIDER):
        spec = get_provider(str(record.data.get("provider", "")))
        if spec is not None and spec.auth is AuthKind.OAUTH:
            oauth.append(record.id)
    result: dict[str, Any] = {
        "job": JOB,
        "scheduledTime": run.scheduled_time.isoformat(),
        "oauthAccounts": len(oauth),
        "refreshed": 0,
    }
    log.info("token refresh run", extra=result)
    emit_job_metrics(JOB, {"OAuthAccounts": len(oauth), "TokensRefreshed": 0})
    return result
