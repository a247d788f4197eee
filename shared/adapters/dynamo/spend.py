"""SpendStore on the State table: what each API key spent per budget period.

    pk BUDGET#<key id>   sk <period id> (`daily:2026-11-22`, `weekly:2026-11-16`, `monthly:2026-11`)
                         usd (Number, ADD), requests (Number, ADD), expires_at

Adding is one `ADD` per period (atomic: concurrent instances never lose an update). Reading is one
strongly consistent Query of the key's partition, so a check sees every cost added before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.adapters.dynamo.routing_state import StateItems

SPEND_MEMORY = 7 * 86_400  # a period's counter is kept a week after it ended (the admin API shows the last ones)


class DynamoSpendStore:
    def __init__(self, items: StateItems) -> None:
        self._items = items

    def add_spend(self, key_id: str, periods: Sequence[tuple[str, float]], usd: float) -> dict[str, float]:
        totals: dict[str, float] = {}
        for period_id, ends_at in periods:
            _, item = self._items.update(
                f"BUDGET#{key_id}",
                period_id,
                "ADD #usd :usd, #rq :one SET #x = if_not_exists(#x, :exp)",
                values={":usd": usd, ":one": 1, ":exp": math.ceil(ends_at + SPEND_MEMORY)},
                names={"#usd": "usd", "#rq": "requests"},
            )
            totals[period_id] = float(item.get("usd", 0))
        return totals

    def spend(self, key_id: str, period_ids: Sequence[str]) -> dict[str, float]:
        wanted = set(period_ids)
        return {
            item["sk"]: float(item.get("usd", 0))
            for item in self._items.query(f"BUDGET#{key_id}", consistent=True)
            if item["sk"] in wanted
        }
