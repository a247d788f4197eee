"""Configuration records as the core sees them, and the immutable snapshot the hot path reads.

Stores return these dataclasses; they never leak persistence types. A `ConfigSnapshot` is built once per
configuration change (or cache expiry) so that a request resolves its model, key and connection with
dictionary look-ups only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from shared.domain.budgets import Budget
from shared.domain.combos import ACCOUNT_STRATEGIES, Alias, Combo, FallbackChain
from shared.domain.oauth import OAuthAccount
from shared.domain.pricing import PriceTable
from shared.domain.quota import QuotaRule
from shared.domain.routing import DEFAULT_POLICIES, Policy, RateLimit


class Kind:
    """Record kinds in the configuration store (the partition key of the Config table)."""

    PROVIDER = "provider"  # a connection: one account/API key of a provider
    NODE = "node"  # a custom OpenAI-compatible (or other format) endpoint with its own prefix
    MODEL = "model"  # a custom model id added to a provider or node
    APIKEY = "apikey"  # a gateway API key (hash only)
    SETTINGS = "settings"  # the single settings document
    PREFIX = "prefix"  # a node prefix claimed by one node (uniqueness by conditional create)
    COMBO = "combo"  # a named list of targets clients call like a model (id = its name)
    ALIAS = "alias"  # a model pattern mapped to a target (id = the pattern)
    FALLBACK = "fallback"  # a global fallback chain for the models a pattern matches (id = the pattern)
    PRICE = "price"  # a price override for one model (id = `<provider>/<model>`)
    OAUTH = "oauth"  # a linked account's OAuth credentials (id = its connection's id; see shared.domain.oauth)

    ALL = (PROVIDER, NODE, MODEL, APIKEY, SETTINGS, PREFIX, COMBO, ALIAS, FALLBACK, PRICE, OAUTH)


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
    """An account of a provider: an API key, or linked OAuth credentials. `api_key` is plaintext in memory only;
    for a linked account it is the current access token, and `oauth` holds the rest (expiry, status, metadata).
    """

    id: str
    provider: str  # catalogue id or node id
    name: str
    api_key: str | None
    base_url: str | None  # overrides the catalogue's base URL
    priority: int
    enabled: bool
    default_model: str | None = None
    rate_limit: RateLimit = field(default_factory=RateLimit)
    quotas: tuple[QuotaRule, ...] = ()  # windows the owner configured: counted, and skipped when used up
    # True when the stored key could not be decrypted (the data dir's key file was replaced or lost):
    # such a connection is never routed to, and the admin API asks for the key again.
    credential_error: bool = False
    oauth: OAuthAccount | None = None


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
    budget: Budget | None = None


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
    # Routing (issue 5): how accounts of one provider are chosen, how hard failures back off, and the
    # stream deadlines. Timeouts in seconds.
    account_strategy: str = "fill-first"
    sticky_limit: int = 3
    policies: Mapping[str, Policy] = field(default_factory=lambda: DEFAULT_POLICIES)
    first_byte_timeout: float = 60.0
    idle_timeout: float = 300.0
    keepalive_interval: float = 15.0
    cache_ttl: float = 3600.0  # exact response cache; 0 turns it off
    max_attempts: int = 10  # upstream calls one request may make across accounts and targets
    # Usage (issue 6): how long request events are kept, when a subscription window counts as used up,
    # and the opt-in request log (redacted bodies, kept `request_log_hours`).
    usage_retention_days: int = 30
    quota_skip_percent: float = 100.0
    request_logs: bool = False
    request_log_hours: float = 24.0

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GatewaySettings:
        value = data.get("requireApiKey")
        prompt = data.get("systemPrompt")
        mode = data.get("thinkingMode")
        budget = data.get("thinkingBudget")
        strategy = data.get("accountStrategy")
        raw_logs = data.get("requestLogs")
        logs: Mapping[str, Any] = raw_logs if isinstance(raw_logs, Mapping) else {}
        return cls(
            require_api_key=value if isinstance(value, bool) else None,
            system_prompt=prompt if isinstance(prompt, str) and prompt.strip() else None,
            thinking_mode=mode if mode in THINKING_MODES else "passthrough",
            thinking_budget=_positive_int(budget, 10240),
            account_strategy=strategy if strategy in ACCOUNT_STRATEGIES else "fill-first",
            sticky_limit=_positive_int(data.get("stickyLimit"), 3),
            policies=_policies(data.get("resilience")),
            first_byte_timeout=_positive_number(data.get("firstByteTimeoutSeconds"), 60.0),
            idle_timeout=_positive_number(data.get("streamIdleTimeoutSeconds"), 300.0),
            keepalive_interval=_positive_number(data.get("keepaliveSeconds"), 15.0),
            cache_ttl=_non_negative_number(data.get("cacheTtlSeconds"), 3600.0),
            max_attempts=_positive_int(data.get("maxAttempts"), 10),
            usage_retention_days=_positive_int(data.get("usageRetentionDays"), 30),
            quota_skip_percent=_positive_number(data.get("quotaSkipAtPercent"), 100.0),
            request_logs=logs.get("enabled") is True,
            request_log_hours=_positive_number(logs.get("ttlHours"), 24.0),
        )

    @property
    def rewrites_requests(self) -> bool:
        """Whether requests must pass through the canonical model even when no translation is needed."""
        return self.system_prompt is not None or self.thinking_mode != "passthrough"


THINKING_MODES = ("passthrough", "auto", "custom", "adaptive")


def _positive_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _positive_number(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def _non_negative_number(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


# resilience.<profile>.<field> in the settings document → Policy's field
_POLICY_FIELDS = {
    "cooldownBaseSeconds": "cooldown_base",
    "maxBackoffSteps": "max_steps",
    "breakerThreshold": "breaker_threshold",
    "breakerResetSeconds": "breaker_reset",
}


def _policies(value: object) -> Mapping[str, Policy]:
    """Per-profile overrides of the default policies (`{"apikey": {"breakerThreshold": 3}, ...}`)."""
    if not isinstance(value, Mapping):
        return DEFAULT_POLICIES
    merged = dict(DEFAULT_POLICIES)
    for profile, base in DEFAULT_POLICIES.items():
        overrides = value.get(profile)
        if not isinstance(overrides, Mapping):
            continue
        fields: dict[str, Any] = {}
        for name, attr in _POLICY_FIELDS.items():
            raw = overrides.get(name)
            if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
                fields[attr] = int(raw) if attr in ("max_steps", "breaker_threshold") else float(raw)
        if fields.get("breaker_threshold") == 0:
            fields.pop("breaker_threshold")
        merged[profile] = replace(base, **fields)
    return MappingProxyType(merged)


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
    combos: Mapping[str, Combo] = field(default_factory=_empty)
    aliases: tuple[Alias, ...] = ()
    fallbacks: tuple[FallbackChain, ...] = ()
    prices: PriceTable = field(default_factory=PriceTable)
    # Derived indexes (filled by `build`).
    keys_by_hash: Mapping[str, ApiKey] = field(default_factory=_empty)
    nodes_by_prefix: Mapping[str, ProviderNode] = field(default_factory=_empty)
    connections_by_provider: Mapping[str, tuple[Connection, ...]] = field(default_factory=_empty)
    connections_by_id: Mapping[str, Connection] = field(default_factory=_empty)

    @classmethod
    def build(
        cls,
        *,
        connections: Iterable[Connection] = (),
        nodes: Iterable[ProviderNode] = (),
        models: Iterable[CustomModel] = (),
        api_keys: Iterable[ApiKey] = (),
        settings: GatewaySettings | None = None,
        combos: Iterable[Combo] = (),
        aliases: Iterable[Alias] = (),
        fallbacks: Iterable[FallbackChain] = (),
        prices: PriceTable | None = None,
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
            combos=MappingProxyType({c.name: c for c in combos}),
            aliases=tuple(sorted(aliases, key=lambda a: a.pattern)),
            fallbacks=tuple(sorted(fallbacks, key=lambda f: f.pattern)),
            prices=prices if prices is not None else PriceTable(),
            keys_by_hash=MappingProxyType({k.key_hash: k for k in keys}),
            nodes_by_prefix=MappingProxyType({n.prefix.lower(): n for n in node_t}),
            connections_by_provider=MappingProxyType(ordered),
            connections_by_id=MappingProxyType({c.id: c for c in conns}),
        )
