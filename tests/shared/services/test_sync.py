"""SyncService between two real (moto) stores with their own ciphers: etags, conditional apply, secrets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from functions.admin.routes_sync import check_shape
from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.adapters.dynamo.tables import create_tables
from shared.domain.config import Kind
from shared.ports import DecryptionFailed
from shared.services.admin import ConfigService
from shared.services.oauth_accounts import OAuthAccountsService
from shared.services.snapshot import build_snapshot, secret_context
from shared.services.sync import SyncService

GROQ_KEY = "gsk-sync-test-key-0000000000000001"


@dataclass
class Side:
    store: DynamoConfigStore
    cipher: AesGcmCipher
    admin: ConfigService
    sync: SyncService
    changes: list[int]


def _side(name: str, endpoint: str | None, tmp_path: Path) -> Side:
    table = f"Config-{name}-{uuid.uuid4().hex[:8]}"
    create_tables(
        botocore.session.get_session().create_client("dynamodb", region_name="us-east-1", endpoint_url=endpoint),
        {"ConfigTable": table},
    )
    store = DynamoConfigStore(bind_config_model(table, "us-east-1", endpoint))
    cipher = AesGcmCipher.from_key_file(tmp_path / f"{name}.key")
    changes: list[int] = []
    admin = ConfigService(store, cipher, on_change=lambda: changes.append(1))
    return Side(store, cipher, admin, admin.sync(check_shape), changes)


@pytest.fixture
def here(dynamo_endpoint: str | None, tmp_path: Path) -> Side:
    return _side("here", dynamo_endpoint, tmp_path)


@pytest.fixture
def there(dynamo_endpoint: str | None, tmp_path: Path) -> Side:
    return _side("there", dynamo_endpoint, tmp_path)


def by_key(listing: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["id"]): r for r in listing["records"]}


def push_all(source: Side, dest: Side, *, secrets: bool = False, dry_run: bool = False) -> list[dict[str, Any]]:
    """What a first push does: every record of `source`, each one required not to exist at `dest`."""
    listing = source.sync.records(secrets=secrets)
    changes = [{"kind": r["kind"], "id": r["id"], "ifMatch": None, "data": r["data"]} for r in listing["records"]]
    result = dest.sync.apply(changes, dry_run=dry_run, secrets=secrets)
    assert result["dryRun"] is dry_run
    return list(result["results"])


def test_etags_are_equal_across_stores_whose_versions_differ(here: Side, there: Side) -> None:
    data = {"name": "fast", "models": ["groq/llama-3.3-70b-versatile"], "strategy": "priority", "config": {}}
    rec = here.store.create(Kind.COMBO, "fast", data)
    here.store.update(Kind.COMBO, "fast", data, rec.version)
    here.store.update(Kind.COMBO, "fast", data, rec.version + 1)
    there.store.create(Kind.COMBO, "fast", dict(reversed(list(data.items()))))  # key order is not content
    mine, theirs = by_key(here.sync.records()), by_key(there.sync.records())
    assert here.store.get(Kind.COMBO, "fast").version == 3  # type: ignore[union-attr]
    assert there.store.get(Kind.COMBO, "fast").version == 1  # type: ignore[union-attr]
    assert mine[(Kind.COMBO, "fast")]["etag"] == theirs[(Kind.COMBO, "fast")]["etag"]
    assert here.sync.records()["etag"] == there.sync.records()["etag"]
    there.store.update(Kind.COMBO, "fast", {**data, "strategy": "round-robin"}, 1)
    assert by_key(there.sync.records())[(Kind.COMBO, "fast")]["etag"] != mine[(Kind.COMBO, "fast")]["etag"]
    assert here.sync.records()["etag"] != there.sync.records()["etag"]


def test_first_push_copies_every_kind_with_equal_etags(here: Side, there: Side) -> None:
    node = here.admin.create_node({"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"})
    here.admin.create_connection({"provider": "lab", "name": "lab box"})  # a node may be keyless
    here.admin.create_model({"provider": "lab", "modelId": "tiny-1"})
    here.admin.routing.create_combo({"name": "fast", "models": ["lab/tiny-1", "groq/llama-3.3-70b-versatile"]})
    here.admin.routing.create_alias({"pattern": "quick", "target": "fast"})
    here.admin.routing.create_fallback({"pattern": "gpt-*", "models": ["fast"]})
    here.admin.update_settings({"requireApiKey": True, "stickyLimit": 5})
    here.admin.create_key("laptop")
    from shared.services.admin_pricing import PricingService

    PricingService(here.store, lambda: None).patch({"groq": {"llama-3.3-70b-versatile": {"input": 1, "output": 2}}})
    results = push_all(here, there)
    assert [r["status"] for r in results] == ["applied"] * len(results)
    assert len(results) == 9
    assert by_key(here.sync.records()).keys() == by_key(there.sync.records()).keys()
    assert here.sync.records()["etag"] == there.sync.records()["etag"]
    # the node's prefix is claimed on the receiver too: the admin API there cannot create a second `lab`
    claim = there.store.get(Kind.PREFIX, "lab")
    assert claim is not None and claim.data["node"] == node["id"]
    assert there.changes == [1]  # one notification for the whole batch
    # and the receiver's gateway sees it all
    snapshot = build_snapshot(there.store.list_all(), there.cipher)
    assert "fast" in snapshot.combos and snapshot.settings.require_api_key is True


def test_dependencies_later_in_the_batch_are_waited_for(here: Side, there: Side) -> None:
    here.admin.create_node({"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"})
    here.admin.create_model({"provider": "lab", "modelId": "tiny-1"})
    here.admin.routing.create_combo({"name": "fast", "models": ["lab/tiny-1"]})
    here.admin.routing.create_alias({"pattern": "quick", "target": "fast"})
    listing = here.sync.records()["records"]
    changes = [{"kind": r["kind"], "id": r["id"], "ifMatch": None, "data": r["data"]} for r in reversed(listing)]
    # an alias first, then its combo, the combo's model and its node: each waits for what it needs
    results = there.sync.apply(changes)["results"]
    assert [r["status"] for r in results] == ["applied"] * 4
    assert [(r["kind"], r["id"]) for r in results] == [(c["kind"], c["id"]) for c in changes]


def test_stale_if_match_is_a_conflict_and_nothing_is_written(here: Side, there: Side) -> None:
    there.admin.update_settings({"stickyLimit": 2})
    seen = by_key(there.sync.records())[(Kind.SETTINGS, "global")]["etag"]
    there.admin.update_settings({"stickyLimit": 9})  # someone changes it after the read
    before = there.store.get(Kind.SETTINGS, "global")
    change = {"kind": Kind.SETTINGS, "id": "global", "ifMatch": seen, "data": {"stickyLimit": 4}}
    [result] = there.sync.apply([change])["results"]
    assert result["status"] == "conflict"
    assert result["etag"] == by_key(there.sync.records())[(Kind.SETTINGS, "global")]["etag"]
    assert there.store.get(Kind.SETTINGS, "global") == before
    # with the current etag it goes through, conditioned on the version read with it
    [result] = there.sync.apply([{**change, "ifMatch": result["etag"]}])["results"]
    assert result["status"] == "applied"
    assert there.admin.get_settings() == {"stickyLimit": 4}
    assert result["etag"] == by_key(there.sync.records())[(Kind.SETTINGS, "global")]["etag"]


def test_a_write_racing_the_apply_is_a_conflict_not_an_overwrite(here: Side, there: Side) -> None:
    there.admin.update_settings({"stickyLimit": 2})
    seen = by_key(there.sync.records())[(Kind.SETTINGS, "global")]["etag"]
    racing = there.admin

    class RacingStore:
        """The store as another writer sees it: a change lands between apply's read and its write."""

        def __getattr__(self, name: str) -> Any:
            return getattr(there.store, name)

        def update(self, kind: str, id: str, data: Any, expected_version: int) -> Any:
            racing.update_settings({"stickyLimit": 7})
            return there.store.update(kind, id, data, expected_version)

    sync = SyncService(RacingStore(), there.cipher, lambda: None)  # type: ignore[arg-type]
    change = {"kind": Kind.SETTINGS, "id": "global", "ifMatch": seen, "data": {"stickyLimit": 4}}
    [result] = sync.apply([change])["results"]
    assert result["status"] == "conflict"
    assert there.admin.get_settings() == {"stickyLimit": 7}  # the other writer's change stands


