"""Responses streams from backends that only stream, and whose last event carries no output.

The ChatGPT Codex backend (and the Grok CLI proxy, called the same way by CLIProxyAPI `xai_executor.go`)
answer every request with a Responses event stream. Their `response.completed` event carries `"output": []`:
the finished items arrive only in the `response.output_item.done` events before it (reported by every
client of the Codex backend that read the final Response, e.g. NousResearch/hermes-agent#5689,
sipeed/picoclaw#2437). Two wrappers make such a stream what a Responses client expects:

- `final_response(resp, provider)` for a client that asked for JSON: `aread` reads the stream to its end
  and gives the final Response as JSON, its output rebuilt from the items; a `response.failed` or `error`
  event raises `UpstreamFailed` with the service's message (the router fails over as for any failure);
- `backfilled_stream(resp)` for a client that streams: every frame passes as it came, except a final
  event with an empty output, which is re-sent with the items (the `openai` SDK's stream helper reads the
  final Response from it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from shared.errors import UpstreamFailed
from shared.formats.sse import SseFramer, event_name, frame_data
from shared.ports import UpstreamResponse

_TERMINAL = ("response.completed", "response.incomplete")


def is_event_stream(resp: UpstreamResponse) -> bool:
    return str(resp.headers.get("content-type", "")).startswith("text/event-stream")


class _Items:
    """The output items of one stream by `output_index`, and the final Response once it came."""

    def __init__(self) -> None:
        self.items: dict[int, Any] = {}

    def event(self, frame: bytes) -> tuple[str, dict[str, Any]] | None:
        """The frame's event type and payload (None for a comment, a keepalive or a non-JSON payload)."""
        data = frame_data(frame)
        if data is None or data.strip() == b"[DONE]":
            return None
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        kind = body.get("type")
        return (kind if isinstance(kind, str) else event_name(frame) or ""), body

    def note(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Keep a finished item; for a final event, its Response with the output filled in (else None)."""
        if kind == "response.output_item.done":
            index = body.get("output_index")
            item = body.get("item")
            if isinstance(item, dict):
                self.items[index if isinstance(index, int) else len(self.items)] = item
            return None
        if kind not in _TERMINAL:
            return None
        response = body.get("response")
        if not isinstance(response, dict):
            return None
        if not response.get("output") and self.items:
            response = {**response, "output": [self.items[i] for i in sorted(self.items)]}
        return response


def _failure(kind: str, body: Mapping[str, Any], provider: str) -> UpstreamFailed | None:
    if kind == "response.failed":
        response = body.get("response")
        error = response.get("error") if isinstance(response, dict) else None
    elif kind == "error":
        error = body.get("error") if isinstance(body.get("error"), dict) else body
    else:
        return None
    message = error.get("message") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    detail = str(message or code or "no message")[:500]
    return UpstreamFailed(f"Upstream {provider} failed the response: {detail}", provider=provider)


class _FinalResponse:
    """A stream read whole, answered as the JSON of its final Response."""

    def __init__(self, resp: UpstreamResponse, provider: str) -> None:
        self._resp = resp
        self._provider = provider
        self.status = resp.status
        self.headers: Mapping[str, str] = {
            **{k.lower(): v for k, v in resp.headers.items() if k.lower() != "content-length"},
            "content-type": "application/json",
        }

    async def aread(self) -> bytes:
        framer = SseFramer()
        items = _Items()
        try:
            async for chunk in self._resp.aiter_bytes():
                for frame in framer.feed(chunk):
                    final = self._read(items, frame)
                    if final is not None:
                        return final
            rest = framer.flush()
            if rest.strip():
                final = self._read(items, rest + b"\n\n")
                if final is not None:
                    return final
        finally:
            await self._resp.aclose()
        raise UpstreamFailed(
            f"Upstream {self._provider} ended the stream before its response completed.", provider=self._provider
        )

    def _read(self, items: _Items, frame: bytes) -> bytes | None:
        parsed = items.event(frame)
        if parsed is None:
            return None
        kind, body = parsed
        failure = _failure(kind, body, self._provider)
        if failure is not None:
            raise failure
        final = items.note(kind, body)
        return orjson.dumps(final) if final is not None else None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        yield await self.aread()

    async def aclose(self) -> None:
        await self._resp.aclose()


class _BackfilledStream:
    """The stream as it came, its final event re-sent with the output items when it carried none."""

    def __init__(self, resp: UpstreamResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        framer = SseFramer()
        items = _Items()
        async for chunk in self._resp.aiter_bytes():
            out = b"".join(self._pass(items, frame) for frame in framer.feed(chunk))
            if out:
                yield out
        rest = framer.flush()
        if rest:
            yield rest  # an unfinished frame: the relay after us says what that means

    @staticmethod
    def _pass(items: _Items, frame: bytes) -> bytes:
        parsed = items.event(frame)
        if parsed is None:
            return frame
        kind, body = parsed
        final = items.note(kind, body)
        if final is None or final is body.get("response"):
            return frame  # nothing to fill in: byte for byte
        payload = orjson.dumps({**body, "response": final})
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        await self._resp.aclose()


def final_response(resp: UpstreamResponse, provider: str) -> UpstreamResponse:
    """For a client that asked for JSON: the stream's final Response (see the module docstring)."""
    return _FinalResponse(resp, provider) if is_event_stream(resp) else resp


def backfilled_stream(resp: UpstreamResponse) -> UpstreamResponse:
    """For a client that streams: the stream, its final event carrying its output (see the module docstring)."""
    return _BackfilledStream(resp) if is_event_stream(resp) else resp
