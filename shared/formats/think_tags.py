"""`<think>…</think>` (and `<thinking>…</thinking>`) in answer text, split out as reasoning.

Some OpenAI-compatible models (DeepSeek R1 on many hosts, QwQ, MiniMax) write their reasoning into the
content between such tags. Only a tag at the very start of the answer (after whitespace) opens reasoning,
so prose that merely mentions `<think>` later is left alone. Streams may cut a tag anywhere, so the
splitter holds back a possible partial tag until the next piece decides it.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["text", "reasoning"]
_OPEN = ("<think>", "<thinking>")
_CLOSE = {"<think>": "</think>", "<thinking>": "</thinking>"}


class ThinkTagSplitter:
    def __init__(self) -> None:
        self._state: Literal["start", "reasoning", "after", "text"] = "start"  # after: just past the close tag
        self._close = ""
        self._held = ""

    def feed(self, piece: str) -> list[tuple[Kind, str]]:
        text = self._held + piece
        self._held = ""
        out: list[tuple[Kind, str]] = []
        if self._state == "start":
            stripped = text.lstrip()
            if not stripped:
                self._held = text
                return out
            tag = next((t for t in _OPEN if stripped.startswith(t)), None)
            if tag is None:
                if any(t.startswith(stripped) for t in _OPEN):
                    self._held = text  # maybe the start of a tag
                    return out
                self._state = "text"
                return [("text", text)]
            self._state, self._close = "reasoning", _CLOSE[tag]
            text = stripped[len(tag) :]
        if self._state == "reasoning":
            end = text.find(self._close)
            if end < 0:
                keep = _partial_suffix(text, self._close)
                if text[: len(text) - keep]:
                    out.append(("reasoning", text[: len(text) - keep]))
                self._held = text[len(text) - keep :]
                return out
            if text[:end]:
                out.append(("reasoning", text[:end]))
            self._state = "after"
            text = text[end + len(self._close) :]
        if self._state == "after":
            text = text.lstrip("\n")  # the line break after </think> belongs to the tag
            if not text:
                return out
            self._state = "text"
        if text:
            out.append(("text", text))
        return out

    def flush(self) -> list[tuple[Kind, str]]:
        held, self._held = self._held, ""
        if not held:
            return []
        return [("reasoning" if self._state == "reasoning" else "text", held)]


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could be the start of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


def split_think_tags(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a complete text."""
    splitter = ThinkTagSplitter()
    pieces = splitter.feed(text) + splitter.flush()
    reasoning = "".join(t for k, t in pieces if k == "reasoning")
    answer = "".join(t for k, t in pieces if k == "text")
    return reasoning, answer
