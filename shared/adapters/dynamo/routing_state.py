"""RoutingStore on the State table through botocore's low-level DynamoDB client.

botocore, not pynamodb: pynamodb's single-item calls cannot ask for the item on a failed condition
(`ReturnValuesOnConditionCheckFailure`), which is what lets every contended write here cost one call.

Key layout (the gateway's IAM policy lists these leading keys; keep them in step with template.yaml):

    pk ROUTE        sk B#<provider>               breaker
                    sk C#<connection>             account cooldown
                    sk C#<connection>#M#<model>   cooldown of one model of an account
                    sk U#<name>                   use counters: map `uses`, member → count
                    sk RR#<name>                  round-robin cursor
                    sk Q#<connection>             live quota windows: map `windows`, name → window
                    sk QC#<connection>#<window>   a configured quota window's count: start, tokens, requests
    pk RL#…, IDEM#…, CACHE#…                      rate limits, idempotency, cache: see routing_limits.py
    pk LAT#<minute> sk <provider>                 latency histogram: Number attributes b<index>

`expires_at` (the table's TTL attribute) is whole epoch seconds, rounded up. TTL deletes late, so reads
and conditions compare expiries themselves. Attribute names are always aliased in expressions: `count`,
`state`, `status`, `level` and friends are DynamoDB reserved words.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import botocore.config
import botocore.session
from botocore.exceptions import ClientError

from shared.adapters.dynamo import routing_limits
from shared.domain.quota import AccountQuota, LiveWindow, QuotaCount
from shared.domain.routing import (
    Admission,
    BreakerPhase,
    BreakerState,
    Claim,
    Cooldown,
    Policy,
    RateLimit,
    RoutingView,
    StoredReply,
)

ROUTE = "ROUTE"
COOLDOWN_MEMORY = 86_400  # a cooldown item outlives `until` by a day, so repeated cooldowns keep doubling
LATENCY_KEEP = 2 * 86_400  # a latency minute expires two days after it
LATENCY_MINUTES = 60  # load_latency reads at most the last hour
QUOTA_MEMORY = 7 * 86_400  # a live quota reading is kept a week past its last reset

# Aliases the expressions in this module use; a call sends only those its expressions mention (DynamoDB
# and moto reject unused ones). Names built from data (map members, buckets) are passed per call.
ALIASES = {
    "#p": "phase", "#f": "failures", "#v": "version", "#oa": "opened_at", "#ou": "open_until",
    "#po": "probe_owner", "#pu": "probe_until", "#un": "until", "#lv": "level", "#rs": "reason",
    "#cn": "connection", "#md": "model", "#u": "uses", "#c": "count", "#x": "expires_at", "#pk": "pk", "#sk": "sk",
}  # fmt: skip
_ALIAS = re.compile(r"#\w+")
_PLACEHOLDER = re.compile(r":\w+")
_INTEGER = re.compile(r"-?\d+")


def encode(value: Any) -> dict[str, Any]:
    """A Python value as DynamoDB's typed JSON."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, int | float):
        text = repr(value)
        return {"N": format(value, "f") if "e" in text.lower() else text}
    if isinstance(value, Mapping):
        return {"M": {k: encode(v) for k, v in value.items()}}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def decode(raw: Mapping[str, Any]) -> Any:
    """DynamoDB's typed JSON as a Python value (numbers: int when integral, else float)."""
    (kind, value), *_ = raw.items()
    if kind == "N":
        return int(value) if _INTEGER.fullmatch(value) else float(value)
    if kind == "M":
        return {k: decode(v) for k, v in value.items()}
    if kind == "NULL":
        return None
    return value  # S, B, BOOL (this store writes no sets or lists)


def _is(exc: ClientError, code: str) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == code)


def client_factory(
    region: str, endpoint_url: str | None, *, attempts: int = 3, read_timeout: float = 5, pool: int = 50
) -> Callable[[], Any]:
    """What builds a botocore DynamoDB client for these stores (called once, at the first call)."""

    def make_client() -> Any:
        config = botocore.config.Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=2,
            read_timeout=read_timeout,
            tcp_keepalive=True,
            max_pool_connections=pool,
        )
        return botocore.session.get_session().create_client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
        )

    return make_client


