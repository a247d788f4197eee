"""The wire formats by name. Each module offers the same four functions:

    parse_request(body, *, model=None) -> ChatRequest      render_request(req) -> dict
    parse_response(body, *, model=None) -> ChatResponse    render_response(resp) -> dict

`model` is for formats that carry it outside the body (Gemini puts it in the URL path).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

import shared.formats.anthropic_messages as anthropic_messages
import shared.formats.gemini as gemini
import shared.formats.openai_chat as openai_chat
import shared.formats.openai_responses as openai_responses

FORMATS: Mapping[str, ModuleType] = {
    "openai": openai_chat,
    "anthropic": anthropic_messages,
    "gemini": gemini,
    "responses": openai_responses,
}
