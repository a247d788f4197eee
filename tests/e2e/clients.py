"""The real coding CLIs (from npm, pinned in ./dev) run against a gateway, each in its own home directory."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Gateway

REPO = Path(__file__).resolve().parents[2]
CLAUDE = REPO / ".clients" / "node_modules" / ".bin" / "claude"
CODEX = REPO / ".clients" / "node_modules" / ".bin" / "codex"


def run_claude(gateway: Gateway, home: Path, prompt: str, *tools: str, model: str) -> dict[str, Any]:
    """`claude -p` with only `tools` offered, talking to the gateway as its Anthropic API; its JSON result."""
    if not CLAUDE.exists():
        pytest.fail(f"{CLAUDE} is missing: `./dev test` installs the pinned Claude Code CLI from npm")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.base_url,
        "ANTHROPIC_API_KEY": "sk-any-placeholder",
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    proc = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--tools", ",".join(tools), "--output-format", "json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def run_codex(gateway: Gateway, root: Path, prompt: str, *, model: str) -> subprocess.CompletedProcess[str]:
    """`codex exec` with the gateway's `/v1/responses` as its model provider, in `root`/home and `root`/work."""
    if not CODEX.exists():
        pytest.fail(f"{CODEX} is missing: `./dev test` installs the pinned Codex CLI from npm")
    home, work = root / "home", root / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "omniroute"\n\n[model_providers.omniroute]\n'
        f'name = "OmniRoute"\nbase_url = "{gateway.v1}"\nenv_key = "OMNIROUTE_KEY"\nwire_api = "responses"\n'
    )
    return subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", prompt],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OMNIROUTE_KEY": "sk-any-placeholder"},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def recorded_streams(gateway: Gateway, client: str) -> list[dict[str, Any]]:
    """The streamed requests of one client format the gateway recorded (usage/history; events are written
    in the background, so this waits up to 3 s for one)."""
    deadline = time.monotonic() + 3
    while True:
        with gateway.admin() as admin:
            items = admin.get("/usage/history", params={"limit": 20}).json()["items"]
        found = [e for e in items if e["client"] == client and e["stream"] and e["status"] == 200]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
