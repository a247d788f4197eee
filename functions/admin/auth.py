"""Admin authentication.

- Locally: `Authorization: Bearer <admin token>`, compared in constant time.
- In the cloud: the HTTP API's IAM authorization has already checked the caller's SigV4 signature (the
  companion signs with the owner's AWS credentials), so no admin secret exists. The app still insists on
  that evidence in the event Mangum hands over: an IAM identity from this function's own account. A
  route deployed without the authorizer, or an invocation from anything else, is refused.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request

from shared.errors import AuthenticationFailed, PermissionDenied
from shared.services.container import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


def _own_account(context: Any) -> str | None:
    arn = getattr(context, "invoked_function_arn", None) or ""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None


def require_iam_caller(scope: dict[str, Any]) -> dict[str, Any]:
    """The IAM identity API Gateway verified for this request; refused unless it is from our account."""
    event = scope.get("aws.event")
    iam = None
    if isinstance(event, dict):
        iam = ((event.get("requestContext") or {}).get("authorizer") or {}).get("iam")
    if not isinstance(iam, dict) or not iam.get("accountId"):
        raise AuthenticationFailed(
            "The admin API takes requests signed with AWS SigV4 through its IAM-authorised HTTP API "
            "(the companion does this with your AWS credentials).",
            code="iam_auth_required",
        )
    own = _own_account(scope.get("aws.context"))
    if own is None or iam["accountId"] != own:
        raise PermissionDenied(
            "This IAM identity belongs to another AWS account than the gateway's.", code="foreign_account"
        )
    return iam


def require_admin(request: Request, svc: ServicesDep) -> None:
    if svc.settings.cloud:
        require_iam_caller(request.scope)
        return
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
