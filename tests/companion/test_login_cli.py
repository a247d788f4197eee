"""`omniroute login`, end to end: the command runs each provider's flow against the fake authorization server,
pushes the result to a real local target running in-process (`build_local` + `create_local_app`), and the test
then reads the target's store: the tokens are there only encrypted (under the `oauth` record's context), they
are exactly what the fake issued, the account's meta is right, and no file on this machine holds a token."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click.testing
import pytest
import typer
from typer.testing import CliRunner, Result

from companion.cli import app
from companion.local import KEY_FILE, SNAPSHOT_FILE, LocalRuntime, build_local, create_local_app
from companion.oauth import post_link
from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.embedded import read_snapshot
from shared.domain.config import Kind, Record
from shared.domain.oauth import OAuthTokens
from shared.providers.oauth import HOSTS_ENV, oauth_provider
from shared.settings import Settings
from tests.companion.cli_runner import ISOLATED
from tests.fakes.oauth_servers import (
    COPILOT_API,
    ONBOARDED_PROJECT,
    FakeBrowser,
    OAuthFake,
    OAuthFakeState,
    PastingUser,
    override_port,
    port_is_free,
    serve_oauth_fake,
    shown_code,
)
from tests.fakes.server import ServerThread, free_port

ADMIN = "omni-admin-login-test-token"


@dataclass
class Target:
    runtime: LocalRuntime
    url: str
    data_dir: Path
    home: Path

    def records(self, kind: str) -> dict[str, Record]:
        """The target's store as it is on disk (the snapshot mirrors every write to the table)."""
        return {r.id: r for r in read_snapshot(self.data_dir / SNAPSHOT_FILE) if r.kind == kind}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """`omniroute serve` in-process, its data dir where an owner's would be (`~/.omniroute`)."""
    home = tmp_path_factory.mktemp("home")
    data_dir = home / ".omniroute"
    runtime = build_local(Settings.from_env({"OMNIROUTE_DATA_DIR": str(data_dir), "OMNIROUTE_ADMIN_TOKEN": ADMIN}))
    try:
        with ServerThread(create_local_app(runtime.services), lifespan="off") as server:
            yield Target(runtime, server.base_url, data_dir, home)
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OAuthFake, str]]:
    with serve_oauth_fake() as running:
        yield running


@pytest.fixture
def fake(served: tuple[OAuthFake, str], monkeypatch: pytest.MonkeyPatch) -> OAuthFake:
    server, hosts = served
    server.state = OAuthFakeState()
    monkeypatch.setenv(HOSTS_ENV, hosts)
    # the onboarding operation is polled every 2 s; the same loop, without the wait
    monkeypatch.setattr(post_link, "ONBOARD_POLL_SECONDS", 0.001)
    return server


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBrowser]:
    """The owner's browser, as `webbrowser` finds it on a desktop (DISPLAY is set for the invocation)."""
    opened = FakeBrowser()
    monkeypatch.setattr(webbrowser, "get", lambda using=None: opened)
    yield opened
    opened.join()


def login(target: Target, *args: str, stdin: Any = None) -> click.testing.Result:
    env = ISOLATED | {"HOME": str(target.home), "DISPLAY": ":99", "WAYLAND_DISPLAY": None, "BROWSER": None}
    # click's own runner: it takes a stream as standard input (typer's wants the whole text up front)
    command: Any = typer.main.get_command(app)
    result = click.testing.CliRunner().invoke(
        command, ["login", *args, "--url", target.url, "--token", ADMIN], env=env, input=stdin
    )
    assert ADMIN not in result.output
    return result


def linked_id(result: Result | click.testing.Result) -> str:
    assert result.exit_code == 0, result.output + repr(result.exception)
    found = re.search(r" as (conn_[0-9a-f]+) ", result.stdout)
    assert found, result.stdout
    return found.group(1)


