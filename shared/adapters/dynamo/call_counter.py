"""Count the DynamoDB calls this process makes, by operation (`OMNIROUTE_COUNT_STORE_CALLS=true`).

For benchmarks and owners who want to see what the hot path costs: every botocore client (pynamodb's and
ours) goes through `BaseClient._make_api_call`, so one wrapper there sees every call, whatever made it.
Off by default: the wrapper costs a dictionary update per call.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import botocore.client

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_installed = False

READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def install() -> None:
    global _installed
    if _installed:
        return
    client_class: Any = botocore.client.BaseClient
    original = client_class._make_api_call

    def counted(self: Any, operation_name: str, api_params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            with _lock:
                _counts[operation_name] += 1
                if operation_name == "BatchWriteItem":  # what DynamoDB bills: one write unit per item
                    _counts["BatchWriteItem.items"] += sum(len(v) for v in api_params["RequestItems"].values())
        return original(self, operation_name, api_params)

    client_class._make_api_call = counted
    _installed = True


def installed() -> bool:
    return _installed


def counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)
