"""The one error tree of OmniRoute Edge.

    GatewayError                      every error the gateway or admin API answers with
    ├── InvalidRequest        400     malformed JSON, wrong field types, bad admin input
    │   └── NotSupported      400     a valid request this build cannot serve yet (e.g. an upstream format)
    ├── AuthenticationFailed  401     missing or wrong API key / admin token
    ├── PermissionDenied      403     key disabled, model not allowed
    ├── NotFound              404     admin resource missing, unknown route
    │   └── ModelNotFound     404     model id resolves to no configured provider
    ├── MethodNotAllowed      405     known path, wrong HTTP method
    ├── Conflict              409     duplicate id, stale version on update
    ├── RateLimited           429     raised by the gateway itself (budgets, limits)
    ├── UpstreamRejected      4xx     the upstream answered 4xx: status and body are relayed faithfully
    ├── UpstreamFailed        502     upstream 5xx, refused connection, broken stream
    ├── GatewayBusy           503     the gateway's own upstream connection pool is exhausted
    └── UpstreamTimeout       504     upstream did not answer in time

Errors carry structured fields; they are turned into HTTP responses in each caller's wire format in one place
(`shared.formats.errors`), never in routes.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.provider = provider
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return self.status


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class NotSupported(InvalidRequest):
    default_code = "not_supported"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    type = "invalid_request_error"
    default_code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class Conflict(GatewayError):
    status = 409
    type = "conflict_error"
    default_code = "conflict"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamRejected(GatewayError):
    """The upstream refused the request with a 4xx; we relay its status, body and rate-limit headers."""

    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        body: bytes,
        headers: tuple[tuple[str, str], ...] = (),
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, retry_after=retry_after, code="upstream_error")
        self.upstream_status = upstream_status
        self.body = body
        self.headers = headers

    @property
    def http_status(self) -> int:
        return self.upstream_status


class UpstreamFailed(GatewayError):
    """`upstream_status`, `body` and `headers` are set when the upstream answered (a 5xx); they tell the
    router what kind of failure it was (overloaded or broken, and when to come back)."""

    status = 502
    type = "upstream_error"
    default_code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, code=code, provider=provider, retry_after=retry_after)
        self.upstream_status = upstream_status
        self.body = body
        self.headers = headers


class GatewayBusy(GatewayError):
    status = 503
    type = "overloaded_error"
    default_code = "gateway_busy"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout_error"
    default_code = "upstream_timeout"
