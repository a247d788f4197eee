"""Shared fixtures: DynamoDB through moto (in-process backend and its server on loopback)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

# Signing credentials for moto only; set before any client exists so nothing can reach real AWS.
for _var, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ[_var] = _value
os.environ.pop("AWS_PROFILE", None)

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's DynamoDB server on a loopback port: atomic under concurrency, as DESIGN §7 requires for such tests."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["inprocess", "server"])
def dynamo_endpoint(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each store test runs on both backends local mode can use. None = moto's in-process backend."""
    if request.param == "server":
        yield request.getfixturevalue("moto_endpoint")
        return
    from moto import mock_aws

    with mock_aws():
        yield None


@pytest.fixture
def table_names(dynamo_endpoint: str | None) -> dict[str, str]:
    """Fresh tables built from template.yaml, uniquely named so server-backed tests never share state."""
    from shared.adapters.dynamo.tables import create_tables

    suffix = uuid.uuid4().hex[:8]
    names = {logical: f"{logical}-{suffix}" for logical in ("ConfigTable", "StateTable", "UsageTable")}
    client = botocore.session.get_session().create_client("dynamodb", region_name=REGION, endpoint_url=dynamo_endpoint)
    create_tables(client, names)
    return names


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked `anyio`) run on asyncio, the loop the gateway itself uses."""
    return "asyncio"


@pytest.fixture
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each single-item write atomically; moto 5.2.5 does not, even behind its server: its
    `update_item` evaluates the condition, then mutates the item, with no lock (moto/dynamodb/models).
    Measured here: rpm=25 hammered by 8 processes × 10 threads admitted 26 or 27 in 3 of 8 runs while the
    stored count said 25. One lock around moto's writes restores DynamoDB's guarantee, so these tests judge
    our conditions rather than moto's races; requests still arrive concurrently over HTTP."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def state_table(moto_endpoint: str) -> str:
    """A fresh State table (from template.yaml) on moto's server, for tests with several processes."""
    from shared.adapters.dynamo.tables import create_tables

    name = f"State-{uuid.uuid4().hex[:8]}"
    client = botocore.session.get_session().create_client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    create_tables(client, {"StateTable": name, "ConfigTable": f"Config-{name}", "UsageTable": f"Usage-{name}"})
    return name
