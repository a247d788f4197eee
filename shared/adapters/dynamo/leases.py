"""LeaseStore on the State table: exclusive, self-expiring leases.

    pk LEASE   sk <name>   owner, until (epoch seconds, compared in conditions), expires_at (TTL)

Names are the caller's: the token refresher takes `REFRESH#<connection id>`, or `REFRESH#provider:<id>` for
a provider whose accounts must refresh one at a time. Taking a lease is one conditional PutItem that holds
when no item exists or the stored one lapsed (`until < now`); TTL deletes lapsed items late, so the
condition never trusts their absence alone. Giving it back is one DeleteItem conditioned on the owner.
"""

from __future__ import annotations

import math

from shared.adapters.dynamo.routing_state import StateItems

LEASE = "LEASE"
_NAMES = {"#ow": "owner"}


class DynamoLeaseStore:
    """`shared.ports.LeaseStore` on the State table (shares the routing store's client: `routing.items`)."""

    def __init__(self, items: StateItems) -> None:
        self._items = items

    def acquire(self, name: str, owner: str, now: float, seconds: float) -> bool:
        until = now + seconds
        taken, _ = self._items.put(
            LEASE,
            name,
            {"owner": owner, "until": until, "expires_at": math.ceil(until)},
            "attribute_not_exists(#pk) OR #un < :now",
            {":now": now},
        )
        return taken

    def release(self, name: str, owner: str) -> bool:
        return self._items.delete(LEASE, name, "#ow = :me", {":me": owner}, _NAMES)
