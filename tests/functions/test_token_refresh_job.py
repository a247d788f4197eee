"""The token refresh job's handler as Lambda runs it: a Scheduler event in, linked accounts read from a Config
table on moto's server with KMS-sealed tokens, leases in the State table, the fake token service over loopback
HTTP (tests/fakes/token_server.py), EMF metrics and a summary out; a second run sends nothing again."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session
import pytest

from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.adapters.dynamo.tables import create_tables
from shared.adapters.kms import KmsCipher
from shared.domain.config import Kind
from shared.domain.oauth import OAuthTokens
from shared.providers.oauth import HOSTS_ENV, oauth_provider
from shared.services.oauth_accounts import OAuthAccountsService
from shared.services.snapshot import secret_context
from tests.fakes.server import ServerThread, free_port
from tests.fakes.token_server import COPILOT_PATH, TokenServerState, create_app

REGION = "us-east-1"
MODULE = "functions.scheduled.token_refresh"
EVENT = json.loads((Path(__file__).parents[1] / "infra" / "events" / "scheduler-input.json").read_text())
CODEX_CLIENT = oauth_provider("codex").refresh.client_id  # type: ignore[union-attr]
CLAUDE_CLIENT = oauth_provider("claude").refresh.client_id  # type: ignore[union-attr]


@dataclass
class LambdaContext:
    """The part of Lambda's context object the job reads."""

    remaining_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Cloud:
    store: DynamoConfigStore
    cipher: KmsCipher

    def link(self, provider: str, refresh: str, expires_in: float, access: str) -> str:
        tokens = {"accessToken": access, "refreshToken": refresh, "expiresAt": time.time() + expires_in}
        account = OAuthAccountsService(self.store, self.cipher, lambda: None).link(
            {"provider": provider, "tokens": tokens}
        )
        return str(account["id"])

    def data(self, conn_id: str) -> dict[str, Any]:
        record = self.store.get(Kind.OAUTH, conn_id)
        assert record is not None
        return dict(record.data)

    def tokens(self, conn_id: str) -> OAuthTokens:
        plain = self.cipher.decrypt(self.data(conn_id)["secret"], secret_context(Kind.OAUTH, conn_id))
        return OAuthTokens.from_json(plain)


@pytest.fixture
def fake() -> Iterator[ServerThread[Any]]:
    with ServerThread(create_app()) as server:
        yield server


@pytest.fixture
def cloud(moto_endpoint: str, fake: ServerThread[Any], monkeypatch: pytest.MonkeyPatch) -> Cloud:
    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"{name}-{suffix}" for name in ("ConfigTable", "StateTable", "UsageTable")}
    session = botocore.session.get_session()
    create_tables(session.create_client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint), tables)
    kms: Any = session.create_client("kms", region_name=REGION, endpoint_url=moto_endpoint)
    key_arn = kms.create_key(Description=f"token refresh test {suffix}")["KeyMetadata"]["Arn"]
    hosts = {
        "https://auth.openai.com": fake.base_url,
        "https://platform.claude.com": fake.base_url,
        "https://api.github.com": fake.base_url,
        "https://auth.kimi.com": f"http://127.0.0.1:{free_port()}",  # nothing listens: a network failure
    }
    # What template.yaml gives the function, pointed at moto and the fake.
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": "omniroute-token-refresh",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "AWS_ENDPOINT_URL_KMS": moto_endpoint,
        "CONFIG_TABLE": tables["ConfigTable"],
        "STATE_TABLE": tables["StateTable"],
        "USAGE_TABLE": tables["UsageTable"],
        "OMNIROUTE_KMS_KEY_ID": key_arn,
        "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS": "true",  # the fake token service is on loopback
        "POWERTOOLS_METRICS_NAMESPACE": "OmniRouteEdge",
        HOSTS_ENV: json.dumps(hosts),
    }.items():
        monkeypatch.setenv(name, value)
    store = DynamoConfigStore(bind_config_model(tables["ConfigTable"], REGION, moto_endpoint))
    return Cloud(store, KmsCipher(key_arn, REGION, client=kms))


