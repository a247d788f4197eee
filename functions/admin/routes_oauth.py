"""`/api/oauth/*`: linked subscription accounts. The companion runs the OAuth flow on the owner's machine and
pushes the tokens here once; the target keeps and refreshes them from then on."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from functions.admin.auth import AdminDep, ServicesDep
from shared.errors import NotSupported
from shared.services.oauth_accounts import OAuthAccountsService
from shared.services.token_refresh import TokenRefresher

router = APIRouter(prefix="/api/oauth", dependencies=[AdminDep])


def oauth_accounts(svc: ServicesDep) -> OAuthAccountsService:
    return svc.oauth


AccountsDep = Annotated[OAuthAccountsService, Depends(oauth_accounts)]


def token_refresher(svc: ServicesDep) -> TokenRefresher:
    if svc.refresher is None:
        raise NotSupported("This target keeps no refresh leases (no State table), so it cannot refresh tokens.")
    return svc.refresher


RefresherDep = Annotated[TokenRefresher, Depends(token_refresher)]


class LinkBody(BaseModel):
    """What `omniroute login` pushes: the provider, the tokens (encrypted here at once) and what the account is.
    The service checks the fields' contents and names the first bad one."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=64)
    tokens: dict[str, Any]
    meta: dict[str, Any] | None = None
    name: str | None = Field(default=None, max_length=200)
    priority: int | None = Field(default=None, ge=0, le=1_000_000)
    baseUrl: str | None = Field(default=None, max_length=2048)
    connectionId: str | None = Field(default=None, max_length=64)  # relink this connection


@router.get("/providers")
def providers(accounts: AccountsDep) -> dict[str, Any]:
    return {"providers": accounts.providers()}


@router.post("/link", status_code=201)
def link(body: LinkBody, accounts: AccountsDep) -> dict[str, Any]:
    return {"account": accounts.link(body.model_dump())}


@router.get("/accounts")
def list_accounts(accounts: AccountsDep) -> dict[str, Any]:
    return {"accounts": accounts.list_accounts()}


@router.get("/accounts/{id}")
def get_account(id: str, accounts: AccountsDep) -> dict[str, Any]:
    return {"account": accounts.view(id)}


@router.post("/accounts/{id}/refresh")
async def refresh_account(id: str, accounts: AccountsDep, refresher: RefresherDep) -> dict[str, Any]:
    """Refresh the account's tokens now, due or not; the lease still keeps it to one refresher at a time."""
    done = await refresher.refresh_one(id, force=True)
    return {"account": await anyio.to_thread.run_sync(accounts.view, id), "refresh": done.to_json()}
