"""The parts of `DynamoRoutingStore` outside the ROUTE partition: global rate limits, idempotency claims and
the exact response cache. Functions over `Items` (one State-table item at a time, Python values in and
out), which `routing_state.StateItems` provides.

    pk RL#<key>     sk W#<epoch minute>   requests admitted in that minute (`count`)
                    sk G                  `last_at` (last admitted, for the min gap), `slots` (slot id → expiry)
    pk IDEM#<scope> sk I                  a claim: state pending, or done with the reply
    pk CACHE#<key>  sk R                  a cached reply
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from shared.domain.routing import Admission, Claim, RateLimit, StoredReply

MAX_ITEM_BYTES = 350_000  # a DynamoDB item holds at most 400 KB; replies larger than this are not kept
WINDOW_KEEP = 3_600  # an rpm window item expires an hour after its minute ends
GATE_KEEP = 3_600  # the G item outlives its last slot and gap by an hour
SWEEP_AT_MOST = 32  # lapsed slots removed per sweep (keeps the expression far below its 4 KB limit)

_NAMES = {
    "#c": "count", "#x": "expires_at", "#la": "last_at", "#sl": "slots", "#pk": "pk", "#ow": "owner", "#st": "state",
}  # fmt: skip


class Items(Protocol):
    def update(
        self,
        pk: str,
        sk: str,
        update: str,
        condition: str | None = ...,
        values: Mapping[str, Any] | None = ...,
        names: Mapping[str, str] | None = ...,
        *,
        returns: str = ...,
        creates_map: str | None = ...,
        expires_at: int | None = ...,
    ) -> tuple[bool, dict[str, Any]]: ...

    def put(
        self,
        pk: str,
        sk: str,
        fields: Mapping[str, Any],
        condition: str | None = ...,
        values: Mapping[str, Any] | None = ...,
        names: Mapping[str, str] | None = ...,
    ) -> tuple[bool, dict[str, Any]]: ...

    def get(self, pk: str, sk: str, consistent: bool = ...) -> dict[str, Any] | None: ...

    def delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = ...,
        values: Mapping[str, Any] | None = ...,
        names: Mapping[str, str] | None = ...,
    ) -> bool: ...


# --- rate limits ------------------------------------------------------------------------------------
def acquire(items: Items, key: str, now: float, limit: RateLimit, slot_id: str, slot_seconds: float) -> Admission:
    """RPM first (one `ADD` on the minute's window, refused without counting), then min gap and concurrency
    together (one conditional write on G), so a request the rpm refuses takes no slot and moves no gap.
    A request refused by the gap or by concurrency gives its rpm count back with a second `ADD`: until
    that lands, a request at the very edge of the rpm limit may be refused although it would have fitted
    (over-refusal for milliseconds, never over-admission)."""
    pk = f"RL#{key}"
    window: str | None = None
    if limit.rpm is not None:
        minute = int(now // 60)
        window = f"W#{minute}"
        counted, _ = items.update(
            pk,
            window,
            "ADD #c :one SET #x = if_not_exists(#x, :expires)",
            "attribute_not_exists(#c) OR #c < :rpm",
            {":one": 1, ":rpm": limit.rpm, ":expires": (minute + 1) * 60 + WINDOW_KEEP},
            _NAMES,
            returns="NONE",
        )
        if not counted:
            return Admission(admitted=False, retry_after=(minute + 1) * 60 - now, limit="rpm")
    if limit.min_gap_ms is None and limit.max_concurrent is None:
        return Admission(admitted=True)
    admission = _gap_and_slots(items, pk, now, limit, slot_id, slot_seconds)
    if not admission.admitted and window is not None:
        items.update(pk, window, "ADD #c :minus", "attribute_exists(#c)", {":minus": -1}, _NAMES, returns="NONE")
    return admission


def _gap_and_slots(items: Items, pk: str, now: float, limit: RateLimit, slot_id: str, slot_seconds: float) -> Admission:
    gap = limit.min_gap_ms / 1000 if limit.min_gap_ms is not None else None
    sets, conditions = ["#x = :expires"], []
    values: dict[str, Any] = {":expires": math.ceil(now + (gap or 0.0) + slot_seconds + GATE_KEEP)}
    if gap is not None:
        sets.append("#la = :now")
        conditions.append("(attribute_not_exists(#la) OR #la <= :edge)")
        values |= {":now": now, ":edge": now - gap}
    if limit.max_concurrent is not None:
        # size() of a missing attribute is false in DynamoDB (moto raises instead): guard it.
        sets.append("#sl.#id = :slot_until")
        conditions.append("(attribute_not_exists(#sl) OR size(#sl) < :max)")
        values |= {":slot_until": now + slot_seconds, ":max": limit.max_concurrent}
    held: Mapping[str, float] = {}
    for sweep in (True, False):
        admitted, old = items.update(
            pk,
            "G",
            "SET " + ", ".join(sets),
            " AND ".join(conditions),
            values,
            {**_NAMES, "#id": slot_id},
            returns="NONE",
            creates_map="#sl" if limit.max_concurrent is not None else None,
            expires_at=values[":expires"],
        )
        if admitted:
            return Admission(admitted=True, slot_id=slot_id if limit.max_concurrent is not None else None)
        last_at = old.get("last_at")
        if gap is not None and last_at is not None and last_at > now - gap:
            return Admission(admitted=False, retry_after=last_at + gap - now, limit="gap")
        held = old.get("slots", {})
        lapsed = {sid: until for sid, until in held.items() if until <= now}
        if not (sweep and lapsed):
            break
        _sweep(items, pk, lapsed)
    live = [until - now for until in held.values() if until > now]
    return Admission(admitted=False, retry_after=min([*live, 1.0]), limit="concurrency")


def _sweep(items: Items, pk: str, lapsed: Mapping[str, float]) -> None:
    """Remove lapsed slots (their holders crashed or never released), each only while it still holds the
    lapsed expiry; whether this or a concurrent sweep removed them, the caller's retry decides."""
    chosen = list(lapsed.items())[:SWEEP_AT_MOST]
    names = {**_NAMES, **{f"#s{i}": sid for i, (sid, _) in enumerate(chosen)}}
    items.update(
        pk,
        "G",
        "REMOVE " + ", ".join(f"#sl.#s{i}" for i in range(len(chosen))),
        " AND ".join(f"#sl.#s{i} = :s{i}" for i in range(len(chosen))),
        {f":s{i}": until for i, (_, until) in enumerate(chosen)},
        names,
        returns="NONE",
    )


def release(items: Items, key: str, slot_id: str) -> None:
    """Give the slot back; a slot already swept as lapsed is no error."""
    names = {**_NAMES, "#id": slot_id}
    items.update(f"RL#{key}", "G", "REMOVE #sl.#id", "attribute_exists(#sl.#id)", None, names, returns="NONE")


# --- idempotency --------------------------------------------------------------------------------------
def claim(items: Items, scope: str, owner: str, now: float, ttl: float) -> Claim:
    owned, old = items.put(
        f"IDEM#{scope}",
        "I",
        {"state": "pending", "owner": owner, "expires_at": math.ceil(now + ttl)},
        "attribute_not_exists(#pk) OR #x <= :now",
        {":now": now},
        _NAMES,
    )
    if owned:
        return Claim(owned=True)
    return Claim(owned=False, reply=_reply(old) if old.get("state") == "done" else None)


_HELD = "#ow = :me AND #st = :pending"  # the claim is still this request's, and not answered yet


def complete(items: Items, scope: str, owner: str, reply: StoredReply, now: float, ttl: float) -> None:
    fields = _reply_fields(reply)
    if fields is None:  # too large to replay: drop the claim so a retry runs again instead of waiting
        abandon(items, scope, owner)
        return
    items.put(
        f"IDEM#{scope}",
        "I",
        {**fields, "state": "done", "owner": owner, "expires_at": math.ceil(now + ttl)},
        _HELD,
        {":me": owner, ":pending": "pending"},
        _NAMES,
    )


def abandon(items: Items, scope: str, owner: str) -> None:
    items.delete(f"IDEM#{scope}", "I", _HELD, {":me": owner, ":pending": "pending"}, _NAMES)


# --- response cache -----------------------------------------------------------------------------------
def cache_get(items: Items, key: str, now: float) -> StoredReply | None:
    """Eventually consistent: a cache miss right after a put only costs an upstream call."""
    item = items.get(f"CACHE#{key}", "R")
    if item is None or item.get("expires_at", 0) <= now:
        return None
    return _reply(item)


def cache_put(items: Items, key: str, reply: StoredReply, now: float, ttl: float) -> None:
    fields = _reply_fields(reply)
    if fields is not None:  # too large: simply not cached
        items.put(f"CACHE#{key}", "R", {**fields, "expires_at": math.ceil(now + ttl)})


def _reply_fields(reply: StoredReply) -> dict[str, Any] | None:
    """A reply as item fields, the body zlib-compressed when that makes it smaller; None past MAX_ITEM_BYTES."""
    body, encoding = reply.body, "identity"
    packed = zlib.compress(reply.body, 6)
    if len(packed) < len(body):
        body, encoding = packed, "zlib"
    headers = orjson.dumps(dict(reply.headers)).decode()
    if len(body) + len(headers) + len(reply.media_type) + 200 > MAX_ITEM_BYTES:
        return None
    media_type = reply.media_type
    return {"status": reply.status, "headers": headers, "body": body, "encoding": encoding, "media_type": media_type}


def _reply(item: Mapping[str, Any]) -> StoredReply:
    body: bytes = item["body"]
    return StoredReply(
        status=int(item["status"]),
        headers=orjson.loads(item["headers"]),
        body=zlib.decompress(body) if item.get("encoding") == "zlib" else body,
        media_type=item.get("media_type", "application/json"),
    )
