"""Browser logins (authorization code + PKCE) against the fake authorization server: the loopback callback on
the registered port (and the next one when it is taken), the paste fallback, and every way the flow must stop
before a code is exchanged."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from companion.oauth.browser import authorize_url, code_from_paste, exchange_code, run_browser
from companion.oauth.flows import obtain
from companion.oauth.loopback import CallbackServer
from companion.oauth.pkce import new_pkce, new_state
from companion.oauth.session import FlowOptions, LinkContext, LinkError
from shared.providers.oauth import HOSTS_ENV, BrowserLogin, LoginMethod, OAuthProvider, oauth_provider
from tests.fakes.oauth_servers import (
    FakeBrowser,
    OAuthFake,
    override_port,
    shown_code,
)
from tests.fakes.server import free_port


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def row(provider_id: str, method: str | None = None) -> tuple[OAuthProvider, LoginMethod, BrowserLogin]:
    provider = oauth_provider(provider_id)
    assert provider is not None
    chosen = provider.method(method)
    assert isinstance(chosen.login, BrowserLogin)
    return provider, chosen, chosen.login


def context(
    http: httpx.Client,
    browser: Callable[[str], bool] | None,
    said: list[str],
    ask: Callable[[str], str] | None = None,
) -> LinkContext:
    def no_typing(prompt: str) -> str:
        raise AssertionError(f"the flow asked the user: {prompt}")

    return LinkContext(http=http, say=said.append, ask=ask or no_typing, browser=browser)


def test_claude_signs_in_on_the_loopback_port_and_exchanges_the_code_as_json_with_state(
    fake: OAuthFake, http: httpx.Client
) -> None:
    provider, method, login = row("claude")
    port = override_port(fake.state, login.ports[0])
    browser, said = FakeBrowser(), list[str]()
    grant = run_browser(context(http, browser, said), provider, method, FlowOptions(port=port))

    (asked,) = fake.state.authorize_requests
    used = port or login.ports[0]
    assert asked["redirect_uri"] == f"http://localhost:{used}/callback"
    assert asked["client_id"] == login.client_id and asked["code"] == "true" and asked["scope"] == login.scope
    assert asked["code_challenge_method"] == "S256"
    (sent,) = fake.state.token_requests
    assert sent["grant_type"] == "authorization_code" and sent["state"] == asked["state"]
    assert sent["redirect_uri"] == asked["redirect_uri"] and "client_secret" not in sent
    reply = fake.state.last_reply("claude")
    assert grant.tokens.access_token == reply["access_token"] and grant.tokens.refresh_token == reply["refresh_token"]
    assert grant.expires_at > 0 and grant.reply["account"]["email_address"] == "ada@example.com"
    page = browser.next_page()
    assert page.status == 200 and "close this tab" in page.text
    assert not any(reply["access_token"] in line for line in said)


def test_the_callback_moves_to_the_next_registered_port_when_the_first_is_taken(
    fake: OAuthFake, http: httpx.Client
) -> None:
    provider, method, login = row("codex")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy, spare = holder.getsockname()[1], free_port()
        for port in (busy, spare):
            fake.state.allow_port(port)
        moved = dataclasses.replace(method, login=dataclasses.replace(login, ports=(busy, spare)))
        grant = run_browser(context(http, FakeBrowser(), []), provider, moved, FlowOptions())
    (asked,) = fake.state.authorize_requests
    assert asked["redirect_uri"] == f"http://localhost:{spare}/auth/callback"
    assert asked["originator"] == "codex_cli_rs" and asked["id_token_add_organizations"] == "true"
    (sent,) = fake.state.token_requests
    assert "state" not in sent and sent["client_id"] == login.client_id
    assert grant.tokens.id_token == fake.state.last_reply("codex")["id_token"]


@pytest.mark.parametrize(("provider_id", "hint"), [("codex", "--paste"), ("antigravity", "forward the port")])
def test_all_registered_ports_taken_names_them_and_says_what_to_do(
    fake: OAuthFake, http: httpx.Client, provider_id: str, hint: str
) -> None:
    provider, method, login = row(provider_id)
    with socket.socket() as first, socket.socket() as second:
        for holder in (first, second):
            holder.bind(("127.0.0.1", 0))
            holder.listen()
        ports = (first.getsockname()[1], second.getsockname()[1])[: len(login.ports)]
        busy = dataclasses.replace(method, login=dataclasses.replace(login, ports=ports))
        with pytest.raises(LinkError) as failure:
            run_browser(context(http, FakeBrowser(), []), provider, busy, FlowOptions())
    assert all(str(p) in failure.value.message for p in ports) and hint in failure.value.message
    if provider_id == "antigravity":
        assert "--paste" not in failure.value.message
    assert fake.state.authorize_requests == []


def test_a_callback_with_another_state_fails_the_login_without_exchanging_its_code(
    fake: OAuthFake, http: httpx.Client
) -> None:
    provider, method, login = row("claude")
    fake.state.consent = "wrong-state"
    browser = FakeBrowser()
    with pytest.raises(LinkError, match="state mismatch"):
        run_browser(context(http, browser, []), provider, method, FlowOptions(port=_port(fake, login)))
    assert fake.state.token_requests == [] and fake.state.replies == []
    page = browser.next_page()
    assert page.status == 400 and "state differs" in page.text


def test_denied_consent_fails_the_login_with_a_clear_message(fake: OAuthFake, http: httpx.Client) -> None:
    provider, method, login = row("antigravity")
    fake.state.consent = "deny"
    browser = FakeBrowser()
    with pytest.raises(LinkError, match="not granted") as failure:
        run_browser(context(http, browser, []), provider, method, FlowOptions(port=_port(fake, login)))
    assert failure.value.exit_code == 1 and fake.state.token_requests == []
    assert "cancelled" in browser.next_page().text


def test_the_fake_refuses_a_tampered_verifier_and_takes_the_right_one(fake: OAuthFake, http: httpx.Client) -> None:
    provider, _, login = row("codex")
    ctx = context(http, None, [])
    redirect = login.redirect_uri(login.ports[0])
    codes = []
    for _ in range(2):
        pkce, state = new_pkce(), new_state()
        browser = FakeBrowser(reach_loopback=False)
        browser.open(authorize_url(login, redirect, pkce, state))
        codes.append((code_from_paste(browser.next_page().url, state), pkce.verifier))
    (tampered_code, _), (good_code, good_verifier) = codes
    with pytest.raises(LinkError, match="invalid_grant"):
        exchange_code(ctx, provider, login, code=tampered_code, verifier=new_pkce().verifier, redirect_uri=redirect)
    assert fake.state.replies == []
    grant = exchange_code(ctx, provider, login, code=good_code, verifier=good_verifier, redirect_uri=redirect)
    assert grant.tokens.access_token == fake.state.last_reply("codex")["access_token"]


def test_no_answer_within_the_timeout_ends_the_login(fake: OAuthFake, http: httpx.Client) -> None:
    provider, method, login = row("claude")
    said: list[str] = []
    with pytest.raises(LinkError, match=r"no answer from the browser within 0\.2 s"):
        run_browser(
            context(http, None, said),
            provider,
            method,
            FlowOptions(open_browser=False, port=_port(fake, login), timeout=0.2),
        )
    assert any(line.strip().startswith("http://127.0.0.1") for line in said)  # the address was shown


def test_claude_paste_uses_its_code_page_and_checks_the_pasted_state(fake: OAuthFake, http: httpx.Client) -> None:
    provider, method, login = row("claude")
    browser = FakeBrowser()
    grant = run_browser(
        context(http, browser, [], ask=lambda prompt: shown_code(browser.next_page())),
        provider,
        method,
        FlowOptions(paste=True),
    )
    (asked,) = fake.state.authorize_requests
    assert asked["redirect_uri"] == login.paste_redirect
    assert fake.state.token_requests[0]["redirect_uri"] == login.paste_redirect
    assert grant.tokens.access_token == fake.state.last_reply("claude")["access_token"]


def test_a_headless_codex_login_takes_the_whole_address_the_browser_ended_on(
    fake: OAuthFake, http: httpx.Client
) -> None:
    provider, method, _ = row("codex")
    browser = FakeBrowser(reach_loopback=False)  # nothing listens: the address bar still holds code and state
    grant = run_browser(
        context(http, browser, [], ask=lambda prompt: browser.next_page().url),
        provider,
        method,
        FlowOptions(paste=True),
    )
    assert fake.state.authorize_requests[0]["redirect_uri"] == "http://localhost:1455/auth/callback"
    assert grant.tokens.refresh_token == fake.state.last_reply("codex")["refresh_token"]


def test_a_pasted_code_of_another_login_is_refused(fake: OAuthFake, http: httpx.Client) -> None:
    provider, method, _ = row("claude")
    browser = FakeBrowser()

    def paste_another(prompt: str) -> str:
        code, _, _ = shown_code(browser.next_page()).partition("#")
        return f"{code}#{new_state()}"

    with pytest.raises(LinkError, match="state mismatch"):
        run_browser(context(http, browser, [], ask=paste_another), provider, method, FlowOptions(paste=True))
    assert fake.state.token_requests == []


def test_without_a_browser_here_the_login_offers_the_paste_on_its_own(fake: OAuthFake, http: httpx.Client) -> None:
    provider, method, _ = row("claude")
    said: list[str] = []
    elsewhere = FakeBrowser()  # the user's phone

    def user(prompt: str) -> str:
        if not elsewhere.opened:
            elsewhere.open(next(line.strip() for line in said if line.strip().startswith("http")))
            return "not what was shown"
        return shown_code(elsewhere.next_page())

    grant = run_browser(context(http, None, said, ask=user), provider, method, FlowOptions())
    assert "No browser can be opened" in said[0]
    assert any("code#state" in line for line in said)  # the first, unusable paste was asked again
    assert grant.tokens.access_token == fake.state.last_reply("claude")["access_token"]


def test_antigravity_refuses_paste_before_anything_starts(fake: OAuthFake, http: httpx.Client) -> None:
    provider, method, _ = row("antigravity")
    with pytest.raises(LinkError, match="only accepts its loopback callback") as failure:
        obtain(context(http, FakeBrowser(), []), provider, method, FlowOptions(paste=True))
    assert failure.value.exit_code == 2 and fake.state.calls == []


@pytest.mark.parametrize(("method", "idp"), [("google", "Google"), ("github", "Github")])
def test_kiro_social_sends_only_its_own_exchange_fields(
    fake: OAuthFake, http: httpx.Client, method: str, idp: str
) -> None:
    provider, chosen, login = row("kiro", method)
    grant = run_browser(context(http, FakeBrowser(), []), provider, chosen, FlowOptions(port=_port(fake, login)))
    (asked,) = fake.state.authorize_requests
    assert asked["idp"] == idp and "client_id" not in asked and "response_type" not in asked
    (sent,) = fake.state.token_requests
    assert set(sent) == {"provider", "code", "code_verifier", "redirect_uri"}
    reply = fake.state.last_reply("kiro")
    assert grant.tokens.access_token == reply["accessToken"] and grant.meta["profileArn"] == reply["profileArn"]


def test_the_callback_server_ignores_other_paths_and_answers_once() -> None:
    state = new_state()
    with CallbackServer(0, "/callback", state) as server, httpx.Client(trust_env=False) as client:
        base = f"http://127.0.0.1:{server.port}"
        assert client.get(base + "/favicon.ico").status_code == 404
        assert client.get(f"{base}/callback?code=abc&state={state}").status_code == 200
        assert client.get(f"{base}/callback?code=evil&state={state}").status_code == 404
        assert server.wait(1) == "abc"


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("http://localhost:1455/auth/callback?code=c0de&state=S", "c0de"),
        ("  https://platform.claude.com/oauth/code/callback?code=c0de&state=S\n", "c0de"),
        ("code=c0de&state=S", "c0de"),
        ("c0de#S", "c0de"),
    ],
)
def test_pasted_codes_are_read_from_a_url_a_query_or_code_hash_state(pasted: str, expected: str) -> None:
    assert code_from_paste(pasted, "S") == expected


@pytest.mark.parametrize(
    ("pasted", "error"),
    [
        ("http://localhost:1455/auth/callback?code=c0de&state=T", LinkError),
        ("http://localhost:1455/auth/callback?error=access_denied&state=S", LinkError),
        ("c0de#T", LinkError),
        ("c0de", ValueError),
        ("", ValueError),
    ],
)
def test_pastes_without_this_logins_state_are_refused(pasted: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        code_from_paste(pasted, "S")


def test_authorize_urls_carry_the_row_params_pkce_and_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOSTS_ENV, raising=False)
    _, _, login = row("antigravity")
    pkce = new_pkce()
    url = authorize_url(login, login.redirect_uri(51121), pkce, "st4te")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "access_type": "offline",
        "prompt": "consent",
        "client_id": login.client_id,
        "response_type": "code",
        "redirect_uri": "http://localhost:51121/oauth-callback",
        "scope": login.scope,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
    }
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")


def _port(fake: OAuthFake, login: BrowserLogin) -> int | None:
    return override_port(fake.state, login.ports[0])
