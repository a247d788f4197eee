"""`/api/sync/*`: the server's half of `omniroute sync` (shared/services/sync.py, docs/sync.md).

    GET  /api/sync/records[?keyTags=true | ?secrets=true]  every synced record with its etag
    POST /api/sync/apply  {changes: [{kind, id, ifMatch, data | delete}], dryRun?, secrets?}

Each record is checked with the admin API's own request bodies (types, bounds, unknown fields) before the
services check it against the rest of the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from functions.admin.auth import AdminDep, ServicesDep
from functions.admin.schemas import (
    AliasCreate,
    ComboCreate,
    ConnectionCreate,
    FallbackCreate,
    ModelCreate,
    NodeCreate,
    SettingsUpdate,
)
from shared.domain.config import Kind
from shared.errors import InvalidRequest
from shared.services.sync import MAX_CHANGES, SyncService

router = APIRouter(prefix="/api/sync", dependencies=[AdminDep])

# kind → (the admin body its record must fit, fields the store adds that no body carries, renamed fields)
_BODIES: dict[str, tuple[type[BaseModel], frozenset[str], Mapping[str, str]]] = {
    Kind.PROVIDER: (ConnectionCreate, frozenset({"createdAt", "linked"}), {}),
    Kind.NODE: (NodeCreate, frozenset({"createdAt"}), {}),
    Kind.MODEL: (ModelCreate, frozenset(), {"name": "modelName"}),
    Kind.SETTINGS: (SettingsUpdate, frozenset(), {}),
    Kind.COMBO: (ComboCreate, frozenset({"createdAt"}), {}),
    Kind.ALIAS: (AliasCreate, frozenset({"createdAt"}), {}),
    Kind.FALLBACK: (FallbackCreate, frozenset({"createdAt"}), {}),
}
_STORED_TYPES: Mapping[str, type] = {"createdAt": str, "linked": bool}


def check_shape(kind: str, data: Mapping[str, Any]) -> None:
    """Refuse a record the admin API would not have taken as a request body."""
    body, stored, renamed = _BODIES.get(kind, (None, frozenset(), {}))
    if body is None:
        return  # keys and prices have no request body of this shape; the service checks every field
    for name in stored & data.keys():
        if data[name] is not None and not isinstance(data[name], _STORED_TYPES[name]):
            raise InvalidRequest(f"Invalid `{name}`.", param=name, code="invalid_value")
    fields = {renamed.get(k, k): v for k, v in data.items() if k not in stored}
    try:
        body.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or None
        detail = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InvalidRequest(
            f"Invalid `{where}`: {detail}." if where else detail, param=where, code="invalid_value"
        ) from None


def sync_service(svc: ServicesDep) -> SyncService:
    return svc.admin.sync(check_shape)


SyncDep = Annotated[SyncService, Depends(sync_service)]


class ChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=32)
    id: str = Field(min_length=1, max_length=1024)
    ifMatch: str | None = Field(default=None, max_length=128)
    data: dict[str, Any] | None = None
    delete: StrictBool = False


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[ChangeBody] = Field(max_length=MAX_CHANGES)
    dryRun: StrictBool = False
    secrets: StrictBool = False


@router.get("/records")
def records(
    sync: SyncDep,
    response: Response,
    secrets: Annotated[bool, Query(description="Connections carry their API keys in the clear.")] = False,
    key_tags: Annotated[bool, Query(alias="keyTags", description="Connections carry their keys' tags.")] = False,
) -> dict[str, Any]:
    listing = sync.records(secrets=secrets, key_tags=key_tags)
    response.headers["ETag"] = f'"{listing["etag"]}"'
    response.headers["Cache-Control"] = "no-store"
    return listing


@router.post("/apply")
def apply(body: ApplyBody, sync: SyncDep) -> dict[str, Any]:
    changes = [change.model_dump() for change in body.changes]
    return sync.apply(changes, dry_run=body.dryRun, secrets=body.secrets)
