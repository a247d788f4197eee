"""Admin request bodies. Unknown fields are rejected so a typo never silently does nothing; `null` is
accepted only where it means "clear this" (a connection's `baseUrl`, `defaultModel` and `rateLimit`; a
routing setting or a combo's config field, back to its default); lengths are bounded so nothing reaches
the store that it would refuse (a DynamoDB item is at most 400 KB)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from shared.domain.combos import ACCOUNT_STRATEGIES

Name = Annotated[str, Field(min_length=1, max_length=200)]
Secret = Annotated[str, Field(min_length=1, max_length=8192)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
ModelId = Annotated[str, Field(min_length=1, max_length=512)]
Prefix = Annotated[str, Field(min_length=1, max_length=32)]
ApiType = Annotated[str, Field(min_length=1, max_length=32)]


class _Body(BaseModel):
    # Strict where JSON has the type: `true` is no priority and "yes" is no boolean.
    model_config = ConfigDict(extra="forbid")

    # Fields that may be sent as null to clear them; for every other field null is an error.
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None and name in cls.model_fields and name not in cls.nullable:
                    raise ValueError(f"`{name}` cannot be null; leave it out to keep the current value")
        return data

    def fields(self) -> dict[str, object]:
        """Only the fields the caller sent (partial updates)."""
        return self.model_dump(exclude_unset=True)


class RateLimitBody(_Body):
    """Per-account limits (bounds are checked by the service); null or absent = not limited."""

    nullable = frozenset({"rpm", "minGapMs", "maxConcurrent"})
    rpm: StrictInt | None = None
    minGapMs: StrictInt | None = None
    maxConcurrent: StrictInt | None = None


# A connection's quota windows: a list of objects checked whole by the service (shared.domain.quota)
Quotas = Annotated[list[dict[str, Any]], Field(max_length=4)]


class ConnectionCreate(_Body):
    nullable = frozenset({"baseUrl", "defaultModel", "name", "apiKey", "rateLimit", "quotas"})
    provider: Annotated[str, Field(min_length=1, max_length=100)]
    name: Name | None = None
    apiKey: Secret | None = None
    baseUrl: Url | None = None
    priority: StrictInt = Field(default=0, ge=-1_000_000, le=1_000_000)
    enabled: StrictBool = True
    defaultModel: ModelId | None = None
    rateLimit: RateLimitBody | None = None
    quotas: Quotas | None = None


class ConnectionUpdate(_Body):
    nullable = frozenset({"baseUrl", "defaultModel", "rateLimit", "quotas"})
    name: Name | None = None
    apiKey: Secret | None = None
    baseUrl: Url | None = None
    priority: StrictInt | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    enabled: StrictBool | None = None
    defaultModel: ModelId | None = None
    rateLimit: RateLimitBody | None = None
    quotas: Quotas | None = None


class NodeCreate(_Body):
    nullable = frozenset({"name"})
    name: Name | None = None
    prefix: Prefix
    baseUrl: Url
    apiType: ApiType = "openai"


class NodeUpdate(_Body):
    name: Name | None = None
    prefix: Prefix | None = None
    baseUrl: Url | None = None
    apiType: ApiType | None = None


class ModelCreate(_Body):
    nullable = frozenset({"modelName"})
    provider: Annotated[str, Field(min_length=1, max_length=100)]
    modelId: ModelId
    modelName: Name | None = None


class KeyCreate(_Body):
    name: Name = "default"


class KeyUpdate(_Body):
    name: Name | None = None
    enabled: StrictBool | None = None


# A JSON number: an integer is fine, a boolean or a numeric string is not.
Number = Annotated[float, Field(strict=True)]


class PolicyBody(_Body):
    """Overrides of one credential profile's back-off policy; null puts a field back to its default."""

    nullable = frozenset({"cooldownBaseSeconds", "maxBackoffSteps", "breakerThreshold", "breakerResetSeconds"})
    cooldownBaseSeconds: Annotated[Number, Field(ge=0.1, le=3600)] | None = None
    maxBackoffSteps: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    breakerThreshold: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    breakerResetSeconds: Annotated[Number, Field(ge=1, le=86400)] | None = None


class ResilienceBody(_Body):
    nullable = frozenset({"apikey", "oauth"})
    apikey: PolicyBody | None = None
    oauth: PolicyBody | None = None


class RequestLogsBody(_Body):
    """The opt-in request log: redacted requests and answers, kept `ttlHours`."""

    enabled: StrictBool = False
    ttlHours: Annotated[Number, Field(ge=1, le=24 * 90)] = 24