def test_null_if_match_means_must_not_exist(here: Side, there: Side) -> None:
    here.admin.routing.create_combo({"name": "fast", "models": ["groq/llama-3.3-70b-versatile"]})
    there.admin.routing.create_combo({"name": "fast", "models": ["openai/gpt-4o-mini"]})
    [result] = push_all(here, there)
    assert result["status"] == "conflict" and result["message"] == "it already exists here"
    assert there.admin.routing.get_combo("fast")["models"] == ["openai/gpt-4o-mini"]
    # the same content already there is no conflict: nothing to write
    there.store.delete(Kind.COMBO, "fast")
    assert [r["status"] for r in push_all(here, there)] == ["applied"]
    assert [r["status"] for r in push_all(here, there)] == ["unchanged"]


def test_delete_needs_the_current_etag_and_takes_the_prefix_claim_along(here: Side, there: Side) -> None:
    node = here.admin.create_node({"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"})
    push_all(here, there)
    seen = by_key(there.sync.records())[(Kind.NODE, node["id"])]["etag"]
    there.admin.update_node(node["id"], {"name": "renamed there"})
    stale = {"kind": Kind.NODE, "id": node["id"], "ifMatch": seen, "delete": True}
    assert there.sync.apply([stale])["results"][0]["status"] == "conflict"
    assert there.store.get(Kind.NODE, node["id"]) is not None
    current = by_key(there.sync.records())[(Kind.NODE, node["id"])]["etag"]
    [result] = there.sync.apply([{**stale, "ifMatch": current}])["results"]
    assert result == {"kind": Kind.NODE, "id": node["id"], "status": "applied", "etag": None}
    assert there.store.get(Kind.NODE, node["id"]) is None
    assert there.store.get(Kind.PREFIX, "lab") is None  # the prefix is free again there
    there.admin.create_node({"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v2"})


