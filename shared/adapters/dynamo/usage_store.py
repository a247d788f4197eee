"""UsageStore on the Usage table through botocore's low-level client (batch writes, typed JSON).

Key layout (periods are UTC):

    pk REQ#<yyyy-mm-dd>          sk <yyyy-mm-ddThh:mm:ss.ffffffZ>#<request id>   one request
    pk ROLL#H#<yyyy-mm-dd>       sk <hh>#G#<group hash> | <hh>#META               hour rollups of a day
    pk ROLL#D#<yyyy-mm-dd>       sk G#<group hash> | #META                        day rollup
    pk ROLL#M#<yyyy-mm>          sk G#<group hash> | #META                        month rollup
    pk LOG#<yyyy-mm-dd>          sk <time>#<request id>                           request log (opt-in)

A request's sort key starts with its time, so an hour is a `begins_with` range of its day and the
newest requests come first with `ScanIndexForward=false`. A day's hour rollups share one partition, so
analytics reads a day's 24 hours with one Query (and can regroup them by any time zone's days). The
request id in the key makes a retried write land on the same item: an event cannot be counted twice.
`#META` marks a rolled-up period (a period with no traffic is rolled up too: zero groups and its META).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.adapters.dynamo.routing_state import LazyClient, client_factory, decode, encode
from shared.domain.usage import Usage, UsageEvent, UsageTotals

BATCH = 25  # BatchWriteItem's limit
META = "#META"


def event_sk(at: float, request_id: str) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "#" + request_id


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def _event_item(e: UsageEvent, expires_at: float) -> dict[str, Any]:
    u = e.usage
    fields: dict[str, Any] = {
        "pk": f"REQ#{day_of(e.at)}", "sk": event_sk(e.at, e.request_id), "rid": e.request_id, "at": e.at,
        "provider": e.provider, "model": e.model, "requested": e.requested, "client": e.client,
        "stream": e.stream, "status": e.status, "in": u.input, "out": u.output, "cached": u.cached,
        "cc": u.cache_creation, "rsn": u.reasoning, "est": e.estimated, "cost": e.cost,
        "lat": round(e.latency_ms, 3), "att": e.attempts, "expires_at": int(expires_at),
    }  # fmt: skip
    optional: dict[str, Any] = {"conn": e.connection_id, "key": e.key_id, "combo": e.combo, "err": e.error}
    if e.ttft_ms is not None:
        optional["ttft"] = round(e.ttft_ms, 3)
    fields.update({k: v for k, v in optional.items() if v is not None})
    return {k: encode(v) for k, v in fields.items()}


def _event(item: Mapping[str, Any]) -> UsageEvent:
    usage = Usage(
        input=int(item.get("in", 0)), output=int(item.get("out", 0)), cached=int(item.get("cached", 0)),
        cache_creation=int(item.get("cc", 0)), reasoning=int(item.get("rsn", 0)),
    )  # fmt: skip
    ttft = item.get("ttft")
    return UsageEvent(
        request_id=item.get("rid", ""), at=float(item.get("at", 0)), provider=item.get("provider", ""),
        model=item.get("model", ""), requested=item.get("requested", ""), connection_id=item.get("conn"),
        key_id=item.get("key"), combo=item.get("combo"), client=item.get("client", ""),
        stream=bool(item.get("stream", False)), status=int(item.get("status", 0)), usage=usage,
        estimated=bool(item.get("est", False)), cost=float(item.get("cost", 0)),
        latency_ms=float(item.get("lat", 0)), ttft_ms=float(ttft) if ttft is not None else None,
        attempts=int(item.get("att", 1)), error=item.get("err"),
    )  # fmt: skip


_TOTALS = (
    ("requests", "requests"), ("errors", "errors"), ("input", "in"), ("output", "out"), ("cached", "cached"),
    ("cache_creation", "cc"), ("reasoning", "rsn"), ("estimated", "est"), ("ttft_count", "ttftn"),
)  # fmt: skip


def _group_sk(t: UsageTotals, prefix: str = "") -> str:
    digest = hashlib.sha256("\x1f".join(t.group).encode()).hexdigest()[:24]
    return f"{prefix}G#{digest}"


def _rollup_key(level: str, period: str) -> tuple[str, str]:
    """(partition, sort-key prefix) of a period's rollup: hours live in their day's partition."""
    if level == "H":
        day, _, hour = period.partition("T")
        return f"ROLL#H#{day}", f"{hour}#"
    return f"ROLL#{level}#{period}", ""


def _totals_item(pk: str, prefix: str, t: UsageTotals, expires_at: float | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pk": pk, "sk": _group_sk(t, prefix), "provider": t.provider, "model": t.model, "conn": t.connection_id,
        "key": t.key_id, "cost": t.cost, "lat": round(t.latency_ms, 3), "ttft": round(t.ttft_ms, 3),
    }  # fmt: skip
    fields.update({attr: getattr(t, name) for name, attr in _TOTALS})
    if expires_at is not None:
        fields["expires_at"] = int(expires_at)
    return {k: encode(v) for k, v in fields.items()}


def _totals(item: Mapping[str, Any]) -> UsageTotals:
    counts = {name: int(item.get(attr, 0)) for name, attr in _TOTALS}
    return UsageTotals(
        provider=item.get("provider", ""), model=item.get("model", ""), connection_id=item.get("conn", ""),
        key_id=item.get("key", ""), cost=float(item.get("cost", 0)), latency_ms=float(item.get("lat", 0)),
        ttft_ms=float(item.get("ttft", 0)), **counts,
    )  # fmt: skip


class DynamoUsageStore:
    """`shared.ports.UsageStore` on the Usage table. `lock`: held around every call (local mode's in-process
    moto is not thread-safe for writes, DESIGN §7)."""

    def __init__(
        self,
        table_name: str,
        region: str,
        endpoint_url: str | None = None,
        *,
        lock: threading.Lock | None = None,
    ) -> None:
        self._table = table_name
        # events go out in batches: a longer read timeout and more retries than the routing state's calls
        self._client = LazyClient(
            None, client_factory(region, endpoint_url, attempts=5, read_timeout=10, pool=20), lock
        )

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        return self._client.call(operation, **kwargs)

    def _write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem in chunks of 25, resending what DynamoDB hands back unprocessed (with backoff)."""
        for start in range(0, len(requests), BATCH):
            pending: list[dict[str, Any]] = requests[start : start + BATCH]
            delay = 0.05
            while pending:
                answer = self._call("batch_write_item", RequestItems={self._table: pending})
                pending = answer.get("UnprocessedItems", {}).get(self._table, [])
                if pending:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)

    def _query(
        self, pk: str, prefix: str = "", *, newest_first: bool = False, limit: int | None = None,
        before: str | None = None,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        names = {"#pk": "pk"}
        values: dict[str, Any] = {":pk": {"S": pk}}
        condition = "#pk = :pk"
        if before is not None:
            names["#sk"] = "sk"
            values[":before"] = {"S": before}
            condition += " AND #sk < :before"
        elif prefix:
            names["#sk"] = "sk"
            values[":prefix"] = {"S": prefix}
            condition += " AND begins_with(#sk, :prefix)"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            page = self._call("query", **kwargs)
            for raw in page.get("Items", []):
                yield {k: decode(v) for k, v in raw.items()}
            if "LastEvaluatedKey" not in page or limit is not None:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- requests -------------------------------------------------------------------------------------
    def put_events(self, events: Sequence[UsageEvent], expires_at: float) -> None:
        self._write([{"PutRequest": {"Item": _event_item(e, expires_at)}} for e in events])

    def events(self, day: str, hour_prefix: str = "") -> list[UsageEvent]:
        return [_event(item) for item in self._query(f"REQ#{day}", hour_prefix)]

    def recent_events(self, day: str, limit: int, before: str | None = None) -> tuple[list[UsageEvent], str | None]:
        items = list(self._query(f"REQ#{day}", newest_first=True, limit=limit, before=before))
        more = items[-1]["sk"] if len(items) == limit else None
        return [_event(item) for item in items], more

    # --- rollups --------------------------------------------------------------------------------------
    def put_rollup(self, level: str, period: str, groups: Sequence[UsageTotals], expires_at: float | None) -> None:
        pk, prefix = _rollup_key(level, period)
        meta_sk = prefix + META
        stale = {item["sk"] for item in self._query(pk, prefix)} - {meta_sk}
        fresh = [_totals_item(pk, prefix, t, expires_at) for t in groups]
        stale -= {item["sk"]["S"] for item in fresh}
        requests = [{"PutRequest": {"Item": item}} for item in fresh]
        requests += [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for sk in sorted(stale)]
        self._write(requests)
        meta: dict[str, Any] = {"pk": pk, "sk": meta_sk, "groups": len(fresh), "rolled_at": time.time()}
        if expires_at is not None:
            meta["expires_at"] = int(expires_at)
        # the marker last: a period is "rolled up" only once all its groups are in place
        self._call("put_item", TableName=self._table, Item={k: encode(v) for k, v in meta.items()})

    def rollup(self, level: str, period: str) -> list[UsageTotals] | None:
        pk, prefix = _rollup_key(level, period)
        items = list(self._query(pk, prefix))
        if not any(item["sk"] == prefix + META for item in items):
            return None
        return [_totals(item) for item in items if not item["sk"].endswith(META)]

    def hour_rollups(self, day: str) -> dict[str, list[UsageTotals]]:
        """The rolled-up hours of a UTC day (`"00"`..`"23"` → groups), one Query; hours not rolled up are absent."""
        hours: dict[str, list[UsageTotals]] = {}
        rolled: set[str] = set()
        for item in self._query(f"ROLL#H#{day}"):
            hour, _, rest = item["sk"].partition("#")
            if rest == META:
                rolled.add(hour)
            else:
                hours.setdefault(hour, []).append(_totals(item))
        return {hour: hours.get(hour, []) for hour in sorted(rolled)}

    # --- request logs ---------------------------------------------------------------------------------
    def put_log(self, at: float, request_id: str, entry: Mapping[str, Any], expires_at: float) -> None:
        # JSON text: a log holds lists and nulls, and is only ever read whole
        item: dict[str, Any] = {"pk": f"LOG#{day_of(at)}", "sk": event_sk(at, request_id)}
        item.update(entry=orjson.dumps(entry).decode(), expires_at=int(expires_at))
        self._call("put_item", TableName=self._table, Item={k: encode(v) for k, v in item.items()})

    def logs(self, day: str, limit: int, before: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        items = list(self._query(f"LOG#{day}", newest_first=True, limit=limit, before=before))
        more = items[-1]["sk"] if len(items) == limit else None
        now = time.time()
        # TTL deletes late: an expired log is gone for the reader at its expiry
        return [orjson.loads(item["entry"]) for item in items if item.get("expires_at", 0) > now], more
