"""Google Cloud Code Assist accounts: Antigravity, and the retired Gemini CLI row (`…/v1internal`).

Both clients speak Gemini's generateContent, wrapped (project notes `oauth-providers.md` §4, §5):
- `POST {base}:generateContent` or `{base}:streamGenerateContent?alt=sse`: the model is named in the body, not
  in the path as on the public Gemini API;
- the body is an envelope `{model, project, request: <the Gemini body>, ...}` whose other fields name the
  client (Antigravity adds `userAgent`, `requestType` and `requestId`; Gemini CLI a `user_prompt_id`), and the
  request carries a session id;
- each answer (a JSON body, or each SSE frame) is `{response: <a Gemini answer>, traceId}`;
- Antigravity gates clients by the version in `User-Agent: antigravity/<version> <os>/<arch>` (never below 2.9.0:
  "Cloud Code rejects newer models for clients below 2.9.0"). An outdated client is not refused with an error:
  it gets a 200 whose model text is "This version of Antigravity is no longer supported..." (CLIProxyAPI#2523,
  #4144). That, and any 200 without a `response` object, raises `UpstreamFailed` so the router moves on.

The difference between the two clients is data (`CloudCodeClient`), one row each.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

import orjson

from shared.domain.config import Connection
from shared.errors import UpstreamFailed
from shared.formats.sse import SseFramer, frame_data
from shared.ports import UpstreamResponse
from shared.providers.executors import UpstreamCall
from shared.providers.spec import WireFormat

OUTDATED = "This version of Antigravity is no longer supported"


@dataclass(frozen=True, slots=True)
class CloudCodeClient:
    """How one Cloud Code client identifies itself. `user_agent` is formatted with `version` and `model`."""

    provider: str
    name: str
    user_agent: str
    version: str
    session_field: str  # where the request carries its session id
    request_id_field: str
    request_id_prefix: str = ""
    envelope: Mapping[str, str] = field(default_factory=dict)  # fixed top-level fields
    headers: Mapping[str, str] = field(default_factory=dict)


ANTIGRAVITY = CloudCodeClient(
    provider="antigravity",
    name="Antigravity",
    # CLIProxyAPI sends darwin/arm64; the version must be a current release (see the module docstring)
    user_agent="antigravity/{version} darwin/arm64",
    version="2.9.0",
    session_field="sessionId",
    request_id_field="requestId",
    request_id_prefix="agent-",
    envelope={"userAgent": "antigravity", "requestType": "agent"},
)
GEMINI_CLI = CloudCodeClient(
    provider="gemini-cli",
    name="Gemini CLI",
    user_agent="GeminiCLI/{version}/{model} (darwin; arm64)",  # Node's platform and arch names
    version="0.31.0",
    session_field="session_id",
    request_id_field="user_prompt_id",
    headers={"x-goog-api-client": "google-genai-sdk/1.41.0 gl-node/v22.19.0"},
)


def session_id(request: Mapping[str, Any]) -> str:
    """One id per conversation, as the IDE keeps one per chat: derived from its first turn, so every request
    of a conversation names the same session (and the service can reuse its cache)."""
    contents = request.get("contents")
    first = contents[0] if isinstance(contents, list) and contents else None
    digest = hashlib.sha256(orjson.dumps(first, option=orjson.OPT_SORT_KEYS)).digest()
    return str(uuid.UUID(bytes=digest[:16]))


def split_gemini_url(url: str) -> tuple[str, str]:
    """`{base}/models/{model}:{action}` (what ChatService builds for a Gemini upstream) → (base, model)."""
    base, sep, rest = url.rpartition("/models/")
    if not sep:
        raise ValueError(f"not a Gemini model URL: {url}")
    return base, unquote(rest.partition(":")[0])


def envelope(client: CloudCodeClient, model: str, request: Mapping[str, Any], project: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model}
    if project:
        body["project"] = project
    body["request"] = {**request, client.session_field: session_id(request)}
    body.update(client.envelope)
    body[client.request_id_field] = client.request_id_prefix + str(uuid.uuid4())
    return body


def _parts(response: Mapping[str, Any]) -> list[Any]:
    """The parts of a Gemini response's first candidate."""
    candidates = response.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    content = first.get("content") if isinstance(first, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def _plain_text(part: Any) -> str | None:
    """A part's text when it is answer text (not a thought, a call or data), else None."""
    if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
        return str(part["text"])
    return None


def _response_text(response: Mapping[str, Any]) -> str:
    return "".join(t for t in map(_plain_text, _parts(response)) if t is not None)


class CloudCodeExecutor:
    """One per client row: the subclasses below only name their `client`."""

    wire_format = WireFormat.GEMINI
    client: ClassVar[CloudCodeClient]

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        client = self.client
        base, model = split_gemini_url(call.url)
        action = "streamGenerateContent?alt=sse" if call.stream else "generateContent"
        meta = connection.oauth.meta if connection is not None and connection.oauth is not None else {}
        project = meta.get("projectId")
        version = str(meta.get("clientVersion") or client.version)  # a newer release, when Google raises the bar
        headers = {k: v for k, v in call.headers.items() if k not in ("x-goog-api-key", "user-agent")}
        headers["user-agent"] = client.user_agent.format(version=version, model=model)
        headers.update(client.headers)
        payload = envelope(client, model, call.payload, str(project) if project else None)
        return UpstreamCall(f"{base}:{action}", headers, payload, call.stream, {**call.notes, "model": model})

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return CloudCodeResponse(resp, self.client)


class AntigravityExecutor(CloudCodeExecutor):
    client = ANTIGRAVITY


class GeminiCliExecutor(CloudCodeExecutor):
    client = GEMINI_CLI


class CloudCodeResponse:
    """The service's answer with each envelope taken off: plain Gemini JSON, or plain Gemini SSE frames."""

    def __init__(self, resp: UpstreamResponse, client: CloudCodeClient) -> None:
        self._resp = resp
        self._client = client
        self.status = resp.status
        self.headers = resp.headers

    def failed(self, detail: str) -> UpstreamFailed:
        return UpstreamFailed(f"{self._client.name} (Cloud Code) {detail}", provider=self._client.provider)

    def unwrap(self, raw: bytes) -> dict[str, Any]:
        """The Gemini answer inside one envelope; a refusal or anything else in a 200 raises UpstreamFailed."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            text = raw[:300].decode("utf-8", "replace").strip()
            if OUTDATED in text:
                raise self.failed(f"refused this client's version: {text}")
            raise self.failed(f"answered 200 without a JSON object: {text[:120]!r}")
        response = doc.get("response")
        if isinstance(response, dict):
            return response
        error = doc.get("error")
        if isinstance(error, dict) and error.get("message"):
            raise self.failed(f"reported an error: {str(error['message'])[:300]}")
        raise self.failed("answered 200 without a response object")

    async def aread(self) -> bytes:
        response = self.unwrap(await self._resp.aread())
        text = _response_text(response).lstrip()
        if text.startswith(OUTDATED):
            raise self.failed(f"refused this client's version: {text[:300]}")
        return orjson.dumps(response)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        framer = SseFramer()
        gate = _RefusalGate(self)
        async for chunk in self._resp.aiter_bytes():
            out = gate.feed(frame_data(frame) for frame in framer.feed(chunk))
            if out:
                yield out
        rest = framer.flush()
        out = gate.feed([frame_data(rest)] if rest.strip() else []) + gate.release()
        if out:
            yield out

    async def aclose(self) -> None:
        await self._resp.aclose()


class _RefusalGate:
    """Unwraps frames, holding them back while the text so far could still be the outdated-client refusal: a
    refused stream then fails before its first byte reaches the client, and the router can still move on."""

    def __init__(self, response: CloudCodeResponse) -> None:
        self._response = response
        self._text = ""
        self._held: list[bytes] = []
        self._deciding = True

    def feed(self, payloads: Iterable[bytes | None]) -> bytes:
        out: list[bytes] = []
        for data in payloads:
            if data is None:
                continue  # comments and keep-alives: nothing a Gemini client needs
            answer = self._response.unwrap(data)
            out.append(b"data: " + orjson.dumps(answer) + b"\r\n\r\n")
            parts = _parts(answer)
            if self._deciding and parts:
                pieces = [_plain_text(p) for p in parts]
                self._text += "".join(t for t in pieces if t is not None)
                text = self._text.lstrip()
                if text.startswith(OUTDATED):
                    raise self._response.failed(f"refused this client's version: {text[:300]}")
                # a thought or a call first, or text that is not the refusal: the answer is a real one
                self._deciding = None not in pieces and OUTDATED.startswith(text)
        if self._deciding:
            self._held += out
            return b""
        return self.release() + b"".join(out)

    def release(self) -> bytes:
        held, self._held = self._held, []
        return b"".join(held)
