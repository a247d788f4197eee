"""The quota poll over real HTTP against the fake usage endpoints (tests/fakes/quota_endpoints.py): the three
providers' calls as their services expect them, accounts that are skipped, and failures that stay with
their own account. Also the quota source rows the poll reads (shared/providers/quota_sources.py)."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Mapping

import orjson
import pytest

from shared.adapters.upstream import HttpxUpstream
from shared.domain.config import ConfigSnapshot, Connection
from shared.domain.quota import AccountQuota
from shared.ports import UpstreamResponse
from shared.providers.quota_sources import QUOTA_SOURCES, chatgpt_account_id, quota_source
from shared.services.quota_poll import PollReport, poll_quotas
from tests.fakes.quota_endpoints import (
    QuotaEndpointsState,
    claude_usage,
    codex_usage,
    codex_window,
    copilot_paid,
    create_app,
)
from tests.fakes.server import ServerThread, free_port

pytestmark = pytest.mark.anyio
NOW = 1_790_000_000.0
CLAUDE_TOKEN = "sk-ant-oat01-claude-secret-token"
GITHUB_TOKEN = "ghu_githubsecrettoken123"


def jwt(claims: dict[str, object]) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


CODEX_TOKEN = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-1234", "chatgpt_plan_type": "plus"}})


class MemorySink:
    """The State table's stand-in for service tests: keeps what it is given, or fails for chosen accounts."""

    def __init__(self, broken: frozenset[str] = frozenset()) -> None:
        self.stored: dict[str, AccountQuota] = {}
        self.broken = broken
        self._lock = threading.Lock()

    def put_quota(self, quota: AccountQuota) -> None:
        if quota.connection_id in self.broken:
            raise ConnectionError("the State table is unreachable")
        with self._lock:
            self.stored[quota.connection_id] = quota


@pytest.fixture
def fake() -> Iterator[ServerThread]:
    with ServerThread(create_app()) as server:
        yield server


@pytest.fixture
def state(fake: ServerThread) -> QuotaEndpointsState:
    state: QuotaEndpointsState = fake.app.state.fake
    state.account("claude", CLAUDE_TOKEN, claude_usage(12.0, 34.0))
    state.account(
        "codex",
        CODEX_TOKEN,
        codex_usage(codex_window(100, 18000, 1790006625, 6625), codex_window(15, 604800, 1790054618, 54618)),
    )
    state.account("github", GITHUB_TOKEN, copilot_paid(240))
    return state


@pytest.fixture
async def upstream() -> AsyncIterator[HttpxUpstream]:
    client = HttpxUpstream(connect_timeout=2, read_timeout=5)
    yield client
    await client.aclose()


def conn(
    id: str,
    provider: str,
    key: str | None,
    base_url: str | None,
    *,
    enabled: bool = True,
    credential_error: bool = False,
) -> Connection:
    return Connection(
        id=id,
        provider=provider,
        name=id,
        api_key=key,
        base_url=base_url,
        priority=0,
        enabled=enabled,
        credential_error=credential_error,
    )


def three_accounts(base: str) -> list[Connection]:
    return [
        conn("c-claude", "claude", CLAUDE_TOKEN, f"{base}/v1"),
        conn("c-codex", "codex", CODEX_TOKEN, f"{base}/backend-api/codex"),
        conn("c-github", "github", GITHUB_TOKEN, base),
    ]


async def poll(
    connections: list[Connection], upstream: HttpxUpstream, sink: MemorySink, per_account: float = 20.0
) -> PollReport:
    return await poll_quotas(
        ConfigSnapshot.build(connections=connections), upstream, sink, NOW, per_account=per_account
    )


# ----- the happy path ---------------------------------------------------------------------------------------------


