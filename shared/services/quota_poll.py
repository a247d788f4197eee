"""Read every subscription account's quota from its provider's usage endpoint, and keep it for routing.

Answers carry live windows too (`shared.domain.live_quota.windows_from_headers`), but only for accounts
that are being used: the poll covers idle accounts, windows that reset while nobody called, and providers
whose answers say nothing (Copilot). Each account is one GET; a failure of one account (expired token,
5xx, a document that is not JSON, a store error) is counted and logged and never stops the others. The
credential never reaches a log line: reasons are built from statuses and our own error messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
import orjson

from shared.domain.config import ConfigSnapshot, Connection
from shared.domain.quota import AccountQuota
from shared.errors import GatewayError
from shared.ports import QuotaSink, UpstreamClient
from shared.providers.quota_sources import QuotaSource, quota_source

LOCAL_POLL_SECONDS = 900.0  # as the cloud's schedule: every 15 minutes
log = logging.getLogger(__name__)

# A usage document is small and quick; an endpoint that takes longer than this is failing, and a stuck
# account must not hold the run up to the function's own timeout.
PER_ACCOUNT_SECONDS = 20.0


@dataclass(slots=True)
class PollReport:
    """`polled`: accounts asked; `updated`: windows stored; `failed`: (connection id, why) for the rest."""

    polled: int = 0
    updated: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class PollFailed(Exception):
    """One account's reading went wrong; the message is safe to log (no credential, no response body)."""


def pollable(snapshot: ConfigSnapshot) -> list[tuple[Connection, QuotaSource]]:
    """Enabled accounts whose credential decrypts, that hold a token and whose provider has a quota source."""
    out: list[tuple[Connection, QuotaSource]] = []
    for conn in snapshot.connections:
        if not conn.enabled or conn.credential_error:
            continue
        source = quota_source(conn.provider)
        if source is not None and source.credential(conn):
            out.append((conn, source))
    return out


async def read_quota(
    conn: Connection,
    source: QuotaSource,
    upstream: UpstreamClient,
    now: float,
    per_account: float = PER_ACCOUNT_SECONDS,
) -> AccountQuota:
    """One account's windows as its provider reports them; raises `PollFailed` saying why not."""
    token = source.credential(conn)
    assert token is not None
    url = source.url_for(conn)
    try:
        with anyio.fail_after(per_account):
            resp = await upstream.send(
                "GET", url, source.headers_for(token), b"", stream=False, read_timeout=per_account
            )
            raw = await resp.aread()
    except TimeoutError:
        raise PollFailed(f"no answer within {per_account:g} s") from None
    except GatewayError as exc:
        raise PollFailed(exc.message) from exc
    if not 200 <= resp.status < 300:
        # The body is not relayed: some services echo request details back in their error text.
        raise PollFailed(f"the usage endpoint answered HTTP {resp.status}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PollFailed("the usage endpoint's answer is not JSON") from None
    if not isinstance(doc, dict):
        raise PollFailed(f"the usage endpoint answered a JSON {type(doc).__name__}, not an object")
    return AccountQuota(conn.id, source.parse(doc, now), updated_at=now)


async def poll_quotas(
    snapshot: ConfigSnapshot,
    upstream: UpstreamClient,
    sink: QuotaSink,
    now: float,
    *,
    concurrency: int = 4,
    per_account: float = PER_ACCOUNT_SECONDS,
) -> PollReport:
    """Poll every pollable account, at most `concurrency` at a time and each within `per_account` seconds,
    and store each reading in `sink`."""
    accounts = pollable(snapshot)
    report = PollReport(polled=len(accounts))
    limiter = anyio.Semaphore(max(1, concurrency))

    async def one(conn: Connection, source: QuotaSource) -> None:
        async with limiter:
            try:
                quota = await read_quota(conn, source, upstream, now, per_account)
            except PollFailed as exc:
                reason = str(exc)
            else:
                try:
                    await anyio.to_thread.run_sync(sink.put_quota, quota)
                except Exception as exc:  # a store error for one account must not end the run
                    reason = f"storing the windows failed ({type(exc).__name__})"
                else:
                    report.updated += 1
                    log.info(
                        "quota of %s read", conn.id, extra={"provider": conn.provider, "windows": len(quota.windows)}
                    )
                    return
            report.failed.append((conn.id, reason))
            log.warning("quota of %s (%s) not read: %s", conn.id, conn.provider, reason)

    async with anyio.create_task_group() as tg:
        for conn, source in accounts:
            tg.start_soon(one, conn, source)
    return report


async def poll_quotas_every(
    snapshot: Callable[[], ConfigSnapshot],
    upstream: UpstreamClient,
    sink: QuotaSink,
    clock: Callable[[], float],
    every: float = LOCAL_POLL_SECONDS,
) -> None:
    """Local mode's stand-in for the scheduled quota poll: a poll now, then every `every` seconds, until
    cancelled. Nothing goes out while no account has a usage endpoint."""
    while True:
        current = snapshot()
        if pollable(current):
            try:
                await poll_quotas(current, upstream, sink, clock())
            except Exception:  # the next round tries again
                log.exception("quota poll failed")
        await asyncio.sleep(every)
