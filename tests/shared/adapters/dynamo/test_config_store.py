"""Contract of the DynamoDB ConfigStore, on moto's in-process backend and on its server."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model, restore_records
from shared.domain.config import Record
from shared.errors import Conflict, NotFound


@pytest.fixture
def store(table_names: dict[str, str], dynamo_endpoint: str | None) -> DynamoConfigStore:
    return DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))


def test_create_get_list(store: DynamoConfigStore) -> None:
    rec = store.create("provider", "a", {"provider": "groq", "n": 1, "nested": {"x": [1, 2]}})
    assert (rec.kind, rec.id, rec.version) == ("provider", "a", 1)
    store.create("provider", "b", {"provider": "ds"})
    store.create("node", "n1", {"prefix": "p"})
    got = store.get("provider", "a")
    assert got is not None and got.data == {"provider": "groq", "n": 1, "nested": {"x": [1, 2]}}
    assert sorted(r.id for r in store.list("provider")) == ["a", "b"]
    assert sorted((r.kind, r.id) for r in store.list_all()) == [("node", "n1"), ("provider", "a"), ("provider", "b")]
    assert store.get("provider", "zzz") is None


def test_create_twice_is_a_conflict_and_keeps_the_first(store: DynamoConfigStore) -> None:
    store.create("apikey", "k", {"v": 1})
    with pytest.raises(Conflict):
        store.create("apikey", "k", {"v": 2})
    got = store.get("apikey", "k")
    assert got is not None and got.data == {"v": 1}


def test_update_checks_version(store: DynamoConfigStore) -> None:
    rec = store.create("provider", "a", {"v": 1})
    updated = store.update("provider", "a", {"v": 2}, rec.version)
    assert updated.version == 2
    with pytest.raises(Conflict):
        store.update("provider", "a", {"v": 3}, rec.version)  # stale
    with pytest.raises(NotFound):
        store.update("provider", "gone", {"v": 1}, 1)
    got = store.get("provider", "a")
    assert got is not None and got.data == {"v": 2} and got.version == 2


def test_concurrent_updates_from_one_version_let_exactly_one_win(moto_endpoint: str) -> None:
    # On moto's server only: its in-process backend is not atomic across threads (DESIGN §7), which is why
    # local mode funnels every call through LockedConfigStore.
    import uuid

    import botocore.session

    from shared.adapters.dynamo.tables import create_tables

    names = {"ConfigTable": f"race-{uuid.uuid4().hex[:8]}"}
    create_tables(botocore.session.get_session().create_client("dynamodb", endpoint_url=moto_endpoint), names)
    store = DynamoConfigStore(bind_config_model(names["ConfigTable"], "us-east-1", moto_endpoint))
    rec = store.create("provider", "race", {"v": 0})

    def attempt(i: int) -> bool:
        try:
            store.update("provider", "race", {"v": i}, rec.version)
            return True
        except Conflict:
            return False

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count(True) == 1


def test_put_upserts_and_counts_versions(store: DynamoConfigStore) -> None:
    assert store.put("settings", "global", {"requireApiKey": True}).version == 1
    again = store.put("settings", "global", {"requireApiKey": False})
    assert again.version == 2 and again.data == {"requireApiKey": False}


def test_delete(store: DynamoConfigStore) -> None:
    store.create("apikey", "k", {})
    assert store.delete("apikey", "k") is True
    assert store.delete("apikey", "k") is False
    assert store.get("apikey", "k") is None


def test_restore_keeps_versions_and_timestamps(
    store: DynamoConfigStore, table_names: dict[str, str], dynamo_endpoint: str | None
) -> None:
    model = bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint)
    restore_records(model, [Record("node", "n", {"prefix": "p"}, 7, "2026-01-01T00:00:00.000+00:00")])
    got = store.get("node", "n")
    assert got == Record("node", "n", {"prefix": "p"}, 7, "2026-01-01T00:00:00.000+00:00")
