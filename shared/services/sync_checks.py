"""What `omniroute sync` may write: every incoming record goes through the admin API's own checks.

The web layer's request bodies check types and bounds (`check_shape`); then the admin services themselves
(`ConfigService`, `RoutingConfigService`, `PricingService`) write the record to a scratch copy of the
configuration, so sync accepts exactly what the admin API accepts: known providers and targets, combo cycles
and depth, built-in and taken prefixes, records still in use. The record is then stored as sent (so both
sides hold the same etag), except a connection's API key, sealed under this store's own cipher.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from shared.domain.budgets import parse_budget
from shared.domain.config import Kind, Record
from shared.domain.pricing import InvalidPrice, Price
from shared.errors import Conflict, InvalidRequest, NotSupported
from shared.ports import Cipher
from shared.services.admin import SETTINGS_ID, ConfigService, clean_secret
from shared.services.admin_pricing import PricingService, split_price_id
from shared.services.snapshot import secret_context
from shared.services.sync_copy import MemoryStore, ScratchCipher, ignore

SECRET_FIELD = "apiKey"  # the only stored secret of a synced record (a connection's API key)
_CONNECTION_FIELDS = ("name", "priority", "enabled", "baseUrl", "defaultModel", "rateLimit", "quotas")
_KEY_FIELDS = frozenset({"name", "keyHash", "display", "enabled", "createdAt", "budget"})
_KEY_HASH = re.compile(r"^[0-9a-f]{64}$")

# Checks the admin API's request bodies make (types, lengths, unknown fields), given by the web layer.
ShapeCheck = Callable[[str, Mapping[str, Any]], None]


def bad(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


class RecordChecks:
    def __init__(self, cipher: Cipher, *, public_urls_only: bool, check_shape: ShapeCheck | None) -> None:
        self._cipher = cipher
        self._public_only = public_urls_only
        self._check_shape = check_shape

    def stored(
        self, kind: str, id: str, data: Mapping[str, Any], key: str | None, current: Record | None, scratch: MemoryStore
    ) -> dict[str, Any]:
        """The data to store for an incoming record (`key`: a connection's API key, when one came), after the
        checks the admin API would make to write it; raises the GatewayError it would answer."""
        if self._check_shape is not None:
            self._check_shape(kind, {**data, SECRET_FIELD: key} if key is not None else data)
        admin = ConfigService(scratch, ScratchCipher(), ignore, public_urls_only=self._public_only)
        if kind == Kind.PROVIDER:
            return self._connection(id, data, key, current, admin)
        if kind == Kind.NODE:
            fields = {k: data[k] for k in ("name", "prefix", "baseUrl", "apiType") if k in data}
            if current is None:
                admin.create_node(fields)
            else:
                admin.update_node(id, fields)
        elif kind == Kind.MODEL:
            scratch.forget(kind, id)  # a model changes its name only: check it as new
            made = admin.create_model(
                {"provider": str(data.get("provider")), "modelId": data.get("modelId"), "modelName": data.get("name")}
            )
            if made["id"] != id or made["provider"] != data.get("provider"):
                raise bad(f"A custom model's id is `<provider id>#<model id>`: expected `{made['id']}`.")
        elif kind == Kind.APIKEY:
            _check_key(id, data, scratch)
        elif kind == Kind.SETTINGS and id != SETTINGS_ID:
            raise bad(f"The settings document's id is `{SETTINGS_ID}`.")
        elif kind == Kind.COMBO:
            if data.get("name") != id:
                raise bad("A combo's `name` is its id.", "name")
            fields = {k: data.get(k) for k in ("name", "models", "strategy", "config")}
            if current is None:
                admin.routing.create_combo(fields)
            else:
                admin.routing.replace_combo(id, fields)
        elif kind == Kind.ALIAS:
            if data.get("pattern") != id:
                raise bad("An alias's `pattern` is its id.", "pattern")
            scratch.forget(kind, id)  # aliases are replaced whole
            admin.routing.create_alias({"pattern": id, "target": data.get("target")})
        elif kind == Kind.FALLBACK:
            if data.get("pattern") != id:
                raise bad("A fallback chain's `pattern` is its id.", "pattern")
            fields = {"pattern": id, "models": data.get("models")}
            if current is None:
                admin.routing.create_fallback(fields)
            else:
                admin.routing.replace_fallback(id, fields)
        elif kind == Kind.PRICE:
            _check_price(id, data, scratch)
        return dict(data)

    def _connection(
        self, id: str, data: Mapping[str, Any], key: str | None, current: Record | None, admin: ConfigService
    ) -> dict[str, Any]:
        """A connection's settings; its key sealed under this store's cipher when one came, else the key
        this store already holds. A linked account syncs its settings only, and only onto itself."""
        fields = {k: data[k] for k in _CONNECTION_FIELDS if k in data}
        held = current.data if current is not None else {}
        if current is not None and held.get("provider") != data.get("provider"):
            raise bad("A connection's `provider` does not change; delete it and create another.", "provider")
        if data.get("linked") is True or held.get("linked") is True:
            if current is None:
                raise NotSupported(
                    f"`{id}` is a linked {data.get('provider')} account: link it there with "
                    f"`omniroute login {data.get('provider')}` (its credentials never sync).",
                    code="linked_account",
                )
            if data.get("linked") is not True or held.get("linked") is not True:
                raise bad(f"`{id}` is a linked account on one side and holds an API key on the other.", "linked")
            if key is not None:
                raise bad("A linked account has no API key.", SECRET_FIELD)
            admin.update_connection(id, fields)
            return dict(data)
        if current is None:
            try:
                made = admin.create_connection({"provider": data.get("provider"), **fields, SECRET_FIELD: key})
            except InvalidRequest as err:
                if err.param == SECRET_FIELD and key is None:
                    raise bad(
                        f"The connection `{id}` needs its API key, which travels only when asked: sync with "
                        "secrets (`omniroute sync push --secrets`), or create it there.",
                        SECRET_FIELD,
                    ) from None
                raise
            if made["provider"] != data.get("provider"):
                raise bad(f"`provider` must be the canonical id `{made['provider']}`.", "provider")
        else:
            admin.update_connection(id, {**fields, **({SECRET_FIELD: key} if key is not None else {})})
        stored = dict(data)
        if key is not None:
            stored[SECRET_FIELD] = self._cipher.encrypt(clean_secret(key), secret_context(Kind.PROVIDER, id))
        elif isinstance(held.get(SECRET_FIELD), str):
            stored[SECRET_FIELD] = held[SECRET_FIELD]  # keys did not travel: this side keeps its own
        return stored

    def deletable(self, current: Record, scratch: MemoryStore) -> None:
        """Raises what the admin API answers to a delete it refuses (a node or combo still in use, an alias a
        combo targets)."""
        admin = ConfigService(scratch, ScratchCipher(), ignore, public_urls_only=self._public_only)
        kind = current.kind
        if kind == Kind.NODE:
            admin.delete_node(current.id)
        elif kind == Kind.COMBO:
            admin.routing.delete_combo(current.id)
        elif kind == Kind.ALIAS:
            admin.routing.delete_alias(current.id)


def _check_key(id: str, data: Mapping[str, Any], scratch: MemoryStore) -> None:
    """A gateway key record is its hash and what lists show: the key itself never travels."""
    unknown = sorted(set(data) - _KEY_FIELDS)
    if unknown:
        raise bad(f"`{unknown[0]}` is not a field of a key record (keys travel as their SHA-256 hash only).")
    key_hash = data.get("keyHash")
    if not isinstance(key_hash, str) or not _KEY_HASH.match(key_hash):
        raise bad("`keyHash` must be the key's SHA-256 hash in lowercase hex.", "keyHash")
    name, display, enabled = data.get("name"), data.get("display"), data.get("enabled", True)
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise bad("`name` must be 1 to 200 characters.", "name")
    if not isinstance(display, str) or len(display) > 64:
        raise bad("`display` must be the key's shortened form.", "display")
    if not isinstance(enabled, bool):
        raise bad("`enabled` must be true or false.", "enabled")
    if data.get("budget") is not None:
        try:
            parse_budget(data["budget"])
        except ValueError as exc:
            raise bad(f"Invalid budget: {exc}", "budget") from None
    twin = next((r.id for r in scratch.list(Kind.APIKEY) if r.id != id and r.data.get("keyHash") == key_hash), None)
    if twin is not None:
        raise Conflict(f"The key `{twin}` has the same hash.", param="keyHash", code="key_exists")


def _check_price(id: str, data: Mapping[str, Any], scratch: MemoryStore) -> None:
    try:
        provider, model = split_price_id(id)
        Price.from_data(data)
    except (InvalidPrice, ValueError) as exc:
        raise bad(f"The price `{id}`: {exc}") from None
    pricing = PricingService(scratch, ignore)
    scratch.forget(Kind.PRICE, id)
    pricing.patch({provider: {model: dict(data)}})
    if scratch.get(Kind.PRICE, id) is None:
        raise bad(f"A price's id is `<provider id>/<model id>` with the provider's canonical id, not `{id}`.")