class BudgetBody(_Body):
    """A key's budget (OmniRoute's field names); bounds and the time zone are checked by the domain."""

    nullable = frozenset({"dailyLimitUsd", "weeklyLimitUsd", "monthlyLimitUsd"})
    dailyLimitUsd: Annotated[Number, Field(ge=0, le=1_000_000)] | None = None
    weeklyLimitUsd: Annotated[Number, Field(ge=0, le=1_000_000)] | None = None
    monthlyLimitUsd: Annotated[Number, Field(ge=0, le=1_000_000)] | None = None
    warningThreshold: Annotated[Number, Field(gt=0, le=1)] = 0.8
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    resetTime: Annotated[str, Field(min_length=4, max_length=5)] = "00:00"


class BudgetCreate(BudgetBody):
    """`POST /api/usage/budget`: OmniRoute's form, the key named in the body."""

    apiKeyId: Annotated[str, Field(min_length=1, max_length=200)]


class SettingsUpdate(_Body):
    # The routing fields may be sent as null to go back to the default.
    nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "systemPrompt",
            "accountStrategy",
            "stickyLimit",
            "resilience",
            "firstByteTimeoutSeconds",
            "streamIdleTimeoutSeconds",
            "keepaliveSeconds",
            "cacheTtlSeconds",
            "maxAttempts",
            "usageRetentionDays",
            "quotaSkipAtPercent",
            "requestLogs",
        }
    )

    requireApiKey: StrictBool | None = None
    systemPrompt: Annotated[str | None, Field(max_length=20000)] = None
    thinkingMode: Literal["passthrough", "auto", "custom", "adaptive"] | None = None
    thinkingBudget: Annotated[StrictInt | None, Field(ge=1024, le=131072)] = None
    accountStrategy: str | None = None
    stickyLimit: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    resilience: ResilienceBody | None = None
    firstByteTimeoutSeconds: Annotated[Number, Field(ge=1, le=900)] | None = None
    streamIdleTimeoutSeconds: Annotated[Number, Field(ge=1, le=900)] | None = None
    keepaliveSeconds: Annotated[Number, Field(ge=1, le=300)] | None = None
    cacheTtlSeconds: Annotated[Number, Field(ge=0, le=604800)] | None = None
    maxAttempts: Annotated[StrictInt, Field(ge=1, le=30)] | None = None
    usageRetentionDays: Annotated[StrictInt, Field(ge=1, le=3650)] | None = None
    quotaSkipAtPercent: Annotated[Number, Field(ge=50, le=100)] | None = None
    requestLogs: RequestLogsBody | None = None

    @field_validator("accountStrategy")
    @classmethod
    def _known_strategy(cls, value: str | None) -> str | None:
        if value is not None and value not in ACCOUNT_STRATEGIES:
            raise ValueError(f"must be one of {', '.join(ACCOUNT_STRATEGIES)}")
        return value


class TranslateBody(_Body):
    """`POST /api/translator/translate`: `from` and `kind` are detected when left out."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    body: dict[str, Any]
    to: Annotated[str, Field(min_length=1, max_length=32)]
    source: Annotated[str | None, Field(default=None, alias="from", max_length=32)] = None
    kind: Annotated[str | None, Field(default=None, max_length=16)] = None
    model: ModelId | None = None


# Combos, aliases and fallback chains: JSON types are checked here, every bound and reference by the service
# (`shared.domain.combos` parses stored records with the same rules, and words its errors per entry).


class ComboConfigBody(_Body):
    """Null puts a field back to its default (no concurrency limit, no first-byte deadline)."""

    nullable = frozenset({"maxRetries", "retryDelayMs", "concurrencyPerTarget", "firstByteTimeoutMs"})
    maxRetries: StrictInt | None = None
    retryDelayMs: StrictInt | None = None
    concurrencyPerTarget: StrictInt | None = None
    firstByteTimeoutMs: StrictInt | None = None


class ComboCreate(_Body):
    name: str
    models: list[Any]  # "prefix/model" | "comboName" | {model, weight?, connectionId?}
    strategy: str | None = None
    config: ComboConfigBody | None = None


class ComboReplace(_Body):
    """PUT: the whole combo; `name`, if sent, must be the one in the path. A null `config` is the default."""

    nullable = frozenset({"config"})
    name: str | None = None
    models: list[Any]
    strategy: str | None = None
    config: ComboConfigBody | None = None


class ComboPatch(_Body):
    """PATCH: the fields sent replace the stored ones; `config` is merged field by field."""

    nullable = frozenset({"config"})
    name: str | None = None
    models: list[Any] | None = None
    strategy: str | None = None
    config: ComboConfigBody | None = None


class AliasCreate(_Body):
    pattern: str
    target: str


class FallbackCreate(_Body):
    pattern: str
    models: list[str]


class FallbackReplace(_Body):
    pattern: str | None = None
    models: list[str]


class HealthReset(_Body):
    """`POST /api/health/reset`: nothing resets everything; `provider` or `connectionId` narrow it."""

    provider: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    connectionId: Annotated[str, Field(min_length=1, max_length=200)] | None = None
