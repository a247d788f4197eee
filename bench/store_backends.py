"""Per-call latency of the project's DynamoDB ConfigStore on moto's two backends.

    python -m bench.store_backends [--iterations 300] [--rounds 2] [--quick]

The store is the project's own (`DynamoConfigStore` on a pynamodb model from `bind_config_model`), on tables
built from template.yaml by `create_tables`, exactly as tests and local mode build them. Two backends:

    in-process   moto's `mock_aws()`: botocore requests answered inside this process (local mode's default)
    server       moto's `ThreadedMotoServer` on a loopback port (a thread of this process, reached over HTTP)

Operations (each timed call by call with perf_counter, after a warm-up):
    get                 GetItem, consistent read, of an existing record
    create              PutItem conditioned on attribute_not_exists (a new id each call; removed untimed)
    put                 UpdateItem SET data, ADD version (`DynamoConfigStore.put`)
    conditional update  PutItem conditioned on version = expected (`DynamoConfigStore.update`)
    conditional ADD     UpdateItem ADD version 1 conditioned on version = expected (pynamodb on the same
                        model): the shape of the counter and breaker writes the State table will take
    query 20            Query of one kind holding 20 records, consistent read
    list_all 30         Scan of the 30-record table: what every configuration reload costs
    locked create       `LockedConfigStore.create` as local mode runs it: the create, then a JSON snapshot of
                        its write-through copy written with fsync (file, rename, directory)
    locked list_all     `LockedConfigStore.list_all`: what a local configuration reload costs (no scan)
    write_snapshot 30   the snapshot write alone (JSON + fsync + rename + directory fsync)

Backends are measured in alternating rounds (fresh tables each round) so that drift hits both.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.stats import percentile

REGION: Final = "us-east-1"
# The seeded configuration: 20 custom models (the queried kind), 6 connections, 2 nodes, 1 key, settings.
SEED: Final = {"model": 20, "provider": 6, "node": 2, "apikey": 1, "settings": 1}
CIPHERTEXT: Final = "v1:" + "A" * 120  # the size of an encrypted provider API key


def _aws_test_credentials() -> None:
    """Signing credentials for moto only (as tests/conftest.py sets them), before any client exists."""
    for var, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ[var] = value
    os.environ.pop("AWS_PROFILE", None)


def _data(kind: str, i: int) -> dict[str, Any]:
    if kind == "provider":
        return {"provider": f"node-{i % 2}", "name": f"conn-{i}", "apiKey": CIPHERTEXT, "priority": i, "enabled": True}
    if kind == "node":
        return {
            "name": f"Node {i}",
            "prefix": f"n{i}",
            "baseUrl": f"http://127.0.0.1:{9000 + i}/v1",
            "apiType": "openai",
        }
    if kind == "apikey":
        return {"name": "laptop", "keyHash": "0" * 64, "display": "sk-omni-abcd…wxyz", "enabled": True}
    if kind == "settings":
        return {"requireApiKey": True}
    return {"provider": "node-0", "modelId": f"vendor/model-{i}", "name": f"Model {i}"}


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)

    def stats_ms(self) -> tuple[float, float, float]:
        v = sorted(self.values)
        return percentile(v, 50) * 1e3, percentile(v, 99) * 1e3, (sum(v) / len(v) * 1e3 if v else math.nan)


Results = dict[str, dict[str, Samples]]  # operation -> backend -> samples

OPERATIONS: Final = (
    "get",
    "create",
    "put",
    "conditional update",
    "conditional ADD",
    "query 20",
    "list_all 30",
    "locked create",
    "locked list_all",
    "write_snapshot 30",
)
DESCRIPTIONS: Final = {
    "get": "GetItem, consistent",
    "create": "PutItem if not exists",
    "put": "UpdateItem SET+ADD",
    "conditional update": "PutItem if version=",
    "conditional ADD": "UpdateItem ADD if ver=",
    "query 20": "Query, 20 items",
    "list_all 30": "Scan, 30 items (reload)",
    "locked create": "create+snapshot+fsync",
    "locked list_all": "write-through copy",
    "write_snapshot 30": "JSON+fsync+rename",
}


def timed(
    samples: Samples, fn: Callable[[], object], iterations: int, warmup: int, after: Callable[[], object]
) -> None:
    for _ in range(warmup):
        fn()
        after()
    perf = time.perf_counter
    for _ in range(iterations):
        t0 = perf()
        fn()
        samples.values.append(perf() - t0)
        after()


def _nothing() -> None:
    return None


def measure_backend(endpoint: str | None, backend: str, results: Results, iterations: int, workdir: Path) -> None:
    """All operations against fresh tables on one backend (None endpoint = moto in-process, already active)."""
    import botocore.session

    from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
    from shared.adapters.dynamo.embedded import LockedConfigStore, write_snapshot
    from shared.adapters.dynamo.tables import create_tables

    suffix = uuid.uuid4().hex[:8]
    names = {logical: f"{logical}-{suffix}" for logical in ("ConfigTable", "StateTable", "UsageTable")}
    client = botocore.session.get_session().create_client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    create_tables(client, names)
    model = bind_config_model(names["ConfigTable"], REGION, endpoint)
    store = DynamoConfigStore(model)
    for kind, count in SEED.items():
        for i in range(count):
            store.create(kind, f"{kind}-{i}", _data(kind, i))
    records = store.list_all()
    assert len(records) == sum(SEED.values()), len(records)
    assert len(store.list("model")) == SEED["model"]
    snapshot_dir = workdir / f"data-{backend}-{suffix}"
    snapshot_dir.mkdir(mode=0o700)
    locked = LockedConfigStore(store, snapshot_dir / "config.json")
    warmup = max(5, iterations // 20)

    def sample(op: str) -> Samples:
        return results.setdefault(op, {}).setdefault(backend, Samples())

    timed(sample("get"), lambda: store.get("provider", "provider-0"), iterations, warmup, _nothing)
    timed(sample("query 20"), lambda: store.list("model"), iterations, warmup, _nothing)
    timed(sample("list_all 30"), store.list_all, iterations, warmup, _nothing)
    timed(
        sample("put"),
        lambda: store.put("settings", "settings-0", {"requireApiKey": True}),
        iterations,
        warmup,
        _nothing,
    )

    version = [store.get("provider", "provider-1").version]  # type: ignore[union-attr]

    def conditional_update() -> None:
        version[0] = store.update("provider", "provider-1", _data("provider", 1), version[0]).version

    timed(sample("conditional update"), conditional_update, iterations, warmup, _nothing)

    counter = model("settings", "settings-0")
    counter.refresh(consistent_read=True)

    def conditional_add() -> None:
        counter.update(actions=[model.version.add(1)], condition=model.version == counter.version)

    timed(sample("conditional ADD"), conditional_add, iterations, warmup, _nothing)

    new_id = [""]

    def create() -> None:
        new_id[0] = "provider-new-" + uuid.uuid4().hex[:12]
        store.create("provider", new_id[0], _data("provider", 9))

    def remove() -> None:
        store.delete("provider", new_id[0])  # untimed: keeps the table at 30 records

    def locked_create() -> None:
        new_id[0] = "provider-new-" + uuid.uuid4().hex[:12]
        locked.create("provider", new_id[0], _data("provider", 9))

    def locked_remove() -> None:
        locked.delete("provider", new_id[0])  # through the copy too, so it stays at 30 records

    timed(sample("create"), create, iterations, warmup, remove)
    timed(sample("locked create"), locked_create, iterations, warmup, locked_remove)
    timed(sample("locked list_all"), locked.list_all, iterations, warmup, _nothing)
    snapshot = snapshot_dir / "bench-snapshot.json"
    timed(sample("write_snapshot 30"), lambda: write_snapshot(snapshot, records), iterations, warmup, _nothing)
    assert len(store.list_all()) == sum(SEED.values())


@contextmanager
def inprocess_backend() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


def filesystem_of(path: Path) -> str:
    """`<fstype> on <mount point>` for the mount holding `path` (Linux), else "unknown"."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best = max(
        (m for m in mounts if len(m) > 2 and (resolved == m[1] or resolved.startswith(m[1].rstrip("/") + "/"))),
        key=lambda m: len(m[1]),
        default=None,
    )
    return f"{best[2]} on {best[1]}" if best else "unknown"


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run(iterations: int, rounds: int) -> int:
    _aws_test_credentials()
    from moto.server import ThreadedMotoServer

    # werkzeug prints one access-log line per call to stderr; silenced so the table stays readable (local
    # mode's `--store server` pays for that line on every call; it is not counted here).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="omniroute-store-bench-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    started = time.monotonic()
    results: Results = {}
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for i in range(rounds):
            order = ["in-process", "server"] if i % 2 == 0 else ["server", "in-process"]
            for backend in order:
                if backend == "in-process":
                    with inprocess_backend():
                        measure_backend(None, backend, results, iterations, workdir)
                else:
                    measure_backend(endpoint, backend, results, iterations, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("OmniRoute Edge: ConfigStore per-call latency on moto's two backends (pynamodb)")
    print(f"  date        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"  machine     {platform.system()} {platform.release()} {platform.machine()}, nproc {affinity}")
    print(f"  python      {platform.python_implementation()} {platform.python_version()}")
    print(
        f"  packages    moto {_version('moto')}, pynamodb {_version('pynamodb')}, botocore {_version('botocore')}, "
        f"werkzeug {_version('werkzeug')}"
    )
    print(f"  snapshots   written under {tempfile.gettempdir()} ({filesystem_of(Path(tempfile.gettempdir()))})")
    print(
        f"  method      {iterations} timed calls per operation and backend per round, {rounds} alternating rounds, "
        f"fresh tables each round; table holds {sum(SEED.values())} records"
    )
    print()
    header = f"  {'operation':<20}{'what':<25}{'in-process p50':>15}{'p99':>8}{'server p50':>12}{'p99':>8}{'ratio':>7}"
    print(header + "   (ms)")
    for op in OPERATIONS:
        by_backend = results.get(op, {})
        ip = by_backend.get("in-process", Samples()).stats_ms()
        sv = by_backend.get("server", Samples()).stats_ms()
        ratio = sv[0] / ip[0] if ip[0] else math.nan
        print(f"  {op:<20}{DESCRIPTIONS[op]:<25}{ip[0]:>15.3f}{ip[1]:>8.3f}{sv[0]:>12.3f}{sv[1]:>8.3f}{ratio:>6.1f}x")
    print()
    print(f"Finished in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_backends", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=None, help="timed calls per operation per round (300)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds over both backends (2)")
    parser.add_argument("--quick", action="store_true", help="60 calls per operation per round")
    args = parser.parse_args(argv)
    iterations = args.iterations or (60 if args.quick else 300)
    if iterations < 1 or args.rounds < 1:
        parser.error("--iterations and --rounds must be positive")
    return run(iterations, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