def test_delete_of_a_record_still_in_use_is_refused_as_the_admin_api_would(here: Side, there: Side) -> None:
    here.admin.routing.create_combo({"name": "fast", "models": ["groq/llama-3.3-70b-versatile"]})
    here.admin.routing.create_alias({"pattern": "quick", "target": "fast"})
    push_all(here, there)
    combo = by_key(there.sync.records())[(Kind.COMBO, "fast")]
    [result] = there.sync.apply([{"kind": Kind.COMBO, "id": "fast", "ifMatch": combo["etag"], "delete": True}])[
        "results"
    ]
    assert result["status"] == "invalid" and "still used by alias `quick`" in result["message"]
    assert there.store.get(Kind.COMBO, "fast") is not None


def test_secrets_travel_only_when_asked_and_are_sealed_under_the_receivers_key(here: Side, there: Side) -> None:
    conn = here.admin.create_connection({"provider": "groq", "apiKey": GROQ_KEY, "name": "main"})
    plain = by_key(here.sync.records())[(Kind.PROVIDER, conn["id"])]
    assert secret_free(plain) and "keyTag" not in plain
    # without secrets the connection cannot be created there: it needs its key
    [result] = push_all(here, there)
    assert result["status"] == "invalid" and "--secrets" in result["message"]
    assert there.store.get(Kind.PROVIDER, conn["id"]) is None
    [result] = push_all(here, there, secrets=True)
    assert result["status"] == "applied"
    sealed = there.store.get(Kind.PROVIDER, conn["id"])
    assert sealed is not None and GROQ_KEY not in json.dumps(sealed.data)
    context = secret_context(Kind.PROVIDER, conn["id"])
    assert there.cipher.decrypt(sealed.data["apiKey"], context) == GROQ_KEY
    with pytest.raises(DecryptionFailed):
        here.cipher.decrypt(sealed.data["apiKey"], context)
    assert build_snapshot(there.store.list_all(), there.cipher).connections[0].api_key == GROQ_KEY
    # equal keys: equal tags and etags in both modes, though the ciphertexts differ
    for mode in ({}, {"key_tags": True}):
        mine = by_key(here.sync.records(**mode))[(Kind.PROVIDER, conn["id"])]
        theirs = by_key(there.sync.records(**mode))[(Kind.PROVIDER, conn["id"])]
        assert mine["etag"] == theirs["etag"] and secret_free(theirs)
    tags = by_key(there.sync.records(key_tags=True))[(Kind.PROVIDER, conn["id"])]
    assert tags["keyTag"] == result["keyTag"] and tags["settingsEtag"] == plain["etag"]


