"""The real Codex CLI (from npm, pinned in ./dev) against `/v1/responses` of a real `omniroute serve` whose
upstream speaks OpenAI Chat: Codex's requests (developer instructions, function, custom and namespaced
tools, `store: false`, encrypted reasoning) are translated, and its agent loop runs a tool and finishes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Gateway

REPO = Path(__file__).resolve().parents[2]
CODEX = REPO / ".clients" / "node_modules" / ".bin" / "codex"


def test_codex_runs_a_turn_with_a_tool_through_an_openai_upstream(
    gateway: Gateway, tmp_path: Path, fake_state: Any
) -> None:
    if not CODEX.exists():
        pytest.fail(f"{CODEX} is missing: `./dev test` installs the pinned Codex CLI from npm")
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "fake/gpt-4o-mini"\nmodel_provider = "omniroute"\n\n[model_providers.omniroute]\n'
        f'name = "OmniRoute"\nbase_url = "{gateway.v1}"\nenv_key = "OMNIROUTE_KEY"\nwire_api = "responses"\n'
    )
    proc = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "say hi"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OMNIROUTE_KEY": "sk-any-placeholder"},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # The fake upstream calls the first tool it is offered, then answers the tool's output.
    assert "Tool said:" in proc.stdout, proc.stdout[-2000:]
    turns = [r["body"] for r in fake_state.requests if r["path"].endswith("/chat/completions")]
    assert len(turns) >= 2
    first, last = turns[0], turns[-1]
    assert first["model"] == "gpt-4o-mini" and first["stream"] is True and first["tools"]
    assert first["messages"][0]["role"] == "system"  # Codex's developer instructions
    assert last["messages"][-1]["role"] == "tool" and last["messages"][-2]["tool_calls"]
