"""Admin authentication. Locally: `Authorization: Bearer <admin token>`, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from shared.errors import AuthenticationFailed
from shared.services.container import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


def require_admin(request: Request, svc: ServicesDep) -> None:
    token = svc.admin_token
    if not token:
        raise AuthenticationFailed("The admin API is disabled: no admin token is configured.", code="admin_disabled")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise AuthenticationFailed(
            "Admin token missing or wrong: send `Authorization: Bearer <admin token>` "
            "(printed by `omniroute serve` on first start, stored in the data dir as admin-token).",
            code="invalid_admin_token",
        )


AdminDep = Depends(require_admin)