def test_without_secrets_the_receiver_keeps_its_own_key(here: Side, there: Side) -> None:
    conn = here.admin.create_connection({"provider": "groq", "apiKey": GROQ_KEY, "name": "main"})
    push_all(here, there, secrets=True)
    there.admin.update_connection(conn["id"], {"apiKey": "gsk-their-own-key-000000000000002"})
    here.admin.update_connection(conn["id"], {"priority": 5})
    record = by_key(here.sync.records())[(Kind.PROVIDER, conn["id"])]
    current = by_key(there.sync.records())[(Kind.PROVIDER, conn["id"])]["etag"]
    change = {"kind": Kind.PROVIDER, "id": conn["id"], "ifMatch": current, "data": record["data"]}
    assert there.sync.apply([change])["results"][0]["status"] == "applied"
    stored = build_snapshot(there.store.list_all(), there.cipher).connections[0]
    assert stored.priority == 5 and stored.api_key == "gsk-their-own-key-000000000000002"
    # a key sent without asking for secrets is refused, not stored
    leaked = {**change, "ifMatch": None, "data": {**record["data"], "apiKey": GROQ_KEY}}
    [result] = there.sync.apply([leaked])["results"]
    assert result["status"] == "invalid" and "secrets" in result["message"]
    # with keys compared, a different key is a different version, even with equal settings
    mine = by_key(here.sync.records(key_tags=True))[(Kind.PROVIDER, conn["id"])]
    theirs = by_key(there.sync.records(key_tags=True))[(Kind.PROVIDER, conn["id"])]
    assert mine["settingsEtag"] == theirs["settingsEtag"] and mine["etag"] != theirs["etag"]


def test_linked_accounts_sync_settings_only_and_their_credentials_never(here: Side, there: Side) -> None:
    accounts = OAuthAccountsService(here.store, here.cipher, lambda: None)
    tokens = {"accessToken": "sk-ant-oat01-access-token", "refreshToken": "sk-ant-ort01-refresh-token"}
    account = accounts.link({"provider": "claude", "tokens": tokens, "meta": {"email": "me@example.com"}})
    listing = here.sync.records(secrets=True)
    assert {r["kind"] for r in listing["records"]} == {Kind.PROVIDER}
    assert "refresh-token" not in json.dumps(listing) and "access-token" not in json.dumps(listing)
    [result] = push_all(here, there, secrets=True)
    assert result["status"] == "invalid" and "omniroute login claude" in result["message"]
    assert there.store.get(Kind.PROVIDER, account["id"]) is None
    oauth = here.store.get(Kind.OAUTH, account["id"])
    assert oauth is not None
    change = {"kind": Kind.OAUTH, "id": account["id"], "ifMatch": None, "data": dict(oauth.data)}
    [result] = there.sync.apply([change])["results"]
    assert result["status"] == "invalid" and "never sync" in result["message"]
    assert there.store.get(Kind.OAUTH, account["id"]) is None


