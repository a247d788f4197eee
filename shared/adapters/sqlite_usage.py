"""UsageStore and SpendStore for local mode, in one SQLite file (`<data dir>/usage.sqlite3`).

Why SQLite locally: local mode's DynamoDB is moto, which keeps nothing on disk. The Config table is
snapshotted to JSON, but request events, rollups, request logs and budget spend would be lost on every
restart (a restart would even reset every key's budget), and moto costs the server about half a millisecond
of its own CPU per event written. SQLite keeps them on disk for ~30 µs of CPU per event written alone and
~12 µs per event in a batch (measured here; WAL, no fsync per commit). The cloud keeps using DynamoDB
(`shared.adapters.dynamo.usage_store`, `shared.adapters.dynamo.spend`); both implement the same ports and
pass the same contract tests (tests/shared/adapters/dynamo/test_usage_store.py and test_spend.py, rerun on
SQLite by tests/shared/adapters/test_sqlite_usage.py).

Same semantics as the DynamoDB adapters: an event is keyed by its UTC day and `<time>#<request id>`
(`event_sk`), so a request written twice is one row and a page's cursor is the last row's sort key; a
rollup replaces its period's groups and marks the period rolled; spend is added atomically and returned
as stored, in exact decimal arithmetic like DynamoDB's `ADD` (no 0.30000000000000004 in a budget).

Expiry: rows keep their `expires_at`. Request logs are hidden from reads at their expiry, as the DynamoDB
adapter hides them. Events, rollups and spend counters are returned until they are deleted, as DynamoDB
returns them until its TTL deletes them (late). Deleting is `purge(now)`, run by each store on every
`PURGE_EVERY`th row it writes (an indexed range delete), so the file cannot grow without bound.

Each store holds one connection (WAL journal, `synchronous=NORMAL`: a committed write survives the process
being killed; only an OS crash may lose the last ones) behind one lock, as calls come from worker threads.
Writes take SQLite's write lock up front (`BEGIN IMMEDIATE`), so the two stores' connections to one file
wait for each other instead of failing, and an `ADD` is read and written under that lock.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import orjson

from shared.adapters.dynamo.spend import SPEND_MEMORY
from shared.adapters.dynamo.usage_store import day_of, event_sk
from shared.domain.usage import Usage, UsageEvent, UsageTotals

SCHEMA_VERSION = 1
PURGE_EVERY = 1_000  # rows written between two purges of expired rows
BUSY_TIMEOUT = 10.0  # seconds a write waits for the other connection's transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    day TEXT NOT NULL, sk TEXT NOT NULL, request_id TEXT NOT NULL, at REAL NOT NULL,
    provider TEXT NOT NULL, model TEXT NOT NULL, requested TEXT NOT NULL,
    connection_id TEXT, key_id TEXT, combo TEXT, client TEXT NOT NULL, stream INTEGER NOT NULL,
    status INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL, cached INTEGER NOT NULL,
    cache_creation INTEGER NOT NULL, reasoning INTEGER NOT NULL, estimated INTEGER NOT NULL,
    cost REAL NOT NULL, latency_ms REAL NOT NULL, ttft_ms REAL, attempts INTEGER NOT NULL, error TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (day, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_expiry ON events (expires_at);

CREATE TABLE IF NOT EXISTS rollups (
    level TEXT NOT NULL, period TEXT NOT NULL,
    provider TEXT NOT NULL, model TEXT NOT NULL, connection_id TEXT NOT NULL, key_id TEXT NOT NULL,
    requests INTEGER NOT NULL, errors INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL,
    cached INTEGER NOT NULL, cache_creation INTEGER NOT NULL, reasoning INTEGER NOT NULL, cost REAL NOT NULL,
    estimated INTEGER NOT NULL, latency_ms REAL NOT NULL, ttft_ms REAL NOT NULL, ttft_count INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (level, period, provider, model, connection_id, key_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollups_expiry ON rollups (expires_at);

-- a period's row marks it rolled up (a period with no traffic has this row and no groups)
CREATE TABLE IF NOT EXISTS rolled_periods (
    level TEXT NOT NULL, period TEXT NOT NULL, groups INTEGER NOT NULL, rolled_at REAL NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (level, period)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS logs (
    day TEXT NOT NULL, sk TEXT NOT NULL, entry TEXT NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (day, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_expiry ON logs (expires_at);

-- usd: decimal text, added by decimal_add (exact, as DynamoDB's ADD)
CREATE TABLE IF NOT EXISTS spend (
    key_id TEXT NOT NULL, period TEXT NOT NULL, usd TEXT NOT NULL, requests INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, period)
) WITHOUT ROWID;
"""


