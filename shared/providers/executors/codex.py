"""OpenAI Codex through a ChatGPT subscription: the Responses API at chatgpt.com/backend-api/codex.

What the backend wants, as the Codex CLI sends it (openai/codex `codex-rs`; CLIProxyAPI
`codex_executor_request.go`; 9router `executors/codex.js`; project notes `oauth-providers.md` §3):
- headers: `ChatGPT-Account-Id` (the account the token was issued for), `originator: codex_cli_rs` with a
  matching `User-Agent`, a `session_id` that stays the same for one conversation (it keys the prompt cache),
  `OpenAI-Beta: responses=experimental`, `Accept: text/event-stream`;
- body: `instructions` present (else 400 "Instructions are required"), `store: false` ("Store must be set
  to false"), `stream: true`, `input` a list ("Input must be a list"), no `system` messages ("System
  messages are not allowed": they become `developer` messages), and none of the parameters it refuses
  ("Unsupported parameter: max_output_tokens", and the others in `REFUSED`);
- reasoning comes back encrypted (`include: ["reasoning.encrypted_content"]`): with `store: false` that is
  the only way a later turn can send it back.

The backend only streams. A client that asked for JSON gets the final Response read from the stream
(`responses_sse.final_response`); a streaming client gets the stream, its final event carrying the output
the backend leaves out of it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from shared.domain.config import Connection
from shared.ports import UpstreamResponse
from shared.providers.chatgpt import account_id as chatgpt_account_id
from shared.providers.executors import UpstreamCall
from shared.providers.executors.responses_sse import backfilled_stream, final_response
from shared.providers.spec import WireFormat

ORIGINATOR = "codex_cli_rs"
CLI_VERSION = "0.130.0"
USER_AGENT = f"{ORIGINATOR}/{CLI_VERSION} (Linux; x86_64)"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
# Parameters the backend answers with 400 "Unsupported parameter: <name>" (or, for previous_response_id,
# cannot honour with store=false); the subscription manages sampling and output budgets itself.
REFUSED = (
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tokens",
    "max_completion_tokens",
    "previous_response_id",
    "prompt_cache_retention",
    "safety_identifier",
    "metadata",
    "user",
)
_INSTRUCTION_ROLES = ("system", "developer")


def account_id(connection: Connection | None) -> str | None:
    """The ChatGPT account the token belongs to: as linked (`meta.accountId`), else read from the token."""
    if connection is None:
        return None
    if connection.oauth is not None:
        linked = connection.oauth.meta.get("accountId")
        if isinstance(linked, str) and linked:
            return linked
    return chatgpt_account_id(connection.api_key) if connection.api_key else None


def _text_only(content: object) -> str | None:
    """The text of a message's content when it is only text (a string or text parts), else None."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
            return None
        texts.append(str(part.get("text") or ""))
    return "\n\n".join(texts)


def _is_message(item: object) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message" and "role" in item


def _input_items(value: object) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else [value]


def _split_instructions(items: list[Any]) -> tuple[str, list[Any]]:
    """The leading system/developer messages that are only text, as instructions; and the rest."""
    texts: list[str] = []
    for index, item in enumerate(items):
        text = _text_only(item.get("content")) if _is_message(item) and item["role"] in _INSTRUCTION_ROLES else None
        if text is None:
            return "\n\n".join(texts), items[index:]
        texts.append(text)
    return "\n\n".join(texts), []


def _no_system_roles(items: list[Any]) -> list[Any]:
    return [{**item, "role": "developer"} if _is_message(item) and item["role"] == "system" else item for item in items]


def codex_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A Responses request as the Codex backend accepts it (a new dict; `payload` is not touched)."""
    body = {k: v for k, v in payload.items() if k not in REFUSED}
    items = _input_items(body.get("input"))
    instructions = body.get("instructions")
    if isinstance(instructions, list):  # instructions given as input items: they lead the input instead
        items = [*instructions, *items]
        instructions = None
    if not isinstance(instructions, str) or not instructions:
        instructions, items = _split_instructions(items)
    body["instructions"] = instructions
    body["input"] = _no_system_roles(items)
    body["store"] = False
    body["stream"] = True
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") != "none":
        include = [i for i in body.get("include") or () if isinstance(i, str)]
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        body["include"] = include
    return body


def session_id(body: dict[str, Any]) -> str:
    """The conversation's id: the client's `prompt_cache_key`, else a UUID derived from how the conversation
    starts (its instructions and first input item), so every turn of it carries the same one."""
    key = body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return key
    items = body.get("input") or [None]
    seed = orjson.dumps([body.get("instructions") or "", items[0]], option=orjson.OPT_SORT_KEYS)
    return str(uuid.UUID(bytes=hashlib.sha256(seed).digest()[:16], version=4))


class CodexExecutor:
    wire_format = WireFormat.RESPONSES
    keeps_state = False  # `store: false` only: the gateway keeps the conversation for the client

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        body = codex_body(call.payload)
        session = session_id(body)
        body.setdefault("prompt_cache_key", session)
        headers = {
            **call.headers,
            "accept": "text/event-stream",
            "originator": ORIGINATOR,
            "user-agent": USER_AGENT,
            "openai-beta": "responses=experimental",
            "session_id": session,
        }
        account = account_id(connection)
        if account:
            headers["chatgpt-account-id"] = account
        return UpstreamCall(call.url, headers, body, True, call.notes)

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return backfilled_stream(resp) if client_stream else final_response(resp, "codex")
