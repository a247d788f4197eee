"""`omniroute configure` end to end: the settings it writes into a temporary home are all the real Claude Code
and Codex CLIs (from npm, pinned in ./dev) get, and with them they reach a real `omniroute serve` that requires
API keys, whose upstream is the fake OpenAI server. No ANTHROPIC_* or base-URL variable is set for the CLIs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from companion.cli import app
from tests.companion.cli_runner import ISOLATED
from tests.e2e import clients
from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.harness import ADMIN_TOKEN, Gateway
from tests.fakes.server import ServerThread

pytestmark = pytest.mark.e2e

MODEL = "fake/gpt-4o-mini"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, fake_upstream: ServerThread[Any]) -> Iterator[Gateway]:
    """A gateway of its own that refuses requests without one of its API keys, routing `fake/*` to the fake."""
    gw = Gateway(data_dir=tmp_path_factory.mktemp("keyed") / "data", env_extra={"OMNIROUTE_REQUIRE_API_KEY": "1"})
    gw.start()
    try:
        node = gw.admin_post(
            "/provider-nodes", {"name": "Fake", "prefix": "fake", "baseUrl": fake_upstream.base_url + "/v1"}
        )["node"]
        gw.admin_post("/providers", {"provider": node["id"], "apiKey": UPSTREAM_KEY, "name": "fake-1"})
        gw.admin_post("/provider-models", {"provider": "fake", "modelId": "gpt-4o-mini"})
        yield gw
    finally:
        gw.stop()


def configure(tool: str, gw: Gateway, home: Path, *args: str) -> str:
    """Run `omniroute configure` in-process; its output (which never holds the admin token)."""
    argv = ["configure", tool, "--home", str(home), "--base-url", gw.base_url, "--model", MODEL, *args]
    result = CliRunner().invoke(app, argv, env=ISOLATED | {"OMNIROUTE_ADMIN_TOKEN": ADMIN_TOKEN})
    assert result.exit_code == 0, result.output
    assert ADMIN_TOKEN not in result.output
    return result.output


def key_id(gw: Gateway, name: str) -> str:
    with gw.admin() as admin:
        keys = admin.get("/keys").json()["keys"]
    [found] = [k["id"] for k in keys if k["name"] == name]
    return str(found)


def test_claude_code_runs_on_the_settings_configure_wrote(keyed: Gateway, tmp_path: Path) -> None:
    if not clients.CLAUDE.exists():
        pytest.fail(f"{clients.CLAUDE} is missing: `./dev test` installs the pinned Claude Code CLI from npm")
    home = tmp_path / "home"
    configure("claude-code", keyed, home, "--create-key")
    proc = subprocess.run(
        [str(clients.CLAUDE), "-p", "say hi", "--tools", "", "--output-format", "json"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        },
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["is_error"] is False, result
    assert result["result"].startswith("Hello from fake-openai:")
    # ... sent with the key `configure --create-key` made and wrote into ~/.claude/settings.json
    created = key_id(keyed, "Claude Code (omniroute configure)")
    assert any(e["keyId"] == created for e in clients.recorded_streams(keyed, "anthropic"))


def test_codex_runs_on_the_config_configure_wrote(keyed: Gateway, tmp_path: Path) -> None:
    if not clients.CODEX.exists():
        pytest.fail(f"{clients.CODEX} is missing: `./dev test` installs the pinned Codex CLI from npm")
    key = keyed.admin_post("/keys", {"name": "codex-e2e"})["key"]
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    output = configure("codex", keyed, home, "--key", key)
    assert key not in output and key not in (home / ".codex" / "config.toml").read_text()
    proc = subprocess.run(
        [str(clients.CODEX), "exec", "--skip-git-repo-check", "say hi"],
        # Codex reads the key from the variable config.toml names (env_key), as the command told the user
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OMNIROUTE_API_KEY": key},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Tool said:" in proc.stdout, proc.stdout[-2000:]
    created = key_id(keyed, "codex-e2e")
    assert any(e["keyId"] == created for e in clients.recorded_streams(keyed, "responses"))