class UsageFileError(Exception):
    """The usage file cannot be used: not an SQLite database, or written by a newer version."""


def _decimal_add(stored: str, added: str) -> str:
    return str(Decimal(stored) + Decimal(added))


def _connect(path: Path) -> sqlite3.Connection:
    # created 0600 before SQLite opens it (its -wal and -shm files take the same mode): with request logs
    # on, the file holds prompts
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # before anything writes to the file
        if version > SCHEMA_VERSION:
            raise UsageFileError(f"{path} has schema version {version}; this version of OmniRoute reads up to "
                                 f"{SCHEMA_VERSION}: upgrade, or move the file aside")  # fmt: skip
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        conn.create_function("decimal_add", 2, _decimal_add, deterministic=True)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UsageFileError(f"{path} is not a usable usage database ({exc}); move it aside to start afresh") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class _SqliteFile:
    """One connection to the usage file and the lock every call holds; purges its tables as it writes."""

    _PURGE: ClassVar[tuple[str, ...]] = ()  # one DELETE of expired rows per table, `expires_at <= ?`

    def __init__(
        self, path: Path | str, *, clock: Callable[[], float] = time.time, purge_every: int = PURGE_EVERY
    ) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path)
        self._lock = threading.Lock()
        self._clock = clock
        self._purge_every = purge_every
        self._unpurged = 0

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection in one read transaction: several SELECTs see one snapshot."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    @contextmanager
    def _write(self, rows: int) -> Iterator[sqlite3.Connection]:
        """One transaction holding SQLite's write lock from its start; `rows` count towards the next purge."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._unpurged += rows
                if self._unpurged >= self._purge_every:
                    self._unpurged = 0
                    self._delete_expired(self._clock())
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _delete_expired(self, now: float) -> int:
        return sum(self._conn.execute(sql, (now,)).rowcount for sql in self._PURGE)

    def purge(self, now: float) -> int:
        """Delete this store's rows expired at `now`; returns how many."""
        with self._write(0):
            return self._delete_expired(now)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- usage --------------------------------------------------------------------------------------------------
