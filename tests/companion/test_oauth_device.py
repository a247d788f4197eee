"""Device logins against the fake: RFC 8628 (GitHub, Kimi, xAI through discovery), AWS SSO-OIDC (Kiro Builder
ID) and ChatGPT's device login (Codex), with scripted polls. Sleeps are recorded, not slept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from companion.oauth.device import run_device
from companion.oauth.session import FlowOptions, LinkContext, LinkError
from shared.providers.oauth import DeviceLogin, LoginMethod, OAuthProvider, oauth_provider
from tests.fakes.oauth_servers import XAI_DEVICE_URL, OAuthFake


class User:
    """The terminal and the clock a device flow sees: what it said, what it opened, how long it slept."""

    def __init__(self, http: httpx.Client) -> None:
        self.said: list[str] = []
        self.opened: list[str] = []
        self.slept: list[float] = []
        self.ctx = LinkContext(
            http=http, say=self.said.append, ask=self._ask, browser=self._open, sleep=self.slept.append
        )

    def _ask(self, prompt: str) -> str:
        raise AssertionError("a device flow never asks for a paste")

    def _open(self, url: str) -> bool:
        self.opened.append(url)
        return True


@pytest.fixture
def user() -> Iterator[User]:
    with httpx.Client(trust_env=False, timeout=10) as http:
        yield User(http)


def row(provider_id: str, method: str | None = None) -> tuple[OAuthProvider, LoginMethod, DeviceLogin]:
    provider = oauth_provider(provider_id)
    assert provider is not None
    chosen = provider.method(method)
    assert isinstance(chosen.login, DeviceLogin)
    return provider, chosen, chosen.login


def test_github_polls_at_the_interval_and_adds_five_seconds_after_slow_down(fake: OAuthFake, user: User) -> None:
    provider, method, _ = row("github")
    fake.state.interval = 5
    fake.state.device_script = ["pending", "slow_down", "pending", "success"]
    grant = run_device(user.ctx, provider, method, FlowOptions())
    assert [p.answer for p in fake.state.polls] == ["pending", "slow_down", "pending", "success"]
    assert user.slept == [5, 5, 10, 10]  # the wait before each poll: +5 s from the poll after slow_down on
    assert grant.tokens.access_token.startswith("ghu_")
    assert grant.tokens.access_token == fake.state.last_reply("github")["access_token"]
    assert any("WDJB-MJHT" in line and "/activate" in line for line in user.said)
    assert user.opened == ["https://github.com/activate"]  # GitHub sends no verification_uri_complete


def test_kimi_reads_rfc_errors_sent_with_http_400_and_offers_the_complete_uri(fake: OAuthFake, user: User) -> None:
    provider, method, _ = row("kimi-code")
    fake.state.device_script = ["pending", "pending", "success"]
    grant = run_device(user.ctx, provider, method, FlowOptions())
    assert len(fake.state.polls) == 3 and user.slept == [1, 1, 1]  # the fake announces 0: polled once a second
    assert grant.tokens.refresh_token == fake.state.last_reply("kimi-code")["refresh_token"]
    assert grant.expires_at > 0
    assert user.opened == ["https://auth.kimi.com/activate?user_code=WDJB-MJHT"]


def test_grok_takes_its_endpoints_from_the_openid_configuration(fake: OAuthFake, user: User) -> None:
    provider, method, _ = row("grok-cli")
    grant = run_device(user.ctx, provider, method, FlowOptions(open_browser=False))
    paths = [(m, p) for m, h, p in fake.state.calls if h == "auth.x.ai"]
    assert paths[:2] == [("GET", "/.well-known/openid-configuration"), ("POST", XAI_DEVICE_URL.split("x.ai", 1)[1])]
    assert ("POST", "/oauth2/device/code") not in paths  # the row's fallback was not needed
    assert grant.tokens.access_token == fake.state.last_reply("grok-cli")["access_token"]
    assert user.opened == []  # --no-browser


@pytest.mark.parametrize(("answer", "message"), [("expired", "expired before it was approved"), ("denied", "denied")])
def test_an_expired_or_denied_code_ends_the_login(fake: OAuthFake, user: User, answer: str, message: str) -> None:
    provider, method, _ = row("github")
    fake.state.device_script = ["pending", answer]
    with pytest.raises(LinkError, match=message) as failure:
        run_device(user.ctx, provider, method, FlowOptions())
    assert failure.value.exit_code == 1 and fake.state.replies == []


def test_polling_stops_when_the_timeout_is_spent(fake: OAuthFake, user: User) -> None:
    provider, method, _ = row("kimi-code")
    fake.state.interval = 5
    fake.state.device_script = ["pending"] * 10
    with pytest.raises(LinkError, match="not approved within 20 s"):
        run_device(user.ctx, provider, method, FlowOptions(timeout=20))
    assert len(fake.state.polls) == 4 and sum(user.slept) == 20


def test_kiro_builder_id_registers_a_client_and_keeps_it_for_refresh(fake: OAuthFake, user: User) -> None:
    provider, method, login = row("kiro", "builder-id")
    fake.state.interval = 1
    fake.state.device_script = ["pending", "slow_down", "success"]
    grant = run_device(user.ctx, provider, method, FlowOptions())
    (client_id, secret), *_ = fake.state.clients.items()
    assert user.slept == [1, 1, 6]
    assert grant.tokens.client_secret == secret
    assert dict(grant.meta) == {"clientId": client_id, "region": "us-east-1", "startUrl": login.start_url}
    reply = fake.state.last_reply("kiro")
    assert grant.tokens.access_token == reply["accessToken"] and grant.tokens.refresh_token == reply["refreshToken"]
    assert user.opened == ["https://view.awsapps.com/start/#/device?user_code=KIRO-CODE"]


def test_codex_device_login_exchanges_its_code_with_the_verifier_it_was_given(fake: OAuthFake, user: User) -> None:
    provider, method, login = row("codex", "device")
    fake.state.interval = 3  # sent as the string "3"
    fake.state.device_script = ["pending", "pending", "success"]
    grant = run_device(user.ctx, provider, method, FlowOptions())
    assert user.slept == [3, 3, 3]
    (exchange,) = fake.state.token_requests
    assert exchange["redirect_uri"] == login.exchange_redirect and exchange["grant_type"] == "authorization_code"
    assert grant.tokens.id_token == fake.state.last_reply("codex")["id_token"]
    assert any("CODX-1234" in line and login.verification_url in line for line in user.said)


def test_a_device_start_the_provider_refuses_is_reported(fake: OAuthFake, user: User) -> None:
    provider, method, login = row("github")
    other = LoginMethod(
        method.name,
        method.label,
        DeviceLogin(style=login.style, device_url=login.device_url, token_url=login.token_url, client_id="Iv1.unknown"),
    )
    with pytest.raises(LinkError, match=r"did not start a device login.*invalid_client"):
        run_device(user.ctx, provider, other, FlowOptions())
