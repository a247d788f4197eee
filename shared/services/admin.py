"""Configuration use cases behind the admin API: validation, encryption of secrets, masking on the way out.

Every method is synchronous (the store is) and calls `on_change` after a successful write, so the gateway
sharing this process sees the change on its next request.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from shared.domain.budgets import parse_budget
from shared.domain.config import Kind, Record
from shared.domain.keys import display_form, generate_key, hash_key, mask_secret
from shared.domain.netguard import refused_host
from shared.domain.oauth import credential_view
from shared.domain.quota import parse_quota_rules
from shared.domain.text import has_control_characters
from shared.errors import Conflict, InvalidRequest, NotFound, NotSupported
from shared.ports import Cipher, ConfigStore, DecryptionFailed
from shared.providers.catalog import PROVIDERS, get_provider
from shared.providers.spec import AuthKind, WireFormat
from shared.services.admin_routing import RoutingConfigService
from shared.services.snapshot import secret_context

if TYPE_CHECKING:
    from shared.services.sync import SyncService
    from shared.services.sync_checks import ShapeCheck

PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
NODE_API_TYPES = (WireFormat.OPENAI, WireFormat.ANTHROPIC, WireFormat.GEMINI, WireFormat.RESPONSES)
SETTINGS_ID = "global"


class Owner(NamedTuple):
    id: str
    auth: AuthKind
    label: str  # default connection name
    is_node: bool


ORPHAN_CLAIM_AGE = 60.0


def _age_seconds(timestamp: str) -> float:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds()
    except ValueError:
        return float("inf")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def validate_base_url(value: str, field: str = "baseUrl", *, public_only: bool = False) -> str:
    """A clean upstream base URL. `public_only` (the cloud) also refuses address literals and names that are
    never public; names are resolved and checked again at every connect (see PublicOnlyBackend)."""

    def bad(why: str) -> InvalidRequest:
        shown = "" if "@" in value else f", got {value[:200]!r}"  # never echo credentials back
        return InvalidRequest(f"`{field}` {why}{shown}.", param=field, code="invalid_url")

    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise bad(f"is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise bad("must be an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise bad("must not carry credentials (put the key in `apiKey`, where it is encrypted)")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise bad("must not have a query or fragment")
    if not _valid_host(host):
        raise bad("has a host name that is not valid")
    if public_only:
        refused = refused_host(host)
        if refused is not None:
            raise bad(
                f"points at {refused}: in the cloud upstreams must be public "
                "(OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS=true on the functions allows private ones)"
            )
    return value.strip().rstrip("/")


def validate_linked_base_url(value: str, *, public_only: bool) -> str:
    """A linked account's base URL (a relay, a plan host): as any upstream's, and in the cloud https only,
    because every request to it carries the subscription's access token."""
    url = validate_base_url(value, public_only=public_only)
    if public_only and not url.lower().startswith("https://"):
        raise InvalidRequest(
            "`baseUrl` of a linked account must be https: every request to it carries the account's token.",
            param="baseUrl",
            code="invalid_url",
        )
    return url


_HOST_LABELS = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$", re.I)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_host) <= 253 and bool(_HOST_LABELS.match(ascii_host))


_SECRET_RE = re.compile(r"^[\x21-\x7e]+$")


def clean_secret(value: object) -> str:
    """An upstream credential as it will travel in a header: visible ASCII, no spaces or line breaks.

    Surrounding whitespace (a pasted newline) is dropped; anything else is refused, because a header
    cannot carry it and the HTTP library's complaint would quote the header, credential and all.
    """
    secret = str(value).strip()
    if not _SECRET_RE.match(secret):
        raise InvalidRequest(
            "`apiKey` must be visible ASCII characters without spaces or line breaks.",
            param="apiKey",
            code="invalid_value",
        )
    return secret


# rateLimit.<field> → (lowest, highest); a connection with none of them is not limited
RATE_LIMIT_FIELDS = {"rpm": (1, 100_000), "minGapMs": (1, 3_600_000), "maxConcurrent": (1, 10_000)}


def check_quotas(value: object) -> list[dict[str, Any]]:
    """A connection's `quotas` as stored (each window in its normal form), or a 400 naming what is wrong."""
    try:
        return [rule.to_data() for rule in parse_quota_rules(value)]
    except ValueError as exc:
        raise InvalidRequest(f"Invalid `quotas`: {exc}", param="quotas", code="invalid_value") from None


