"""Configuration records as the core sees them, and the immutable snapshot the hot path reads.

Stores return these dataclasses; they never leak persistence types. A `ConfigSnapshot` is built once per
configuration change (or cache expiry) so that a request resolves its model, key and connection with
dictionary look-ups only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class Kind:
    """Record kinds in the configuration store (the partition key of the Config table)."""

    PROVIDER = "provider"  # a connection: one account/API key of a provider
    NODE = "node"  # a custom OpenAI-compatible (or other format) endpoint with its own prefix
    MODEL = "model"  # a custom model id added to a provider or node
    APIKEY = "apikey"  # a gateway API key (hash only)
    SETTINGS = "settings"  # the single settings document
    PREFIX = "prefix"  # a node prefix claimed by one node (uniqueness by conditional create)

    ALL = (PROVIDER, NODE, MODEL, APIKEY, SETTINGS, PREFIX)


@dataclass(frozen=True, slots=True)
class Record:
    """One stored configuration item: `data` is JSON-shaped, secrets inside it are ciphertext."""

    kind: str
    id: str
    data: Mapping[str, Any]
    version: int
    updated_at: str


@dataclass(frozen=True, slots=True)
class Connection:
    """An account of a provider (API key or, later, OAuth credentials). `api_key` is plaintext in memory only."""

    id: str
    provider: str  # catalogue id or node id
    name: str
    api_key: str | None
    base_url: str | None  # overrides the catalogue's base URL
    priority: int
    enabled: bool
    default_model: str | None = None
    # True when the stored key could not be decrypted (the data dir's key file was replaced or lost):
    # such a connection is never routed to, and the admin API asks for the key again.
    credential_error: bool = False


@dataclass(frozen=True, slots=True)
class ProviderNode:
    id: str
    name: str
    prefix: str
    base_url: str
    api_type: str  # a WireFormat value


@dataclass(frozen=True, slots=True)
class CustomModel:
    provider: str  # catalogue id or node id
    model_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    key_hash: str
    display: str
    created_at: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The admin-editable settings document. `None` means "use the process default".

    `system_prompt` is put before every request's own instructions; `thinking_mode` decides what happens
    to the reasoning a request asks for: passthrough (as asked), auto (leave it to the model: drop the
    request's own setting), custom (always `thinking_budget` tokens), adaptive (the asked effort's budget,
    scaled up for long conversations, many tools and long prompts).
    """

    require_api_key: bool | None = None
    system_prompt: str | None = None
    thinking_mode: str = "passthrough"
    thinking_budget: int = 10240

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GatewaySettings:
        value = data.get("requireApiKey")
        prompt = data.get("systemPrompt")
        mode = data.get("thinkingMode")
        budget = data.get("thinkingBudget")
        return cls(
            require_api_key=value if isinstance(value, bool) else None,
            system_prompt=prompt if isinstance(prompt, str) and prompt.strip() else None,
            thinking_mode=mode if mode in THINKING_MODES else "passthrough",
            thinking_budget=budget
            if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0
            else 10240,
        )

    @property
    def rewrites_requests(self) -> bool:
        """Whether requests must pass through the canonical model even when no translation is needed."""
        return self.system_prompt is not None or self.thinking_mode != "passthrough"


THINKING_MODES = ("passthrough", "auto", "custom", "adaptive")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """Everything a request needs, indexed for O(1) look-ups. Immutable: replaced, never mutated."""

    connections: tuple[Connection, ...] = ()
    nodes: tuple[ProviderNode, ...] = ()
    models: tuple[CustomModel, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    settings: GatewaySettings = field(default_factory=GatewaySettings)
    # Derived indexes (filled by `build`).
    keys_by_hash: Mapping[str, ApiKey] = field(default_factory=_empty)
    nodes_by_prefix: Mapping[str, ProviderNode] = field(default_factory=_empty)
    connections_by_provider: Mapping[str, tuple[Connection, ...]] = field(default_factory=_empty)

    @classmethod
    def build(
        cls,
        *,
        connections: Iterable[Connection] = (),
        nodes: Iterable[ProviderNode] = (),
        models: Iterable[CustomModel] = (),
        api_keys: Iterable[ApiKey] = (),
        settings: GatewaySettings | None = None,
    ) -> ConfigSnapshot:
        conns = tuple(connections)
        node_t = tuple(nodes)
        keys = tuple(api_keys)
        by_provider: dict[str, list[Connection]] = {}
        for conn in conns:
            if conn.enabled and not conn.credential_error:
                by_provider.setdefault(conn.provider, []).append(conn)
        ordered = {p: tuple(sorted(cs, key=lambda c: (c.priority, c.name, c.id))) for p, cs in by_provider.items()}
        return cls(
            connections=conns,
            nodes=node_t,
            models=tuple(models),
            api_keys=keys,
            settings=settings or GatewaySettings(),
            keys_by_hash=MappingProxyType({k.key_hash: k for k in keys}),
            nodes_by_prefix=MappingProxyType({n.prefix.lower(): n for n in node_t}),
            connections_by_provider=MappingProxyType(ordered),
        )
