"""The real Codex CLI (from npm, pinned in ./dev) against `/v1/responses` of a real `omniroute serve` whose
upstream speaks OpenAI Chat: Codex's requests (developer instructions, function, custom and namespaced
tools, `store: false`, encrypted reasoning) are translated, and its agent loop runs a tool and finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.clients import recorded_streams, run_codex
from tests.e2e.harness import Gateway


def test_codex_runs_a_turn_with_a_tool_through_an_openai_upstream(
    gateway: Gateway, tmp_path: Path, fake_state: Any
) -> None:
    proc = run_codex(gateway, tmp_path, "say hi", model="fake/gpt-4o-mini")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # The fake upstream calls the first tool it is offered, then answers the tool's output.
    assert "Tool said:" in proc.stdout, proc.stdout[-2000:]
    turns = [r["body"] for r in fake_state.requests if r["path"].endswith("/chat/completions")]
    assert len(turns) >= 2
    first, last = turns[0], turns[-1]
    assert first["model"] == "gpt-4o-mini" and first["stream"] is True and first["tools"]
    assert first["messages"][0]["role"] == "system"  # Codex's developer instructions
    assert last["messages"][-1]["role"] == "tool" and last["messages"][-2]["tool_calls"]
    # every turn was recorded once, with the usage the upstream reported (none estimated)
    recorded = recorded_streams(gateway, "responses")
    assert len(recorded) >= len(turns) and all(e["inputTokens"] > 0 and not e["estimated"] for e in recorded)
