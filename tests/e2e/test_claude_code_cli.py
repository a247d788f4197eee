"""The real Claude Code CLI (from npm, pinned in ./dev) against a real `omniroute serve` whose upstream
speaks OpenAI Chat: Claude Code's own requests (system blocks with cache_control, mid-conversation system
messages, adaptive thinking with an effort, 20+ tools, streaming) are translated, and its tool loop works."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Gateway

REPO = Path(__file__).resolve().parents[2]
CLAUDE = REPO / ".clients" / "node_modules" / ".bin" / "claude"


def run_claude(gateway: Gateway, home: Path, prompt: str, *tools: str) -> dict[str, Any]:
    if not CLAUDE.exists():
        pytest.fail(f"{CLAUDE} is missing: `./dev test` installs the pinned Claude Code CLI from npm")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.base_url,
        "ANTHROPIC_API_KEY": "sk-any-placeholder",
        "ANTHROPIC_MODEL": "fake/gpt-4o-mini",
        "ANTHROPIC_SMALL_FAST_MODEL": "fake/gpt-4o-mini",
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


def test_claude_code_answers_through_an_openai_upstream(gateway: Gateway, tmp_path: Path, fake_state: Any) -> None:
    result = run_claude(gateway, tmp_path, "say hi")
    assert result["is_error"] is False, result
    assert result["result"].startswith("Hello from fake-openai:") and "say hi" in result["result"]
    assert result["usage"]["output_tokens"] > 0  # usage reached Claude Code in message_delta
    sent = fake_state.requests[-1]["body"]
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["messages"][0]["role"] == "system"  # Claude Code's system blocks, folded into one message


def test_claude_code_runs_its_tool_loop_through_translated_tool_calls(
    gateway: Gateway, tmp_path: Path, fake_state: Any
) -> None:
    result = run_claude(gateway, tmp_path, "read the file", "Read")
    assert result["is_error"] is False, result
    assert result["num_turns"] == 2  # tool_use → Claude Code ran Read → tool_result → final answer
    assert result["result"].startswith("Tool said:")
    turn_two = fake_state.requests[-1]["body"]["messages"]
    assert turn_two[-1]["role"] == "tool" and turn_two[-2]["tool_calls"][0]["function"]["name"] == "Read"
