"""Keep linked accounts' access tokens fresh, using each rotating refresh token exactly once.

The target owns the tokens once the companion has pushed them: the cloud's scheduled function runs
`refresh_due` every 5 minutes, a local `omniroute serve` every minute, and `POST /api/oauth/accounts/{id}/refresh`
runs `refresh_one` on demand. Any number of them may run at once, so one account's refresh goes:

1. read the `oauth` record; not due (and not forced): skip. Due means less than the provider's lead time
   plus one schedule period left, so no token lapses between two runs;
2. take the lease `REFRESH#<connection>` (or `REFRESH#provider:<id>` for a provider whose accounts must
   refresh one at a time: sibling Codex accounts refreshing at once revoked each other); held: skip (busy);
3. read the record again, consistently: if its `tokenVersion` moved (another refresher or a relink got there
   first) or it is no longer due, skip. Its store version is what the write below is conditioned on;
4. call the token endpoint (`shared.services.refresh_wire`);
5. write the new tokens, expiry and `tokenVersion + 1` conditioned on that version. A conflict is read
   again: a moved `tokenVersion` means the owner relinked meanwhile, whose tokens win (ours are dropped,
   loudly); anything else is retried, since the old refresh token is already spent and the new one must not
   be lost;
6. give the lease back.

A fatal answer (`invalid_grant`, `refresh_token_reused`, ..., or a 401 from the Copilot exchange) marks the
account `relink_needed` and is never retried; a transient one (5xx, 429, timeouts, network) records
`lastError`, counts `failures` and sets `retryAt` with exponential backoff. Either way the access token still
in hand keeps serving until it expires. No token ever reaches a log line or a report.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import anyio
import anyio.to_thread

from shared.domain.config import Kind, Record
from shared.domain.oauth import ACTIVE, RELINK_NEEDED, OAuthTokens
from shared.errors import Conflict, GatewayError, InvalidRequest, NotFound
from shared.ports import Cipher, ConfigStore, DecryptionFailed, LeaseStore, UpstreamClient
from shared.providers.oauth import RefreshSpec, oauth_provider, refresh_spec
from shared.services.admin import validate_linked_base_url
from shared.services.refresh_wire import CannotRefresh, Refreshed, Rejected, build_call, read_reply
from shared.services.snapshot import secret_context

log = logging.getLogger(__name__)

CLOUD_SCHEDULE_SECONDS = 300.0  # template.yaml: TokenRefreshFunction runs at rate(5 minutes)
LOCAL_REFRESH_SECONDS = 60.0  # `omniroute serve` runs the refresher itself, every minute
# One token endpoint call, answer included. Short enough that the admin function (29 s) still has time to
# store what the provider sent: a process killed between the answer and the write loses a rotated token.
CALL_SECONDS = 15.0
ACCOUNT_SECONDS = CALL_SECONDS + 10.0  # what one account's refresh may take, writes included
# Far longer than a call plus every write attempt (slow store calls included): a lease that lapsed under a
# live holder would let a second refresher send the same refresh token. A holder that died keeps the account
# from being refreshed for this long, which every provider's lead time plus one period covers.
LEASE_SECONDS = 300.0
# An access token whose lifetime the provider did not state is taken to live this long from its last
# refresh (or link), so it is still refreshed in time; an hour is the shortest lifetime seen (Google, Kiro).
ASSUMED_LIFETIME_SECONDS = 3600.0
BACKOFF_SECONDS = 60.0  # transient failures wait 1 min × 2^failures ...
BACKOFF_MAX_SECONDS = 3600.0  # ... at most an hour
WRITE_ATTEMPTS = 6


class Outcome(StrEnum):
    REFRESHED = "refreshed"
    SKIPPED = "skipped"  # not due, or someone else refreshed or relinked it first
    BUSY = "busy"  # another refresher holds the lease
    FAILED = "failed"  # transient: retried on a later run
    RELINK_NEEDED = "relink_needed"  # the grant is gone: only `omniroute login <provider> --relink <id>` helps


@dataclass(frozen=True, slots=True)
class AccountRefresh:
    """What happened to one account; `detail` is safe to show (never a token)."""

    connection_id: str
    provider: str
    outcome: Outcome
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "connectionId": self.connection_id,
            "provider": self.provider,
            "outcome": self.outcome.value,
            "detail": self.detail,
        }


@dataclass(slots=True)
class RefreshReport:
    results: list[AccountRefresh] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    def counts(self) -> dict[str, int]:
        return {o.value: self.count(o) for o in Outcome}


# ----- the rules -----------------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def token_version(data: Mapping[str, Any]) -> int:
    version = data.get("tokenVersion")
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def is_due(data: Mapping[str, Any], spec: RefreshSpec, now: float, period: float) -> bool:
    """Whether an account should be refreshed at `now`, when refreshers run every `period` seconds: its access
    token has less than the provider's lead plus one period left, and no backoff (`retryAt`) is pending. A
    token of unknown lifetime counts as expiring `ASSUMED_LIFETIME_SECONDS` after it was obtained (with a lead
    of at most half that). An account needing a relink is never due, forced or not: only a relink helps."""
    if data.get("status") == RELINK_NEEDED:
        return False
    expires = _number(data.get("expiresAt"))
    lead = spec.lead_seconds
    if expires is None or expires <= 0:
        obtained = _instant(data.get("refreshedAt")) or _instant(data.get("linkedAt"))
        if obtained is None:
            return False
        expires = obtained + ASSUMED_LIFETIME_SECONDS
        lead = min(lead, ASSUMED_LIFETIME_SECONDS / 2)
    if now < expires - lead - period:
        return False
    retry = _number(data.get("retryAt"))
    return retry is None or retry <= now


def _instant(value: object) -> float | None:
    """Epoch seconds of a stored ISO 8601 time; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def lease_name(connection_id: str, provider: str, spec: RefreshSpec) -> str:
    return f"REFRESH#provider:{provider}" if spec.serialize == "provider" else f"REFRESH#{connection_id}"


