"""Usage resources under /api: request history, analytics, monthly totals, quota windows, budgets, the
opt-in request log, and a manual rollup run. Each route: parse, one service call, a response."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Response

from functions.admin.auth import AdminDep, ServicesDep
from functions.admin.schemas import BudgetBody, BudgetCreate
from shared.services.rollup import UsageRollup
from shared.services.usage_reports import UsageReports

router = APIRouter(prefix="/api", dependencies=[AdminDep])


def reports(svc: ServicesDep) -> UsageReports:
    return UsageReports(svc.usage, svc.spend)


ReportsDep = Annotated[UsageReports, Depends(reports)]


@router.get("/usage/history")
def history(
    reports: ReportsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None
) -> dict[str, Any]:
    """Requests, newest first: tokens by kind, cost, status, latency, time to first token."""
    return reports.history(limit, cursor)


@router.get("/usage/analytics")
async def analytics(
    svc: ServicesDep,
    reports: ReportsDep,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    group_by: Annotated[str, Query(alias="groupBy")] = "provider",
    tz: str = "UTC",
) -> dict[str, Any]:
    """Totals by provider, model, key, connection and/or day over an inclusive date range."""
    snapshot = await svc.config.current()
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    return await anyio.to_thread.run_sync(lambda: reports.analytics(snapshot, start, end, groups, tz))


@router.get("/usage/monthly")
def monthly(reports: ReportsDep, months: Annotated[int, Query(ge=1, le=36)] = 12) -> dict[str, Any]:
    return reports.monthly(months)


@router.get("/usage/quota")
async def quota(svc: ServicesDep, reports: ReportsDep) -> dict[str, Any]:
    """Each account's quota windows (live from the provider, and configured ones we count)."""
    snapshot = await anyio.to_thread.run_sync(svc.config.reload)
    await svc.routing.reload()  # what every instance wrote, not this process's copy
    return reports.quota(snapshot, svc.routing.view(), snapshot.settings.quota_skip_percent)


@router.get("/usage/request-logs")
def request_logs(
    reports: ReportsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The opt-in request log (settings `requestLogs.enabled`), redacted, newest first."""
    return reports.logs(limit, cursor)


@router.post("/usage/rollup")
def rollup(svc: ServicesDep, hours: Annotated[int, Query(ge=1, le=72)] = 2) -> dict[str, Any]:
    """Roll up the last `hours` closed hours now (the scheduled job does this hourly; re-running is safe)."""
    if svc.usage is None:
        return {"hours": {}, "days": [], "months": []}
    report = UsageRollup(svc.usage, time.time).run(hours_back=hours)
    return {"hours": report.hours, "days": report.days, "months": report.months}


@router.get("/budgets")
async def list_budgets(svc: ServicesDep, reports: ReportsDep) -> dict[str, Any]:
    snapshot = await anyio.to_thread.run_sync(svc.config.reload)
    return await anyio.to_thread.run_sync(reports.budgets, snapshot)


@router.put("/budgets/{key_id}")
def set_budget(key_id: str, body: BudgetBody, svc: ServicesDep) -> dict[str, Any]:
    return {"key": svc.admin.set_budget(key_id, body.model_dump(exclude_none=True))}


@router.post("/usage/budget")
def create_budget(body: BudgetCreate, svc: ServicesDep) -> dict[str, Any]:
    """OmniRoute's form of `PUT /api/budgets/{keyId}`."""
    fields = body.model_dump(exclude_none=True)
    return {"key": svc.admin.set_budget(fields.pop("apiKeyId"), fields)}


@router.delete("/budgets/{key_id}", status_code=204)
def delete_budget(key_id: str, svc: ServicesDep) -> Response:
    svc.admin.set_budget(key_id, None)
    return Response(status_code=204)
