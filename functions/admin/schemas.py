"""Admin request bodies. Unknown fields are rejected so a typo never silently does nothing; `null` is
accepted only where it means "clear this" (a connection's `baseUrl` and `defaultModel`); lengths are
bounded so nothing reaches the store that it would refuse (a DynamoDB item is at most 400 KB)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

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


class ConnectionCreate(_Body):
    nullable = frozenset({"baseUrl", "defaultModel", "name", "apiKey"})
    provider: Annotated[str, Field(min_length=1, max_length=100)]
    name: Name | None = None
    apiKey: Secret | None = None
    baseUrl: Url | None = None
    priority: StrictInt = Field(default=0, ge=-1_000_000, le=1_000_000)
    enabled: StrictBool = True
    defaultModel: ModelId | None = None


class ConnectionUpdate(_Body):
    nullable = frozenset({"baseUrl", "defaultModel"})
    name: Name | None = None
    apiKey: Secret | None = None
    baseUrl: Url | None = None
    priority: StrictInt | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    enabled: StrictBool | None = None
    defaultModel: ModelId | None = None


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


class SettingsUpdate(_Body):
    nullable: ClassVar[frozenset[str]] = frozenset({"systemPrompt"})

    requireApiKey: StrictBool | None = None
    systemPrompt: Annotated[str | None, Field(max_length=20000)] = None
    thinkingMode: Literal["passthrough", "auto", "custom", "adaptive"] | None = None
    thinkingBudget: Annotated[StrictInt | None, Field(ge=1024, le=131072)] = None


class TranslateBody(_Body):
    """`POST /api/translator/translate`: `from` and `kind` are detected when left out."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    body: dict[str, Any]
    to: Annotated[str, Field(min_length=1, max_length=32)]
    source: Annotated[str | None, Field(default=None, alias="from", max_length=32)] = None
    kind: Annotated[str | None, Field(default=None, max_length=16)] = None
    model: ModelId | None = None
