"""The linkable providers as data: every row is usable, and the test-only host rewrite moves whole origins."""

import pytest

from shared.providers.catalog import get_provider
from shared.providers.oauth import (
    HOSTS_ENV,
    OAUTH_PROVIDERS,
    RETIRED_OAUTH,
    BrowserLogin,
    DeviceLogin,
    RefreshStyle,
    endpoint,
    oauth_provider,
    refresh_spec,
)
from shared.providers.spec import AuthKind


def test_every_row_is_a_catalogue_oauth_provider_with_a_usable_method() -> None:
    for row in OAUTH_PROVIDERS:
        spec = get_provider(row.id)
        assert spec is not None and spec.auth is AuthKind.OAUTH and not spec.retired_note, row.id
        assert row.methods and row.refresh.lead_seconds > 0, row.id
        for method in row.methods:
            login = method.login
            if isinstance(login, BrowserLogin):
                assert login.ports and login.redirect_path.startswith("/"), row.id
                assert login.authorize_url.startswith("https://") and login.token_url.startswith("https://")
            else:
                assert isinstance(login, DeviceLogin) and login.token_url.startswith("https://")


def test_retired_rows_stay_in_the_catalogue_with_their_note_and_cannot_be_linked() -> None:
    for pid in RETIRED_OAUTH:
        spec = get_provider(pid)
        assert spec is not None and spec.retired_note and oauth_provider(pid) is None


def test_registered_ports_and_the_codex_fallback() -> None:
    codex = oauth_provider("codex")
    assert codex is not None
    browser = codex.method("browser").login
    assert isinstance(browser, BrowserLogin) and browser.ports == (1455, 1457)
    assert browser.redirect_uri(1457) == "http://localhost:1457/auth/callback"
    assert codex.method(None).name == "browser" and codex.refresh.serialize == "provider"
    with pytest.raises(KeyError):
        codex.method("carrier-pigeon")


def test_kiro_refreshes_by_how_the_account_logged_in() -> None:
    assert refresh_spec("kiro", {"authMethod": "builder-id"}).style is RefreshStyle.AWS_OIDC  # type: ignore[union-attr]
    assert refresh_spec("kiro", {"authMethod": "google"}).style is RefreshStyle.KIRO_SOCIAL  # type: ignore[union-attr]
    assert refresh_spec("groq", {}) is None


def test_endpoint_moves_only_the_mapped_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://auth.openai.com/oauth/token"
    assert endpoint(url) == url
    monkeypatch.setenv(HOSTS_ENV, '{"https://auth.openai.com": "http://127.0.0.1:5555/"}')
    assert endpoint(url) == "http://127.0.0.1:5555/oauth/token"
    assert endpoint("https://auth.openai.com.evil.test/x") == "https://auth.openai.com.evil.test/x"
    assert endpoint("https://claude.ai/oauth/authorize?x=1") == "https://claude.ai/oauth/authorize?x=1"
    monkeypatch.setenv(HOSTS_ENV, "not json")
    assert endpoint(url) == url