_PUT_EVENT = """INSERT OR REPLACE INTO events (day, sk, expires_at, request_id, at, provider, model, requested,
    connection_id, key_id, combo, client, stream, status, input, output, cached, cache_creation, reasoning,
    estimated, cost, latency_ms, ttft_ms, attempts, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_EVENTS_BETWEEN = """SELECT sk, request_id, at, provider, model, requested, connection_id, key_id, combo, client,
    stream, status, input, output, cached, cache_creation, reasoning, estimated, cost, latency_ms, ttft_ms,
    attempts, error FROM events WHERE day = ? AND sk >= ? AND sk < ?"""
_END = "\U0010ffff"  # sorts after every sort key (they are ASCII)
# rollup columns in the order of UsageTotals' fields: a row is `UsageTotals(*row)`
_PUT_TOTALS = """INSERT OR REPLACE INTO rollups (level, period, expires_at, provider, model, connection_id, key_id,
    requests, errors, input, output, cached, cache_creation, reasoning, cost, estimated, latency_ms, ttft_ms,
    ttft_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_TOTALS_BETWEEN = """SELECT period, provider, model, connection_id, key_id, requests, errors, input, output, cached,
    cache_creation, reasoning, cost, estimated, latency_ms, ttft_ms, ttft_count
    FROM rollups WHERE level = ? AND period >= ? AND period < ?"""
_PERIOD_TOTALS = """SELECT provider, model, connection_id, key_id, requests, errors, input, output, cached,
    cache_creation, reasoning, cost, estimated, latency_ms, ttft_ms, ttft_count
    FROM rollups WHERE level = ? AND period = ?"""
_NEWEST_LOGS = "SELECT sk, entry FROM logs WHERE day = ? AND sk < ? AND expires_at > ? ORDER BY sk DESC LIMIT ?"


def _event_row(e: UsageEvent, expires_at: float) -> tuple[Any, ...]:
    u = e.usage
    ttft = round(e.ttft_ms, 3) if e.ttft_ms is not None else None  # rounded as the DynamoDB adapter stores them
    return (
        day_of(e.at), event_sk(e.at, e.request_id), int(expires_at), e.request_id, e.at, e.provider, e.model,
        e.requested, e.connection_id, e.key_id, e.combo, e.client, e.stream, e.status, u.input, u.output, u.cached,
        u.cache_creation, u.reasoning, e.estimated, e.cost, round(e.latency_ms, 3), ttft, e.attempts, e.error,
    )  # fmt: skip


def _event(row: Sequence[Any]) -> UsageEvent:
    (rid, at, provider, model, requested, conn, key, combo, client, stream, status,
     inp, out, cached, cc, rsn, est, cost, lat, ttft, attempts, error) = row  # fmt: skip
    return UsageEvent(
        request_id=rid, at=at, provider=provider, model=model, requested=requested, connection_id=conn, key_id=key,
        combo=combo, client=client, stream=bool(stream), status=status,
        usage=Usage(input=inp, output=out, cached=cached, cache_creation=cc, reasoning=rsn), estimated=bool(est),
        cost=cost, latency_ms=lat, ttft_ms=ttft, attempts=attempts, error=error,
    )  # fmt: skip


def _totals_row(level: str, period: str, t: UsageTotals, expires_at: int | None) -> tuple[Any, ...]:
    return (
        level, period, expires_at, t.provider, t.model, t.connection_id, t.key_id, t.requests, t.errors, t.input,
        t.output, t.cached, t.cache_creation, t.reasoning, t.cost, t.estimated, round(t.latency_ms, 3),
        round(t.ttft_ms, 3), t.ttft_count,
    )  # fmt: skip


def _prefix_range(prefix: str) -> tuple[str, str]:
    """The [low, high) range of the strings that start with `prefix` (non-empty): SQLite's index serves it."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _page(rows: list[Any], limit: int) -> str | None:
    """The position to go on from: the last row's sort key when the page is full (more may follow)."""
    return str(rows[-1][0]) if rows and len(rows) == limit else None


class SqliteUsageStore(_SqliteFile):
    """`shared.ports.UsageStore` in an SQLite file."""

    _PURGE = (
        "DELETE FROM events WHERE expires_at <= ?",
        "DELETE FROM logs WHERE expires_at <= ?",
        "DELETE FROM rollups WHERE expires_at <= ?",
        "DELETE FROM rolled_periods WHERE expires_at <= ?",
    )

    # --- requests -------------------------------------------------------------------------------------
    def put_events(self, events: Sequence[UsageEvent], expires_at: float) -> None:
        if not events:
            return
        rows = [_event_row(e, expires_at) for e in events]
        with self._write(len(rows)) as db:
            db.executemany(_PUT_EVENT, rows)

    def events(self, day: str, hour_prefix: str = "") -> list[UsageEvent]:
        low, high = _prefix_range(hour_prefix) if hour_prefix else ("", _END)
        with self._read() as db:
            rows = db.execute(_EVENTS_BETWEEN + " ORDER BY sk", (day, low, high)).fetchall()
        return [_event(row[1:]) for row in rows]

    def recent_events(self, day: str, limit: int, before: str | None = None) -> tuple[list[UsageEvent], str | None]:
        with self._read() as db:
            rows = db.execute(_EVENTS_BETWEEN + " ORDER BY sk DESC LIMIT ?", (day, "", before or _END, limit))
            page = rows.fetchall()
        return [_event(row[1:]) for row in page], _page(page, limit)

    # --- rollups --------------------------------------------------------------------------------------
    def put_rollup(self, level: str, period: str, groups: Sequence[UsageTotals], expires_at: float | None) -> None:
        exp = int(expires_at) if expires_at is not None else None
        rows = [_totals_row(level, period, t, exp) for t in groups]
        with self._write(len(rows) + 1) as db:  # one transaction: readers see the old groups or the new ones
            db.execute("DELETE FROM rollups WHERE level = ? AND period = ?", (level, period))
            db.executemany(_PUT_TOTALS, rows)
            db.execute(
                "INSERT OR REPLACE INTO rolled_periods (level, period, groups, rolled_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (level, period, len(rows), time.time(), exp),
            )

    def rollup(self, level: str, period: str) -> list[UsageTotals] | None:
        with self._read() as db:
            rolled = db.execute("SELECT 1 FROM rolled_periods WHERE level = ? AND period = ?", (level, period))
            if rolled.fetchone() is None:
                return None
            return [UsageTotals(*row) for row in db.execute(_PERIOD_TOTALS, (level, period))]

    def hour_rollups(self, day: str) -> dict[str, list[UsageTotals]]:
        low, high = _prefix_range(f"{day}T")
        with self._read() as db:
            rolled = db.execute(
                "SELECT period FROM rolled_periods WHERE level = 'H' AND period >= ? AND period < ? ORDER BY 1",
                (low, high),
            ).fetchall()
            rows = db.execute(_TOTALS_BETWEEN, ("H", low, high)).fetchall()
        hours: dict[str, list[UsageTotals]] = {period: [] for (period,) in rolled}
        for period, *totals in rows:
            hours.setdefault(period, []).append(UsageTotals(*totals))
        return {period.partition("T")[2]: hours[period] for (period,) in rolled}

    # --- request logs ---------------------------------------------------------------------------------
    def put_log(self, at: float, request_id: str, entry: Mapping[str, Any], expires_at: float) -> None:
        row = (day_of(at), event_sk(at, request_id), orjson.dumps(entry).decode(), int(expires_at))
        with self._write(1) as db:
            db.execute("INSERT OR REPLACE INTO logs (day, sk, entry, expires_at) VALUES (?, ?, ?, ?)", row)

    def logs(self, day: str, limit: int, before: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        now = self._clock()  # an expired log is gone for the reader at its expiry (the purge deletes it later)
        with self._read() as db:
            rows = db.execute(_NEWEST_LOGS, (day, before or _END, now, limit)).fetchall()
        return [orjson.loads(entry) for _, entry in rows], _page(rows, limit)


# --- spend --------------------------------------------------------------------------------------------------
_ADD_SPEND = """INSERT INTO spend (key_id, period, usd, requests, expires_at) VALUES (?, ?, ?, 1, ?)
    ON CONFLICT (key_id, period) DO UPDATE SET usd = decimal_add(usd, excluded.usd), requests = requests + 1
    RETURNING usd"""


class SqliteSpendStore(_SqliteFile):
    """`shared.ports.SpendStore` in an SQLite file: what each API key spent per budget period. A counter's
    expiry is set when it is created (a week after its period ends) and kept, as the DynamoDB adapter does."""

    _PURGE = ("DELETE FROM spend WHERE expires_at <= ?",)

    def add_spend(self, key_id: str, periods: Sequence[tuple[str, float]], usd: float) -> dict[str, float]:
        added = str(Decimal(repr(usd)))  # the float's shortest repr, as DynamoDB receives it
        totals: dict[str, float] = {}
        with self._write(len(periods)) as db:
            for period_id, ends_at in periods:
                args = (key_id, period_id, added, math.ceil(ends_at + SPEND_MEMORY))
                ((stored,),) = db.execute(_ADD_SPEND, args).fetchall()
                totals[period_id] = float(stored)
        return totals

    def spend(self, key_id: str, period_ids: Sequence[str]) -> dict[str, float]:
        wanted = set(period_ids)
        with self._read() as db:
            rows = db.execute("SELECT period, usd FROM spend WHERE key_id = ?", (key_id,)).fetchall()
        return {period: float(usd) for period, usd in rows if period in wanted}
