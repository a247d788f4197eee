"""`omniroute sync`, driven with CliRunner between two real local gateways in-process (each the admin API and
gateway `omniroute serve` runs, with its own data dir, tables and encryption key, on loopback)."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from companion.cli import app
from tests.companion.cli_runner import ISOLATED, LocalTarget

GROQ_KEY = "gsk-sync-cli-key-00000000000000000001"


@contextmanager
def gateway(data_dir: Path, *, require_keys: bool = False) -> Iterator[LocalTarget]:
    """`omniroute serve` in-process with tables of its own (two share one moto backend here)."""
    from companion.local import build_local, create_local_app
    from shared.settings import Settings
    from tests.fakes.server import ServerThread

    suffix = uuid.uuid4().hex[:8]
    env = {
        "OMNIROUTE_DATA_DIR": str(data_dir),
        "OMNIROUTE_ADMIN_TOKEN": f"omni-admin-{uuid.uuid4().hex}",
        "OMNIROUTE_REQUIRE_API_KEY": "true" if require_keys else "false",
        "CONFIG_TABLE": f"Config-{suffix}",
        "STATE_TABLE": f"State-{suffix}",
        "USAGE_TABLE": f"Usage-{suffix}",
    }
    runtime = build_local(Settings.from_env(env))
    try:
        with ServerThread(create_local_app(runtime.services)) as server:
            yield LocalTarget(data_dir, server.base_url, env["OMNIROUTE_ADMIN_TOKEN"])
    finally:
        runtime.stop()


@dataclass
class Pair:
    here: LocalTarget
    there: LocalTarget
    config: Path  # the companion's config dir: where sync-state.json lives

    def sync(self, *args: str) -> Result:
        command = [
            "sync",
            *args,
            "--from",
            self.here.url,
            "--from-token",
            self.here.token,
            "--to",
            self.there.url,
            "--to-token",
            self.there.token,
        ]
        result = CliRunner().invoke(app, command, env=self.env)
        assert self.here.token not in result.output and self.there.token not in result.output
        return result

    @property
    def env(self) -> dict[str, str | None]:
        # wide enough that no table cell wraps: the tests read whole phrases
        return ISOLATED | {"OMNIROUTE_CONFIG_DIR": str(self.config), "HOME": str(self.config), "COLUMNS": "400"}

    @property
    def state(self) -> Path:
        return self.config / "sync-state.json"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with ExitStack() as stack:
        here = stack.enter_context(gateway(tmp_path / "here"))
        there = stack.enter_context(gateway(tmp_path / "there", require_keys=True))
        yield Pair(here, there, tmp_path / "config")


def listing(side: LocalTarget) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["id"]): r for r in side.call("GET", "/api/sync/records")["records"]}


def etags(side: LocalTarget) -> dict[tuple[str, str], str]:
    return {key: r["etag"] for key, r in listing(side).items()}


def combo(side: LocalTarget, name: str) -> dict[str, Any]:
    found: dict[str, Any] = side.call("GET", f"/api/combos/{name}")["combo"]
    return found


def configure(side: LocalTarget) -> None:
    """One record of every kind that syncs."""
    node = side.call("POST", "/api/provider-nodes", {"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"}, 201)
    side.call("POST", "/api/providers", {"provider": "lab", "name": "lab box"}, 201)
    side.call("POST", "/api/provider-models", {"provider": node["node"]["prefix"], "modelId": "tiny-1"}, 201)
    side.call("POST", "/api/combos", {"name": "fast", "models": ["lab/tiny-1", "groq/llama-3.1-8b-instant"]}, 201)
    side.call("POST", "/api/aliases", {"pattern": "quick", "target": "fast"}, 201)
    side.call("POST", "/api/fallback-chains", {"pattern": "gpt-*", "models": ["fast"]}, 201)
    side.call("PATCH", "/api/settings", {"stickyLimit": 4})
    side.call("PATCH", "/api/pricing", {"groq": {"llama-3.1-8b-instant": {"input": 0.1, "output": 0.2}}})
    side.call("POST", "/api/keys", {"name": "laptop"}, 201)


def test_first_push_copies_everything_and_remembers_the_agreement(pair: Pair) -> None:
    configure(pair.here)
    result = pair.sync("push")
    assert result.exit_code == 0, result.output
    assert "9 changed here" in result.output and "create" in result.output
    assert etags(pair.there) == etags(pair.here) and len(etags(pair.here)) == 9
    assert combo(pair.there, "fast")["models"] == ["lab/tiny-1", "groq/llama-3.1-8b-instant"]
    # the state file: 0600, etags only (no token, no key hash, no data)
    assert stat.S_IMODE(pair.state.stat().st_mode) == 0o600
    state = json.loads(pair.state.read_text())
    [agreed] = state["pairs"].values()
    assert set(agreed) == {f"{kind}:{id}" for kind, id in etags(pair.here)}
    key_hash = next(r for r in listing(pair.here).values() if r["kind"] == "apikey")["data"]["keyHash"]
    assert key_hash not in pair.state.read_text()
    again = pair.sync("status")
    assert again.exit_code == 0 and "9 in sync" in again.output


def test_a_change_on_one_side_travels_and_the_other_sides_change_waits_for_pull(pair: Pair) -> None:
    configure(pair.here)
    assert pair.sync("push").exit_code == 0
    pair.here.call("PATCH", "/api/combos/fast", {"strategy": "round-robin"})
    pair.there.call("PATCH", "/api/settings", {"stickyLimit": 9})
    pushed = pair.sync("push")
    assert pushed.exit_code == 0, pushed.output
    assert combo(pair.there, "fast")["strategy"] == "round-robin"
    # the target's own change is reported and left alone, not overwritten with this side's older value
    assert "leaves it (pull takes it)" in pushed.output
    assert pair.there.call("GET", "/api/settings")["stickyLimit"] == 9
    assert pair.here.call("GET", "/api/settings")["stickyLimit"] == 4
    pulled = pair.sync("pull")
    assert pulled.exit_code == 0, pulled.output
    assert pair.here.call("GET", "/api/settings")["stickyLimit"] == 9
    assert etags(pair.here) == etags(pair.there)
    assert "9 in sync" in pair.sync("status").output


def test_changes_on_both_sides_conflict_until_forced(pair: Pair) -> None:
    configure(pair.here)
    assert pair.sync("push").exit_code == 0
    pair.here.call("PATCH", "/api/combos/fast", {"strategy": "round-robin"})
    pair.there.call("PATCH", "/api/combos/fast", {"strategy": "random"})
    for command in ("push", "pull", "status"):
        result = pair.sync(command)
        assert result.exit_code == 1, result.output
        assert "changed on both sides" in result.output and "strategy" in result.output
    assert combo(pair.here, "fast")["strategy"] == "round-robin"
    assert combo(pair.there, "fast")["strategy"] == "random"
    forced = pair.sync("push", "--force")
    assert forced.exit_code == 0, forced.output
    assert combo(pair.there, "fast")["strategy"] == "round-robin"
    assert pair.sync("status").exit_code == 0


def test_deletes_propagate_both_ways(pair: Pair) -> None:
    configure(pair.here)
    assert pair.sync("push").exit_code == 0
    pair.here.call("DELETE", "/api/fallback-chains/gpt-*", status=204)
    pushed = pair.sync("push")
    assert pushed.exit_code == 0 and "delete" in pushed.output
    assert pair.there.call("GET", "/api/fallback-chains")["fallbackChains"] == []
    pair.there.call("DELETE", "/api/aliases/quick", status=204)
    pulled = pair.sync("pull")
    assert pulled.exit_code == 0, pulled.output
    assert ("alias", "quick") not in listing(pair.here)
    assert etags(pair.here) == etags(pair.there)
    # deleted here while changed there: a conflict, the change there stands
    pair.here.call("DELETE", "/api/combos/fast", status=204)
    pair.there.call("PATCH", "/api/combos/fast", {"strategy": "random"})
    conflicted = pair.sync("push")
    assert conflicted.exit_code == 1 and "deleted here, changed there" in conflicted.output
    assert combo(pair.there, "fast")["strategy"] == "random"


def test_dry_run_names_the_fields_and_writes_nothing(pair: Pair) -> None:
    configure(pair.here)
    preview = pair.sync("push", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "would apply" in preview.output and "nothing was written" in preview.output
    assert etags(pair.there) == {}
    assert not pair.state.exists()
    assert pair.sync("push").exit_code == 0
    before = pair.state.read_text()
    pair.here.call("PATCH", "/api/combos/fast", {"strategy": "round-robin", "models": ["lab/tiny-1"]})
    preview = pair.sync("push", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "models, strategy" in preview.output and "update" in preview.output
    assert combo(pair.there, "fast")["strategy"] == "priority"
    assert pair.state.read_text() == before


def test_dry_run_reports_what_the_target_would_refuse(pair: Pair) -> None:
    pair.here.call("POST", "/api/providers", {"provider": "groq", "apiKey": GROQ_KEY}, 201)
    preview = pair.sync("push", "--dry-run")
    assert preview.exit_code == 1
    assert "invalid" in preview.output and "--secrets" in preview.output
    assert GROQ_KEY not in preview.output


def test_status_shows_what_push_and_pull_would_do(pair: Pair) -> None:
    pair.here.call("POST", "/api/combos", {"name": "mine", "models": ["groq/llama-3.1-8b-instant"]}, 201)
    pair.there.call("POST", "/api/combos", {"name": "theirs", "models": ["groq/llama-3.1-8b-instant"]}, 201)
    result = pair.sync("status")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "new here" in lines["mine"] and "create" in lines["mine"] and "leaves it" in lines["mine"]
    assert "new there" in lines["theirs"] and "leaves it" in lines["theirs"] and "create" in lines["theirs"]
    assert listing(pair.there).keys() == {("combo", "theirs")}  # status writes nothing


def test_secrets_carry_provider_keys_sealed_by_the_receiver(pair: Pair) -> None:
    conn = pair.here.call("POST", "/api/providers", {"provider": "groq", "apiKey": GROQ_KEY}, 201)["connection"]
    refused = pair.sync("push")
    assert refused.exit_code == 1 and "needs its API key" in refused.output
    carried = pair.sync("push", "--secrets")
    assert carried.exit_code == 0, carried.output
    there = pair.there.call("GET", f"/api/providers/{conn['id']}")["connection"]
    assert there["apiKey"] == conn["apiKey"] and "credentialError" not in there  # the same key, readable there
    assert GROQ_KEY not in carried.output and GROQ_KEY not in pair.state.read_text()
    # a new key here is a change only when keys are compared; the settings stay in sync either way
    pair.here.call("PATCH", f"/api/providers/{conn['id']}", {"apiKey": "gsk-rotated-key-000000000000000002"})
    assert pair.sync("status").exit_code == 0 and "1 in sync" in pair.sync("status").output
    keyed = pair.sync("status", "--secrets")
    assert "API key changed here" in keyed.output
    assert pair.sync("push", "--secrets").exit_code == 0
    rotated = pair.there.call("GET", f"/api/providers/{conn['id']}")["connection"]
    assert rotated["apiKey"] == "gsk-…0002"


def test_an_api_key_made_here_opens_the_gateway_there(pair: Pair) -> None:
    key = pair.here.call("POST", "/api/keys", {"name": "laptop"}, 201)["key"]
    headers = {"authorization": f"Bearer {key}"}
    before = httpx.get(pair.there.url + "/v1/models", headers=headers, trust_env=False)
    assert before.status_code == 401
    result = pair.sync("push")
    assert result.exit_code == 0, result.output
    assert key not in result.output
    after = httpx.get(pair.there.url + "/v1/models", headers=headers, trust_env=False)
    assert after.status_code == 200, after.text


def test_the_other_side_must_be_another_gateway_with_its_own_token(pair: Pair) -> None:
    args = ["sync", "status", "--from", pair.here.url, "--from-token", pair.here.token]
    saved = CliRunner().invoke(app, ["target", "local", "--url", pair.here.url], env=pair.env)
    assert saved.exit_code == 0, saved.output
    same = CliRunner().invoke(app, args, env=pair.env)  # the saved target is this very gateway
    assert same.exit_code == 2 and "both sides are" in same.output
    tokenless = CliRunner().invoke(app, [*args, "--to", pair.there.url], env=pair.env)
    assert tokenless.exit_code == 2 and "--to-token" in tokenless.output
    assert pair.here.token not in same.output + tokenless.output


def test_linked_accounts_are_never_copied_and_their_tokens_never_travel(pair: Pair) -> None:
    tokens = {"accessToken": "sk-ant-oat01-sync-access", "refreshToken": "sk-ant-ort01-sync-refresh", "expiresIn": 3600}
    link = {"provider": "claude", "tokens": tokens, "meta": {"email": "me@example.com"}}
    account = pair.here.call("POST", "/api/oauth/link", link, 201)["account"]
    result = pair.sync("push", "--secrets")
    assert result.exit_code == 0, result.output
    assert "link it there with `omniroute login claude`" in result.output
    assert "sync-access" not in result.output and "sync-refresh" not in result.output
    assert ("provider", account["id"]) not in listing(pair.there)
    assert "sync-refresh" not in json.dumps(pair.here.call("GET", "/api/sync/records?secrets=true"))
