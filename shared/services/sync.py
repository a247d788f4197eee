"""Configuration sync between two targets, the server's half of `omniroute sync` (docs/sync.md).

`records()` lists every record that syncs with an etag: a content hash of (kind, id, data as synced), so
two stores holding the same content show the same etag whatever their own store versions are.
`apply()` takes the changes the companion planned with its three-way comparison and writes each only if
the record is still what the companion saw (`ifMatch`: its etag, or null for "must not exist"); the write
itself is conditioned on the store version read with that etag, so a change made in between is reported
as a conflict, never overwritten. Each change is first run through the admin services themselves on a
scratch copy of the configuration (the batch applied so far included), so sync accepts exactly what the
admin API accepts, and a dry run answers what the real run would.

What never syncs: linked accounts' OAuth credentials (the target holding the account owns its rotating
refresh token; a copy would make two refreshers burn it), node prefix claims (they follow their nodes),
and gateway API keys themselves (key records carry the hash, so the same key works on both sides).
Provider API keys travel only when asked (`secrets`): decrypted here, sealed again under the receiver's
own key (AES-GCM locally, KMS in the cloud). A connection's key is compared through its tag, a hash of
the record id and the key, never shown otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.config import Kind, Record
from shared.domain.text import has_control_characters
from shared.errors import Conflict, GatewayError, InvalidRequest, NotFound
from shared.ports import Cipher, ConfigStore, DecryptionFailed
from shared.services.snapshot import secret_context
from shared.services.sync_checks import SECRET_FIELD, RecordChecks, ShapeCheck, bad
from shared.services.sync_copy import MemoryStore, WorkingCopy

# Upserts go in this order, deletes in the reverse one, so a record's dependencies come first (a node
# before its connections and models, connections before the combos that pin them, combos before aliases).
SYNCED_KINDS: tuple[str, ...] = (
    Kind.SETTINGS,
    Kind.PRICE,
    Kind.APIKEY,
    Kind.NODE,
    Kind.PROVIDER,
    Kind.MODEL,
    Kind.COMBO,
    Kind.ALIAS,
    Kind.FALLBACK,
)
NEVER_SYNCED = {
    Kind.OAUTH: "linked credentials stay with the target they were linked to (run `omniroute login` there)",
    Kind.PREFIX: "prefix claims follow their nodes",
}
MAX_CHANGES = 1000
_ID_LIMIT = 1024  # the Config table's sort key (DynamoDB caps keys at 1024 bytes)


def etag(kind: str, id: str, data: Mapping[str, Any]) -> str:
    """A stable content hash: equal wherever the same record holds the same data."""
    blob = json.dumps([kind, id, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def key_tag(id: str, secret: str) -> str:
    """Tells two API keys apart without showing either (bound to the record: equal keys of two connections
    have different tags)."""
    return hashlib.sha256(f"omniroute-sync-key\0{id}\0{secret}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Synced:
    """A record as it syncs: its data without stored secrets, and a connection's API key in the clear (held
    in memory only, when keys were asked for). `unreadable`: the stored key does not decrypt here."""

    kind: str
    id: str
    data: Mapping[str, Any]
    key: str | None = field(default=None, repr=False)
    unreadable: bool = False

    @property
    def settings_etag(self) -> str:
        return etag(self.kind, self.id, self.data)

    @property
    def key_tag(self) -> str | None:
        return key_tag(self.id, self.key) if self.key is not None else None

    def etag(self, with_keys: bool) -> str:
        """The record's version as compared in one mode: with keys, a new API key is a change too."""
        tag = self.key_tag if with_keys else None
        return etag(self.kind, self.id, {**self.data, SECRET_FIELD: {"tag": tag}}) if tag else self.settings_etag

    def listing(self, updated_at: str, *, with_keys: bool, plaintext: bool) -> dict[str, Any]:
        data = dict(self.data)
        entry: dict[str, Any] = {
            "kind": self.kind,
            "id": self.id,
            "etag": self.etag(with_keys),
            "updatedAt": updated_at,
        }
        if with_keys and self.kind == Kind.PROVIDER:
            entry.update(settingsEtag=self.settings_etag, keyTag=self.key_tag)
            if self.unreadable:
                entry["keyUnreadable"] = True
            if plaintext and self.key is not None:
                data[SECRET_FIELD] = self.key
        entry["data"] = data
        return entry


