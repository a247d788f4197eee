"""SqliteUsageStore and SqliteSpendStore: the UsageStore and SpendStore contracts (the very tests the DynamoDB
adapters pass, collected here again with this module's fixtures), then what only a file on disk has to show:
it survives reopening, threads lose nothing, expired rows are purged, the file is private and versioned."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.dynamo.spend import SPEND_MEMORY
from shared.adapters.sqlite_usage import SCHEMA_VERSION, SqliteSpendStore, SqliteUsageStore, UsageFileError
from tests.shared.adapters.dynamo import test_spend as spend_contract
from tests.shared.adapters.dynamo import test_usage_store as usage_contract
from tests.shared.adapters.dynamo.test_spend import PERIODS, Counter
from tests.shared.adapters.dynamo.test_usage_store import DAY, KEEP, T, by_key, event, totals

CONTRACT = {
    name: test
    for module in (usage_contract, spend_contract)
    for name, test in vars(module).items()
    if name.startswith("test_") and callable(test)
}
globals().update(CONTRACT)


# --- fixtures the contract tests ask for -------------------------------------------------------------------
@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "usage.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteUsageStore]:
    with closing(SqliteUsageStore(path)) as usage:
        yield usage


@pytest.fixture
def spend(path: Path) -> Iterator[SqliteSpendStore]:
    with closing(SqliteSpendStore(path)) as spent:
        yield spent


def query(path: Path, sql: str, *args: Any) -> list[Any]:
    """Rows read through a connection of the test's own, as another process would see them."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, args).fetchall()


@pytest.fixture
def partition(path: Path) -> Callable[[str], list[str]]:
    """The rows standing for one of the DynamoDB adapter's partitions (`REQ#<day>`, `ROLL#<level>#<period>`),
    rollup markers included, so the contract's "what a call left behind" checks read the same here."""

    def keys(pk: str) -> list[str]:
        kind, _, rest = pk.partition("#")
        if kind == "REQ":
            return [sk for (sk,) in query(path, "SELECT sk FROM events WHERE day = ? ORDER BY sk", rest)]
        level, _, period = rest.partition("#")
        groups = query(
            path, "SELECT period, provider, model, connection_id, key_id FROM rollups WHERE level = ?", level
        )
        marks = query(path, "SELECT period FROM rolled_periods WHERE level = ?", level)
        rows = [f"{p}#G#{'|'.join(group)}" for p, *group in groups] + [f"{p}#META" for (p,) in marks]
        return sorted(r for r in rows if r.startswith(f"{period}#") or (level == "H" and r.startswith(f"{period}T")))

    return keys


def read_counter(path: Path) -> Counter:
    def read(key_id: str, period_id: str) -> tuple[int, int, float]:
        sql = "SELECT expires_at, requests, usd FROM spend WHERE key_id = ? AND period = ?"
        ((expires_at, requests, usd),) = query(path, sql, key_id, period_id)
        return expires_at, requests, float(usd)

    return read


@pytest.fixture
def counter(path: Path) -> Counter:
    return read_counter(path)


@pytest.fixture
def contended(spend: SqliteSpendStore, path: Path) -> tuple[SqliteSpendStore, Counter]:
    return spend, read_counter(path)


# --- what only a file shows --------------------------------------------------------------------------------
def test_everything_survives_reopening_the_file(path: Path) -> None:
    with closing(SqliteUsageStore(path)) as usage, closing(SqliteSpendStore(path)) as spent:
        usage.put_events([event("r1"), event("r2", T + 1, key_id=None, ttft_ms=None)], KEEP)
        usage.put_rollup("H", f"{DAY}T10", [totals("k1")], KEEP)
        usage.put_log(T, "r1", {"path": "/v1/messages"}, 4_000_000_000)
        spent.add_spend("k1", PERIODS, 0.25)
    with closing(SqliteUsageStore(path)) as usage, closing(SqliteSpendStore(path)) as spent:
        assert usage.events(DAY) == [event("r1"), event("r2", T + 1, key_id=None, ttft_ms=None)]
        assert usage.hour_rollups(DAY) == {"10": [totals("k1")]}
        assert usage.logs(DAY, 10) == ([{"path": "/v1/messages"}], None)
        assert spent.spend("k1", [p for p, _ in PERIODS]) == {"daily:2026-11-22": 0.25, "monthly:2026-11": 0.25}
        assert spent.add_spend("k1", PERIODS[:1], 0.5) == {"daily:2026-11-22": 0.75}  # a budget is not reset


