"""What accounting costs: DynamoDB calls per request with usage recording on, and the bill per million.

    python -m bench.usage [--calls 200]

Starts the fake OpenAI upstream and `omniroute serve` (as bench.overhead does) with
`OMNIROUTE_COUNT_STORE_CALLS=true`, so every botocore DynamoDB call of the gateway process is counted, and
`OMNIROUTE_USAGE_STORE=dynamodb`, so usage and budget spend go to the embedded DynamoDB as they do in the
cloud (locally they default to a SQLite file). Then it sends sequential requests and a concurrent burst
(16 at a time) for each case:

    plain         a key without a budget, an account without configured quotas: the event only
    budget        a key with a daily budget: one consistent read before the call, one ADD after
    budget x3     daily, weekly and monthly limits: still one read, three ADDs
    quota         an account with a configured daily window: one conditional ADD
    request log   the opt-in request log on: one more PutItem

The counts include the background refresh of the routing view (one Query at most every 2 s) and exclude
the admin calls that read the counters. Write units count each item of a BatchWriteItem. Cost per million
requests uses DynamoDB on-demand list prices (us-east-1: $0.625 per million write units, $0.125 per
million read units; every item written here is under 1 KB = 1 write unit; a strongly consistent read of
under 4 KB = 1 read unit). Local mode lets events wait up to a quarter second to share a batch, so even
sequential requests share calls there; in Lambda each invocation writes its own.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.overhead import UPSTREAM_MODEL, Servers, machine_info, start_stack
from bench.routing import Admin, delta

WRITE_UNIT_USD = 0.625 / 1e6
READ_UNIT_USD = 0.125 / 1e6


def configure(admin: Admin, fake_url: str) -> dict[str, str]:
    for n, quotas in ((1, None), (2, [{"window": "daily", "tokens": 10**12}])):
        node = admin.call(
            "POST", "/provider-nodes", {"name": f"Usage {n}", "prefix": f"use{n}", "baseUrl": fake_url + "/v1"}
        )["node"]
        body: dict[str, Any] = {"provider": node["id"], "name": f"use-{n}", "apiKey": "sk-bench-upstream-01234"}
        if quotas:
            body["quotas"] = quotas
        admin.call("POST", "/providers", body)
    keys = {}
    for name, budget in (
        ("plain", None),
        ("budget", {"dailyLimitUsd": 1_000_000}),
        ("budget3", {"dailyLimitUsd": 1_000_000, "weeklyLimitUsd": 1_000_000, "monthlyLimitUsd": 1_000_000}),
    ):
        created = admin.call("POST", "/keys", {"name": name})
        if budget:
            admin.call("PUT", f"/budgets/{created['id']}", budget)
        keys[name] = created["key"]
    admin.call("PATCH", "/pricing", {"use1": {UPSTREAM_MODEL: {"input": 1.0, "output": 2.0}}})
    admin.call("PATCH", "/settings", {"requireApiKey": True})
    return keys


async def send(port: int, key: str, model: str, n: int, concurrency: int) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as client:

        async def one() -> None:
            async with limit:
                resp = await client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
                if resp.status_code != 200:
                    raise RuntimeError(f"{model}: {resp.status_code} {resp.text[:300]}")

        await asyncio.gather(*(one() for _ in range(n)))


def calls(admin: Admin, port: int, key: str, model: str, n: int, concurrency: int) -> tuple[float, float, float]:
    """(reads, write calls, write units) per request, net of the counting calls. A BatchWriteItem call is
    one write call but one write unit per item (every item here is under 1 KB)."""
    probe = delta(admin.store_calls(), admin.store_calls())
    before = admin.store_calls()
    asyncio.run(send(port, key, model, n, concurrency))
    time.sleep(0.8)  # the last flush lands (locally events wait up to a quarter second to share a batch)
    after = admin.store_calls()
    reads, writes = delta(before, after)
    batches = after.get("BatchWriteItem", 0) - before.get("BatchWriteItem", 0)
    items = after.get("BatchWriteItem.items", 0) - before.get("BatchWriteItem.items", 0)
    units = writes - probe[1] - batches + items
    return (reads - probe[0]) / n, (writes - probe[1]) / n, units / n


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="omniroute-bench-usage-"))
    servers = Servers(workdir)
    started = time.monotonic()
    try:
        # usage and spend in the embedded DynamoDB, as in the cloud (locally they default to SQLite)
        env = {"OMNIROUTE_COUNT_STORE_CALLS": "true", "OMNIROUTE_USAGE_STORE": "dynamodb"}
        fake, _bare, gateway, token = start_stack(servers, workdir, env)
        admin = Admin(gateway.base_url, token)
        keys = configure(admin, fake.base_url)
        print("OmniRoute Edge: what accounting costs (issue 6)")
        for line in machine_info():
            print("  " + line)
        print()
        model = f"use1/{UPSTREAM_MODEL}"
        cases = [
            ("plain", keys["plain"], model, False),
            ("budget (daily)", keys["budget"], model, False),
            ("budget x3 (daily, weekly, monthly)", keys["budget3"], model, False),
            ("quota (configured daily window)", keys["plain"], f"use2/{UPSTREAM_MODEL}", False),
            ("request log on", keys["plain"], model, True),
        ]
        n = args.calls
        print(f"DynamoDB calls per request ({n} requests per case)")
        print("  c = concurrency. Events queued together share one BatchWriteItem call: fewer calls, the same")
        print("  write units (what DynamoDB bills).")
        print(f"  {'case':<38}{'c':>4}{'reads':>8}{'calls':>8}{'units':>8}{'$ per 1M requests':>20}")
        for label, key, target, logs in cases:
            if logs:
                admin.call("PATCH", "/settings", {"requestLogs": {"enabled": True, "ttlHours": 24}})
            for concurrency in (1, 16):
                reads, writes, units = calls(admin, gateway.port, key, target, n, concurrency)
                usd = (units * WRITE_UNIT_USD + reads * READ_UNIT_USD) * 1e6
                print(f"  {label:<38}{concurrency:>4}{reads:>8.2f}{writes:>8.2f}{units:>8.2f}{usd:>20.3f}")
            if logs:
                admin.call("PATCH", "/settings", {"requestLogs": {"enabled": False}})
        history = admin.call("GET", "/usage/history?limit=1")["items"]
        print()
        print(f"  one event as stored: {history[0] if history else 'none'}")
        print(f"Finished in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        servers.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.usage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="requests per case and concurrency (200)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
