"""Admin request bodies. Unknown fields are rejected so a typo never silently does nothing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def fields(self) -> dict[str, object]:
        """Only the fields the caller sent (partial updates)."""
        return self.model_dump(exclude_unset=True)


class ConnectionCreate(_Body):
    provider: str = Field(min_length=1)
    name: str | None = None
    apiKey: str | None = Field(default=None, min_length=1)
    baseUrl: str | None = None
    priority: int = 0
    enabled: bool = True
    defaultModel: str | None = None


class ConnectionUpdate(_Body):
    name: str | None = None
    apiKey: str | None = Field(default=None, min_length=1)
    baseUrl: str | None = None
    priority: int | None = None
    enabled: bool | None = None
    defaultModel: str | None = None


class NodeCreate(_Body):
    name: str | None = None
    prefix: str = Field(min_length=1)
    baseUrl: str = Field(min_length=1)
    apiType: str = "openai"


class NodeUpdate(_Body):
    name: str | None = None
    prefix: str | None = None
    baseUrl: str | None = None
    apiType: str | None = None


class ModelCreate(_Body):
    provider: str = Field(min_length=1)
    modelId: str = Field(min_length=1)
    modelName: str | None = None


class KeyCreate(_Body):
    name: str = Field(default="default", min_length=1, max_length=100)


class KeyUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    enabled: bool | None = None


class SettingsUpdate(_Body):
    requireApiKey: bool | None = None