def test_concurrent_put_events_from_threads_are_all_stored(store: SqliteUsageStore) -> None:
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: store.put_events([event(f"r{i:03d}", T + i / 1000)], KEEP), range(200)))
    assert [e.request_id for e in store.events(DAY)] == [f"r{i:03d}" for i in range(200)]


def test_both_stores_on_one_file_write_concurrently(store: SqliteUsageStore, spend: SqliteSpendStore) -> None:
    """Local mode opens the usage and the spend store on one file: two connections, each waiting for the other."""

    def work(i: int) -> None:
        if i % 2:
            spend.add_spend("k1", PERIODS, 0.001)
        else:
            store.put_events([event(f"r{i:03d}", T + i / 1000)], KEEP)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(200)))
    assert len(store.events(DAY)) == 100
    assert spend.spend("k1", ["daily:2026-11-22"]) == {"daily:2026-11-22": 0.1}


def test_spend_adds_in_decimal_like_dynamodb(spend: SqliteSpendStore) -> None:
    for _ in range(3):
        total = spend.add_spend("k1", PERIODS[:1], 0.1)
    assert total == {"daily:2026-11-22": 0.3}  # not 0.30000000000000004


def test_purge_deletes_expired_rows_and_keeps_the_rest(store: SqliteUsageStore, spend: SqliteSpendStore) -> None:
    now = T + 10 * 86_400
    store.put_events([event("old")], now - 1)
    store.put_events([event("new", T + 1)], now + 1)
    store.put_log(T, "old", {"i": 0}, now)
    store.put_log(T + 1, "new", {"i": 1}, now + 1)
    store.put_rollup("H", f"{DAY}T09", [totals("k1")], now - 1)
    store.put_rollup("H", f"{DAY}T10", [totals("k1")], now + 1)
    store.put_rollup("M", "2026-11", [totals("k1")], None)  # months are kept forever
    spend.add_spend("k1", [("daily:2026-11-21", now - 1 - SPEND_MEMORY)], 1.0)
    spend.add_spend("k1", [("daily:2026-11-22", now + 1 - SPEND_MEMORY)], 1.0)

    assert store.purge(now) == 4  # an event, a log (expired at `now`), an hour's group and its marker
    assert spend.purge(now) == 1
    assert [e.request_id for e in store.events(DAY)] == ["new"]
    assert [sk.rpartition("#")[2] for (sk,) in query(store.path, "SELECT sk FROM logs")] == ["new"]
    assert list(store.hour_rollups(DAY)) == ["10"]
    assert by_key(store.rollup("M", "2026-11")) == [totals("k1")]
    assert spend.spend("k1", ["daily:2026-11-21", "daily:2026-11-22"]) == {"daily:2026-11-22": 1.0}
    assert store.purge(now) == 0


def test_expired_rows_are_purged_as_rows_are_written(path: Path) -> None:
    clock = [T]
    with closing(SqliteUsageStore(path, clock=lambda: clock[0], purge_every=10)) as usage:
        usage.put_events([event(f"old{i}", T + i) for i in range(5)], T + 60)
        clock[0] = T + 120
        usage.put_events([event(f"new{i}", T + 100 + i) for i in range(4)], KEEP)  # 9 rows written: no purge yet
        assert len(usage.events(DAY)) == 9
        usage.put_events([event("new4", T + 104)], KEEP)  # the 10th row
        assert [e.request_id for e in usage.events(DAY)] == [f"new{i}" for i in range(5)]


def test_the_file_is_private_versioned_and_in_wal_mode(path: Path, store: SqliteUsageStore) -> None:
    store.put_events([event("r1")], KEEP)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(path, "PRAGMA journal_mode") == [("wal",)]


def test_a_file_from_a_newer_version_is_refused(path: Path) -> None:
    SqliteUsageStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UsageFileError, match="schema version 2"):
        SqliteSpendStore(path)


def test_a_file_that_is_not_a_database_is_refused_untouched(path: Path) -> None:
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(UsageFileError, match="move it aside"):
        SqliteUsageStore(path)
    assert path.read_bytes() == b"not a database at all" * 100
