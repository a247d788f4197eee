"""Gateway API key check: one SHA-256 and one dictionary look-up against the in-process snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from shared.domain.config import ApiKey, ConfigSnapshot
from shared.domain.keys import hash_key
from shared.errors import AuthenticationFailed, PermissionDenied


def presented_key(headers: Mapping[str, str], query_key: str | None = None) -> str | None:
    """The key from `Authorization: Bearer`, `x-api-key` (Anthropic clients) or `x-goog-api-key`/`?key=`."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "x-goog-api-key"):
        header = headers.get(name)
        if header:
            return header.strip()
    return query_key or None


def require_api_key(setting: bool | None, *, default: bool, cloud: bool) -> bool:
    """Keys are required in the cloud, when the environment says so (a floor the stored setting cannot
    lower), or when the stored `requireApiKey` setting turns them on."""
    return cloud or default or setting is True


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_origin(origin: str) -> bool:
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host in _LOOPBACK_HOSTS


def guard_browser_origin(origin: str | None, *, required: bool) -> None:
    """Refuse keyless requests sent by web pages from other sites.

    With keys off (the local default) any web page the owner visits could otherwise POST to
    http://127.0.0.1:20128 (a "simple" text/plain request needs no CORS preflight) and spend the owner's
    provider credit, also through DNS rebinding. Browsers always send `Origin` on such requests; SDKs and
    CLIs do not, so they are unaffected.
    """
    if required or not origin:
        return
    if not is_loopback_origin(origin):
        raise PermissionDenied(
            f"Requests from web pages on other sites ({origin}) need an API key: turn on requireApiKey "
            "(PATCH /api/settings) and send the key.",
            code="cross_origin_without_key",
        )


def authenticate(key: str | None, snapshot: ConfigSnapshot, *, required: bool) -> ApiKey | None:
    """The matching key record, None when keys are not required, or an error.

    When keys are not required (local default) the presented value is not checked at all: coding tools
    insist on sending some key, and any placeholder must work.
    """
    if not required:
        return None
    if not key:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>` (create one with POST /api/keys).",
            code="missing_api_key",
        )
    record = snapshot.keys_by_hash.get(hash_key(key))
    if record is None:
        raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
    if not record.enabled:
        raise PermissionDenied("This API key is disabled.", code="api_key_disabled")
    return record