def test_key_records_carry_the_hash_never_the_key(here: Side, there: Side) -> None:
    created = here.admin.create_key("laptop")
    listing = here.sync.records(secrets=True)
    assert created["key"] not in json.dumps(listing)
    [record] = listing["records"]
    assert set(record["data"]) == {"name", "keyHash", "display", "enabled", "createdAt"}
    smuggled = {"kind": Kind.APIKEY, "id": "key_x", "ifMatch": None, "data": {**record["data"], "key": created["key"]}}
    [result] = there.sync.apply([smuggled])["results"]
    assert result["status"] == "invalid" and "hash only" in result["message"]
    [result] = push_all(here, there)
    assert result["status"] == "applied"
    snapshot = build_snapshot(there.store.list_all(), there.cipher)
    assert created["id"] in {k.id for k in snapshot.api_keys}  # the same key works there
    twin = {"kind": Kind.APIKEY, "id": "key_twin", "ifMatch": None, "data": record["data"]}
    assert there.sync.apply([twin])["results"][0]["status"] == "invalid"


def test_records_are_checked_like_admin_requests(there: Side) -> None:
    cases = [
        ({"kind": Kind.COMBO, "id": "c", "data": {"name": "c", "models": ["nowhere/x"]}}, "known prefix"),
        ({"kind": Kind.SETTINGS, "id": "global", "data": {"stickyLimit": "many"}}, "stickyLimit"),
        ({"kind": Kind.NODE, "id": "node_1", "data": {"prefix": "groq", "baseUrl": "http://h/v1"}}, "built-in"),
        ({"kind": Kind.PRICE, "id": "ds/chat", "data": {"input": 1, "output": 2}}, "canonical"),
        ({"kind": Kind.ALIAS, "id": "a", "data": {"pattern": "b", "target": "groq/x"}}, "pattern"),
        ({"kind": "prefix", "id": "lab", "data": {"node": "n"}}, "never sync"),
    ]
    results = there.sync.apply([{**change, "ifMatch": None} for change, _ in cases])["results"]
    for result, (_, words) in zip(results, cases, strict=True):
        assert result["status"] == "invalid" and words in result["message"], result
    assert there.store.list_all() == []
    assert there.changes == []


def test_dry_run_checks_everything_and_writes_nothing(here: Side, there: Side) -> None:
    here.admin.create_node({"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"})
    here.admin.create_model({"provider": "lab", "modelId": "tiny-1"})
    here.admin.routing.create_combo({"name": "fast", "models": ["lab/tiny-1"]})
    results = push_all(here, there, dry_run=True)
    assert [r["status"] for r in results] == ["applied"] * 3  # the model's node is in the same batch
    assert there.store.list_all() == [] and there.changes == []
    assert results == push_all(here, there)  # the real run answers exactly what the dry run said


def secret_free(record: dict[str, Any]) -> bool:
    return "apiKey" not in record["data"] and GROQ_KEY not in json.dumps(record)


def test_a_key_that_no_longer_decrypts_is_restored_by_one_that_travels(here: Side, there: Side) -> None:
    conn = here.admin.create_connection({"provider": "groq", "apiKey": GROQ_KEY, "name": "main"})
    push_all(here, there, secrets=True)
    record = there.store.get(Kind.PROVIDER, conn["id"])
    assert record is not None
    # as after `serve --new-secret-key`: the stored key was sealed by a key this side no longer has
    resealed = {**record.data, "apiKey": here.cipher.encrypt(GROQ_KEY, secret_context(Kind.PROVIDER, conn["id"]))}
    there.store.update(Kind.PROVIDER, conn["id"], resealed, record.version)
    unreadable = by_key(there.sync.records(key_tags=True))[(Kind.PROVIDER, conn["id"])]
    assert unreadable["keyTag"] is None and unreadable["keyUnreadable"] is True
    travelling = by_key(here.sync.records(secrets=True))[(Kind.PROVIDER, conn["id"])]
    change = {"kind": Kind.PROVIDER, "id": conn["id"], "ifMatch": unreadable["etag"], "data": travelling["data"]}
    [result] = there.sync.apply([change], secrets=True)["results"]
    assert result["status"] == "applied" and result["keyTag"] == travelling["keyTag"]
    assert build_snapshot(there.store.list_all(), there.cipher).connections[0].api_key == GROQ_KEY
