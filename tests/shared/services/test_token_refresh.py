"""The token refresher against the fake token service (tests/fakes/token_server.py: rotating single-use refresh
tokens, families revoked on reuse) over real loopback HTTP, with its records on moto's DynamoDB server: when
an account is due, each refresh style on the wire, what is stored, fatal and transient failures, a relink
racing a refresh, and concurrent refreshers (separate processes, like Lambda instances) of one account."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.adapters.dynamo.leases import DynamoLeaseStore
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.tables import create_tables
from shared.adapters.upstream import HttpxUpstream
from shared.domain.config import Kind, Record
from shared.domain.oauth import OAuthTokens
from shared.errors import NotFound
from shared.providers.oauth import HOSTS_ENV, oauth_provider, refresh_spec
from shared.services.oauth_accounts import OAuthAccountsService
from shared.services.snapshot import secret_context
from shared.services.token_refresh import (
    ACCOUNT_SECONDS,
    BACKOFF_MAX_SECONDS,
    LEASE_SECONDS,
    Outcome,
    TokenRefresher,
    backoff,
    is_due,
)
from tests.fakes.server import ServerThread
from tests.fakes.token_server import COPILOT_PATH, TokenServerState, create_app, fake_jwt
from tests.shared.services.processes import SPAWN, run_together

REGION = "us-east-1"
NOW = 1_800_000_000.0
PERIOD = 300.0
HOUR = 3600.0
ORIGINS = (
    "https://platform.claude.com",
    "https://auth.openai.com",
    "https://api.github.com",
    "https://oauth2.googleapis.com",
    "https://oidc.us-east-1.amazonaws.com",
    "https://prod.us-east-1.auth.desktop.kiro.dev",
    "https://auth.kimi.com",
    "https://auth.x.ai",
)


def client_id(provider: str) -> str:
    row = oauth_provider(provider)
    assert row is not None
    return row.refresh.client_id


def digest(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()[:16]


# ----- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app()) as running:
        yield running


def _hosts(base_url: str) -> str:
    hosts = {origin: base_url for origin in ORIGINS}
    hosts["https://oidc.eu-west-1.amazonaws.com"] = base_url + "/eu-west-1"  # tells the regions apart
    return json.dumps(hosts)


@pytest.fixture
def fake(server: ServerThread[Any], monkeypatch: pytest.MonkeyPatch) -> TokenServerState:
    state = TokenServerState(clock=lambda: NOW)
    server.app.state.fake = state
    monkeypatch.setenv(HOSTS_ENV, _hosts(server.base_url))
    return state


@dataclass
class Target:
    """A target's store on moto's server: what linking writes, and what the refresher needs."""

    endpoint: str
    tables: dict[str, str]
    key_file: Path
    store: DynamoConfigStore
    cipher: AesGcmCipher

    def link(
        self,
        provider: str,
        refresh: str | None,
        expires_at: float,
        *,
        access: str = "at-linked",
        meta: dict[str, Any] | None = None,
        client_secret: str | None = None,
        connection_id: str | None = None,
    ) -> str:
        """Link as `POST /api/oauth/link` does (the real service), returning the connection id."""
        tokens: dict[str, Any] = {"accessToken": access, "expiresAt": expires_at}
        if refresh:
            tokens["refreshToken"] = refresh
        if client_secret:
            tokens["clientSecret"] = client_secret
        fields: dict[str, Any] = {"provider": provider, "tokens": tokens, "meta": meta or {}}
        if connection_id:
            fields["connectionId"] = connection_id
        account = OAuthAccountsService(self.store, self.cipher, lambda: None).link(fields)
        return str(account["id"])

    def record(self, conn_id: str) -> Record:
        found = self.store.get(Kind.OAUTH, conn_id)
        assert found is not None
        return found

    def tokens(self, conn_id: str) -> OAuthTokens:
        sealed = self.record(conn_id).data["secret"]
        return OAuthTokens.from_json(self.cipher.decrypt(sealed, secret_context(Kind.OAUTH, conn_id)))

    def leases(self) -> DynamoLeaseStore:
        return DynamoLeaseStore(DynamoRoutingStore(self.tables["StateTable"], REGION, self.endpoint).items)

    def refresher(self, http: HttpxUpstream, now: float = NOW, **options: Any) -> TokenRefresher:
        return TokenRefresher(self.store, self.cipher, self.leases(), http, lambda: now, period=PERIOD, **options)


@pytest.fixture
def target(moto_endpoint: str, tmp_path: Path) -> Target:
    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"{name}-{suffix}" for name in ("ConfigTable", "StateTable", "UsageTable")}
    create_tables(botocore.session.get_session().create_client("dynamodb", REGION, endpoint_url=moto_endpoint), tables)
    key_file = tmp_path / "secret.key"
    cipher = AesGcmCipher.from_key_file(key_file)
    store = DynamoConfigStore(bind_config_model(tables["ConfigTable"], REGION, moto_endpoint))
    return Target(moto_endpoint, tables, key_file, store, cipher)


@pytest.fixture
async def http() -> AsyncIterator[HttpxUpstream]:
    client = HttpxUpstream(connect_timeout=2, read_timeout=10)
    yield client
    await client.aclose()


# ----- when an account is due ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "lead"),
    [("claude", 4 * HOUR), ("codex", 5 * 86400.0), ("github", 300.0), ("antigravity", 300.0), ("kiro", 600.0)],
)
def test_an_account_is_due_within_its_providers_lead_plus_one_schedule_period(provider: str, lead: float) -> None:
    spec = refresh_spec(provider, {})
    assert spec is not None and spec.lead_seconds == lead
    at_edge = {"status": "active", "expiresAt": NOW + lead + PERIOD}
    assert is_due(at_edge, spec, NOW, PERIOD)
    assert not is_due({**at_edge, "expiresAt": NOW + lead + PERIOD + 1}, spec, NOW, PERIOD)
    assert is_due({**at_edge, "expiresAt": NOW - 10}, spec, NOW, PERIOD)  # already expired: still refreshed


def test_backoff_and_relinking_keep_an_account_from_being_due() -> None:
    spec = refresh_spec("claude", {})
    assert spec is not None
    due = {"status": "active", "expiresAt": NOW + 60}
    assert is_due(due, spec, NOW, PERIOD)
    assert not is_due({**due, "retryAt": NOW + 1}, spec, NOW, PERIOD)
    assert is_due({**due, "retryAt": NOW}, spec, NOW, PERIOD)
    assert not is_due({**due, "status": "relink_needed"}, spec, NOW, PERIOD)


def test_a_token_of_unknown_lifetime_is_refreshed_within_the_hour_it_was_obtained() -> None:
    """No `expires_in` and no JWT `exp`: the token is taken to live an hour (the shortest any provider uses)
    from its last refresh, or its link, so it is never served dead for long and never left unrefreshed."""
    from datetime import UTC, datetime

    spec = refresh_spec("codex", {})  # a lead (5 days) longer than the assumed life: capped at half of it
    assert spec is not None

    def at(offset: float) -> str:
        return datetime.fromtimestamp(NOW + offset, UTC).isoformat(timespec="seconds")

    linked = {"status": "active", "expiresAt": 0, "linkedAt": at(0)}
    assert not is_due(linked, spec, NOW + 60, PERIOD)
    assert is_due(linked, spec, NOW + 1800 - PERIOD, PERIOD)
    refreshed = {**linked, "refreshedAt": at(3000)}
    assert not is_due(refreshed, spec, NOW + 3000 + 60, PERIOD)
    assert is_due(refreshed, spec, NOW + 3000 + 1800, PERIOD)
    assert not is_due({"status": "active", "expiresAt": 0}, spec, NOW, PERIOD)  # no time known at all


@pytest.mark.anyio
async def test_a_lease_is_dated_from_when_it_is_taken_not_from_the_start_of_the_run(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    """Accounts of one run wait their turn; a lease dated from the run's start could lapse under its holder."""
    taken: list[float] = []
    leases = target.leases()

    class Recording:
        def acquire(self, name: str, owner: str, now: float, seconds: float) -> bool:
            taken.append(now)
            return leases.acquire(name, owner, now, seconds)

        def release(self, name: str, owner: str) -> bool:
            return leases.release(name, owner)

    conn = target.link("claude", fake.family(client_id=client_id("claude")), NOW + 60)
    later = NOW + 100  # the moment this account's turn came
    refresher = TokenRefresher(target.store, target.cipher, Recording(), http, lambda: later, period=PERIOD)
    report = await refresher.refresh_due(NOW)
    assert [r.outcome for r in report.results] == [Outcome.REFRESHED] and taken == [later]
    assert target.record(conn).data["tokenVersion"] == 2