def backoff(failures: int) -> float:
    """Seconds before retrying after `failures` earlier consecutive failures (this one not counted)."""
    return min(BACKOFF_SECONDS * float(2 ** min(failures, 20)), BACKOFF_MAX_SECONDS)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _spec(record: Record) -> RefreshSpec | None:
    meta = record.data.get("meta")
    return refresh_spec(str(record.data.get("provider") or ""), meta if isinstance(meta, Mapping) else {})


def _without(data: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in names}


# ----- the refresher -------------------------------------------------------------------------------------


class TokenRefresher:
    """Refreshes linked accounts' tokens under leases (see the module docstring).

    `period`: how often `refresh_due` runs (added to each provider's lead time). `owner`: names this instance
    in the leases it takes (a random suffix keeps two instances apart). `on_change`: called after each write
    (local mode drops its configuration copy so the gateway sends the new token at once). `public_urls_only`:
    a Copilot plan host must be a public address (the cloud).
    """

    def __init__(
        self,
        store: ConfigStore,
        cipher: Cipher,
        leases: LeaseStore,
        http: UpstreamClient,
        clock: Callable[[], float],
        *,
        period: float = CLOUD_SCHEDULE_SECONDS,
        owner: str = "refresher",
        on_change: Callable[[], None] | None = None,
        public_urls_only: bool = False,
        concurrency: int = 4,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._leases = leases
        self._http = http
        self._clock = clock
        self._period = period
        self._owner = f"{owner}-{secrets.token_hex(6)}"
        self._on_change = on_change or (lambda: None)
        self._public_only = public_urls_only
        self._concurrency = max(1, concurrency)

    async def refresh_due(self, now: float, *, time_left: float | None = None) -> RefreshReport:
        """Refresh every linked account that is due at `now`. Accounts sharing a lease (a provider serialized
        as a whole) go one after another; the others run side by side, a few at a time. One account failing
        never stops the rest. `time_left`: seconds this run may last (a Lambda's remaining time); no account
        is started that could not finish in it, since a run cut off after the provider answered would lose
        a rotated refresh token. Those are left to the next run."""
        started = time.monotonic()
        records = await anyio.to_thread.run_sync(self._store.list, Kind.OAUTH)
        report = RefreshReport()
        queues: dict[str, list[tuple[Record, RefreshSpec]]] = {}
        for record in records:
            spec = _spec(record)
            if spec is None or not is_due(record.data, spec, now, self._period):
                report.results.append(self._idle(record, spec))
                continue
            name = lease_name(record.id, str(record.data.get("provider")), spec)
            queues.setdefault(name, []).append((record, spec))
        limiter = anyio.Semaphore(self._concurrency)

        async def drain(queue: list[tuple[Record, RefreshSpec]]) -> None:
            async with limiter:
                for record, spec in queue:
                    if time_left is not None and time.monotonic() - started > time_left - ACCOUNT_SECONDS:
                        provider = str(record.data.get("provider") or "")
                        report.results.append(
                            AccountRefresh(record.id, provider, Outcome.SKIPPED, "left to the next run")
                        )
                        continue
                    report.results.append(await self._guarded(record, spec, now, force=False))

        async with anyio.create_task_group() as tg:
            for queue in queues.values():
                tg.start_soon(drain, queue)
        return report

    async def refresh_one(self, connection_id: str, *, force: bool = False) -> AccountRefresh:
        """Refresh one account now if due (or whatever its expiry, with `force`). Raises NotFound when the
        connection has no linked credentials."""
        record = await anyio.to_thread.run_sync(self._store.get, Kind.OAUTH, connection_id)
        if record is None:
            raise NotFound(f"No linked OAuth account with id `{connection_id}`.")
        spec = _spec(record)
        if spec is None:
            return self._idle(record, spec)
        return await self._guarded(record, spec, self._clock(), force=force)

    @staticmethod
    def _idle(record: Record, spec: RefreshSpec | None) -> AccountRefresh:
        provider = str(record.data.get("provider") or "")
        if spec is None:
            return AccountRefresh(record.id, provider, Outcome.SKIPPED, f"no refresh rule for provider `{provider}`")
        if record.data.get("status") == RELINK_NEEDED:
            reason = record.data.get("relinkReason") or "the grant is gone"
            return AccountRefresh(record.id, provider, Outcome.RELINK_NEEDED, str(reason))
        return AccountRefresh(record.id, provider, Outcome.SKIPPED, "not due")

    async def _guarded(self, record: Record, spec: RefreshSpec, now: float, *, force: bool) -> AccountRefresh:
        provider = str(record.data.get("provider") or "")
        try:
            return await self._refresh(record, spec, now, force=force)
        except Exception as exc:  # a store or KMS error for one account must not end the run
            log.exception("refreshing the tokens of %s (%s) failed", record.id, provider)
            return AccountRefresh(record.id, provider, Outcome.FAILED, f"internal error ({type(exc).__name__})")

    async def _refresh(self, record: Record, spec: RefreshSpec, now: float, *, force: bool) -> AccountRefresh:
        provider = str(record.data.get("provider") or "")
        if record.data.get("status") == RELINK_NEEDED or not (force or is_due(record.data, spec, now, self._period)):
            return self._idle(record, spec)
        name = lease_name(record.id, provider, spec)
        # the lease, and all that follows, counts from now: a run's accounts wait their turn (one provider's
        # accounts one after another), and a lease dated from the run's start could lapse under its holder
        now = max(now, self._clock())
        if not await anyio.to_thread.run_sync(self._leases.acquire, name, self._owner, now, LEASE_SECONDS):
            return AccountRefresh(record.id, provider, Outcome.BUSY, "another refresher holds the lease")
        try:
            return await self._under_lease(record, spec, now, force=force)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(self._leases.release, name, self._owner)
                except Exception:  # it lapses by itself after LEASE_SECONDS
                    log.warning("could not release the refresh lease %s; it lapses by itself", name, exc_info=True)

    async def _under_lease(self, first: Record, spec: RefreshSpec, now: float, *, force: bool) -> AccountRefresh:
        conn_id, provider_id = first.id, str(first.data.get("provider") or "")
        current = await anyio.to_thread.run_sync(self._store.get, Kind.OAUTH, conn_id)  # consistent
        if current is None:
            return AccountRefresh(conn_id, provider_id, Outcome.SKIPPED, "the account was removed")
        if token_version(current.data) != token_version(first.data):
            return AccountRefresh(conn_id, provider_id, Outcome.SKIPPED, "already refreshed or relinked meanwhile")
        if current.data.get("status") == RELINK_NEEDED or not (force or is_due(current.data, spec, now, self._period)):
            return self._idle(current, spec)
        try:
            tokens = await anyio.to_thread.run_sync(self._decrypt, current)
        except (DecryptionFailed, ValueError):
            return await self._relink(current, "the stored tokens cannot be decrypted (the key changed)")
        provider = oauth_provider(provider_id)
        meta = current.data.get("meta")
        try:
            call = build_call(spec, provider, tokens, meta if isinstance(meta, Mapping) else {})
        except CannotRefresh as exc:
            return await self._relink(current, str(exc))
        verdict: Refreshed | Rejected
        try:
            with anyio.fail_after(CALL_SECONDS):
                resp = await self._http.send(
                    call.method, call.url, call.headers, call.body, stream=False, read_timeout=CALL_SECONDS
                )
                raw = await resp.aread()
        except TimeoutError:
            verdict = Rejected(False, f"the token endpoint did not answer within {CALL_SECONDS:g} s")
        except GatewayError as exc:  # the upstream client's own messages: statuses and host names only
            verdict = Rejected(False, exc.message)
        else:
            verdict = read_reply(spec, provider, resp.status, resp.headers, raw, tokens, now)
        if isinstance(verdict, Refreshed):
            return await self._store_refreshed(current, verdict, now)
        if verdict.fatal:
            return await self._relink(current, verdict.reason)
        return await self._failed(current, verdict, now)

    def _decrypt(self, record: Record) -> OAuthTokens:
        secret = record.data.get("secret")
        if not isinstance(secret, str):
            raise ValueError("no stored secret")
        return OAuthTokens.from_json(self._cipher.decrypt(secret, secret_context(Kind.OAUTH, record.id)))

    # ----- writes ----------------------------------------------------------------------------------------

    async def _write(self, current: Record, change: Callable[[Mapping[str, Any]], dict[str, Any]]) -> str:
        """Write `change(data)` over the record conditioned on its version, re-reading on a conflict.
        Returns "written", "superseded" (its tokenVersion moved: a relink won), "gone" or "failed"."""
        expected = current
        tried: dict[str, Any] | None = None
        for attempt in range(WRITE_ATTEMPTS):
            try:
                tried = await anyio.to_thread.run_sync(change, expected.data)
                await anyio.to_thread.run_sync(self._store.update, Kind.OAUTH, current.id, tried, expected.version)
                return "written"
            except Conflict:
                latest = await anyio.to_thread.run_sync(self._store.get, Kind.OAUTH, current.id)
                if latest is None:
                    return "gone"
                if latest.data == tried:  # an earlier attempt did land (its answer was lost): done
                    return "written"
                if token_version(latest.data) != token_version(current.data):
                    return "superseded"
                expected = latest  # something else changed (bookkeeping, meta): our write still stands
            except NotFound:
                return "gone"
            except Exception:
                log.warning("writing the credentials of %s failed (attempt %d)", current.id, attempt + 1, exc_info=True)
                await anyio.sleep(min(0.2 * 2**attempt, 3.0))
        return "failed"

    async def _store_refreshed(self, current: Record, result: Refreshed, now: float) -> AccountRefresh:
        conn_id, provider = current.id, str(current.data.get("provider") or "")
        sealed: list[str] = []

        def change(base: Mapping[str, Any]) -> dict[str, Any]:
            if not sealed:  # sealed once, inside the retried step: a KMS hiccup is retried too
                sealed.append(self._cipher.encrypt(result.tokens.to_json(), secret_context(Kind.OAUTH, conn_id)))
            data = _without(base, "lastError", "retryAt", "relinkReason")
            data.update(
                secret=sealed[0],
                expiresAt=result.expires_at,
                tokenVersion=token_version(base) + 1,
                refreshedAt=_iso(now),
                status=ACTIVE,
                failures=0,
            )
            if result.meta:
                meta = base.get("meta")
                data["meta"] = {**(meta if isinstance(meta, Mapping) else {}), **result.meta}
            return data

        written = await self._write(current, change)
        if written == "superseded":
            log.error(
                "connection %s (%s) was relinked while its tokens were being refreshed: the refreshed tokens are "
                "dropped and the relink's kept",
                conn_id,
                provider,
            )
            return AccountRefresh(
                conn_id, provider, Outcome.SKIPPED, "relinked while refreshing; the relink's tokens kept"
            )
        if written == "gone":
            return AccountRefresh(conn_id, provider, Outcome.SKIPPED, "the account was removed while refreshing")
        if written == "failed":
            # The provider has issued new tokens we could not keep; a rotated refresh token is now lost.
            log.error("the refreshed tokens of %s (%s) could not be stored; it may need relinking", conn_id, provider)
            return AccountRefresh(conn_id, provider, Outcome.FAILED, "the refreshed tokens could not be stored")
        await anyio.to_thread.run_sync(self._on_change)  # locally: the gateway's copy is rebuilt
        if result.base_url is not None:
            try:
                await anyio.to_thread.run_sync(self._set_base_url, conn_id, result.base_url)
            except Exception:  # the tokens are stored; the host is named again with the next token
                log.warning("could not store the API host of %s", conn_id, exc_info=True)
        log.info("refreshed the tokens of %s (%s)", conn_id, provider, extra={"expiresAt": result.expires_at})
        until = f"valid until {_iso(result.expires_at)}" if result.expires_at > 0 else "expiry not given"
        return AccountRefresh(conn_id, provider, Outcome.REFRESHED, until)

    def _set_base_url(self, conn_id: str, url: str) -> None:
        """Copilot names the plan's API host with each token (business and enterprise seats differ); requests
        must go there (CLIProxyAPI+ notes a 421 otherwise)."""
        try:
            url = validate_linked_base_url(url, public_only=self._public_only)
        except InvalidRequest:
            log.warning("ignoring the API host the token exchange named for %s: not a usable URL", conn_id)
            return
        for _ in range(3):
            conn = self._store.get(Kind.PROVIDER, conn_id)
            if conn is None or conn.data.get("baseUrl") == url:
                return
            try:
                self._store.update(Kind.PROVIDER, conn_id, {**conn.data, "baseUrl": url}, conn.version)
            except Conflict:
                continue
            self._on_change()
            return

    async def _relink(self, current: Record, reason: str) -> AccountRefresh:
        conn_id, provider = current.id, str(current.data.get("provider") or "")

        def change(base: Mapping[str, Any]) -> dict[str, Any]:
            return {**_without(base, "retryAt"), "status": RELINK_NEEDED, "relinkReason": reason, "lastError": reason}

        written = await self._write(current, change)
        if written != "written":
            return AccountRefresh(conn_id, provider, Outcome.SKIPPED, "relinked or removed meanwhile")
        await anyio.to_thread.run_sync(self._on_change)
        log.warning(
            "connection %s (%s) needs relinking: %s (run `omniroute login %s --relink %s`)",
            conn_id, provider, reason, provider, conn_id,
        )  # fmt: skip
        return AccountRefresh(conn_id, provider, Outcome.RELINK_NEEDED, reason)

    async def _failed(self, current: Record, verdict: Rejected, now: float) -> AccountRefresh:
        conn_id, provider = current.id, str(current.data.get("provider") or "")
        before = current.data.get("failures")
        failures = before if isinstance(before, int) and not isinstance(before, bool) and before > 0 else 0
        wait = max(backoff(failures), verdict.retry_after or 0.0)

        def change(base: Mapping[str, Any]) -> dict[str, Any]:
            return {**base, "lastError": verdict.reason, "failures": failures + 1, "retryAt": now + wait}

        await self._write(current, change)
        log.warning("refreshing %s (%s) failed, retrying in %.0f s: %s", conn_id, provider, wait, verdict.reason)
        return AccountRefresh(conn_id, provider, Outcome.FAILED, f"{verdict.reason}; retrying in {wait:.0f} s")


async def refresh_tokens_every(
    refresher: TokenRefresher, clock: Callable[[], float], every: float = LOCAL_REFRESH_SECONDS
) -> None:
    """Local mode's stand-in for the scheduled function: a run now, then every `every` seconds, until cancelled."""
    while True:
        try:
            await refresher.refresh_due(clock())
        except Exception:  # the next round tries again
            log.exception("token refresh run failed")
        await asyncio.sleep(every)