def stored(target: Target, conn_id: str, result: click.testing.Result) -> tuple[OAuthTokens, dict[str, Any], Record]:
    """The account's tokens (decrypted here as the target would), its `oauth` record's data and its connection,
    after checking that no token is readable anywhere: not in the record, not in any file, not in the output."""
    record = target.records(Kind.OAUTH)[conn_id]
    cipher = AesGcmCipher.from_key_file(target.data_dir / KEY_FILE, create=False)
    tokens = OAuthTokens.from_json(cipher.decrypt(record.data["secret"], {"kind": "oauth", "id": conn_id}))
    secrets = [t for t in (tokens.access_token, tokens.refresh_token, tokens.id_token, tokens.client_secret) if t]
    for secret in secrets:
        assert secret not in str(record.data) and secret not in result.output
        for path in target.home.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"{secret[:12]}… found in {path}"
    snapshot = target.runtime.services.config.reload()
    (live,) = [c for c in snapshot.connections if c.id == conn_id]
    assert live.oauth is not None and live.oauth.tokens == tokens and live.api_key == tokens.access_token
    return tokens, dict(record.data), target.records(Kind.PROVIDER)[conn_id]


@contextlib.contextmanager
def taken(port: int) -> Iterator[None]:
    """`port` in use while inside (held here when nothing else holds it)."""
    with socket.socket() as holder:
        with contextlib.suppress(OSError):
            holder.bind(("127.0.0.1", port))
            holder.listen()
        yield


def port_args(fake: OAuthFake, registered: int) -> tuple[list[str], int]:
    port = override_port(fake.state, registered)
    return (["--port", str(port)], port) if port else ([], registered)


# ----- every flow, to encrypted credentials in the target -----------------------------------------------