def test_backoff_doubles_from_a_minute_up_to_an_hour() -> None:
    assert [backoff(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff(500) == BACKOFF_MAX_SECONDS


# ----- each refresh style on the wire ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_codex_rotates_its_refresh_token_and_reads_the_new_id_token(
    fake: TokenServerState, target: Target, http: HttpxUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    claims = {
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct-new", "chatgpt_plan_type": "pro"},
        "email": "me@example.com",
    }
    first = fake.family(client_id=client_id("codex"), id_claims=claims, expires_in=864000)
    conn = target.link("codex", first, NOW + HOUR, meta={"accountId": "acct-old", "plan": "plus", "region": "x"})

    report = await target.refresher(http).refresh_due(NOW)

    assert [(r.connection_id, r.outcome) for r in report.results] == [(conn, Outcome.REFRESHED)]
    [call] = fake.calls
    assert (call.path, call.content_type) == ("/oauth/token", "form")
    assert call.fields == {
        "grant_type": "refresh_token",
        "refresh_token": first,
        "client_id": client_id("codex"),
        "scope": "openid profile email",
    }
    family = fake.family_of(first)
    stored = target.tokens(conn)
    assert stored.access_token == family.access_tokens[-1]
    assert stored.refresh_token == family.refresh_tokens[-1] != first
    assert stored.id_token == fake_jwt(claims)
    data = target.record(conn).data
    assert data["tokenVersion"] == 2 and data["status"] == "active" and data["failures"] == 0
    assert data["expiresAt"] == NOW + 864000
    assert data["refreshedAt"] == "2027-01-15T08:00:00+00:00"
    assert data["meta"] == {"accountId": "acct-new", "plan": "pro", "email": "me@example.com", "region": "x"}
    for token in (first, stored.access_token, stored.refresh_token):
        assert token not in caplog.text


@pytest.mark.anyio
async def test_claude_refreshes_with_json_and_its_own_user_agent(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id=client_id("claude"), expires_in=8 * 3600)
    conn = target.link("claude", first, NOW + 3 * HOUR)

    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED

    [call] = fake.calls
    assert (call.path, call.content_type) == ("/v1/oauth/token", "json")
    assert call.fields == {"grant_type": "refresh_token", "refresh_token": first, "client_id": client_id("claude")}
    assert call.headers["user-agent"] == "axios/1.15.2"
    assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)


@pytest.mark.anyio
async def test_google_keeps_the_refresh_token_when_none_comes_back(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    spec = refresh_spec("antigravity", {})
    assert spec is not None and spec.client_secret
    refresh = fake.family(rotates=False, client_id=spec.client_id, client_secret=spec.client_secret)
    conn = target.link("antigravity", refresh, NOW + 120, meta={"projectId": "p-1"})

    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED

    [call] = fake.calls
    assert (call.path, call.fields["client_secret"]) == ("/token", spec.client_secret)
    stored = target.tokens(conn)
    assert stored.refresh_token == refresh  # no refresh token in the answer: the old one is kept
    assert stored.access_token == fake.family_of(refresh).access_tokens[-1]
    assert target.record(conn).data["meta"] == {"projectId": "p-1"}


@pytest.mark.anyio
async def test_copilot_mints_a_token_from_the_github_token_and_follows_the_plan_host(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    github = fake.family(rotates=False, expires_in=1800, prefix="ghu")
    fake.copilot_api = "https://api.business.githubcopilot.com"
    conn = target.link("github", github, NOW + 200, access="tid=old;exp=1")

    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED

    [call] = fake.calls
    assert call.path == COPILOT_PATH
    assert call.headers["authorization"] == f"token {github}"
    assert call.headers["editor-version"] == "vscode/1.110.0"
    assert call.headers["editor-plugin-version"] == "copilot-chat/0.38.0"
    stored = target.tokens(conn)
    assert stored.access_token == fake.family_of(github).access_tokens[-1]
    assert stored.refresh_token == github
    assert target.record(conn).data["expiresAt"] == NOW + 1800
    assert target.record(conn).data["meta"] == {"plan": "copilot_individual"}
    connection = target.store.get(Kind.PROVIDER, conn)
    assert connection is not None and connection.data["baseUrl"] == "https://api.business.githubcopilot.com"


@pytest.mark.anyio
async def test_kiro_builder_id_refreshes_at_its_regions_oidc_host_with_its_registered_client(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id="kiro-client", client_secret="kiro-client-secret")
    meta = {"authMethod": "builder-id", "clientId": "kiro-client", "region": "eu-west-1"}
    conn = target.link("kiro", first, NOW + 60, meta=meta, client_secret="kiro-client-secret")

    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED

    [call] = fake.calls
    assert (call.path, call.shape, call.content_type) == ("/eu-west-1/token", "aws-oidc", "json")
    assert call.fields == {
        "clientId": "kiro-client",
        "clientSecret": "kiro-client-secret",
        "refreshToken": first,
        "grantType": "refresh_token",
    }
    stored = target.tokens(conn)
    assert stored.refresh_token == fake.current_refresh_token(first) != first
    assert stored.client_secret == "kiro-client-secret"  # kept: the next refresh needs it again


@pytest.mark.anyio
async def test_kiro_social_refreshes_with_just_the_token_and_keeps_the_profile(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    arn = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"
    first = fake.family(extra={"profileArn": arn})
    conn = target.link("kiro", first, NOW + 60, meta={"authMethod": "google"})

    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED

    [call] = fake.calls
    assert (call.path, call.shape, call.fields) == ("/refreshToken", "kiro-social", {"refreshToken": first})
    assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)
    assert target.record(conn).data["meta"] == {"authMethod": "google", "profileArn": arn}


@pytest.mark.parametrize(("provider", "path"), [("kimi-code", "/api/oauth/token"), ("grok-cli", "/oauth2/token")])
@pytest.mark.anyio
async def test_device_flow_providers_refresh_with_a_form_and_their_client(
    fake: TokenServerState, target: Target, http: HttpxUpstream, provider: str, path: str
) -> None:
    first = fake.family(client_id=client_id(provider))
    conn = target.link(provider, first, NOW + 60)

    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED

    [call] = fake.calls
    assert (call.path, call.content_type, call.fields["client_id"]) == (path, "form", client_id(provider))
    assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)


# ----- what is and is not refreshed ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_account_not_due_is_left_alone_unless_forced(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id=client_id("codex"), expires_in=864000)
    conn = target.link("codex", first, NOW + 6 * 86400)
    refresher = target.refresher(http)

    report = await refresher.refresh_due(NOW)
    assert [(r.outcome, r.detail) for r in report.results] == [(Outcome.SKIPPED, "not due")]
    assert (await refresher.refresh_one(conn)).outcome is Outcome.SKIPPED
    assert fake.calls == []

    assert (await refresher.refresh_one(conn, force=True)).outcome is Outcome.REFRESHED
    assert len(fake.calls) == 1


@pytest.mark.anyio
async def test_refreshing_an_unknown_account_is_not_found(target: Target, http: HttpxUpstream) -> None:
    with pytest.raises(NotFound):
        await target.refresher(http).refresh_one("conn_nope", force=True)


@pytest.mark.anyio
async def test_an_account_whose_lease_is_held_elsewhere_is_busy_until_the_lease_lapses(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id=client_id("claude"))
    conn = target.link("claude", first, NOW + 60)
    assert target.leases().acquire(f"REFRESH#{conn}", "someone-else", NOW - 1, LEASE_SECONDS)

    report = await target.refresher(http).refresh_due(NOW)
    assert [r.outcome for r in report.results] == [Outcome.BUSY]
    assert fake.calls == []

    later = NOW + LEASE_SECONDS
    report = await target.refresher(http, later).refresh_due(later)
    assert [r.outcome for r in report.results] == [Outcome.REFRESHED]


@pytest.mark.anyio
async def test_an_account_without_a_refresh_token_needs_relinking_once_due(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    conn = target.link("claude", None, NOW + 60)

    report = await target.refresher(http).refresh_due(NOW)

    assert [(r.outcome, r.detail) for r in report.results] == [
        (Outcome.RELINK_NEEDED, "no refresh token was linked with this account")
    ]
    assert target.record(conn).data["status"] == "relink_needed"
    assert fake.calls == []


@pytest.mark.anyio
async def test_a_run_without_time_to_finish_an_account_leaves_it_to_the_next_run(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    conn = target.link("claude", fake.family(client_id=client_id("claude")), NOW + 60)
    refresher = target.refresher(http)

    short = await refresher.refresh_due(NOW, time_left=ACCOUNT_SECONDS - 1)
    assert [(r.outcome, r.detail) for r in short.results] == [(Outcome.SKIPPED, "left to the next run")]
    assert fake.calls == [] and target.record(conn).data["tokenVersion"] == 1

    enough = await refresher.refresh_due(NOW, time_left=ACCOUNT_SECONDS + 60)
    assert [r.outcome for r in enough.results] == [Outcome.REFRESHED]


# ----- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["invalid_grant", "reused", "copilot_revoked"])
@pytest.mark.anyio
async def test_a_fatal_answer_marks_the_account_for_relinking_and_is_never_retried(
    fake: TokenServerState, target: Target, http: HttpxUpstream, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    if how == "copilot_revoked":
        refresh = fake.family(rotates=False, prefix="ghu")
        fake.revoke(refresh)
        conn = target.link("github", refresh, NOW + 60, access="tid=still-good")
        expected = "Bad credentials"
    else:
        refresh = fake.family(client_id=client_id("codex"))
        if how == "reused":  # someone else (the companion, say) already spent it
            assert fake.redeem(refresh, client_id("codex"), None)[0] == 200
        else:
            fake.fail_next({"status": 400, "error": "invalid_grant"})
        conn = target.link("codex", refresh, NOW + 60, access="at-still-good")
        expected = "refresh_token_reused" if how == "reused" else "invalid_grant"
    refresher = target.refresher(http)

    report = await refresher.refresh_due(NOW)

    [result] = report.results
    assert result.outcome is Outcome.RELINK_NEEDED and expected in result.detail
    data = target.record(conn).data
    assert data["status"] == "relink_needed" and expected in data["relinkReason"]
    assert data["tokenVersion"] == 1 and target.tokens(conn).access_token.endswith("still-good")  # still serves
    assert refresh not in data["relinkReason"] and refresh not in caplog.text

    later = NOW + 2 * HOUR
    again = await target.refresher(http, later).refresh_due(later)
    assert [r.outcome for r in again.results] == [Outcome.RELINK_NEEDED]
    assert (await refresher.refresh_one(conn, force=True)).outcome is Outcome.RELINK_NEEDED
    assert len(fake.calls) == 1  # never sent again


@pytest.mark.anyio
async def test_a_transient_failure_backs_off_then_succeeds_and_clears_the_failure(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id=client_id("claude"))
    conn = target.link("claude", first, NOW + HOUR)
    fake.fail_next({"status": 500}, {"status": 503})

    report = await target.refresher(http).refresh_due(NOW)
    assert [r.outcome for r in report.results] == [Outcome.FAILED]
    data = target.record(conn).data
    assert (data["failures"], data["retryAt"], data["status"]) == (1, NOW + 60, "active")
    assert "HTTP 500" in data["lastError"]
    assert target.tokens(conn).access_token == "at-linked"  # the access token in hand keeps serving

    waiting = await target.refresher(http, NOW + 30).refresh_due(NOW + 30)
    assert [r.detail for r in waiting.results] == ["not due"] and len(fake.calls) == 1

    second = await target.refresher(http, NOW + 60).refresh_due(NOW + 60)
    assert [r.outcome for r in second.results] == [Outcome.FAILED]
    data = target.record(conn).data
    assert (data["failures"], data["retryAt"]) == (2, NOW + 60 + 120)

    done = await target.refresher(http, NOW + 180).refresh_due(NOW + 180)
    assert [r.outcome for r in done.results] == [Outcome.REFRESHED]
    data = target.record(conn).data
    assert data["failures"] == 0 and "retryAt" not in data and "lastError" not in data
    assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)
    assert len(fake.calls) == 3


@pytest.mark.anyio
async def test_a_429_waits_as_long_as_retry_after_says(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id=client_id("claude"))
    conn = target.link("claude", first, NOW + HOUR)
    fake.fail_next({"status": 429, "retry_after": 900})

    await target.refresher(http).refresh_due(NOW)

    data = target.record(conn).data
    assert (data["failures"], data["retryAt"]) == (1, NOW + 900)
    assert target.tokens(conn).refresh_token == first  # the token was never spent: it still works
    done = await target.refresher(http, NOW + 900).refresh_due(NOW + 900)
    assert [r.outcome for r in done.results] == [Outcome.REFRESHED]


@pytest.mark.anyio
async def test_an_unreachable_token_endpoint_is_a_transient_failure(
    fake: TokenServerState, target: Target, http: HttpxUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.server import free_port

    monkeypatch.setenv(HOSTS_ENV, json.dumps({"https://platform.claude.com": f"http://127.0.0.1:{free_port()}"}))
    conn = target.link("claude", fake.family(client_id=client_id("claude")), NOW + HOUR)

    report = await target.refresher(http).refresh_due(NOW)

    assert [r.outcome for r in report.results] == [Outcome.FAILED]
    assert "Could not connect" in target.record(conn).data["lastError"]


# ----- a relink while a refresh is in flight ---------------------------------------------------------------


async def _in_flight(fake: TokenServerState) -> None:
    for _ in range(500):
        if fake.in_flight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the refresh never reached the token endpoint")


@pytest.mark.anyio
async def test_a_relink_during_a_refresh_wins_and_the_refreshed_tokens_are_dropped(
    fake: TokenServerState, target: Target, http: HttpxUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    first = fake.family(client_id=client_id("codex"))
    conn = target.link("codex", first, NOW + 60)
    relinked = fake.family(client_id=client_id("codex"))
    fake.hold = threading.Event()

    refreshing = asyncio.ensure_future(target.refresher(http).refresh_one(conn))
    await _in_flight(fake)
    await asyncio.to_thread(target.link, "codex", relinked, NOW + 10 * 86400, access="at-relinked", connection_id=conn)
    fake.hold.set()
    result = await refreshing

    assert result.outcome is Outcome.SKIPPED and "relinked" in result.detail
    stored = target.tokens(conn)
    assert (stored.access_token, stored.refresh_token) == ("at-relinked", relinked)
    assert target.record(conn).data["tokenVersion"] == 2  # the relink's
    assert "was relinked while its tokens were being refreshed" in caplog.text


@pytest.mark.anyio
async def test_a_conflicting_write_that_is_no_relink_is_retried_so_the_new_tokens_are_kept(
    fake: TokenServerState, target: Target, http: HttpxUpstream
) -> None:
    first = fake.family(client_id=client_id("codex"))
    conn = target.link("codex", first, NOW + 60, meta={"email": "a@example.com"})
    fake.hold = threading.Event()

    refreshing = asyncio.ensure_future(target.refresher(http).refresh_one(conn))
    await _in_flight(fake)
    current = target.record(conn)  # someone edits the record meanwhile without new tokens
    edited = {**current.data, "meta": {"email": "b@example.com"}}
    await asyncio.to_thread(target.store.update, Kind.OAUTH, conn, edited, current.version)
    fake.hold.set()
    result = await refreshing

    assert result.outcome is Outcome.REFRESHED
    assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)  # the spent one's successor
    data = target.record(conn).data
    assert data["tokenVersion"] == 2 and data["meta"] == {"email": "b@example.com"}


class FlakyStore:
    """The real store, with the first credentials write failing: before it reached the table, or after (the
    write landed, its answer was lost), as a network blip does either way."""

    def __init__(self, inner: DynamoConfigStore, lost: str) -> None:
        self._inner = inner
        self._lost = lost
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update(self, kind: str, id: str, data: Any, expected_version: int) -> Record:
        if kind == Kind.OAUTH and not self.failed:
            self.failed += 1
            if self._lost == "answer":
                self._inner.update(kind, id, data, expected_version)
            raise ConnectionError(f"the store's {self._lost} was lost")
        return self._inner.update(kind, id, data, expected_version)


@pytest.mark.parametrize("lost", ["request", "answer"])
@pytest.mark.anyio
async def test_a_failed_write_of_new_tokens_is_retried_and_lands_once(
    fake: TokenServerState, target: Target, http: HttpxUpstream, caplog: pytest.LogCaptureFixture, lost: str
) -> None:
    first = fake.family(client_id=client_id("codex"))
    conn = target.link("codex", first, NOW + 60)
    store = FlakyStore(target.store, lost)
    refresher = TokenRefresher(store, target.cipher, target.leases(), http, lambda: NOW, period=PERIOD)  # type: ignore[arg-type]

    result = await refresher.refresh_one(conn)

    assert result.outcome is Outcome.REFRESHED and store.failed == 1
    assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)
    assert target.record(conn).data["tokenVersion"] == 2  # once, though written twice when the answer was lost
    assert "relinked" not in caplog.text


# ----- concurrent refreshers --------------------------------------------------------------------------------


def _refresher_instance(
    endpoint: str,
    tables: dict[str, str],
    key_file: Path,
    conn_id: str,
    now: float,
    finished: Any,
    ready: Any,
    results: Any,
) -> None:
    """One refresher as a separate instance would run it: its own store, lease and HTTP clients. Once every
    instance has finished its run (`finished`), each reads the account and reports the tokens it sees."""

    async def run() -> dict[str, Any]:
        store = DynamoConfigStore(bind_config_model(tables["ConfigTable"], REGION, endpoint))
        leases = DynamoLeaseStore(DynamoRoutingStore(tables["StateTable"], REGION, endpoint).items)
        http = HttpxUpstream(connect_timeout=5, read_timeout=30)
        cipher = AesGcmCipher.from_key_file(key_file, create=False)
        refresher = TokenRefresher(store, cipher, leases, http, lambda: now, period=PERIOD, owner="race")
        store.get(Kind.OAUTH, conn_id)  # connections warm, so the start is as close to together as can be
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        try:
            report = await refresher.refresh_due(now)
        finally:
            await http.aclose()
        await asyncio.get_running_loop().run_in_executor(None, finished.wait)
        record = store.get(Kind.OAUTH, conn_id)
        assert record is not None
        tokens = OAuthTokens.from_json(cipher.decrypt(record.data["secret"], secret_context(Kind.OAUTH, conn_id)))
        return {
            "outcomes": [r.outcome.value for r in report.results],
            "access": digest(tokens.access_token),
            "refresh": digest(tokens.refresh_token),
            "version": record.data["tokenVersion"],
        }

    try:
        results.put(asyncio.run(run()))
    except BaseException as exc:  # reported, so the test fails saying why instead of timing out
        results.put({"error": repr(exc)})


@pytest.mark.anyio
async def test_ten_concurrent_refreshers_of_one_rotating_token_make_exactly_one_refresh_call(
    fake: TokenServerState, target: Target, http: HttpxUpstream, atomic_moto_writes: None
) -> None:
    first = fake.family(client_id=client_id("codex"), expires_in=864000)
    conn = target.link("codex", first, NOW + 60)
    fake.delay = 0.2  # the refresh is slow: the others arrive while it is in flight

    args = (target.endpoint, target.tables, target.key_file, conn, NOW, SPAWN.Barrier(10, timeout=60))
    reports = await asyncio.to_thread(run_together, _refresher_instance, args, 10)

    assert all("error" not in r for r in reports), reports
    assert len(fake.refresh_calls()) == 1  # the rotating token was sent exactly once
    outcomes = sorted(o for r in reports for o in r["outcomes"])
    assert outcomes.count("refreshed") == 1 and set(outcomes) <= {"refreshed", "busy", "skipped"}
    family = fake.family_of(first)
    assert family.revoked is None
    assert {(r["access"], r["refresh"], r["version"]) for r in reports} == {
        (digest(family.access_tokens[-1]), digest(family.refresh_tokens[-1]), 2)
    }
    # The family is intact: the stored refresh token works (and is spent by this one call only).
    fake.delay = 0.0
    assert (await target.refresher(http).refresh_one(conn, force=True)).outcome is Outcome.REFRESHED
    assert [c.status for c in fake.refresh_calls()] == [200, 200]
    assert family.revoked is None


def test_codex_accounts_refresh_one_at_a_time_across_refreshers(
    fake: TokenServerState, target: Target, atomic_moto_writes: None
) -> None:
    """Codex serializes per provider (sibling accounts refreshing at once revoked each other): four refreshers
    on their own threads and clients, two due Codex accounts; never two refresh calls in flight."""
    firsts = [fake.family(client_id=client_id("codex"), expires_in=864000) for _ in range(2)]
    conns = [target.link("codex", first, NOW + 60) for first in firsts]
    fake.delay = 0.15
    start = threading.Barrier(4)

    def instance() -> list[str]:
        async def run() -> list[str]:
            http = HttpxUpstream(connect_timeout=5, read_timeout=30)
            store = DynamoConfigStore(bind_config_model(target.tables["ConfigTable"], REGION, target.endpoint))
            refresher = TokenRefresher(store, target.cipher, target.leases(), http, lambda: NOW, period=PERIOD)
            await asyncio.to_thread(start.wait)
            try:
                return [r.outcome.value for r in (await refresher.refresh_due(NOW)).results]
            finally:
                await http.aclose()

        return asyncio.run(run())

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = [o for done in pool.map(lambda _: instance(), range(4)) for o in done]

    assert fake.max_in_flight == 1
    assert outcomes.count("refreshed") == 2 and len(fake.refresh_calls()) == 2
    for first, conn in zip(firsts, conns, strict=True):
        assert target.tokens(conn).refresh_token == fake.current_refresh_token(first)
        assert fake.family_of(first).revoked is None


def test_the_race_test_can_fail_without_the_lease(
    fake: TokenServerState, target: Target, atomic_moto_writes: None
) -> None:
    """The check on the check: with a lease store that always grants, refreshers that overlap do send the same
    rotating token more than once and the fake revokes the family, so the race test above catches a broken
    lease. Answers are held until all three calls arrived, so the overlap is certain, not a matter of timing."""

    class AlwaysGranted:
        def acquire(self, name: str, owner: str, now: float, seconds: float) -> bool:
            return True

        def release(self, name: str, owner: str) -> bool:
            return True

    first = fake.family(client_id=client_id("codex"), expires_in=864000)
    conn = target.link("codex", first, NOW + 60)
    fake.hold = threading.Event()

    def instance() -> str:
        async def run() -> str:
            http = HttpxUpstream(connect_timeout=5, read_timeout=30)
            store = DynamoConfigStore(bind_config_model(target.tables["ConfigTable"], REGION, target.endpoint))
            refresher = TokenRefresher(store, target.cipher, AlwaysGranted(), http, lambda: NOW, period=PERIOD)
            try:
                return (await refresher.refresh_one(conn)).outcome.value
            finally:
                await http.aclose()

        return asyncio.run(run())

    with ThreadPoolExecutor(max_workers=3) as pool:
        running = [pool.submit(instance) for _ in range(3)]
        for _ in range(1000):
            if fake.in_flight == 3:
                break
            time.sleep(0.01)
        fake.hold.set()
        outcomes = sorted(f.result() for f in running)

    assert [c.status for c in fake.refresh_calls()] == [200, 400, 400]
    assert fake.family_of(first).revoked == "a spent refresh token was presented again"
    assert outcomes.count("refreshed") == 1  # one of them stored tokens of a family that is now dead


class GatedLeases:
    """A lease store that holds each acquire until the test opens the gate: a refresher that has already read
    the record waits there, as one does when another instance refreshes the account meanwhile."""

    def __init__(self, inner: DynamoLeaseStore) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    def acquire(self, name: str, owner: str, now: float, seconds: float) -> bool:
        self.entered.set()
        self.gate.wait(10)
        return self.inner.acquire(name, owner, now, seconds)

    def release(self, name: str, owner: str) -> bool:
        return self.inner.release(name, owner)


@pytest.mark.parametrize("force", [True, False], ids=["forced", "still-due"])
@pytest.mark.anyio
async def test_a_refresher_that_read_before_another_refreshed_skips_under_the_lease(
    fake: TokenServerState, target: Target, http: HttpxUpstream, force: bool
) -> None:
    """The consistent re-read under the lease: the account was refreshed between this refresher's read and its
    lease, so the refresh token it read is spent. Sending it would revoke the family; it must skip instead,
    also when forced or when the new token is itself already due."""
    first = fake.family(client_id=client_id("codex"), expires_in=864000 if force else 60)
    conn = target.link("codex", first, NOW + 60)
    leases = GatedLeases(target.leases())
    late = TokenRefresher(target.store, target.cipher, leases, http, lambda: NOW, period=PERIOD)
    waiting = asyncio.ensure_future(late.refresh_one(conn, force=force))
    assert await asyncio.to_thread(leases.entered.wait, 10)  # it has read version 1 and waits for the lease
    assert (await target.refresher(http).refresh_one(conn)).outcome is Outcome.REFRESHED
    leases.gate.set()
    result = await waiting
    assert result.outcome is Outcome.SKIPPED, result
    assert len(fake.refresh_calls()) == 1
    assert fake.is_valid_access(target.tokens(conn).access_token)  # the family was not revoked