def synced(record: Record, cipher: Cipher, *, with_keys: bool) -> Synced:
    if record.kind != Kind.PROVIDER:
        return Synced(record.kind, record.id, record.data)
    data = {k: v for k, v in record.data.items() if k != SECRET_FIELD}
    sealed = record.data.get(SECRET_FIELD)
    if not with_keys or not isinstance(sealed, str):
        return Synced(record.kind, record.id, data)
    try:
        return Synced(record.kind, record.id, data, key=cipher.decrypt(sealed, secret_context(record.kind, record.id)))
    except DecryptionFailed:
        return Synced(record.kind, record.id, data, unreadable=True)


def collection_etag(entries: Iterable[Mapping[str, Any]]) -> str:
    return hashlib.sha256("\n".join(f"{e['kind']}\0{e['id']}\0{e['etag']}" for e in entries).encode()).hexdigest()[:32]


def _order(kind: str) -> int:
    return SYNCED_KINDS.index(kind)


@dataclass(frozen=True, slots=True)
class _Change:
    index: int
    kind: str
    id: str
    if_match: str | None
    data: Mapping[str, Any] | None  # None: delete


def _result(change: _Change, status: str, **fields: Any) -> dict[str, Any]:
    return {"kind": change.kind, "id": change.id, "status": status, **fields}


def _invalid(change: _Change, err: GatewayError) -> dict[str, Any]:
    return _result(change, "invalid", message=err.message, code=err.code, param=err.param)


def _applied(change: _Change, status: str, after: Synced | None, with_keys: bool) -> dict[str, Any]:
    if after is None:
        return _result(change, status, etag=None)
    return _result(change, status, etag=after.etag(with_keys), settingsEtag=after.settings_etag, keyTag=after.key_tag)


class SyncService:
    def __init__(
        self,
        store: ConfigStore,
        cipher: Cipher,
        on_change: Callable[[], None],
        *,
        public_urls_only: bool = False,
        check_shape: ShapeCheck | None = None,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._on_change = on_change
        self._checks = RecordChecks(cipher, public_urls_only=public_urls_only, check_shape=check_shape)

    # ----- listing ------------------------------------------------------------------------------------

    def records(self, *, secrets: bool = False, key_tags: bool = False) -> dict[str, Any]:
        """Every synced record. `key_tags`: connections carry their API key's tag (a new key is then a
        change); `secrets`: the tags and the keys themselves, in the clear, for the receiver to seal."""
        with_keys = secrets or key_tags
        records = sorted(
            (r for r in self._store.list_all() if r.kind in SYNCED_KINDS), key=lambda r: (_order(r.kind), r.id)
        )
        entries = [
            synced(r, self._cipher, with_keys=with_keys).listing(r.updated_at, with_keys=with_keys, plaintext=secrets)
            for r in records
        ]
        keys = "plain" if secrets else "tags" if key_tags else "none"
        return {"records": entries, "etag": collection_etag(entries), "keys": keys}

    # ----- applying -----------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Mapping[str, Any]], *, dry_run: bool = False, secrets: bool = False
    ) -> dict[str, Any]:
        """Apply each change whose record is still as the caller saw it; one result per change, in order:
        applied | unchanged (the record already held this) | conflict (with the current etag) | invalid.

        Changes are tried in dependency order; one refused by a check is tried again after the others
        (it may need a record later in the batch), until a round applies nothing. `secrets`: etags are
        compared with API keys included, and connections may carry `apiKey` in the clear."""
        if len(changes) > MAX_CHANGES:
            raise bad(f"At most {MAX_CHANGES} changes can be applied in one request.", "changes")
        results: dict[int, dict[str, Any]] = {}
        pending: list[_Change] = []
        seen: set[tuple[str, str]] = set()
        for index, raw in enumerate(changes):
            try:
                change = _parse(index, raw)
                if (change.kind, change.id) in seen:
                    raise bad(f"The {change.kind} `{change.id}` appears twice in one request.")
                seen.add((change.kind, change.id))
                pending.append(change)
            except InvalidRequest as refusal:
                results[index] = _invalid(_Change(index, str(raw.get("kind")), str(raw.get("id")), None, None), refusal)
        pending.sort(key=_apply_order)
        target = WorkingCopy(self._store, MemoryStore(self._store.list_all()), commit=not dry_run)
        try:
            while pending:
                refused: list[tuple[_Change, GatewayError]] = []
                for change in pending:
                    try:
                        results[change.index] = self._one(change, target, secrets)
                    except GatewayError as err:  # a check refused it: maybe a later change makes it valid
                        refused.append((change, err))
                if len(refused) == len(pending):
                    for change, reason in refused:
                        results[change.index] = _invalid(change, reason)
                    break
                pending = [change for change, _ in refused]
        finally:
            if target.wrote and not dry_run:  # also after a failure part-way: what was written is served
                self._on_change()
        return {"results": [results[i] for i in range(len(changes))], "dryRun": dry_run}

    def _one(self, change: _Change, target: WorkingCopy, secrets: bool) -> dict[str, Any]:
        """One change against the working copy (which is what the store held when the batch began, plus the
        batch's own writes). Raises GatewayError when a check refuses it."""
        current = target.mirror.get(change.kind, change.id)
        held = synced(current, self._cipher, with_keys=secrets) if current is not None else None
        held_etag = held.etag(secrets) if held is not None else None
        if change.data is None:
            if current is None:
                return _applied(change, "unchanged", None, secrets)
            if change.if_match != held_etag:
                return _conflict(change, held_etag)
            self._checks.deletable(current, target.mirror.fork())
            try:
                target.delete_record(current)
            except (Conflict, NotFound):
                return _conflict(change, _etag_now(target, change, self._cipher, secrets))
            return _applied(change, "applied", None, secrets)
        incoming = _incoming(change, secrets)
        if held is not None and held.data == incoming.data and incoming.key in (None, held.key):
            return _applied(change, "unchanged", held, secrets)
        if change.if_match != held_etag:
            return _conflict(change, held_etag)
        stored = self._checks.stored(change.kind, change.id, incoming.data, incoming.key, current, target.mirror.fork())
        try:
            target.write_record(change.kind, change.id, stored, current)
        except (Conflict, NotFound):
            return _conflict(change, _etag_now(target, change, self._cipher, secrets))
        after = Synced(change.kind, change.id, incoming.data, key=incoming.key or (held.key if held else None))
        return _applied(change, "applied", after, secrets)


