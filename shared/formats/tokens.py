"""Token estimates, for when an upstream cannot count (a non-Anthropic upstream asked `count_tokens`).

About four characters per token for Latin text and one per character for CJK, over everything the model
reads: system, messages, tool results, tool definitions. An estimate, and answers say so.
"""

from __future__ import annotations

import json
import math

from shared.formats.canonical import ChatRequest, Reasoning, Text, ToolCall, ToolResult


def _cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF


def estimate_text(text: str) -> int:
    cjk = sum(1 for ch in text if _cjk(ch))
    return cjk + math.ceil((len(text) - cjk) / 4)


def estimate_tokens(req: ChatRequest) -> int:
    total = 0
    for message in req.messages:
        total += 4  # role and framing
        for part in message.parts:
            if isinstance(part, Text | Reasoning):
                total += estimate_text(part.text)
            elif isinstance(part, ToolCall):
                total += estimate_text(part.name) + estimate_text(part.arguments)
            elif isinstance(part, ToolResult):
                total += sum(estimate_text(p.text) for p in part.content if isinstance(p, Text))
            else:
                total += 1600  # an image: Anthropic's own rule of thumb for a ~1.2 MP picture
    for tool in req.tools:
        total += estimate_text(tool.name) + estimate_text(tool.description or "")
        total += estimate_text(json.dumps(dict(tool.parameters), separators=(",", ":")))
    return total