async def test_the_three_providers_are_polled_over_http_and_their_windows_stored(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    sink = MemorySink()
    report = await poll(three_accounts(fake.base_url), upstream, sink)

    assert report == PollReport(polled=3, updated=3, failed=[])
    assert sorted(sink.stored) == ["c-claude", "c-codex", "c-github"]
    claude, codex, github = (sink.stored[c] for c in ("c-claude", "c-codex", "c-github"))
    assert [(w.name, w.used_percent, w.source) for w in claude.windows] == [("5h", 12.0, "poll"), ("7d", 34.0, "poll")]
    assert [(w.name, w.limited) for w in codex.windows] == [("5h", True), ("7d", False)]
    premium = github.windows[0]
    assert (premium.name, premium.used, premium.limit, premium.unit) == ("premium_interactions", 60, 300, "requests")
    assert {q.updated_at for q in sink.stored.values()} == {NOW}


async def test_each_call_carries_what_its_service_checks(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    await poll(three_accounts(fake.base_url), upstream, MemorySink())

    calls = {r["path"]: r for r in state.requests}
    assert set(calls) == {"/api/oauth/usage", "/backend-api/wham/usage", "/copilot_internal/user"}
    assert all(r["method"] == "GET" for r in calls.values())
    claude = calls["/api/oauth/usage"]["headers"]
    assert claude["authorization"] == f"Bearer {CLAUDE_TOKEN}"
    assert claude["anthropic-beta"] == "oauth-2025-04-20"
    assert claude["user-agent"].startswith("claude-code/") and "anthropic-version" not in claude
    codex = calls["/backend-api/wham/usage"]["headers"]
    assert codex["authorization"] == f"Bearer {CODEX_TOKEN}"
    assert codex["chatgpt-account-id"] == "acct-1234"  # from the access token's own claim
    github = calls["/copilot_internal/user"]["headers"]
    assert github["authorization"] == f"token {GITHUB_TOKEN}"
    assert github["editor-version"].startswith("vscode/") and github["x-github-api-version"] == "2025-04-01"
    assert github["user-agent"].startswith("GitHubCopilotChat/")


async def test_accounts_without_a_quota_source_or_a_usable_credential_are_skipped(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    base = fake.base_url
    connections = [
        conn("c-claude", "claude", CLAUDE_TOKEN, f"{base}/v1"),
        conn("c-broken", "claude", None, f"{base}/v1", credential_error=True),  # key file lost: never used
        conn("c-off", "claude", CLAUDE_TOKEN, f"{base}/v1", enabled=False),
        conn("c-nokey", "codex", None, f"{base}/backend-api/codex"),
        conn("c-deepseek", "deepseek", "sk-deepseek", base),  # an API-key provider publishes no usage
    ]
    sink = MemorySink()
    report = await poll(connections, upstream, sink)
    assert report == PollReport(polled=1, updated=1, failed=[])
    assert list(sink.stored) == ["c-claude"] and len(state.requests) == 1


# ----- failures stay with their account -----------------------------------------------------------------------------


async def test_a_failing_account_does_not_stop_the_others(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    state.account("claude", "sk-ant-oat01-second", claude_usage(50.0, 60.0))
    state.fail("sk-ant-oat01-second", {"status": 503})
    connections = [
        *three_accounts(fake.base_url),
        conn("c-claude-2", "claude", "sk-ant-oat01-second", f"{fake.base_url}/v1"),
        conn("c-expired", "claude", "sk-ant-oat01-expired", f"{fake.base_url}/v1"),  # unknown token: 401
    ]
    sink = MemorySink()
    report = await poll(connections, upstream, sink)

    assert (report.polled, report.updated) == (5, 3)
    assert sorted(report.failed) == [
        ("c-claude-2", "the usage endpoint answered HTTP 503"),
        ("c-expired", "the usage endpoint answered HTTP 401"),
    ]
    assert sorted(sink.stored) == ["c-claude", "c-codex", "c-github"]


@pytest.mark.parametrize(
    ("directive", "reason"),
    [
        ({"status": 200, "body": "<html>Just a moment...</html>"}, "the usage endpoint's answer is not JSON"),
        ({"status": 200, "body": [1, 2]}, "the usage endpoint answered a JSON list, not an object"),
        ({"fault": "cut-before-body"}, "broke the connection"),
    ],
)
async def test_unusable_answers_are_counted_as_failures(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream, directive: dict[str, object], reason: str
) -> None:
    state.fail(GITHUB_TOKEN, directive)
    sink = MemorySink()
    report = await poll(three_accounts(fake.base_url), upstream, sink)
    assert report.updated == 2 and [c for c, _ in report.failed] == ["c-github"]
    assert reason in report.failed[0][1]
    assert "c-github" not in sink.stored


async def test_an_endpoint_that_never_answers_fails_after_the_per_account_limit(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    state.fail(CODEX_TOKEN, {"fault": "hang"})
    report = await poll(three_accounts(fake.base_url), upstream, MemorySink(), per_account=0.5)
    assert report.updated == 2 and report.failed == [("c-codex", "no answer within 0.5 s")]


async def test_an_unreachable_endpoint_is_a_failure_of_its_account_only(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    connections = [*three_accounts(fake.base_url), conn("c-gone", "github", GITHUB_TOKEN, nowhere)]
    report = await poll(connections, upstream, MemorySink())
    assert report.updated == 3
    ((failed_id, reason),) = report.failed
    assert failed_id == "c-gone" and "Could not connect" in reason


async def test_a_store_error_is_counted_and_the_other_accounts_are_still_stored(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    sink = MemorySink(broken=frozenset({"c-codex"}))
    report = await poll(three_accounts(fake.base_url), upstream, sink)
    assert report.updated == 2 and report.failed == [("c-codex", "storing the windows failed (ConnectionError)")]
    assert sorted(sink.stored) == ["c-claude", "c-github"]


async def test_tokens_never_reach_the_logs(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state.fail(CLAUDE_TOKEN, {"status": 401, "body": {"error": {"message": f"bad token {CLAUDE_TOKEN}"}}})
    connections = [
        *three_accounts(fake.base_url),
        conn("c-gone", "codex", CODEX_TOKEN, f"http://127.0.0.1:{free_port()}"),
    ]
    report = await poll(connections, upstream, MemorySink())
    assert report.updated == 2 and len(report.failed) == 2
    assert "c-claude" in caplog.text and "c-gone" in caplog.text  # failures are logged by connection id
    for token in (CLAUDE_TOKEN, CODEX_TOKEN, GITHUB_TOKEN):
        assert token not in caplog.text
        assert all(token not in reason for _, reason in report.failed)


class CountingUpstream:
    """Real HTTP through HttpxUpstream, counting how many requests are in flight at once."""

    def __init__(self, inner: HttpxUpstream) -> None:
        self.inner = inner
        self.in_flight = 0
        self.most = 0

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        stream: bool,
        read_timeout: float | None = None,
    ) -> UpstreamResponse:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await self.inner.send(method, url, headers, body, stream=stream, read_timeout=read_timeout)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_at_most_concurrency_accounts_are_polled_at_once(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    connections = []
    for i in range(6):
        token = f"sk-ant-oat01-slow-{i}"
        state.account("claude", token, claude_usage(float(i), 1.0))
        state.fail(token, {"delay_ms": 100})  # late, then answered normally
        connections.append(conn(f"c-{i}", "claude", token, f"{fake.base_url}/v1"))
    counting = CountingUpstream(upstream)
    sink = MemorySink()
    report = await poll_quotas(ConfigSnapshot.build(connections=connections), counting, sink, NOW, concurrency=2)
    assert report == PollReport(polled=6, updated=6, failed=[])
    assert counting.most == 2
    assert sink.stored["c-5"].windows[0].used_percent == 5.0


# ----- the quota source rows ------------------------------------------------------------------------------------


def test_only_the_three_subscription_providers_have_a_quota_source() -> None:
    assert sorted(QUOTA_SOURCES) == ["claude", "codex", "github"]
    assert quota_source("deepseek") is None and quota_source("cc") is None  # ids, not model prefixes


@pytest.mark.parametrize(
    ("provider", "base_url", "url"),
    [
        ("claude", None, "https://api.anthropic.com/api/oauth/usage"),
        ("claude", "https://api.anthropic.com/v1", "https://api.anthropic.com/api/oauth/usage"),
        ("claude", "http://127.0.0.1:8123/v1", "http://127.0.0.1:8123/api/oauth/usage"),
        ("claude", "https://relay.example.com/anthropic/v1", "https://relay.example.com/api/oauth/usage"),
        ("codex", None, "https://chatgpt.com/backend-api/wham/usage"),
        ("codex", "http://h:9/backend-api/codex", "http://h:9/backend-api/wham/usage"),
        ("github", None, "https://api.github.com/copilot_internal/user"),
        # the plan host a Copilot token names is not where the quota lives
        ("github", "https://api.business.githubcopilot.com", "https://api.github.com/copilot_internal/user"),
        ("github", "http://127.0.0.1:8123", "http://127.0.0.1:8123/copilot_internal/user"),
        ("github", "not a url", "https://api.github.com/copilot_internal/user"),
    ],
)
def test_the_endpoint_follows_a_relay_base_but_not_the_providers_own_hosts(
    provider: str, base_url: str | None, url: str
) -> None:
    source = quota_source(provider)
    assert source is not None
    assert source.url_for(conn("c", provider, "t", base_url)) == url


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",  # three parts, not base64 JSON
        jwt({"sub": "user"}),  # no OpenAI claim
        jwt({"https://api.openai.com/auth": {"chatgpt_account_id": 42}}),
    ],
)
def test_a_codex_token_without_an_account_claim_sends_no_account_header(token: str) -> None:
    assert chatgpt_account_id(token) is None
    source = quota_source("codex")
    assert source is not None
    assert "chatgpt-account-id" not in source.headers_for(token)
    assert source.headers_for(token)["authorization"] == f"Bearer {token}"


# ----- local mode's loop -------------------------------------------------------------------------------------------


async def test_the_local_loop_polls_now_and_again_and_sends_nothing_without_pollable_accounts(
    fake: ServerThread, state: QuotaEndpointsState, upstream: HttpxUpstream
) -> None:
    import asyncio

    from shared.services.quota_poll import poll_quotas_every

    snapshots = [ConfigSnapshot.build(connections=[conn("c-key", "deepseek", "sk-x", fake.base_url)])]
    sink = MemorySink()
    loop = asyncio.ensure_future(poll_quotas_every(lambda: snapshots[-1], upstream, sink, lambda: NOW, every=0.05))
    await asyncio.sleep(0.2)
    assert sink.stored == {} and state.requests == []  # an API-key account has no usage endpoint: nothing asked

    snapshots.append(ConfigSnapshot.build(connections=three_accounts(fake.base_url)))  # accounts linked later
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(sink.stored) == 3:
            break
    loop.cancel()
    assert sorted(sink.stored) == ["c-claude", "c-codex", "c-github"]