def test_claude_browser_login(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    args, port = port_args(fake, 54545)
    result = login(target, "claude", *args)
    conn_id = linked_id(result)
    tokens, record, conn = stored(target, conn_id, result)
    reply = fake.state.last_reply("claude")
    assert tokens == OAuthTokens(reply["access_token"], reply["refresh_token"])
    assert record["meta"] == {
        "authMethod": "browser",
        "email": "ada@example.com",
        "accountId": "acc-1234",
        "organization": "Ada's Org",
        "organizationId": "org-5678",
    }
    assert abs(record["expiresAt"] - (time.time() + 28800)) < 60 and record["status"] == "active"
    assert conn.data["provider"] == "claude" and conn.data["name"] == "ada@example.com"
    assert fake.state.authorize_requests[0]["redirect_uri"] == f"http://localhost:{port}/callback"
    assert "Anthropic's terms" in result.stderr  # the terms note, before the flow
    assert f"Linked Claude Code (Pro/Max) as {conn_id} (ada@example.com" in result.stdout
    assert browser.next_page().status == 200


def test_claude_paste_login(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    user = io.BufferedReader(PastingUser(browser, shown_code))
    result = login(target, "cc", "--paste", stdin=user)
    tokens, record, _ = stored(target, linked_id(result), result)
    assert tokens.access_token == fake.state.last_reply("claude")["access_token"]
    assert fake.state.token_requests[0]["redirect_uri"] == "https://platform.claude.com/oauth/code/callback"
    assert record["meta"]["email"] == "ada@example.com"


def test_codex_browser_login_moves_to_1457_when_1455_is_taken(
    target: Target, fake: OAuthFake, browser: FakeBrowser
) -> None:
    with taken(1455):
        # When 1457 is busy on this machine too, the fallback itself is shown by test_oauth_browser with free ports.
        args, port = ([], 1457) if port_is_free(1457) else port_args(fake, 1457)
        result = login(target, "codex", *args)
    tokens, record, _ = stored(target, linked_id(result), result)
    reply = fake.state.last_reply("codex")
    assert tokens == OAuthTokens(reply["access_token"], reply["refresh_token"], reply["id_token"])
    assert record["meta"] == {
        "authMethod": "browser",
        "accountId": "acct-codex-1",
        "plan": "pro",
        "email": "grace@example.com",
    }
    assert fake.state.authorize_requests[0]["redirect_uri"] == f"http://localhost:{port}/auth/callback"


def test_codex_device_login(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    fake.state.device_script = ["pending", "success"]
    result = login(target, "codex", "--method", "device")
    tokens, record, _ = stored(target, linked_id(result), result)
    assert tokens.access_token == fake.state.last_reply("codex")["access_token"]
    assert record["meta"]["authMethod"] == "device" and record["meta"]["accountId"] == "acct-codex-1"
    assert "CODX-1234" in result.stderr and [p.answer for p in fake.state.polls] == ["pending", "success"]


def test_github_device_login_with_the_copilot_token(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    fake.state.device_script = ["pending", "success"]  # slow_down's +5 s: test_oauth_device, without the wait
    result = login(target, "github", "--no-browser")
    tokens, record, conn = stored(target, linked_id(result), result)
    copilot, github = fake.state.last_reply("copilot"), fake.state.last_reply("github")
    assert tokens == OAuthTokens(copilot["token"], github["access_token"])
    assert record["expiresAt"] == copilot["expires_at"] and conn.data["baseUrl"] == COPILOT_API
    assert record["meta"] == {
        "authMethod": "device",
        "plan": "copilot_for_individual_user",
        "login": "octo-fake",
        "email": "octo@example.com",
    }
    assert browser.opened == []


def test_antigravity_browser_login_with_onboarding(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    fake.state.onboard_pending = 1
    args, _ = port_args(fake, 51121)
    result = login(target, "antigravity", *args)
    tokens, record, _ = stored(target, linked_id(result), result)
    reply = fake.state.last_reply("antigravity")
    assert tokens == OAuthTokens(reply["access_token"], reply["refresh_token"])
    assert record["meta"] == {
        "authMethod": "browser",
        "email": "lin@example.com",
        "projectId": ONBOARDED_PROJECT,
        "tier": "free-tier",
    }
    assert len(fake.state.onboard_calls) == 2 and "Google's Antigravity terms" in result.stderr
    (sent,) = fake.state.token_requests
    provider = oauth_provider("antigravity")
    assert provider is not None and sent["client_secret"] == provider.refresh.client_secret


def test_kiro_builder_id_login(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    fake.state.device_script = ["pending", "success"]
    result = login(target, "kiro", "--no-browser")  # builder-id is Kiro's first method
    tokens, record, _ = stored(target, linked_id(result), result)
    (client_id, client_secret), *_ = fake.state.clients.items()
    reply = fake.state.last_reply("kiro")
    assert tokens == OAuthTokens(reply["accessToken"], reply["refreshToken"], client_secret=client_secret)
    assert record["meta"] == {
        "authMethod": "builder-id",
        "clientId": client_id,
        "region": "us-east-1",
        "startUrl": "https://view.awsapps.com/start",
    }


def test_kiro_google_social_login(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    args, _ = port_args(fake, 9876)
    result = login(target, "kiro", "--method", "google", *args)
    tokens, record, _ = stored(target, linked_id(result), result)
    reply = fake.state.last_reply("kiro")
    assert tokens == OAuthTokens(reply["accessToken"], reply["refreshToken"])
    assert record["meta"] == {"authMethod": "google", "profileArn": reply["profileArn"]}
    assert fake.state.authorize_requests[0]["idp"] == "Google"


@pytest.mark.parametrize("provider_id", ["kimi-code", "grok-cli"])
def test_kimi_and_grok_device_logins(target: Target, fake: OAuthFake, browser: FakeBrowser, provider_id: str) -> None:
    fake.state.device_script = ["pending", "pending", "success"]
    result = login(target, provider_id, "--no-browser")
    tokens, record, _ = stored(target, linked_id(result), result)
    reply = fake.state.last_reply(provider_id)
    assert tokens == OAuthTokens(reply["access_token"], reply["refresh_token"])
    assert record["meta"] == {"authMethod": "device"} and record["expiresAt"] > time.time()
    assert "WDJB-MJHT" in result.stderr


def test_relink_replaces_the_credentials_of_the_same_account(
    target: Target, fake: OAuthFake, browser: FakeBrowser
) -> None:
    first = login(target, "kimi-code", "--no-browser", "--name", "work kimi")
    conn_id = linked_id(first)
    old, _, _ = stored(target, conn_id, first)
    again = login(target, "kimi-code", "--no-browser", "--relink", conn_id)
    assert linked_id(again) == conn_id and again.stdout.startswith("Relinked Kimi Code as")
    new, record, conn = stored(target, conn_id, again)
    assert new != old and new.access_token == fake.state.last_reply("kimi-code")["access_token"]
    assert record["tokenVersion"] == 2 and conn.data["name"] == "work kimi"


# ----- nothing stored when the login fails ------------------------------------------------------------------


@pytest.mark.parametrize(("consent", "message"), [("wrong-state", "state mismatch"), ("deny", "not granted")])
def test_a_failed_consent_exits_1_with_nothing_stored(
    target: Target, fake: OAuthFake, browser: FakeBrowser, consent: str, message: str
) -> None:
    fake.state.consent = consent
    before = set(target.records(Kind.OAUTH))
    args, _ = port_args(fake, 54545)
    result = login(target, "claude", *args)
    assert result.exit_code == 1 and message in result.stderr
    assert fake.state.token_requests == [] and set(target.records(Kind.OAUTH)) == before


def test_an_expired_device_code_exits_1_with_nothing_stored(
    target: Target, fake: OAuthFake, browser: FakeBrowser
) -> None:
    fake.state.device_script = ["pending", "expired"]
    before = set(target.records(Kind.OAUTH))
    result = login(target, "github", "--no-browser")
    assert result.exit_code == 1 and "expired" in result.stderr and set(target.records(Kind.OAUTH)) == before


@pytest.mark.parametrize("provider_id", ["gemini-cli", "qwen", "iflow"])
def test_a_retired_provider_explains_and_starts_nothing(target: Target, fake: OAuthFake, provider_id: str) -> None:
    result = login(target, provider_id)
    assert result.exit_code == 1 and "can no longer be linked" in result.stderr
    assert re.search(r"ended|closed", result.stderr) and fake.state.calls == []


def test_an_unknown_provider_lists_the_linkable_ones(target: Target, fake: OAuthFake) -> None:
    result = login(target, "openai")
    assert result.exit_code == 2 and "takes an API key" in result.stderr
    assert "claude, codex, github, antigravity, kiro, kimi-code, grok-cli" in result.stderr
    assert login(target, "nonesuch").exit_code == 2


def test_an_unknown_method_names_the_providers_methods(target: Target, fake: OAuthFake) -> None:
    result = login(target, "kiro", "--method", "password")
    assert result.exit_code == 2 and "builder-id, google, github" in result.stderr and fake.state.calls == []


def test_antigravity_refuses_paste_with_a_clear_message(target: Target, fake: OAuthFake) -> None:
    result = login(target, "antigravity", "--paste")
    assert result.exit_code == 2 and "only accepts its loopback callback" in result.stderr
    assert fake.state.calls == []


def test_a_wrong_admin_token_stops_before_the_user_signs_in(target: Target, fake: OAuthFake) -> None:
    env = ISOLATED | {"HOME": str(target.home)}
    result = CliRunner().invoke(app, ["login", "github", "--url", target.url, "--token", "wrong"], env=env)
    assert result.exit_code == 2 and "refused the admin token" in result.stderr and fake.state.calls == []


def test_help_lists_every_providers_methods() -> None:
    result = CliRunner().invoke(app, ["login", "--help"], env=ISOLATED | {"COLUMNS": "200"})
    assert result.exit_code == 0
    text = re.sub(r"[│\s]+", " ", result.stdout)  # the help's table, unwrapped
    for expected in ("codex: browser, device", "kiro: builder-id, google, github", "--paste", "--relink", "--port"):
        assert expected in text


def test_port_overrides_the_registered_callback_port(target: Target, fake: OAuthFake, browser: FakeBrowser) -> None:
    port = free_port()
    fake.state.allow_port(port)  # a relay forwarding the registered port here; the provider never sees this one
    result = login(target, "claude", "--port", str(port))
    stored(target, linked_id(result), result)
    assert fake.state.authorize_requests[0]["redirect_uri"] == f"http://localhost:{port}/callback"


def test_paste_is_refused_for_a_device_login(target: Target, fake: OAuthFake) -> None:
    result = login(target, "github", "--paste")
    assert result.exit_code == 2 and "--paste applies to browser logins" in result.stderr and fake.state.calls == []
