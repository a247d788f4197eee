"""Claude Code subscription accounts (Anthropic Messages with an OAuth access token).

What api.anthropic.com wants from a Pro/Max OAuth token, as Claude Code itself sends it (CLIProxyAPI
`claude_executor_request.go`; project notes `oauth-providers.md` §2):
- `POST /v1/messages?beta=true`, `Authorization: Bearer <access token>` and no `x-api-key`;
- `anthropic-beta` carrying `oauth-2025-04-20` (without it the token is refused) next to Claude Code's own
  betas, with whatever the client opted into kept after them;
- the client identity: `User-Agent: claude-cli/<version> (external, cli)` and `x-app: cli`;
- the first system block "You are Claude Code, Anthropic's official CLI for Claude." (requests without it are
  refused for some models); a request that already starts with it (Claude Code itself, whose first block
  may be its billing header) is left alone.
"""

from __future__ import annotations

from typing import Any

from shared.domain.config import Connection
from shared.ports import UpstreamResponse
from shared.providers.executors import UpstreamCall
from shared.providers.spec import WireFormat

PREAMBLE = "You are Claude Code, Anthropic's official CLI for Claude."
BILLING_HEADER = "x-anthropic-billing-header:"
REQUIRED_BETAS = ("claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14")
USER_AGENT = "claude-cli/2.1.0 (external, cli)"


def merged_betas(sent: str | None) -> str:
    """Claude Code's betas first, then the client's own, each once."""
    betas = list(REQUIRED_BETAS)
    for beta in (sent or "").split(","):
        beta = beta.strip()
        if beta and beta not in betas:
            betas.append(beta)
    return ",".join(betas)


def _block_text(block: object) -> str:
    return str(block.get("text", "")) if isinstance(block, dict) else ""


def with_preamble(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with the Claude Code preamble as its first system block (a new dict when it changes).

    Claude Code 2.1 puts its billing header block (`x-anthropic-billing-header: cc_version=...`) before the
    preamble; the preamble then goes right after it, and a request that has it there is left alone.
    """
    block = {"type": "text", "text": PREAMBLE}
    system = payload.get("system")
    if system is None or system == "":
        return {**payload, "system": [block]}
    if isinstance(system, str):
        if system.startswith(PREAMBLE):
            return payload
        return {**payload, "system": [block, {"type": "text", "text": system}]}
    if isinstance(system, list):
        at = 0
        while at < len(system) and _block_text(system[at]).startswith(BILLING_HEADER):
            at += 1
        if at < len(system) and _block_text(system[at]).startswith(PREAMBLE):
            return payload
        return {**payload, "system": [*system[:at], block, *system[at:]]}
    return payload


class ClaudeExecutor:
    wire_format = WireFormat.ANTHROPIC

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        headers = {k: v for k, v in call.headers.items() if k != "x-api-key"}
        headers["anthropic-beta"] = merged_betas(call.headers.get("anthropic-beta"))
        headers["user-agent"] = USER_AGENT
        headers["x-app"] = "cli"
        url = call.url if "?" in call.url else call.url + "?beta=true"
        payload = with_preamble(call.payload) if "messages" in call.payload else call.payload
        return UpstreamCall(url, headers, payload, call.stream, call.notes)

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return resp
