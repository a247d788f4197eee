"""The whole companion journey with a ChatGPT subscription, every step a real process:

1. `omniroute login codex --method device` (the installed console script) signs in against the fake
   authorization server and pushes the account to a running `omniroute serve` that requires API keys;
2. `omniroute providers update` points the linked account at the fake Codex backend (as a relay would);
3. `omniroute configure codex` writes the Codex CLI's config into a fresh home;
4. the real Codex CLI (from npm) runs an agent turn with a tool through the gateway, which calls the backend
   with the linked account's token and ChatGPT account id, and records the turn;
5. `omniroute accounts list` shows the account, and no file the companion could have written holds a token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.providers.oauth import HOSTS_ENV
from tests.e2e import clients
from tests.e2e.harness import ADMIN_TOKEN, Gateway
from tests.fakes.codex_backend import create_app as create_codex
from tests.fakes.oauth_servers import OAuthFake, serve_oauth_fake
from tests.fakes.server import ServerThread

pytestmark = pytest.mark.e2e

OMNIROUTE = str(Path(sys.executable).with_name("omniroute"))
MODEL = "cx/gpt-5.2-codex"


@pytest.fixture
def oauth() -> Iterator[tuple[OAuthFake, str]]:
    with serve_oauth_fake() as (fake, hosts):
        fake.state.interval = 0  # the device code is approved at the first poll: no real waiting
        yield fake, hosts


@pytest.fixture
def backend() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_codex("not-linked-yet", account_id="not-linked-yet")) as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(data_dir=tmp_path / "data", env_extra={"OMNIROUTE_REQUIRE_API_KEY": "1"})
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def companion(home: Path, *args: str, hosts: str = "") -> subprocess.CompletedProcess[str]:
    """The installed `omniroute` command, as the owner runs it on their machine (its own HOME)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "OMNIROUTE_CONFIG_DIR": str(home / ".omniroute"),
        "OMNIROUTE_ADMIN_TOKEN": ADMIN_TOKEN,
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    if hosts:
        env[HOSTS_ENV] = hosts
    return subprocess.run(
        [OMNIROUTE, *args], env=env, capture_output=True, text=True, timeout=120, check=False, cwd=home
    )


def files_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_link_a_chatgpt_account_configure_codex_and_code_through_the_gateway(
    oauth: tuple[OAuthFake, str], backend: ServerThread[Any], gateway: Gateway, tmp_path: Path
) -> None:
    if not clients.CODEX.exists():
        pytest.fail(f"{clients.CODEX} is missing: `./dev test` installs the pinned Codex CLI from npm")
    fake, hosts = oauth
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()

    # 1. link: the device flow against the fake, pushed to the running gateway
    login = companion(home, "login", "codex", "--method", "device", "--url", gateway.base_url, hosts=hosts)
    assert login.returncode == 0, login.stdout + login.stderr
    [(provider, reply)] = fake.state.replies
    assert provider == "codex"
    tokens = (reply["access_token"], reply["refresh_token"], reply["id_token"])
    assert "CODX-1234" in login.stderr  # the user code the owner types on the device page
    assert not any(t in login.stdout + login.stderr for t in tokens)

    listed = companion(home, "accounts", "list", "--json", "--url", gateway.base_url)
    assert listed.returncode == 0, listed.stderr
    [account] = json.loads(listed.stdout)["accounts"]
    assert account["provider"] == "codex" and account["oauth"]["status"] == "active"
    assert account["oauth"]["meta"]["accountId"] == "acct-codex-1"
    assert not any(t in listed.stdout for t in tokens)

    # 2. the account goes through a relay: here, the fake backend, which now expects exactly what was linked
    backend.app.state.fake.api_key = reply["access_token"]
    backend.app.state.fake.account_id = "acct-codex-1"
    moved = companion(
        home, "providers", "update", account["id"], "--base-url", backend.base_url + "/backend-api/codex",
        "--url", gateway.base_url,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stdout + moved.stderr

    # 3. configure Codex with a gateway key made for it
    key = gateway.admin_post("/keys", {"name": "codex-journey"})["key"]
    configured = companion(
        home, "configure", "codex", "--home", str(home), "--base-url", gateway.base_url, "--model", MODEL,
        "--key", key,
    )  # fmt: skip
    assert configured.returncode == 0, configured.stdout + configured.stderr

    # 4. the real Codex CLI, with nothing but that config and the key in the variable it names
    proc = subprocess.run(
        [str(clients.CODEX), "exec", "--skip-git-repo-check", "say hi"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OMNIROUTE_API_KEY": key},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # the fake backend calls the first tool Codex offers, then answers with the tool's output: a whole agent loop
    assert "Tool said:" in proc.stdout, proc.stdout[-2000:]
    sent = backend.app.state.fake.requests
    assert len(sent) >= 2 and all(r["headers"]["authorization"] == f"Bearer {reply['access_token']}" for r in sent)
    assert {r["headers"]["chatgpt-account-id"] for r in sent} == {"acct-codex-1"}
    assert all(r["body"]["store"] is False and r["body"]["stream"] is True for r in sent)
    recorded = clients.recorded_streams(gateway, "responses")
    assert recorded and all(e["provider"] == "codex" and e["connectionId"] == account["id"] for e in recorded)

    # 5. the companion kept no copy: no file in its home holds a token (the target's data dir is elsewhere)
    for path, content in files_under(home).items():
        assert not any(t.encode() in content for t in tokens), path
    # ... and the target holds them only encrypted
    for path, content in files_under(gateway.data_dir).items():
        assert not any(t.encode() in content for t in tokens), path