def check_rate_limit(value: object) -> dict[str, int] | None:
    """A connection's `rateLimit` as stored: only the limits set; None when nothing is limited."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequest("`rateLimit` must be an object.", param="rateLimit", code="invalid_value")
    unknown = sorted(set(value) - set(RATE_LIMIT_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"`rateLimit` has unknown field `{unknown[0]}` (allowed: {', '.join(RATE_LIMIT_FIELDS)}).",
            param=f"rateLimit.{unknown[0]}",
            code="invalid_value",
        )
    limits: dict[str, int] = {}
    for name, (low, high) in RATE_LIMIT_FIELDS.items():
        raw = value.get(name)
        if raw is None:
            continue
        if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
            raise InvalidRequest(
                f"`rateLimit.{name}` must be an integer from {low} to {high}.",
                param=f"rateLimit.{name}",
                code="invalid_value",
            )
        limits[name] = raw
    return limits or None


def merge_resilience(stored: object, sent: object) -> dict[str, Any] | None:
    """`resilience` after a settings update: merged per profile and field, a null profile or field
    going back to the default; sending `resilience: null` clears every override."""
    if not isinstance(sent, Mapping):
        return None
    merged = {p: dict(o) for p, o in stored.items() if isinstance(o, Mapping)} if isinstance(stored, Mapping) else {}
    for profile, overrides in sent.items():
        if not isinstance(overrides, Mapping):
            merged.pop(profile, None)
            continue
        fields = {**merged.get(profile, {}), **overrides}
        merged[profile] = {k: v for k, v in fields.items() if v is not None}
    return merged


def check_model_id(value: object, field: str) -> str:
    model_id = str(value).strip()
    # Part of a record's sort key (DynamoDB caps keys at 1024 bytes); control characters could never be sent.
    if not model_id or len(model_id.encode("utf-8")) > 512 or has_control_characters(model_id):
        raise InvalidRequest(
            f"`{field}` must be 1 to 512 bytes without control characters.", param=field, code="invalid_value"
        )
    return model_id


class ConfigService:
    def __init__(
        self, store: ConfigStore, cipher: Cipher, on_change: Callable[[], None], *, public_urls_only: bool = False
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._on_change = on_change
        self._public_only = public_urls_only
        self.routing = RoutingConfigService(store, on_change)

    def sync(self, check_shape: ShapeCheck | None = None) -> SyncService:
        """Record-level sync over this service's store, cipher and change hook (`shared.services.sync`)."""
        from shared.services.sync import SyncService  # it builds on this module's checks: imported on use

        return SyncService(
            self._store, self._cipher, self._on_change, public_urls_only=self._public_only, check_shape=check_shape
        )

    def _base_url(self, value: object) -> str:
        return validate_base_url(str(value), public_only=self._public_only)

    # ----- provider connections -------------------------------------------------------------------------

    def _owner(self, provider: str) -> Owner:
        """Canonical owner of a connection or model: a catalogue id, or a node id (by id or prefix)."""
        needle = provider.strip().lower()
        for node in self._store.list(Kind.NODE):
            if node.id == provider or str(node.data.get("prefix", "")).lower() == needle:
                return Owner(node.id, AuthKind.API_KEY, str(node.data.get("name") or node.data["prefix"]), True)
        spec = get_provider(needle)
        if spec is None:
            known = ", ".join(sorted(p.id for p in PROVIDERS))
            raise InvalidRequest(
                f"Unknown provider {provider!r}. Use a catalogue id ({known}) or a provider node's prefix.",
                param="provider",
                code="unknown_provider",
            )
        return Owner(spec.id, spec.auth, spec.id, False)

    def connection_view(self, r: Record) -> dict[str, Any]:
        d = dict(r.data)
        secret = d.pop("apiKey", None)
        view: dict[str, Any] = {"id": r.id, **d, "apiKey": None}
        if isinstance(secret, str):
            try:
                view["apiKey"] = mask_secret(self._cipher.decrypt(secret, secret_context(r.kind, r.id)))
            except DecryptionFailed:
                view["credentialError"] = (
                    "The stored API key cannot be decrypted with this data dir's secret.key (was the file replaced?). "
                    "Restore the original secret.key, or send the key again with PATCH."
                )
        return {**view, "version": r.version, "updatedAt": r.updated_at}

    def list_connections(self) -> list[dict[str, Any]]:
        recs = sorted(
            self._store.list(Kind.PROVIDER),
            key=lambda r: (str(r.data.get("provider")), int(r.data.get("priority") or 0), r.id),
        )
        linked = {r.id: r for r in self._store.list(Kind.OAUTH)} if any(r.data.get("linked") for r in recs) else {}
        return [self._with_oauth(self.connection_view(r), linked.get(r.id)) for r in recs]

    def get_connection(self, id: str) -> dict[str, Any]:
        return self._full_view(self._require(Kind.PROVIDER, id))

    def _full_view(self, rec: Record) -> dict[str, Any]:
        view = self.connection_view(rec)
        return self._with_oauth(view, self._store.get(Kind.OAUTH, rec.id)) if rec.data.get("linked") else view

    @staticmethod
    def _with_oauth(view: dict[str, Any], cred: Record | None) -> dict[str, Any]:
        """A linked account's view carries its credential status (never a token)."""
        if view.get("linked"):
            view["oauth"] = credential_view(cred.data if cred is not None else None)
        return view

    def create_connection(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        owner = self._owner(str(fields["provider"]))
        if owner.auth is AuthKind.OAUTH:
            raise NotSupported(
                f"{owner.id} accounts are linked with OAuth, not with an API key: run `omniroute login {owner.id}` "
                "on your machine (it pushes the account here through POST /api/oauth/link).",
                param="provider",
            )
        api_key = clean_secret(fields["apiKey"]) if fields.get("apiKey") is not None else None
        # A node may be keyless (a local server); a catalogue API-key provider never is.
        if owner.auth is AuthKind.API_KEY and not api_key and not owner.is_node:
            raise InvalidRequest(
                f"`apiKey` is required for {owner.id}.", param="apiKey", code="missing_required_parameter"
            )
        id = _new_id("conn")
        data: dict[str, Any] = {
            "provider": owner.id,
            "name": fields.get("name") or owner.label,
            "priority": int(fields.get("priority") or 0),
            "enabled": bool(fields.get("enabled", True)),
            "baseUrl": self._base_url(fields["baseUrl"]) if fields.get("baseUrl") else None,
            "defaultModel": check_model_id(fields["defaultModel"], "defaultModel")
            if fields.get("defaultModel")
            else None,
            "createdAt": _now(),
        }
        limits = check_rate_limit(fields.get("rateLimit"))
        if limits:
            data["rateLimit"] = limits
        if fields.get("quotas"):
            data["quotas"] = check_quotas(fields["quotas"])
        if api_key:
            data["apiKey"] = self._cipher.encrypt(api_key, secret_context(Kind.PROVIDER, id))
        rec = self._store.create(Kind.PROVIDER, id, data)
        self._on_change()
        return self.connection_view(rec)

    def update_connection(self, id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        rec = self._require(Kind.PROVIDER, id)
        data = dict(rec.data)
        for name in ("name", "priority", "enabled"):
            if name in fields:
                data[name] = fields[name]
        if "defaultModel" in fields:
            default = fields["defaultModel"]
            data["defaultModel"] = check_model_id(default, "defaultModel") if default else None
        if "baseUrl" in fields and fields["baseUrl"] and rec.data.get("linked"):
            data["baseUrl"] = validate_linked_base_url(str(fields["baseUrl"]), public_only=self._public_only)
        elif "baseUrl" in fields:
            data["baseUrl"] = self._base_url(fields["baseUrl"]) if fields["baseUrl"] else None
        if "rateLimit" in fields:
            # The sent object replaces the stored limits whole; null (or `{}`) lifts them.
            limits = check_rate_limit(fields["rateLimit"])
            if limits:
                data["rateLimit"] = limits
            else:
                data.pop("rateLimit", None)
        if "quotas" in fields:
            # The sent list replaces the stored windows whole; null (or `[]`) removes them.
            if fields["quotas"]:
                data["quotas"] = check_quotas(fields["quotas"])
            else:
                data.pop("quotas", None)
        if fields.get("apiKey") is not None:
            if rec.data.get("linked"):
                raise InvalidRequest(
                    "This account is linked with OAuth; it has no API key. Link it again with `omniroute login`.",
                    param="apiKey",
                    code="invalid_value",
                )
            secret = clean_secret(fields["apiKey"])
            data["apiKey"] = self._cipher.encrypt(secret, secret_context(Kind.PROVIDER, id))
        updated = self._store.update(Kind.PROVIDER, id, data, rec.version)
        self._on_change()
        return self._full_view(updated)

    def delete_connection(self, id: str) -> None:
        self._delete(Kind.PROVIDER, id)
        self._store.delete(Kind.OAUTH, id)  # a linked account's tokens go with it

    # ----- provider nodes -----------------------------------------------------------------------------

    def node_view(self, r: Record) -> dict[str, Any]:
        return {"id": r.id, **r.data, "version": r.version, "updatedAt": r.updated_at}

    def list_nodes(self) -> list[dict[str, Any]]:
        return [self.node_view(r) for r in self._store.list(Kind.NODE)]

    def get_node(self, id: str) -> dict[str, Any]:
        return self.node_view(self._require(Kind.NODE, id))

    @staticmethod
    def _check_prefix(prefix: str) -> str:
        """Shape and built-in collisions; uniqueness among nodes is the claim's job (`claim_prefix`)."""
        prefix = prefix.strip().lower()
        if not PREFIX_RE.match(prefix):
            raise InvalidRequest(
                "`prefix` must be 1–32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.",
                param="prefix",
                code="invalid_value",
            )
        if get_provider(prefix) is not None:
            raise InvalidRequest(
                f"The prefix {prefix!r} is a built-in provider's; choose another.", param="prefix", code="prefix_taken"
            )
        return prefix

    @staticmethod
    def _check_api_type(value: str) -> str:
        if value not in [t.value for t in NODE_API_TYPES]:
            allowed = ", ".join(t.value for t in NODE_API_TYPES)
            raise InvalidRequest(f"`apiType` must be one of {allowed}.", param="apiType", code="invalid_value")
        return value

    def _refuse_combo_prefix(self, prefix: str) -> None:
        """A combo named `team/fast` would read as `prefix/model` once a node claims `team`."""
        clash = sorted(r.id for r in self._store.list(Kind.COMBO) if r.id.lower().startswith(prefix + "/"))
        if clash:
            raise InvalidRequest(
                f"The prefix {prefix!r} begins the name of combo `{clash[0]}`; choose another prefix or rename it.",
                param="prefix",
                code="prefix_taken",
            )

    def claim_prefix(self, prefix: str, node_id: str) -> None:
        """Make the prefix this node's with one conditional write: the only place node prefixes are kept
        unique, so two concurrent creates (in one process or across Lambda instances) cannot both win.

        A claim whose node does not exist a minute after it was made is an orphan (a create that failed
        between its two writes) and is taken over, again with a conditional write.
        """
        try:
            self._store.create(Kind.PREFIX, prefix, {"node": node_id})
            return
        except Conflict:
            claim = self._store.get(Kind.PREFIX, prefix)
        holder = str(claim.data.get("node")) if claim is not None else "another node"
        taken = InvalidRequest(
            f"The prefix {prefix!r} is already used by node {holder}.", param="prefix", code="prefix_taken"
        )
        if claim is None or self._store.get(Kind.NODE, holder) is not None:
            raise taken
        if _age_seconds(claim.updated_at) < ORPHAN_CLAIM_AGE:
            raise taken  # its node may still be on its way
        try:
            self._store.update(Kind.PREFIX, prefix, {"node": node_id}, claim.version)
        except (Conflict, NotFound) as exc:
            raise taken from exc

    def create_node(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        prefix = self._check_prefix(str(fields["prefix"]))
        data = {
            "name": fields.get("name") or prefix,
            "prefix": prefix,
            "baseUrl": self._base_url(fields["baseUrl"]),
            "apiType": self._check_api_type(str(fields.get("apiType") or "openai")),
            "createdAt": _now(),
        }
        node_id = _new_id("node")
        self._refuse_combo_prefix(prefix)
        self.claim_prefix(prefix, node_id)
        try:
            rec = self._store.create(Kind.NODE, node_id, data)
        except BaseException:
            self._store.delete(Kind.PREFIX, prefix)
            raise
        self._on_change()
        return self.node_view(rec)

    def update_node(self, id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        rec = self._require(Kind.NODE, id)
        data = dict(rec.data)
        old_prefix = str(rec.data["prefix"])
        if "name" in fields:
            data["name"] = fields["name"]
        if "prefix" in fields:
            data["prefix"] = self._check_prefix(str(fields["prefix"]))
        if "baseUrl" in fields:
            data["baseUrl"] = self._base_url(fields["baseUrl"])
        if "apiType" in fields:
            data["apiType"] = self._check_api_type(str(fields["apiType"]))
        moved = data["prefix"] != old_prefix
        if moved:
            self._refuse_combo_prefix(str(data["prefix"]))
            self.claim_prefix(str(data["prefix"]), id)
        try:
            updated = self._store.update(Kind.NODE, id, data, rec.version)
        except BaseException:
            if moved:
                self._store.delete(Kind.PREFIX, str(data["prefix"]))
            raise
        if moved:
            self._store.delete(Kind.PREFIX, old_prefix)
        self._on_change()
        return self.node_view(updated)

    def delete_node(self, id: str) -> None:
        rec = self._require(Kind.NODE, id)
        users = [r.id for r in self._store.list(Kind.PROVIDER) if r.data.get("provider") == id]
        users += [str(r.data.get("modelId")) for r in self._store.list(Kind.MODEL) if r.data.get("provider") == id]
        if users:
            raise InvalidRequest(
                f"Node {id} still has connections or models ({', '.join(users)}); delete them first.",
                code="node_in_use",
            )
        self._delete(Kind.NODE, id)
        self._store.delete(Kind.PREFIX, str(rec.data["prefix"]))

    # ----- custom models ------------------------------------------------------------------------------

    def list_models(self, provider: str | None = None) -> list[dict[str, Any]]:
        recs = self._store.list(Kind.MODEL)
        out = [{"id": r.id, **r.data} for r in recs]
        if provider:
            owner = self._owner(provider).id
            out = [m for m in out if m["provider"] == owner]
        return out

    def create_model(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        owner = self._owner(str(fields["provider"])).id
        model_id = check_model_id(fields["modelId"], "modelId")
        data = {"provider": owner, "modelId": model_id, "name": fields.get("modelName") or model_id}
        rec = self._store.create(Kind.MODEL, f"{owner}#{model_id}", data)
        self._on_change()
        return {"id": rec.id, **rec.data}

    def delete_model(self, provider: str, model_id: str) -> None:
        try:
            owner = self._owner(provider).id
        except InvalidRequest:
            owner = provider  # a raw owner id still deletes what an older configuration left behind
        self._delete(Kind.MODEL, f"{owner}#{model_id}")

    # ----- gateway API keys ---------------------------------------------------------------------------

    @staticmethod
    def key_view(r: Record) -> dict[str, Any]:
        d = r.data
        return {
            "id": r.id,
            "name": d.get("name"),
            "key": d.get("display"),
            "enabled": d.get("enabled", True),
            "createdAt": d.get("createdAt"),
            "budget": d.get("budget"),
        }

    def set_budget(self, key_id: str, budget: Mapping[str, Any] | None) -> dict[str, Any]:
        """Set (or with None remove) an API key's budget; returns the key."""
        rec = self._require(Kind.APIKEY, key_id)
        data = dict(rec.data)
        if budget is None:
            data.pop("budget", None)
        else:
            try:
                data["budget"] = parse_budget(budget).to_data()
            except ValueError as exc:
                raise InvalidRequest(f"Invalid budget: {exc}", param="budget", code="invalid_value") from None
        updated = self._store.update(Kind.APIKEY, key_id, data, rec.version)
        self._on_change()
        return self.key_view(updated)

    def list_keys(self) -> list[dict[str, Any]]:
        return [self.key_view(r) for r in self._store.list(Kind.APIKEY)]

    def create_key(self, name: str) -> dict[str, Any]:
        key = generate_key()
        data = {
            "name": name,
            "keyHash": hash_key(key),
            "display": display_form(key),
            "enabled": True,
            "createdAt": _now(),
        }
        rec = self._store.create(Kind.APIKEY, _new_id("key"), data)
        self._on_change()
        # The only time the key itself leaves the server.
        return {**self.key_view(rec), "key": key}

    def update_key(self, id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        rec = self._require(Kind.APIKEY, id)
        data = dict(rec.data)
        for name in ("name", "enabled"):
            if name in fields:
                data[name] = fields[name]
        updated = self._store.update(Kind.APIKEY, id, data, rec.version)
        self._on_change()
        return self.key_view(updated)

    def revoke_key(self, id: str) -> None:
        self._delete(Kind.APIKEY, id)

    # ----- settings -----------------------------------------------------------------------------------

    def get_settings(self) -> dict[str, Any]:
        rec = self._store.get(Kind.SETTINGS, SETTINGS_ID)
        return dict(rec.data) if rec else {}

    def update_settings(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        stored = self.get_settings()
        data = {**stored, **fields}
        if "resilience" in fields:
            data["resilience"] = merge_resilience(stored.get("resilience"), fields["resilience"])
        rec = self._store.put(Kind.SETTINGS, SETTINGS_ID, data)
        self._on_change()
        return dict(rec.data)

    # ----- helpers ------------------------------------------------------------------------------------

    def _require(self, kind: str, id: str) -> Record:
        rec = self._store.get(kind, id)
        if rec is None:
            raise NotFound(f"No {kind} with id `{id}`.")
        return rec

    def _delete(self, kind: str, id: str) -> None:
        if not self._store.delete(kind, id):
            raise NotFound(f"No {kind} with id `{id}`.")
        self._on_change()
