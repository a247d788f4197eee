"""The shape of one provider row in the catalogue.

A provider is a row, not a branch: everything the gateway needs to reach an upstream (base URL, wire format,
how the credential is sent, what it can do) is data here. Behaviour that cannot be data lives in
`shared.providers.quirks`, one named pure function per quirk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class WireFormat(StrEnum):
    """The request/response dialect an upstream speaks."""

    OPENAI = "openai"  # OpenAI Chat Completions: POST {base}/chat/completions
    ANTHROPIC = "anthropic"  # Anthropic Messages: POST {base}/messages
    GEMINI = "gemini"  # Gemini generateContent: POST {base}/models/{m}:generateContent
    RESPONSES = "responses"  # OpenAI Responses: POST {base}/responses
    COHERE = "cohere"  # Cohere v2 chat (its own shape)
    CLOUD_CODE = "cloud-code"  # Google Cloud Code Assist envelope (Gemini CLI / Antigravity)
    KIRO = "kiro"  # AWS CodeWhisperer conversationState + binary event stream


class AuthKind(StrEnum):
    """How the owner links an account of this provider."""

    API_KEY = "apikey"
    OAUTH = "oauth"
    NONE = "none"  # local servers such as Ollama


class AuthHeader(StrEnum):
    """Where the credential goes on the upstream request."""

    BEARER = "bearer"  # Authorization: Bearer <key>
    X_API_KEY = "x-api-key"  # x-api-key: <key> (Anthropic)
    X_GOOG_API_KEY = "x-goog-api-key"  # x-goog-api-key: <key> (Gemini)
    NONE = "none"


class Capability(StrEnum):
    CHAT = "chat"
    STREAMING = "streaming"
    TOOLS = "tools"
    VISION = "vision"
    REASONING = "reasoning"
    JSON_MODE = "json_mode"
    EMBEDDINGS = "embeddings"
    IMAGES = "images"
    AUDIO = "audio"
    RERANK = "rerank"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One built-in provider.

    `id` is the stable identifier stored on connections; `alias` is the model-id prefix users type
    (`ds/deepseek-chat`); both resolve. `base_url` has no trailing slash and includes the version path
    (`https://api.groq.com/openai/v1`), so the chat URL is `base_url + "/chat/completions"` for OpenAI-format
    rows.
    """

    id: str
    alias: str
    name: str
    base_url: str
    wire_format: WireFormat
    auth: AuthKind
    auth_header: AuthHeader
    capabilities: frozenset[Capability]
    models: tuple[str, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = ()
    docs_url: str = ""
    # Set when the provider's free/OAuth route ended upstream; the row stays so stored connections still resolve.
    retired_note: str = ""
    aliases: tuple[str, ...] = field(default=())  # further accepted prefixes, e.g. "moonshot" for kimi

    @property
    def prefixes(self) -> tuple[str, ...]:
        return (self.alias, self.id, *self.aliases)