def _apply_order(change: _Change) -> int:
    """Upserts in dependency order, then deletes in the reverse one."""
    order = _order(change.kind)
    return order if change.data is not None else 2 * len(SYNCED_KINDS) - order


def _parse(index: int, raw: Mapping[str, Any]) -> _Change:
    kind, id = raw.get("kind"), raw.get("id")
    if kind in NEVER_SYNCED:
        raise bad(f"`{kind}` records never sync: {NEVER_SYNCED[str(kind)]}.", "kind")
    if kind not in SYNCED_KINDS:
        raise bad(f"`kind` must be one of {', '.join(SYNCED_KINDS)}.", "kind")
    if not isinstance(id, str) or not id or len(id.encode("utf-8")) > _ID_LIMIT or has_control_characters(id):
        raise bad(f"`id` must be 1 to {_ID_LIMIT} bytes without control characters.", "id")
    if_match = raw.get("ifMatch")
    if if_match is not None and not isinstance(if_match, str):
        raise bad("`ifMatch` must be the etag you read, or null when the record must not exist.", "ifMatch")
    if raw.get("delete") is True:
        return _Change(index, str(kind), id, if_match, None)
    data = raw.get("data")
    if not isinstance(data, Mapping):
        raise bad("A change carries `data` (the whole record), or `delete: true`.", "data")
    return _Change(index, str(kind), id, if_match, data)


def _incoming(change: _Change, secrets: bool) -> Synced:
    assert change.data is not None
    if change.kind != Kind.PROVIDER or SECRET_FIELD not in change.data:
        return Synced(change.kind, change.id, dict(change.data))
    key = change.data[SECRET_FIELD]
    if not secrets:
        raise bad("API keys travel only in a request sent with `secrets: true`.", SECRET_FIELD)
    if not isinstance(key, str) or not key:
        raise bad("`apiKey` must be the key itself.", SECRET_FIELD)
    return Synced(change.kind, change.id, {k: v for k, v in change.data.items() if k != SECRET_FIELD}, key=key)


def _conflict(change: _Change, current_etag: str | None) -> dict[str, Any]:
    if current_etag is None:
        message = "it does not exist here (any more)"
    elif change.if_match is None:
        message = "it already exists here"
    else:
        message = "it changed here since it was read"
    return _result(change, "conflict", etag=current_etag, message=message)


def _etag_now(target: WorkingCopy, change: _Change, cipher: Cipher, with_keys: bool) -> str | None:
    current = target.refresh(change.kind, change.id)
    return synced(current, cipher, with_keys=with_keys).etag(with_keys) if current is not None else None
