"""Admin resources under /api. Each route: parse, one service call, a response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from functions.admin.auth import AdminDep, ServicesDep
from functions.admin.schemas import (
    ConnectionCreate,
    ConnectionUpdate,
    KeyCreate,
    KeyUpdate,
    ModelCreate,
    NodeCreate,
    NodeUpdate,
    SettingsUpdate,
    TranslateBody,
)
from shared.domain.resolve import list_models
from shared.services.auth import require_api_key
from shared.services.translator import translate

router = APIRouter(prefix="/api", dependencies=[AdminDep])

# Sync route functions: FastAPI runs them in its thread pool, so the synchronous store never blocks the loop.


@router.get("/providers")
def list_connections(svc: ServicesDep) -> dict[str, Any]:
    return {"connections": svc.admin.list_connections()}


@router.post("/providers", status_code=201)
def create_connection(body: ConnectionCreate, svc: ServicesDep) -> dict[str, Any]:
    return {"connection": svc.admin.create_connection(body.fields())}


@router.get("/providers/{id}")
def get_connection(id: str, svc: ServicesDep) -> dict[str, Any]:
    return {"connection": svc.admin.get_connection(id)}


@router.api_route("/providers/{id}", methods=["PUT", "PATCH"])
def update_connection(id: str, body: ConnectionUpdate, svc: ServicesDep) -> dict[str, Any]:
    return {"connection": svc.admin.update_connection(id, body.fields())}


@router.delete("/providers/{id}", status_code=204)
def delete_connection(id: str, svc: ServicesDep) -> Response:
    svc.admin.delete_connection(id)
    return Response(status_code=204)


@router.get("/provider-nodes")
def list_nodes(svc: ServicesDep) -> dict[str, Any]:
    return {"nodes": svc.admin.list_nodes()}


@router.post("/provider-nodes", status_code=201)
def create_node(body: NodeCreate, svc: ServicesDep) -> dict[str, Any]:
    return {"node": svc.admin.create_node(body.fields())}


@router.get("/provider-nodes/{id}")
def get_node(id: str, svc: ServicesDep) -> dict[str, Any]:
    return {"node": svc.admin.get_node(id)}


@router.api_route("/provider-nodes/{id}", methods=["PUT", "PATCH"])
def update_node(id: str, body: NodeUpdate, svc: ServicesDep) -> dict[str, Any]:
    return {"node": svc.admin.update_node(id, body.fields())}


@router.delete("/provider-nodes/{id}", status_code=204)
def delete_node(id: str, svc: ServicesDep) -> Response:
    svc.admin.delete_node(id)
    return Response(status_code=204)


@router.get("/provider-models")
def list_custom_models(svc: ServicesDep, provider: str | None = None) -> dict[str, Any]:
    return {"models": svc.admin.list_models(provider)}


@router.post("/provider-models", status_code=201)
def create_custom_model(body: ModelCreate, svc: ServicesDep) -> dict[str, Any]:
    return {"model": svc.admin.create_model(body.fields())}


@router.delete("/provider-models", status_code=204)
def delete_custom_model(
    svc: ServicesDep, provider: str = Query(min_length=1), model: str = Query(min_length=1)
) -> Response:
    svc.admin.delete_model(provider, model)
    return Response(status_code=204)


@router.get("/keys")
def list_keys(svc: ServicesDep) -> dict[str, Any]:
    return {"keys": svc.admin.list_keys()}


@router.post("/keys", status_code=201)
def create_key(svc: ServicesDep, body: KeyCreate | None = None) -> dict[str, Any]:
    return svc.admin.create_key((body or KeyCreate()).name)


@router.patch("/keys/{id}")
def update_key(id: str, body: KeyUpdate, svc: ServicesDep) -> dict[str, Any]:
    return {"key": svc.admin.update_key(id, body.fields())}


@router.delete("/keys/{id}", status_code=204)
def revoke_key(id: str, svc: ServicesDep) -> Response:
    svc.admin.revoke_key(id)
    return Response(status_code=204)


def _settings_view(svc: ServicesDep, stored: dict[str, Any]) -> dict[str, Any]:
    setting = stored.get("requireApiKey")
    effective = require_api_key(
        setting if isinstance(setting, bool) else None, default=svc.settings.require_api_key, cloud=svc.settings.cloud
    )
    return {**stored, "requireApiKey": effective, "cloud": svc.settings.cloud}


@router.get("/settings")
def get_settings(svc: ServicesDep) -> dict[str, Any]:
    return _settings_view(svc, svc.admin.get_settings())


@router.api_route("/settings", methods=["PATCH", "PUT"])
def update_settings(body: SettingsUpdate, svc: ServicesDep) -> dict[str, Any]:
    return _settings_view(svc, svc.admin.update_settings(body.fields()))


@router.get("/health")
def health(svc: ServicesDep) -> dict[str, Any]:
    snapshot = svc.config.reload()  # also proves the store answers
    return {
        "status": "ok",
        "cloud": svc.settings.cloud,
        "connections": len(snapshot.connections),
        "activeProviders": sorted(snapshot.connections_by_provider),
        "nodes": len(snapshot.nodes),
        "apiKeys": len(snapshot.api_keys),
        "models": len(list_models(snapshot)),
    }


@router.post("/translator/translate")
def translate_body(body: TranslateBody) -> dict[str, Any]:
    """The translator playground: detect a body's format, translate it to another."""
    return translate(body.body, to=body.to, source=body.source, kind=body.kind, model=body.model)
