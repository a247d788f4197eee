"""Admin resources under /api. Each route: parse, one service call, a response."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Query, Response

from functions.admin.auth import AdminDep, ServicesDep
from functions.admin.schemas import (
    AliasCreate,
    ComboCreate,
    ComboPatch,
    ComboReplace,
    ConnectionCreate,
    ConnectionUpdate,
    FallbackCreate,
    FallbackReplace,
    HealthReset,
    KeyCreate,
    KeyUpdate,
    ModelCreate,
    NodeCreate,
    NodeUpdate,
    SettingsUpdate,
    TranslateBody,
)
from shared.adapters.dynamo import call_counter
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
async def update_connection(id: str, body: ConnectionUpdate, svc: ServicesDep) -> dict[str, Any]:
    connection = await anyio.to_thread.run_sync(svc.admin.update_connection, id, body.fields())
    # A new key or base URL (or re-enabling it) is a fresh start: its cooldowns would hide the change.
    await svc.health.reset(await anyio.to_thread.run_sync(svc.config.reload), None, id)
    return {"connection": connection}


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
async def health(svc: ServicesDep) -> dict[str, Any]:
    """Configuration counts, breakers, cooldowns and lockouts, cache and latency per provider."""
    snapshot = await anyio.to_thread.run_sync(svc.config.reload)  # also proves the store answers
    report: dict[str, Any] = {
        "status": "ok",
        "cloud": svc.settings.cloud,
        "connections": len(snapshot.connections),
        "activeProviders": sorted(snapshot.connections_by_provider),
        "nodes": len(snapshot.nodes),
        "apiKeys": len(snapshot.api_keys),
        "models": len(list_models(snapshot)),
        **await svc.health.report(snapshot),
        # linked subscription accounts whose grant is gone: they serve until their access token expires
        "relinkNeeded": await anyio.to_thread.run_sync(svc.oauth.relink_needed),
        # this process's accounting: events queued, written, and write failures (retried)
        "accounting": {
            "recorded": svc.accounting.recorded,
            "written": svc.accounting.written,
            "pending": svc.accounting.pending,
            "writeErrors": svc.accounting.write_errors,
            "budgetCheckErrors": svc.accounting.budget_check_errors,
        },
    }
    if call_counter.installed():
        report["storeCalls"] = call_counter.counts()
    return report


@router.post("/health/reset")
async def reset_health(svc: ServicesDep, body: HealthReset | None = None) -> dict[str, int]:
    """Close breakers and end cooldowns: all, one provider's, or one connection's."""
    target = body or HealthReset()
    snapshot = await anyio.to_thread.run_sync(svc.config.reload)  # the connections as they are now
    return await svc.health.reset(snapshot, target.provider, target.connectionId)


@router.post("/translator/translate")
def translate_body(body: TranslateBody) -> dict[str, Any]:
    """The translator playground: detect a body's format, translate it to another."""
    return translate(body.body, to=body.to, source=body.source, kind=body.kind, model=body.model)


# Combos, aliases and fallback chains. Names and patterns may hold `/` (hence `:path`); a `?` in a pattern
# must be sent percent-encoded (%3F), as anywhere in a URL path.


@router.get("/combos")
def list_combos(svc: ServicesDep) -> dict[str, Any]:
    return {"combos": svc.admin.routing.list_combos()}


@router.post("/combos", status_code=201)
def create_combo(body: ComboCreate, svc: ServicesDep) -> dict[str, Any]:
    return {"combo": svc.admin.routing.create_combo(body.fields())}


@router.get("/combos/{name:path}")
def get_combo(name: str, svc: ServicesDep) -> dict[str, Any]:
    return {"combo": svc.admin.routing.get_combo(name)}


@router.put("/combos/{name:path}")
def replace_combo(name: str, body: ComboReplace, svc: ServicesDep) -> dict[str, Any]:
    return {"combo": svc.admin.routing.replace_combo(name, body.fields())}


@router.patch("/combos/{name:path}")
def update_combo(name: str, body: ComboPatch, svc: ServicesDep) -> dict[str, Any]:
    return {"combo": svc.admin.routing.update_combo(name, body.fields())}


@router.delete("/combos/{name:path}", status_code=204)
def delete_combo(name: str, svc: ServicesDep) -> Response:
    svc.admin.routing.delete_combo(name)
    return Response(status_code=204)


@router.get("/aliases")
def list_aliases(svc: ServicesDep) -> dict[str, Any]:
    return {"aliases": svc.admin.routing.list_aliases()}


@router.post("/aliases", status_code=201)
def create_alias(body: AliasCreate, svc: ServicesDep) -> dict[str, Any]:
    return {"alias": svc.admin.routing.create_alias(body.fields())}


@router.delete("/aliases/{pattern:path}", status_code=204)
def delete_alias(pattern: str, svc: ServicesDep) -> Response:
    svc.admin.routing.delete_alias(pattern)
    return Response(status_code=204)


@router.get("/fallback-chains")
def list_fallback_chains(svc: ServicesDep) -> dict[str, Any]:
    return {"fallbackChains": svc.admin.routing.list_fallbacks()}


@router.post("/fallback-chains", status_code=201)
def create_fallback_chain(body: FallbackCreate, svc: ServicesDep) -> dict[str, Any]:
    return {"fallbackChain": svc.admin.routing.create_fallback(body.fields())}


@router.put("/fallback-chains/{pattern:path}")
def replace_fallback_chain(pattern: str, body: FallbackReplace, svc: ServicesDep) -> dict[str, Any]:
    return {"fallbackChain": svc.admin.routing.replace_fallback(pattern, body.fields())}


@router.delete("/fallback-chains/{pattern:path}", status_code=204)
def delete_fallback_chain(pattern: str, svc: ServicesDep) -> Response:
    svc.admin.routing.delete_fallback(pattern)
    return Response(status_code=204)
