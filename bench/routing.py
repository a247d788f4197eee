"""What routing costs on the happy path: added latency of a 3-target combo, and DynamoDB calls per request.

    python -m bench.routing [--requests 1500] [--quick]

Starts the fake OpenAI upstream, the bare proxy and `omniroute serve` (as bench.overhead does), with three
provider nodes on the fake and these models, measured side by side at concurrency 1 (interleaved rounds,
raw-socket keep-alive client, every answer checked):

    direct     the fake itself                               gpt-4o-mini
    bare       the bare FastAPI + httpx proxy                gpt-4o-mini
    model      the gateway, one provider node                bench1/gpt-4o-mini
    combo      the gateway, combo `trio` of three targets    trio   (priority: the first answers)

Then, with `OMNIROUTE_COUNT_STORE_CALLS=true` (every botocore DynamoDB call of the gateway process is
counted), the DynamoDB reads and writes per request of: the combo with each target strategy, an account
with a requests-per-minute limit, a cacheable request (temperature 0) answered from the cache, and a request
with an Idempotency-Key. The count includes the background refresh of the routing view (one Query at most
every 2 s); the admin calls that read the counters are measured alone and subtracted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.overhead import UPSTREAM_MODEL, Servers, Target, machine_info, measure_latency, ms, start_stack
from shared.adapters.dynamo.call_counter import READS, WRITES

STRATEGIES = ("priority", "round-robin", "weighted", "random", "least-used", "cost-optimized", "p2c")


class Admin:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url + "/api", headers={"authorization": f"Bearer {token}"}, timeout=10, trust_env=False
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = self.http.request(method, path, json=body)
        if resp.status_code >= 300:
            raise RuntimeError(f"{method} /api{path} answered {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    def store_calls(self) -> dict[str, int]:
        counts: dict[str, int] = self.call("GET", "/health").get("storeCalls") or {}
        return counts


def configure(admin: Admin, fake_url: str) -> str:
    for n in (1, 2, 3, 4):
        node = admin.call(
            "POST", "/provider-nodes", {"name": f"Bench {n}", "prefix": f"bench{n}", "baseUrl": fake_url + "/v1"}
        )["node"]
        body: dict[str, Any] = {"provider": node["id"], "name": f"bench-{n}", "apiKey": "sk-bench-upstream-01234"}
        if n == 4:  # outside the combos
            body["rateLimit"] = {"rpm": 100_000}  # a limit that never refuses: its check still costs a write
        admin.call("POST", "/providers", body)
    models = [f"bench{n}/{UPSTREAM_MODEL}" for n in (1, 2, 3)]
    admin.call("POST", "/combos", {"name": "trio", "models": models})
    for strategy in STRATEGIES:
        admin.call("POST", "/combos", {"name": f"trio-{strategy}", "models": models, "strategy": strategy})
    key: str = admin.call("POST", "/keys", {"name": "bench"})["key"]
    return key


def delta(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    reads = sum(after.get(op, 0) - before.get(op, 0) for op in READS)
    writes = sum(after.get(op, 0) - before.get(op, 0) for op in WRITES)
    return reads, writes


def count_calls(
    admin: Admin, port: int, key: str, body: dict[str, Any], n: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    """DynamoDB (reads, writes) per request over n sequential requests, net of the counting calls."""
    probe_before = admin.store_calls()
    probe_after = admin.store_calls()
    probe_reads, probe_writes = delta(probe_before, probe_after)  # what one counting call costs
    before = admin.store_calls()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as client:
        for i in range(n):
            sent = {"authorization": f"Bearer {key}", **(headers or {})}
            if "idempotency-key" in sent:
                sent["idempotency-key"] = f"{sent['idempotency-key']}-{i}"
            resp = client.post("/v1/chat/completions", json=body, headers=sent)
            if resp.status_code != 200:
                raise RuntimeError(f"{body['model']}: {resp.status_code} {resp.text[:300]}")
    time.sleep(0.3)  # background writes (use counts, slot releases) land
    after = admin.store_calls()
    reads, writes = delta(before, after)
    return (reads - probe_reads) / n, (writes - probe_writes) / n


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="omniroute-bench-routing-"))
    servers = Servers(workdir)
    started = time.monotonic()
    try:
        fake, bare, gateway, token = start_stack(servers, workdir, {"OMNIROUTE_COUNT_STORE_CALLS": "true"})
        fake_port, bare_port, gw_port = fake.port, bare.port, gateway.port
        admin = Admin(gateway.base_url, token)
        key = configure(admin, fake.base_url)
        targets = [
            Target("direct", fake_port, UPSTREAM_MODEL, "sk-bench-direct-0123456789", fake.proc.pid),
            Target("bare", bare_port, UPSTREAM_MODEL, "sk-bench-direct-0123456789", bare.proc.pid),
            Target("model", gw_port, f"bench1/{UPSTREAM_MODEL}", key, gateway.proc.pid),
            Target("combo", gw_port, "trio", key, gateway.proc.pid),
        ]
        print("OmniRoute Edge: routing overhead on the happy path (issue 5, DESIGN §8)")
        for line in machine_info():
            print("  " + line)
        print()
        warmup = max(20, args.requests // 10)
        print(f"Latency at concurrency 1, {args.requests} requests per target, interleaved (ms)")
        print(f"  {'':<20}{'target':<8}{'p50':>9}{'p90':>9}{'p99':>9}{'mean':>9}")
        verdicts: list[bool] = []
        for stream in (False, True):
            result = measure_latency(targets, stream=stream, warmup=warmup, rounds=args.requests)
            kinds = [("non-stream", result.total)] if not stream else [("stream", result.total), ("TTFB", result.ttfb)]
            for label, dists in kinds:
                summaries = {name: d.summary() for name, d in dists.items()}
                for name, (p50, p90, p99, mean) in summaries.items():
                    print(f"  {label:<20}{name:<8}{ms(p50):>9}{ms(p90):>9}{ms(p99):>9}{ms(mean):>9}")
                bare_p50 = summaries["bare"][0]
                model_p50, combo_p50 = summaries["model"][0], summaries["combo"][0]
                ok = combo_p50 - bare_p50 <= 0.5
                verdicts.append(ok)
                print(
                    f"  {label:<20}combo − bare p50 {ms(combo_p50 - bare_p50, True)}   "
                    f"combo − model {ms(combo_p50 - model_p50, True)}   "
                    f"(bar: within 0.5 ms of bare) {'PASS' if ok else 'FAIL'}"
                )
        print()
        n = args.calls
        print(f"DynamoDB calls per request (sequential, {n} requests each; background refreshes included)")
        print(f"  {'case':<44}{'reads':>8}{'writes':>8}")
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        cases: list[tuple[str, dict[str, Any], dict[str, str] | None]] = [
            ("one model, no limits", {"model": f"bench1/{UPSTREAM_MODEL}", **chat}, None),
        ]
        cases += [(f"combo of 3, {s}", {"model": f"trio-{s}", **chat}, None) for s in STRATEGIES]
        cases += [
            ("account with an rpm limit", {"model": f"bench4/{UPSTREAM_MODEL}", **chat}, None),
            ("temperature 0, answered from the cache", {"model": "trio", "temperature": 0, **chat}, None),
            ("Idempotency-Key on every request", {"model": "trio", **chat}, {"idempotency-key": "bench"}),
        ]
        hot_ok = True
        for label, body, headers in cases:
            reads, writes = count_calls(admin, gw_port, key, body, n, headers)
            print(f"  {label:<44}{reads:>8.2f}{writes:>8.2f}")
            if label.startswith(("one model", "combo of 3, priority")):
                hot_ok = hot_ok and writes <= 2 and reads < 0.1
        print()
        print(
            f"Bars: combo within 0.5 ms of bare {'PASS' if all(verdicts) else 'FAIL'}; "
            f"hot path ≤ 2 writes and ~0 reads {'PASS' if hot_ok else 'FAIL'}"
        )
        print(f"Finished in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        servers.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="latency samples per target and mode (1500)")
    parser.add_argument("--calls", type=int, default=None, help="requests per store-call case (200)")
    parser.add_argument("--quick", action="store_true", help="300 latency samples, 40 requests per case")
    args = parser.parse_args(argv)
    args.requests = args.requests or (300 if args.quick else 1500)
    args.calls = args.calls or (40 if args.quick else 200)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
