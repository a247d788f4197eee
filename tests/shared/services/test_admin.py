"""ConfigService against a real (moto) store: validation, encryption at rest, masking, change notification."""

from pathlib import Path

import pytest

from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.domain.config import Kind, Record
from shared.domain.keys import hash_key
from shared.errors import InvalidRequest, NotFound, NotSupported
from shared.services.admin import ConfigService
from shared.services.snapshot import build_snapshot


@pytest.fixture
def parts(table_names: dict[str, str], dynamo_endpoint: str | None, tmp_path: Path):
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    cipher = AesGcmCipher.from_key_file(tmp_path / "k")
    changes: list[int] = []
    svc = ConfigService(store, cipher, on_change=lambda: changes.append(1))
    return svc, store, cipher, changes


def test_connection_key_is_encrypted_at_rest_and_masked_on_the_way_out(parts) -> None:
    svc, store, cipher, changes = parts
    view = svc.create_connection({"provider": "ds", "apiKey": "sk-very-secret-key-000000001", "name": "main"})
    assert view["provider"] == "deepseek"  # alias normalised to the catalogue id
    assert view["apiKey"] == "sk-v…0001"
    raw = store.get(Kind.PROVIDER, view["id"])
    assert raw is not None and "sk-very-secret-key-000000001" not in str(raw.data)
    snap = build_snapshot(store.list_all(), cipher)
    assert snap.connections[0].api_key == "sk-very-secret-key-000000001"
    assert changes == [1]


def test_connection_validation(parts) -> None:
    svc, *_ = parts
    with pytest.raises(InvalidRequest, match="Unknown provider"):
        svc.create_connection({"provider": "nope", "apiKey": "x"})
    with pytest.raises(InvalidRequest, match="apiKey"):
        svc.create_connection({"provider": "groq"})
    with pytest.raises(InvalidRequest, match="http"):
        svc.create_connection({"provider": "groq", "apiKey": "x", "baseUrl": "ftp://h/v1"})
    with pytest.raises(NotSupported, match="OAuth"):
        svc.create_connection({"provider": "cc", "apiKey": "x"})


def test_update_changes_only_sent_fields_and_rotates_key(parts) -> None:
    svc, store, cipher, _ = parts
    view = svc.create_connection({"provider": "groq", "apiKey": "gsk-old-000000", "priority": 3})
    updated = svc.update_connection(view["id"], {"enabled": False, "apiKey": "gsk-new-key-0000000000001111"})
    assert updated["priority"] == 3 and updated["enabled"] is False and updated["apiKey"] == "gsk-…1111"
    assert build_snapshot(store.list_all(), cipher).connections[0].api_key == "gsk-new-key-0000000000001111"
    with pytest.raises(NotFound):
        svc.update_connection("conn_missing", {"enabled": True})


def test_nodes_prefix_rules_and_in_use_protection(parts) -> None:
    svc, *_ = parts
    node = svc.create_node({"prefix": "Mine", "baseUrl": "http://127.0.0.1:1234/v1/", "apiType": "openai"})
    assert node["prefix"] == "mine" and node["baseUrl"] == "http://127.0.0.1:1234/v1"
    with pytest.raises(InvalidRequest, match="used by node"):
        svc.create_node({"prefix": "mine", "baseUrl": "http://x/v1"})
    with pytest.raises(InvalidRequest, match="built-in"):
        svc.create_node({"prefix": "groq", "baseUrl": "http://x/v1"})
    with pytest.raises(InvalidRequest, match="apiType"):
        svc.create_node({"prefix": "other", "baseUrl": "http://x/v1", "apiType": "soap"})
    conn = svc.create_connection({"provider": "mine", "apiKey": "k-123456789"})
    assert conn["provider"] == node["id"]
    assert conn["name"] == "mine"  # named after the node, not its generated id
    keyless = svc.create_connection({"provider": "mine"})  # a local server may need no key
    assert keyless["apiKey"] is None
    svc.delete_connection(keyless["id"])
    with pytest.raises(InvalidRequest, match="still has connections"):
        svc.delete_node(node["id"])
    svc.delete_connection(conn["id"])
    svc.delete_node(node["id"])
    assert svc.list_nodes() == []


def test_custom_models(parts) -> None:
    svc, *_ = parts
    svc.create_model({"provider": "or", "modelId": "vendor/new-model"})
    assert [m["modelId"] for m in svc.list_models("openrouter")] == ["vendor/new-model"]
    assert svc.list_models("groq") == []
    svc.delete_model("openrouter", "vendor/new-model")
    with pytest.raises(NotFound):
        svc.delete_model("openrouter", "vendor/new-model")


def test_api_key_shown_once_and_stored_as_hash(parts) -> None:
    svc, store, *_ = parts
    created = svc.create_key("laptop")
    key = created["key"]
    assert key.startswith("sk-omni-")
    stored = store.get(Kind.APIKEY, created["id"])
    assert stored is not None and stored.data["keyHash"] == hash_key(key)
    assert key not in str(stored.data)
    listed = svc.list_keys()
    assert listed[0]["name"] == "laptop" and key not in str(listed)
    svc.revoke_key(created["id"])
    assert svc.list_keys() == []


def test_settings_merge(parts) -> None:
    svc, *_ = parts
    assert svc.get_settings() == {}
    assert svc.update_settings({"requireApiKey": True}) == {"requireApiKey": True}


def test_concurrent_node_creates_claim_a_prefix_once_without_any_process_lock(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Against moto's server with no local lock (the cloud's situation: many Lambda instances)."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import botocore.session

    from shared.adapters.dynamo.tables import create_tables

    names = {"ConfigTable": f"prefix-race-{uuid.uuid4().hex[:8]}"}
    create_tables(botocore.session.get_session().create_client("dynamodb", endpoint_url=moto_endpoint), names)
    store = DynamoConfigStore(bind_config_model(names["ConfigTable"], "us-east-1", moto_endpoint))
    svc = ConfigService(store, AesGcmCipher.from_key_file(tmp_path / "k"), on_change=lambda: None)

    def create(args: tuple[int, int]) -> bool:
        round_, i = args
        try:
            svc.create_node({"prefix": f"race{round_}", "baseUrl": f"http://127.0.0.1:9/v{i}"})
            return True
        except InvalidRequest:
            return False

    for round_ in range(5):
        with ThreadPoolExecutor(8) as pool:
            wins = list(pool.map(create, [(round_, i) for i in range(8)]))
        assert wins.count(True) == 1, f"round {round_}: {wins.count(True)} nodes got one prefix"
    assert len(svc.list_nodes()) == 5


def test_an_orphaned_prefix_claim_is_taken_over_but_a_fresh_one_is_not(parts) -> None:
    svc, store, *_ = parts
    # A create that died between its two writes left a claim and no node, long ago...
    store.restore([Record("prefix", "ghost", {"node": "node_gone"}, 1, "2026-01-01T00:00:00.000+00:00")])
    node = svc.create_node({"prefix": "ghost", "baseUrl": "http://127.0.0.1:9/v1"})
    assert store.get("prefix", "ghost").data == {"node": node["id"]}
    # ...while a claim made a moment ago may belong to a create still in progress.
    store.create("prefix", "fresh", {"node": "node_on_its_way"})
    with pytest.raises(InvalidRequest, match="already used"):
        svc.create_node({"prefix": "fresh", "baseUrl": "http://127.0.0.1:9/v1"})
