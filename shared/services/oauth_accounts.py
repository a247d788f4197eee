"""Linked subscription accounts behind the admin API: taking the tokens the companion pushes, and showing them.

The companion runs the OAuth flow on the owner's machine and pushes the result once (`POST /api/oauth/link`);
from then on the target (the cloud, or a local `serve`) owns the tokens: the refresher
(`shared.services.token_refresh`) keeps them fresh, and the companion keeps no copy. A link creates two
records: the connection (`kind = provider`, like any account, so combos, priorities, quotas and routing treat
it the same) and its credentials (`kind = oauth`, see `shared.domain.oauth`). Linking again with
`connectionId` replaces the credentials of an existing connection (a relink after `relink_needed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.domain.config import Kind, Record
from shared.domain.oauth import ACTIVE, RELINK_NEEDED, OAuthTokens, credential_view
from shared.domain.text import has_control_characters
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.ports import Cipher, ConfigStore
from shared.providers.catalog import get_provider
from shared.providers.oauth import OAUTH_PROVIDERS, RETIRED_OAUTH, oauth_provider
from shared.services.admin import _new_id, clean_secret, validate_linked_base_url
from shared.services.snapshot import secret_context

# `meta` holds what an account is (shown in `omniroute accounts`), never a secret: names that look like one
# are refused, so a flow that put a token there by mistake fails loudly instead of storing it in the clear.
_SECRET_WORDS = ("token", "secret", "password", "apikey", "api_key")
_MAX_META = 32


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def check_meta(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > _MAX_META:
        raise _bad(f"`meta` must be an object of at most {_MAX_META} fields.", "meta")
    meta: dict[str, Any] = {}
    for key, item in value.items():
        name = str(key)
        if any(word in name.lower() for word in _SECRET_WORDS):
            raise _bad(f"`meta.{name}` looks like a secret; secrets go in `tokens`, where they are encrypted.", "meta")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise _bad(f"`meta.{name}` must be a string, number or boolean.", f"meta.{name}")
        if isinstance(item, str) and (len(item) > 2048 or has_control_characters(item)):
            # some values travel in headers (the ChatGPT account id): one line of text, bounded
            raise _bad(f"`meta.{name}` must be at most 2048 characters without control characters.", f"meta.{name}")
        if item is not None:
            meta[name] = item
    return meta


def check_tokens(value: object, now: float) -> tuple[OAuthTokens, float]:
    """The pushed tokens and the access token's expiry (epoch seconds; 0 when the provider gave none)."""
    if not isinstance(value, Mapping):
        raise _bad("`tokens` must be an object with at least `accessToken`.", "tokens", "missing_required_parameter")
    access = value.get("accessToken")
    if not isinstance(access, str) or not access.strip():
        raise _bad("`tokens.accessToken` is required.", "tokens.accessToken", "missing_required_parameter")

    def secret(name: str) -> str | None:
        raw = value.get(name)
        if raw is None or raw == "":
            return None
        try:
            return clean_secret(raw)
        except InvalidRequest:
            raise _bad(f"`tokens.{name}` must be visible ASCII without spaces.", f"tokens.{name}") from None

    expires_at = value.get("expiresAt")
    expires_in = value.get("expiresIn")
    if isinstance(expires_at, int | float) and not isinstance(expires_at, bool) and expires_at > 0:
        expiry = float(expires_at)
    elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        expiry = now + float(expires_in)
    else:
        expiry = 0.0
    tokens = OAuthTokens(
        access_token=clean_secret(access),
        refresh_token=secret("refreshToken"),
        id_token=secret("idToken"),
        client_secret=secret("clientSecret"),
    )
    return tokens, expiry


