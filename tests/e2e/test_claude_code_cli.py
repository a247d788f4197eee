"""The real Claude Code CLI (from npm, pinned in ./dev) against a real `omniroute serve` whose upstream
speaks OpenAI Chat: Claude Code's own requests (system blocks with cache_control, mid-conversation system
messages, adaptive thinking with an effort, 20+ tools, streaming) are translated, and its tool loop works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e import clients
from tests.e2e.harness import Gateway


def run_claude(gateway: Gateway, home: Path, prompt: str, *tools: str) -> dict[str, Any]:
    return clients.run_claude(gateway, home, prompt, *tools, model="fake/gpt-4o-mini")


def test_claude_code_answers_through_an_openai_upstream(gateway: Gateway, tmp_path: Path, fake_state: Any) -> None:
    result = run_claude(gateway, tmp_path, "say hi")
    assert result["is_error"] is False, result
    assert result["result"].startswith("Hello from fake-openai:") and "say hi" in result["result"]
    assert result["usage"]["output_tokens"] > 0  # usage reached Claude Code in message_delta
    sent = fake_state.requests[-1]["body"]
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["messages"][0]["role"] == "system"  # Claude Code's system blocks, folded into one message
    # ... and the gateway recorded that streamed answer with the usage the upstream reported
    recorded = clients.recorded_streams(gateway, "anthropic")
    assert any(e["outputTokens"] == result["usage"]["output_tokens"] and not e["estimated"] for e in recorded)


def test_claude_code_runs_its_tool_loop_through_translated_tool_calls(
    gateway: Gateway, tmp_path: Path, fake_state: Any
) -> None:
    result = run_claude(gateway, tmp_path, "read the file", "Read")
    assert result["is_error"] is False, result
    assert result["num_turns"] == 2  # tool_use → Claude Code ran Read → tool_result → final answer
    assert result["result"].startswith("Tool said:")
    turn_two = fake_state.requests[-1]["body"]["messages"]
    assert turn_two[-1]["role"] == "tool" and turn_two[-2]["tool_calls"][0]["function"]["name"] == "Read"