@pytest.fixture
def load_job() -> Iterator[Any]:
    """Import the job as Lambda's init does (its module reads the environment); the logging it configures for
    Lambda is put back afterwards so later tests keep pytest's own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def load() -> ModuleType:
        sys.modules.pop(MODULE, None)
        return importlib.import_module(MODULE)

    yield load
    sys.modules.pop(MODULE, None)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_job_refreshes_due_accounts_and_reports_each_outcome(
    cloud: Cloud, fake: ServerThread[Any], load_job: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    state: TokenServerState = fake.app.state.fake
    codex_rt = state.family(client_id=CODEX_CLIENT, expires_in=864000)
    claude_rt = state.family(client_id=CLAUDE_CLIENT)
    github = state.family(rotates=False, prefix="ghu")
    state.revoke(github)
    codex = cloud.link("codex", codex_rt, 3600, "at-codex-old")
    claude = cloud.link("claude", claude_rt, 86400, "at-claude")  # a day left: not due (lead 4 h)
    copilot = cloud.link("github", github, 60, "tid=copilot-old")
    kimi = cloud.link("kimi-code", "rt-kimi-secret", 60, "at-kimi")
    job = load_job()

    result = job.handler(EVENT, LambdaContext(119_000))

    accounts = sorted(result.pop("accounts"), key=lambda a: a["provider"])
    assert result == {
        "job": "token-refresh",
        "scheduledTime": "2026-11-22T01:05:00+00:00",
        "oauthAccounts": 4,
        "refreshed": 1,
        "skipped": 1,
        "busy": 0,
        "failed": 1,
        "relinkNeeded": 1,
    }
    assert [(a["connectionId"], a["outcome"]) for a in accounts] == [
        (codex, "refreshed"),
        (copilot, "relink_needed"),
        (kimi, "failed"),
    ]
    assert "Bad credentials" in accounts[1]["detail"] and "Could not connect" in accounts[2]["detail"]
    assert sorted(c.path for c in state.calls) == [COPILOT_PATH, "/oauth/token"]
    family = state.family_of(codex_rt)
    assert cloud.tokens(codex).refresh_token == family.refresh_tokens[-1] != codex_rt
    assert cloud.tokens(codex).access_token == family.access_tokens[-1]
    assert cloud.data(codex)["tokenVersion"] == 2
    assert cloud.data(copilot)["status"] == "relink_needed"
    assert cloud.data(kimi)["failures"] == 1 and cloud.data(claude)["tokenVersion"] == 1

    out = capsys.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    names = ("OAuthAccounts", "TokensRefreshed", "RefreshSkipped", "RefreshBusy", "RefreshFailed", "RelinkNeeded")
    assert [[m[name] for name in names] for m in emf] == [[[4.0], [1.0], [1.0], [0.0], [1.0], [1.0]]]
    for token in (codex_rt, claude_rt, github, "rt-kimi-secret", *family.refresh_tokens, *family.access_tokens):
        assert token not in out

    # The next run (5 minutes later, as scheduled) sends nothing: refreshed and backed-off accounts are not due,
    # and a relink-needed account is never retried.
    again = load_job().handler(EVENT, None)
    assert (again["refreshed"], again["skipped"], again["relinkNeeded"], again["failed"]) == (0, 3, 1, 0)
    assert len(state.calls) == 2


def test_accounts_are_left_to_the_next_run_when_the_function_is_about_to_time_out(
    cloud: Cloud, fake: ServerThread[Any], load_job: Any
) -> None:
    state: TokenServerState = fake.app.state.fake
    codex = cloud.link("codex", state.family(client_id=CODEX_CLIENT), 3600, "at-codex")

    result = load_job().handler(EVENT, LambdaContext(20_000))  # too little to finish a refresh safely

    assert (result["refreshed"], result["skipped"]) == (0, 1)
    assert result["accounts"] == [
        {"connectionId": codex, "provider": "codex", "outcome": "skipped", "detail": "left to the next run"}
    ]
    assert state.calls == []


def test_no_linked_accounts_is_a_quiet_run(cloud: Cloud, load_job: Any) -> None:
    cloud.store.create(Kind.PROVIDER, "conn_ds", {"provider": "deepseek", "name": "ds", "enabled": True})
    result = load_job().handler({}, None)  # a manual invoke
    assert (result["oauthAccounts"], result["refreshed"], result["accounts"]) == (0, 0, [])


def test_an_event_for_another_job_is_refused(cloud: Cloud, load_job: Any) -> None:
    from functions.scheduled.jobs import BadEvent

    with pytest.raises(BadEvent, match="'usage-rollup'"):
        load_job().handler({**EVENT, "job": "usage-rollup"}, None)