class OAuthAccountsService:
    def __init__(
        self, store: ConfigStore, cipher: Cipher, on_change: Callable[[], None], *, public_urls_only: bool = False
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._on_change = on_change
        self._public_only = public_urls_only

    # ----- what can be linked ---------------------------------------------------------------------------

    @staticmethod
    def providers() -> list[dict[str, Any]]:
        """Every linkable provider with its login methods, and the retired rows with why they are."""
        rows: list[dict[str, Any]] = []
        for p in OAUTH_PROVIDERS:
            spec = get_provider(p.id)
            rows.append(
                {
                    "id": p.id,
                    "prefix": spec.alias if spec else p.id,
                    "name": p.name,
                    "methods": [{"name": m.name, "label": m.label} for m in p.methods],
                    "refreshLeadSeconds": p.refresh.lead_seconds,
                    "rotatesRefreshToken": p.refresh.rotates,
                    "termsNote": p.terms_note or None,
                    "retired": False,
                }
            )
        for pid in RETIRED_OAUTH:
            spec = get_provider(pid)
            if spec is not None:
                rows.append(
                    {
                        "id": pid,
                        "prefix": spec.alias,
                        "name": spec.name,
                        "methods": [],
                        "retired": True,
                        "retiredNote": spec.retired_note,
                    }
                )
        return rows

    # ----- linking --------------------------------------------------------------------------------------

    def link(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store pushed credentials: a new connection, or (with `connectionId`) new tokens for an existing one."""
        provider_id = str(fields.get("provider") or "").strip().lower()
        spec = get_provider(provider_id)
        if spec is not None and spec.id in RETIRED_OAUTH:
            raise _bad(f"{spec.name} cannot be linked: {spec.retired_note}", "provider", "provider_retired")
        provider = oauth_provider(spec.id) if spec is not None else None
        if provider is None:
            linkable = ", ".join(p.id for p in OAUTH_PROVIDERS)
            raise _bad(f"`provider` must be a linkable subscription provider ({linkable}).", "provider")
        now = time.time()
        tokens, expiry = check_tokens(fields.get("tokens"), now)
        meta = check_meta(fields.get("meta"))
        base_url = fields.get("baseUrl")
        if base_url:
            base_url = validate_linked_base_url(str(base_url), public_only=self._public_only)
        target = fields.get("connectionId")
        if target:
            conn = self._store.get(Kind.PROVIDER, str(target))
            if conn is None:
                raise NotFound(f"No connection with id `{target}`.")
            if conn.data.get("provider") != provider.id:
                raise _bad(
                    f"Connection `{target}` belongs to {conn.data.get('provider')}, not {provider.id}.", "connectionId"
                )
            if base_url:
                self._set_base_url(conn, base_url)
            self._replace_credentials(conn.id, provider.id, tokens, expiry, meta)
            self._on_change()
            return self.view(conn.id)
        conn_id = _new_id("conn")
        label = str(fields.get("name") or meta.get("email") or provider.name)[:200]
        data: dict[str, Any] = {
            "provider": provider.id,
            "name": label,
            "priority": int(fields.get("priority") or 0),
            "enabled": True,
            "baseUrl": base_url or None,
            "defaultModel": None,
            "createdAt": _now_iso(),
            "linked": True,
        }
        self._store.create(Kind.PROVIDER, conn_id, data)
        try:
            self._store.create(
                Kind.OAUTH, conn_id, self._credential_data(conn_id, provider.id, tokens, expiry, meta, 1)
            )
        except BaseException:
            self._store.delete(Kind.PROVIDER, conn_id)
            raise
        self._on_change()
        return self.view(conn_id)

    def _set_base_url(self, conn: Record, base_url: str) -> None:
        """A relink's new base URL, written over whatever else changed the connection meanwhile (the
        refresher moving a Copilot plan host, the owner renaming it): the sign-in must not be wasted."""
        for _ in range(5):
            if conn.data.get("baseUrl") == base_url:
                return
            try:
                self._store.update(Kind.PROVIDER, conn.id, {**conn.data, "baseUrl": base_url}, conn.version)
                return
            except Conflict:
                latest = self._store.get(Kind.PROVIDER, conn.id)
                if latest is None:
                    raise NotFound(f"No connection with id `{conn.id}`.") from None
                conn = latest
        raise Conflict("The connection kept changing while relinking; try again.", code="version_conflict")

    def _credential_data(
        self, conn_id: str, provider: str, tokens: OAuthTokens, expiry: float, meta: Mapping[str, Any], version: int
    ) -> dict[str, Any]:
        return {
            "provider": provider,
            "secret": self._cipher.encrypt(tokens.to_json(), secret_context(Kind.OAUTH, conn_id)),
            "expiresAt": expiry,
            "tokenVersion": version,
            "status": ACTIVE,
            "linkedAt": _now_iso(),
            "failures": 0,
            "meta": dict(meta),
        }

    def _replace_credentials(
        self, conn_id: str, provider: str, tokens: OAuthTokens, expiry: float, meta: Mapping[str, Any]
    ) -> None:
        """A relink: the new tokens win over whatever a refresher may be writing (it conditions on the version
        it read, so its write fails instead of overwriting these)."""
        for _ in range(5):
            current = self._store.get(Kind.OAUTH, conn_id)
            if current is None:
                try:
                    self._store.create(
                        Kind.OAUTH, conn_id, self._credential_data(conn_id, provider, tokens, expiry, meta, 1)
                    )
                    return
                except Conflict:
                    continue
            version = int(current.data.get("tokenVersion") or 0) + 1
            data = self._credential_data(conn_id, provider, tokens, expiry, meta, version)
            try:
                self._store.update(Kind.OAUTH, conn_id, data, current.version)
                return
            except Conflict:
                continue
        raise Conflict("The account's credentials kept changing while relinking; try again.", code="version_conflict")

    # ----- views ----------------------------------------------------------------------------------------

    def view(self, conn_id: str) -> dict[str, Any]:
        conn = self._store.get(Kind.PROVIDER, conn_id)
        if conn is None:
            raise NotFound(f"No connection with id `{conn_id}`.")
        return self._account(conn, self._store.get(Kind.OAUTH, conn_id))

    @staticmethod
    def _account(conn: Record, cred: Record | None) -> dict[str, Any]:
        d = conn.data
        return {
            "id": conn.id,
            "provider": d.get("provider"),
            "name": d.get("name"),
            "enabled": d.get("enabled", True),
            "priority": d.get("priority", 0),
            "baseUrl": d.get("baseUrl"),
            "oauth": credential_view(cred.data if cred is not None else None),
            "version": conn.version,
            "updatedAt": conn.updated_at,
        }

    def list_accounts(self) -> list[dict[str, Any]]:
        creds = {r.id: r for r in self._store.list(Kind.OAUTH)}
        out = []
        for conn in self._store.list(Kind.PROVIDER):
            provider = oauth_provider(str(conn.data.get("provider") or ""))
            if provider is not None or conn.id in creds:
                out.append(self._account(conn, creds.get(conn.id)))
        return sorted(out, key=lambda a: (str(a["provider"]), int(a["priority"] or 0), a["id"]))

    def relink_needed(self) -> list[dict[str, Any]]:
        """Accounts whose grant is gone (for /api/health and `omniroute status`)."""
        names = {r.id: r.data for r in self._store.list(Kind.PROVIDER)}
        out = []
        for r in self._store.list(Kind.OAUTH):
            if r.data.get("status") == RELINK_NEEDED and r.id in names:
                out.append(
                    {
                        "id": r.id,
                        "provider": r.data.get("provider"),
                        "name": names[r.id].get("name"),
                        "reason": r.data.get("relinkReason"),
                        "expiresAt": r.data.get("expiresAt") or None,
                    }
                )
        return out