class LazyClient:
    """A botocore client built at the first call, not at start-up (loading botocore's DynamoDB model costs
    tens of milliseconds a Lambda cold start would otherwise pay before its first answer), and `lock` held
    around every call when given (moto's in-process backend is not atomic across threads, DESIGN §7)."""

    def __init__(self, client: Any, make_client: Callable[[], Any] | None, lock: threading.Lock | None) -> None:
        self._client = client
        self._make_client = make_client
        self._client_lock = threading.Lock()
        self._lock = lock

    def _ensure(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    assert self._make_client is not None
                    self._client = self._make_client()
        return self._client

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self._ensure(), operation)
        if self._lock is None:
            result: dict[str, Any] = method(**kwargs)
            return result
        with self._lock:
            result = method(**kwargs)
            return result


class StateItems:
    """Single items of the State table, Python values in and out (`routing_limits.Items`).

    Holds `lock` around every call when given (moto's in-process backend is not atomic across threads,
    DESIGN §7). A failed condition is an answer, not an error: conditional calls return `(False, item as
    stored)` from ReturnValuesOnConditionCheckFailure. Other ClientErrors propagate; their messages come
    from DynamoDB and never quote item contents.
    """

    def __init__(self, client: Any, table: str, lock: threading.Lock | None, make_client: Any = None) -> None:
        self._client = LazyClient(client, make_client, lock)
        self._table = table

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        return self._client.call(operation, TableName=self._table, **kwargs)

    @staticmethod
    def _with_expressions(
        kwargs: dict[str, Any], values: Mapping[str, Any] | None, names: Mapping[str, str] | None
    ) -> dict[str, Any]:
        said = " ".join(v for k, v in kwargs.items() if k.endswith("Expression"))
        lookup = {**ALIASES, **(names or {})}
        if aliases := set(_ALIAS.findall(said)):
            kwargs["ExpressionAttributeNames"] = {a: lookup[a] for a in aliases}
        if placeholders := set(_PLACEHOLDER.findall(said)):
            kwargs["ExpressionAttributeValues"] = {p: encode((values or {})[p]) for p in placeholders}
        return kwargs

    def _conditional(self, operation: str, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        if "ConditionExpression" in kwargs:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            answer = self._call(operation, **kwargs)
        except ClientError as exc:
            if "ConditionExpression" in kwargs and _is(exc, "ConditionalCheckFailedException"):
                stored: dict[str, Any] = cast(dict[str, Any], exc.response).get("Item", {})
                return False, {k: decode(v) for k, v in stored.items()}
            raise
        return True, {k: decode(v) for k, v in answer.get("Attributes", {}).items()}

    def update(
        self,
        pk: str,
        sk: str,
        update: str,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        *,
        returns: str = "ALL_NEW",
        creates_map: str | None = None,
        expires_at: int | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """UpdateItem. `creates_map`: the alias of a map the update writes into (`SET #m.#k`, `ADD #m.#k`);
        DynamoDB refuses a nested path whose map is missing, so on that ValidationException the map is
        created (`if_not_exists`, a separate write: it cannot share the expression) and the update retried."""
        kwargs: dict[str, Any] = {"Key": _key(pk, sk), "UpdateExpression": update, "ReturnValues": returns}
        if condition:
            kwargs["ConditionExpression"] = condition
        kwargs = self._with_expressions(kwargs, values, names)
        try:
            return self._conditional("update_item", dict(kwargs))
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            if creates_map is None or not _is(exc, "ValidationException") or "document path" not in message:
                raise
        # The map's own write carries the item's expiry, so an item left by a failed retry still expires.
        create = f"SET {creates_map} = if_not_exists({creates_map}, :empty)"
        if expires_at is not None:
            create += ", #x = if_not_exists(#x, :mexp)"
        made = self._with_expressions(
            {"Key": _key(pk, sk), "UpdateExpression": create},
            {":empty": {}, ":mexp": expires_at},
            names,
        )
        self._call("update_item", **made)
        return self._conditional("update_item", kwargs)

    def put(
        self,
        pk: str,
        sk: str,
        fields: Mapping[str, Any],
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        item = {**_key(pk, sk), **{k: encode(v) for k, v in fields.items()}}
        kwargs: dict[str, Any] = {"Item": item}
        if condition:
            kwargs["ConditionExpression"] = condition
        written, old = self._conditional("put_item", self._with_expressions(kwargs, values, names))
        return written, ({"pk": pk, "sk": sk, **fields} if written else old)

    def get(self, pk: str, sk: str, consistent: bool = False) -> dict[str, Any] | None:
        found = self._call("get_item", Key=_key(pk, sk), ConsistentRead=consistent).get("Item")
        return None if found is None else {k: decode(v) for k, v in found.items()}

    def delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> bool:
        """DeleteItem; with a condition, False when it did not hold (nothing deleted)."""
        if condition is None:
            self._call("delete_item", Key=_key(pk, sk))
            return True
        kwargs = self._with_expressions({"Key": _key(pk, sk), "ConditionExpression": condition}, values, names)
        deleted, _ = self._conditional("delete_item", kwargs)
        return deleted

    def query(
        self, pk: str, sk_prefix: str = "", projection: str | None = None, *, consistent: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every item of one partition (under an sk prefix if given), following LastEvaluatedKey."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": "#pk = :pk", "ConsistentRead": consistent}
        if sk_prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(#sk, :prefix)"
        if projection:
            kwargs["ProjectionExpression"] = projection
        kwargs = self._with_expressions(kwargs, {":pk": pk, ":prefix": sk_prefix}, None)
        while True:
            page = self._call("query", **kwargs)
            for found in page.get("Items", []):
                yield {k: decode(v) for k, v in found.items()}
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _cooldown_sk(connection_id: str, model: str | None) -> str:
    return f"C#{connection_id}" if model is None else f"C#{connection_id}#M#{model}"


def _breaker(provider: str, item: Mapping[str, Any]) -> BreakerState:
    return BreakerState(
        provider=provider,
        phase=BreakerPhase(item.get("phase", BreakerPhase.CLOSED)),
        failures=int(item.get("failures", 0)),
        version=int(item.get("version", 0)),
        opened_at=float(item.get("opened_at", 0)),
        open_until=float(item.get("open_until", 0)),
        probe_owner=item.get("probe_owner"),
        probe_until=float(item.get("probe_until", 0)),
    )


_WINDOW_FIELDS = ("used_percent", "used", "limit", "remaining", "unit", "resets_at", "limited", "source")


def _window_fields(w: LiveWindow) -> dict[str, Any]:
    return {name: getattr(w, name) for name in _WINDOW_FIELDS}


def _quota(connection_id: str, item: Mapping[str, Any]) -> AccountQuota:
    windows = tuple(
        LiveWindow(name=name, **{k: v for k, v in fields.items() if k in _WINDOW_FIELDS})
        for name, fields in sorted(item.get("windows", {}).items())
    )
    return AccountQuota(connection_id, windows, float(item.get("updated_at", 0)))


def _cooldown(item: Mapping[str, Any]) -> Cooldown:
    return Cooldown(
        connection_id=item.get("connection", ""),
        model=item.get("model"),
        until=float(item.get("until", 0)),
        level=int(item.get("level", 0)),
        reason=item.get("reason", ""),
    )


class DynamoRoutingStore:
    """`shared.ports.RoutingStore` on the State table; the key layout is in the module docstring."""

    def __init__(
        self,
        table_name: str,
        region: str,
        endpoint_url: str | None = None,
        *,
        lock: threading.Lock | None = None,
        client: Any = None,
    ) -> None:
        self._items = StateItems(client, table_name, lock, client_factory(region, endpoint_url))

    @property
    def items(self) -> StateItems:
        """The table's item access (client and lock), for stores that share the State table."""
        return self._items

    # --- the routing view ---------------------------------------------------------------------------
    def load(self, now: float) -> RoutingView:
        """One Query of the ROUTE partition (paged). Cooldowns come back while active and also while they
        hold a backoff level, so the caller can see what `clear_cooldown` would reset (`Cooldown.active(now)`
        tells them apart). Eventually consistent: the view is a short-lived cache anyway."""
        breakers: dict[str, BreakerState] = {}
        cooldowns: dict[tuple[str, str | None], Cooldown] = {}
        uses: dict[str, dict[str, int]] = {}
        quotas: dict[str, AccountQuota] = {}
        counts: dict[tuple[str, str], QuotaCount] = {}
        for item in self._items.query(ROUTE):
            sk: str = item["sk"]
            if sk.startswith("B#"):
                breakers[sk[2:]] = _breaker(sk[2:], item)
            elif sk.startswith("C#"):
                cooldown = _cooldown(item)
                if item.get("expires_at", 0) > now and (cooldown.active(now) or cooldown.level > 0):
                    cooldowns[(cooldown.connection_id, cooldown.model)] = cooldown
            elif sk.startswith("U#"):
                hour, _, name = sk[2:].partition("#")
                if hour == str(int(now // 3600)):  # this hour's counts only
                    uses[name] = {member: int(n) for member, n in item.get("uses", {}).items()}
            elif sk.startswith("Q#"):
                quotas[sk[2:]] = _quota(sk[2:], item)
            elif sk.startswith("QC#") and item.get("expires_at", 0) > now:
                conn, _, window = sk[3:].rpartition("#")
                counts[(conn, window)] = QuotaCount(
                    float(item.get("start", 0)), int(item.get("tokens", 0)), int(item.get("requests", 0))
                )
        return RoutingView(
            breakers=breakers, cooldowns=cooldowns, uses=uses, quotas=quotas, quota_counts=counts, loaded_at=now
        )

    # --- circuit breakers ---------------------------------------------------------------------------
    def record_failure(self, provider: str, now: float, threshold: int, reset_seconds: float) -> BreakerState:
        """Counts only while closed (open or half-open: the stored state comes back, uncounted). The call
        whose count reaches `threshold` opens the breaker with a second write conditioned on the version it
        saw, the phase still closed and the count still there (a success in between breaks the streak)."""
        sk = f"B#{provider}"
        counted, item = self._items.update(
            ROUTE,
            sk,
            "SET #p = if_not_exists(#p, :closed) ADD #f :one",
            "attribute_not_exists(#p) OR #p = :closed",
            {":closed": BreakerPhase.CLOSED.value, ":one": 1},
        )
        if not counted or item.get("failures", 0) < threshold:
            return _breaker(provider, item)
        seen = "#v = :seen" if "version" in item else "attribute_not_exists(#v)"
        _, item = self._items.update(
            ROUTE,
            sk,
            "SET #p = :open, #oa = :now, #ou = :until, #f = :zero ADD #v :one",
            f"{seen} AND #p = :closed AND #f >= :threshold",
            {
                ":open": BreakerPhase.OPEN.value,
                ":closed": BreakerPhase.CLOSED.value,
                ":now": now,
                ":until": now + reset_seconds,
                ":zero": 0,
                ":one": 1,
                ":seen": item.get("version", 0),
                ":threshold": threshold,
            },
        )
        return _breaker(provider, item)  # as stored: ours, or what the winner of the race left

    def record_success(self, provider: str) -> BreakerState:
        _, item = self._items.update(
            ROUTE, f"B#{provider}", "SET #f = :zero", "#p = :closed", {":zero": 0, ":closed": BreakerPhase.CLOSED.value}
        )
        return _breaker(provider, item)

    def try_probe(self, provider: str, owner: str, now: float, probe_seconds: float) -> bool:
        won, _ = self._items.update(
            ROUTE,
            f"B#{provider}",
            "SET #p = :half, #po = :me, #pu = :probe_until ADD #v :one",
            "(#p = :open AND #ou <= :now) OR (#p = :half AND #pu < :now)",
            {
                ":half": BreakerPhase.HALF_OPEN.value,
                ":open": BreakerPhase.OPEN.value,
                ":me": owner,
                ":now": now,
                ":probe_until": now + probe_seconds,
                ":one": 1,
            },
            returns="NONE",
        )
        return won

    def finish_probe(self, provider: str, owner: str, ok: bool, now: float, reset_seconds: float) -> BreakerState:
        """Any prober's success closes a half-open breaker (the provider answered, even if that probe's claim
        lapsed and another took over); a failure reopens it only from the current owner. A write whose
        condition fails returns the state as stored (ALL_OLD): no second read."""
        if ok:
            update = "SET #p = :closed, #f = :zero REMOVE #po, #pu ADD #v :one"
            condition = "#p = :half"
        else:
            update = "SET #p = :open, #oa = :now, #ou = :until REMOVE #po, #pu ADD #v :one"
            condition = "#p = :half AND #po = :me"
        _, item = self._items.update(
            ROUTE,
            f"B#{provider}",
            update,
            condition,
            {
                ":closed": BreakerPhase.CLOSED.value,
                ":open": BreakerPhase.OPEN.value,
                ":half": BreakerPhase.HALF_OPEN.value,
                ":me": owner,
                ":zero": 0,
                ":one": 1,
                ":now": now,
                ":until": now + reset_seconds,
            },
        )
        return _breaker(provider, item)

    def reset_breaker(self, provider: str) -> None:
        self._items.delete(ROUTE, f"B#{provider}")

    # --- cooldowns ----------------------------------------------------------------------------------
    def mark_cooldown(
        self, connection_id: str, model: str | None, now: float, policy: Policy, hint: float | None, reason: str
    ) -> Cooldown:
        """The write assumes a stored level (first 0) and holds only while no cooldown is active and the
        level is still that one. When it fails, the stored item decides: an active cooldown comes back
        untouched; a lapsed one shows its level, and the next try raises exactly that (at most 3 tries).
        The item outlives `until` by COOLDOWN_MEMORY, so the level keeps doubling across cooldowns that
        follow each other within a day; an item past its `expires_at` counts as level 0."""
        sk = _cooldown_sk(connection_id, model)
        with_model = "" if model is None else ", #md = :model"
        stored_level = backoff = 0
        item: dict[str, Any] = {}
        for _ in range(3):
            until = now + max(policy.cooldown(backoff), hint or 0.0)
            written, item = self._items.update(
                ROUTE,
                sk,
                f"SET #un = :until, #lv = :level, #rs = :reason, #cn = :conn{with_model}, #x = :expires",
                "(attribute_not_exists(#un) OR #un <= :now) AND (attribute_not_exists(#lv) OR #lv = :seen)",
                {
                    ":until": until,
                    ":level": min(backoff + 1, policy.max_steps),
                    ":reason": reason,
                    ":conn": connection_id,
                    ":model": model,
                    ":expires": math.ceil(until + COOLDOWN_MEMORY),
                    ":now": now,
                    ":seen": stored_level,
                },
            )
            if written or item.get("until", 0) > now:
                return _cooldown(item)
            stored_level = int(item.get("level", 0))
            backoff = stored_level if item.get("expires_at", 0) > now else 0
        return _cooldown(item)  # three lost races in a row: what the last one left

    def clear_cooldown(self, connection_id: str, model: str | None, now: float) -> None:
        self._items.delete(
            ROUTE, _cooldown_sk(connection_id, model), "attribute_not_exists(#un) OR #un <= :now", {":now": now}
        )

    def reset_cooldowns(self, connection_id: str | None = None) -> int:
        """One paged Query, then one DeleteItem per cooldown."""
        removed = 0
        prefix = "C#" if connection_id is None else f"C#{connection_id}"
        for item in self._items.query(ROUTE, prefix, projection="#sk, #cn"):
            # `C#ab` also prefixes `C#abc`: the stored connection decides.
            if connection_id is None or item.get("connection") == connection_id:
                self._items.delete(ROUTE, item["sk"])
                removed += 1
        return removed

    # --- counters -----------------------------------------------------------------------------------
    def advance_cursor(self, name: str, by: int) -> int:
        _, item = self._items.update(ROUTE, f"RR#{name}", "ADD #c :by", values={":by": by}, returns="UPDATED_NEW")
        return int(item["count"])

    def add_uses(self, name: str, member: str, now: float, by: int = 1) -> None:
        """`ADD uses.<member>` on the hour's item (`U#<hour>#<name>`, expiring an hour after the hour): one
        call, three in an hour's first use of a name (the map is created, see `update`)."""
        hour = int(now // 3600)
        self._items.update(
            ROUTE,
            f"U#{hour}#{name}",
            "ADD #u.#m :by SET #x = if_not_exists(#x, :expires)",
            values={":by": by, ":expires": (hour + 2) * 3600},
            names={"#m": member},
            returns="NONE",
            creates_map="#u",
            expires_at=(hour + 2) * 3600,
        )

    # --- rate limits, idempotency, response cache: routing_limits.py --------------------------------
    def acquire(self, key: str, now: float, limit: RateLimit, slot_id: str, slot_seconds: float) -> Admission:
        return routing_limits.acquire(self._items, key, now, limit, slot_id, slot_seconds)

    def release(self, key: str, slot_id: str) -> None:
        routing_limits.release(self._items, key, slot_id)

    def claim(self, scope: str, owner: str, now: float, ttl: float) -> Claim:
        return routing_limits.claim(self._items, scope, owner, now, ttl)

    def complete(self, scope: str, owner: str, reply: StoredReply, now: float, ttl: float) -> None:
        routing_limits.complete(self._items, scope, owner, reply, now, ttl)

    def abandon(self, scope: str, owner: str) -> None:
        routing_limits.abandon(self._items, scope, owner)

    def cache_get(self, key: str, now: float) -> StoredReply | None:
        return routing_limits.cache_get(self._items, key, now)

    def cache_put(self, key: str, reply: StoredReply, now: float, ttl: float) -> None:
        routing_limits.cache_put(self._items, key, reply, now, ttl)

    # --- latency histograms -------------------------------------------------------------------------
    def add_latency(self, minute: int, provider: str, buckets: Mapping[int, int]) -> None:
        counted = {index: n for index, n in buckets.items() if n}
        if not counted:
            return
        self._items.update(
            f"LAT#{minute}",
            provider,
            "ADD " + ", ".join(f"#b{i} :b{i}" for i in counted) + " SET #x = :expires",
            values={**{f":b{i}": n for i, n in counted.items()}, ":expires": minute * 60 + LATENCY_KEEP},
            names={f"#b{i}": f"b{i}" for i in counted},
            returns="NONE",
        )

    # --- quota windows ------------------------------------------------------------------------------
    def put_quota(self, quota: AccountQuota) -> None:
        """Replace an account's live windows; an older reading never replaces a newer one (the poll and
        the answers of several instances race)."""
        windows = {w.name: {k: v for k, v in _window_fields(w).items() if v is not None} for w in quota.windows}
        newest = max((w.resets_at or 0.0 for w in quota.windows), default=0.0)
        self._items.put(
            ROUTE,
            f"Q#{quota.connection_id}",
            {
                "windows": windows,
                "updated_at": quota.updated_at,
                "expires_at": math.ceil(max(newest, quota.updated_at) + QUOTA_MEMORY),
            },
            "attribute_not_exists(#ua) OR #ua <= :ua",
            {":ua": quota.updated_at},
            {"#ua": "updated_at"},
        )

    def add_quota_use(
        self, connection_id: str, window: str, start: float, live_since: float, tokens: int, expires_at: float
    ) -> tuple[float, int, int]:
        """One conditional ADD while the stored window is still running; otherwise one conditional reset
        (and, when another instance reset it first, the ADD again). Exact under any concurrency."""
        sk = f"QC#{connection_id}#{window}"
        for _ in range(4):
            added, item = self._items.update(
                ROUTE,
                sk,
                "ADD #tk :tokens, #rq :one",
                "#st >= :since",
                {":tokens": tokens, ":one": 1, ":since": live_since},
                {"#tk": "tokens", "#rq": "requests", "#st": "start"},
            )
            if added:
                return float(item["start"]), int(item["tokens"]), int(item["requests"])
            fields = {"start": start, "tokens": tokens, "requests": 1, "expires_at": math.ceil(expires_at)}
            restarted, item = self._items.put(
                ROUTE, sk, fields, "attribute_not_exists(#st) OR #st < :since", {":since": live_since}, {"#st": "start"}
            )
            if restarted:
                return start, tokens, 1
        raise RuntimeError(f"quota window {sk} kept changing under four attempts")

    def load_latency(self, since_minute: int) -> dict[str, dict[int, int]]:
        """Admin-only (the health view), never on the hot path: one Query per minute partition from
        `since_minute` to the current minute, at most the last LATENCY_MINUTES of them."""
        current = int(time.time() // 60)
        totals: dict[str, dict[int, int]] = {}
        for minute in range(max(since_minute, current - LATENCY_MINUTES + 1), current + 1):
            for item in self._items.query(f"LAT#{minute}"):
                counts = totals.setdefault(item["sk"], {})
                for name, value in item.items():
                    if name[:1] == "b" and name[1:].isdigit():
                        counts[int(name[1:])] = counts.get(int(name[1:]), 0) + int(value)
        return totals
