"""The quota poll job's handler as Lambda runs it: a Scheduler event in, OAuth accounts read from a Config
table on moto's server with KMS-sealed tokens, the fake usage endpoints over loopback HTTP, the readings
stored in the State table (read back through DynamoRoutingStore), EMF metrics and a summary out."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.tables import create_tables
from shared.adapters.kms import KmsCipher
from shared.domain.config import Kind
from shared.services.snapshot import secret_context
from tests.fakes.quota_endpoints import claude_usage, copilot_free, create_app
from tests.fakes.server import ServerThread

REGION = "us-east-1"
MODULE = "functions.scheduled.quota_poll"
EVENT = {
    **json.loads((Path(__file__).parents[1] / "infra" / "events" / "scheduler-input.json").read_text()),
    "job": "quota-poll",
}
CLAUDE_TOKEN = "sk-ant-oat01-job-claude-secret"
GITHUB_TOKEN = "ghu_jobgithubsecret"


@dataclass
class Cloud:
    endpoint: str
    tables: dict[str, str]
    store: DynamoConfigStore
    cipher: KmsCipher

    def link(self, id: str, provider: str, token: str, base_url: str, **extra: Any) -> None:
        """A connection as OAuth linking stores it: the access token sealed under the record's context."""
        data = {"provider": provider, "name": id, "priority": 0, "enabled": True, "baseUrl": base_url, **extra}
        data["apiKey"] = self.cipher.encrypt(token, secret_context(Kind.PROVIDER, id))
        self.store.create(Kind.PROVIDER, id, data)

    def routing(self) -> DynamoRoutingStore:
        return DynamoRoutingStore(self.tables["StateTable"], REGION, self.endpoint)


@pytest.fixture
def cloud(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"{name}-{suffix}" for name in ("ConfigTable", "StateTable", "UsageTable")}
    session = botocore.session.get_session()
    create_tables(session.create_client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint), tables)
    kms = session.create_client("kms", region_name=REGION, endpoint_url=moto_endpoint)
    key_arn = kms.create_key(Description=f"quota poll test {suffix}")["KeyMetadata"]["Arn"]
    # What template.yaml gives the function, pointed at moto.
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": "omniroute-quota-poll",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "AWS_ENDPOINT_URL_KMS": moto_endpoint,
        "CONFIG_TABLE": tables["ConfigTable"],
        "STATE_TABLE": tables["StateTable"],
        "USAGE_TABLE": tables["UsageTable"],
        "OMNIROUTE_KMS_KEY_ID": key_arn,
        "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS": "true",  # the fake endpoints are on loopback
        "POWERTOOLS_METRICS_NAMESPACE": "OmniRouteEdge",
    }.items():
        monkeypatch.setenv(name, value)
    store = DynamoConfigStore(bind_config_model(tables["ConfigTable"], REGION, moto_endpoint))
    return Cloud(moto_endpoint, tables, store, KmsCipher(key_arn, REGION, client=kms))


@pytest.fixture
def fake() -> Iterator[ServerThread]:
    with ServerThread(create_app()) as server:
        state = server.app.state.fake
        state.account("claude", CLAUDE_TOKEN, claude_usage(100.0, 40.0))
        state.account("github", GITHUB_TOKEN, copilot_free(410, 4000))
        yield server


@pytest.fixture
def load_job() -> Iterator[Any]:
    """Import the job as Lambda's init does (its module reads the environment), once per call; the logging
    it configures for Lambda is put back afterwards so later tests keep pytest's own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def load() -> ModuleType:
        sys.modules.pop(MODULE, None)
        return importlib.import_module(MODULE)

    yield load
    sys.modules.pop(MODULE, None)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_job_reads_each_account_and_stores_its_windows(
    cloud: Cloud, fake: ServerThread, load_job: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.link("conn_claude", "claude", CLAUDE_TOKEN, f"{fake.base_url}/v1")
    cloud.link("conn_github", "github", GITHUB_TOKEN, fake.base_url)
    cloud.link("conn_expired", "claude", "sk-ant-oat01-revoked", f"{fake.base_url}/v1")
    cloud.link("conn_off", "codex", "eyJ.x.y", f"{fake.base_url}/backend-api/codex", enabled=False)
    cloud.store.create(Kind.PROVIDER, "conn_ds", {"provider": "deepseek", "name": "ds", "enabled": True})

    result = load_job().handler(EVENT, None)

    assert result == {
        "job": "quota-poll",
        "scheduledTime": "2026-11-22T01:05:00+00:00",
        "accounts": 3,
        "updated": 2,
        "failed": [{"connection": "conn_expired", "reason": "the usage endpoint answered HTTP 401"}],
    }
    quotas = cloud.routing().load(0.0).quotas
    claude = {w.name: w for w in quotas["conn_claude"].windows}
    assert claude["5h"].limited and claude["5h"].used_percent == 100.0 and not claude["7d"].limited
    chat = {w.name: w for w in quotas["conn_github"].windows}["chat"]
    assert (chat.used, chat.limit, chat.remaining, chat.unit) == (90, 500, 410, "requests")
    assert "conn_expired" not in quotas

    out = capsys.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert [(m["PolledAccounts"], m["UpdatedAccounts"], m["FailedAccounts"]) for m in emf] == [([3.0], [2.0], [1.0])]
    for token in (CLAUDE_TOKEN, GITHUB_TOKEN, "sk-ant-oat01-revoked"):
        assert token not in out


def test_in_the_cloud_private_usage_endpoints_are_refused(
    cloud: Cloud, fake: ServerThread, load_job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS", "false")  # the template's default
    cloud.link("conn_claude", "claude", CLAUDE_TOKEN, f"{fake.base_url}/v1")

    result = load_job().handler(EVENT, None)

    assert result["accounts"] == 1 and result["updated"] == 0
    assert "public" in result["failed"][0]["reason"]
    assert fake.app.state.fake.requests == []  # refused before connecting


def test_no_accounts_is_a_quiet_run(cloud: Cloud, load_job: Any) -> None:
    result = load_job().handler({}, None)  # a manual invoke
    assert (result["accounts"], result["updated"], result["failed"]) == (0, 0, [])


def test_an_event_for_another_job_is_refused(cloud: Cloud, load_job: Any) -> None:
    from functions.scheduled.jobs import BadEvent

    with pytest.raises(BadEvent, match="'usage-rollup'"):
        load_job().handler({**EVENT, "job": "usage-rollup"}, None)
