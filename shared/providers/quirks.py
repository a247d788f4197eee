"""Small named rules for what particular OpenAI-format upstreams accept, applied to the outgoing body.

- `developer` messages are OpenAI's: other OpenAI-compatible services (DeepSeek, Groq, local servers...)
  often reject the role, so it becomes `system` for every provider but OpenAI itself.
- Some models take no system message at all (Gemma, GLM, ERNIE, the first o1 models): their system text
  is folded into the first user message instead.
"""

from __future__ import annotations

import re
from typing import Any

DEVELOPER_ROLE_PROVIDERS = frozenset({"openai"})
_NO_SYSTEM_MODELS = re.compile(r"(^|/)(gemma|glm-|ernie-|o1-mini|o1-preview)", re.IGNORECASE)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def normalise_openai_roles(body: dict[str, Any], provider_id: str, model: str) -> dict[str, Any]:
    """The body with roles its upstream accepts (a new dict when anything changed; `body` is not touched)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    fold = _NO_SYSTEM_MODELS.search(model) is not None
    rename = provider_id not in DEVELOPER_ROLE_PROVIDERS
    if not fold and not (rename and any(isinstance(m, dict) and m.get("role") == "developer" for m in messages)):
        return body
    out: list[Any] = []
    folded: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        role = message.get("role")
        if role in ("system", "developer") and fold:
            folded.append(_text(message.get("content")))
            continue
        if role == "developer" and rename:
            message = {**message, "role": "system"}
        out.append(message)
    if folded:
        instructions = "\n\n".join(t for t in folded if t)
        for i, message in enumerate(out):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    merged: Any = [{"type": "text", "text": instructions}, *content]
                else:
                    merged = f"{instructions}\n\n{_text(content)}"
                out[i] = {**message, "content": merged}
                break
        else:
            out.insert(0, {"role": "user", "content": instructions})
    return {**body, "messages": out}
