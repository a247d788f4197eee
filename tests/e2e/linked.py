"""Linked subscription accounts on a real `omniroute serve`, for the executor end-to-end modules.

`linked_gateway` starts the server with every given auth host mapped to a closed loopback port
(`OMNIROUTE_OAUTH_HOSTS`), so nothing can reach a real provider whatever a background job decides, links the
accounts through `POST /api/oauth/link` (as `omniroute login` does) with `baseUrl` on the fakes, and checks at
the end that no token reached the server's log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.harness import Gateway
from tests.fakes.server import free_port

MONTH = 30 * 24 * 3600


@dataclass(frozen=True)
class Account:
    provider: str
    token: str
    base_url: str
    meta: dict[str, Any] = field(default_factory=dict)


def link(gw: Gateway, account: Account) -> str:
    """Push one account; the answer shows its status and never its token. Returns the connection id."""
    pushed = gw.admin_post(
        "/oauth/link",
        {
            "provider": account.provider,
            "tokens": {"accessToken": account.token, "refreshToken": f"rt-{account.provider}", "expiresIn": MONTH},
            "meta": {"email": f"{account.provider}@example.com", **account.meta},
            "baseUrl": account.base_url,
        },
    )
    linked: dict[str, Any] = pushed["account"]
    assert linked["oauth"]["status"] == "active" and account.token not in json.dumps(pushed)
    return str(linked["id"])


@contextmanager
def linked_gateway(data_dir: Path, auth_hosts: Iterable[str], accounts: Iterable[Account]) -> Iterator[Gateway]:
    dead = f"http://127.0.0.1:{free_port()}"
    gateway = Gateway(
        data_dir=data_dir, env_extra={"OMNIROUTE_OAUTH_HOSTS": json.dumps(dict.fromkeys(auth_hosts, dead))}
    ).start()
    accounts = list(accounts)
    try:
        for account in accounts:
            link(gateway, account)
        yield gateway
    finally:
        gateway.stop()
    log = gateway.log()
    assert not [a.provider for a in accounts if a.token in log], "a token reached the log"


def usage_event(gw: Gateway, request_id: str) -> dict[str, Any]:
    """The usage event of one request (written in the background: polled for, briefly)."""
    deadline = time.monotonic() + 5
    while True:
        with gw.admin() as api:
            items = api.get("/usage/history", params={"limit": 200}).json()["items"]
        found = [e for e in items if e["requestId"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no usage event for {request_id}"
            event: dict[str, Any] = found[0]
            return event
        time.sleep(0.05)
