"""Local mode's embedded DynamoDB: moto inside the `serve` process, configuration persisted to JSON.

moto keeps nothing on disk, so the Config table is written to `<data dir>/config.json` after every change
(temp file, fsync, rename, fsync of the directory): a change the admin API confirmed survives `kill -9`.

Two backends, chosen by measurement (bench/store_backends.py): moto's in-process backend answers a
pynamodb get in about a millisecond, its threaded server on loopback takes several times that, so the
in-process backend is the default. The in-process backend is not atomic under concurrent threads
(DESIGN §7), so every store call made through `LockedConfigStore` holds one lock.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import botocore.session

from shared.adapters.dynamo.config_store import DynamoConfigStore
from shared.adapters.dynamo.tables import create_tables
from shared.domain.config import Record

Backend = Literal["inprocess", "server"]

SNAPSHOT_FORMAT = "omniroute-config-snapshot"

log = logging.getLogger(__name__)


class SnapshotError(Exception):
    pass


class EmbeddedDynamo:
    """Starts moto's DynamoDB (in-process or on a loopback port) and creates the template's tables."""

    def __init__(self, table_names: dict[str, str], region: str, backend: Backend = "inprocess") -> None:
        self.table_names = table_names
        self.region = region
        self.backend = backend
        self.endpoint: str | None = None
        self._stop: Any = None

    def start(self) -> None:
        # moto needs credentials to sign with; they never leave the process.
        for var, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
            os.environ.setdefault(var, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", self.region)
        if self.backend == "server":
            from moto.server import ThreadedMotoServer

            # werkzeug would log one access line per DynamoDB call on stderr.
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
            self._stop = server.stop
        else:
            from moto import mock_aws

            mock = mock_aws()
            mock.start()
            self._stop = mock.stop
        client = botocore.session.get_session().create_client(
            "dynamodb", region_name=self.region, endpoint_url=self.endpoint
        )
        create_tables(client, self.table_names)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


def read_snapshot(path: Path) -> list[Record]:
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a {SNAPSHOT_FORMAT}")
        return [
            Record(kind=r["kind"], id=r["id"], data=r["data"], version=int(r["version"]), updated_at=r["updated_at"])
            for r in doc["records"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        # Never start over an unreadable snapshot: that would overwrite the owner's configuration.
        raise SnapshotError(
            f"{path} is not a readable configuration snapshot ({exc}); move it aside to start fresh"
        ) from exc


def write_snapshot(path: Path, records: list[Record]) -> None:
    doc = {
        "format": SNAPSHOT_FORMAT,
        "version": 1,
        "records": [
            {"kind": r.kind, "id": r.id, "data": r.data, "version": r.version, "updated_at": r.updated_at}
            for r in sorted(records, key=lambda r: (r.kind, r.id))
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LockedConfigStore:
    """Local mode's store: every write goes to DynamoDB (moto) under one lock, then to the JSON snapshot.

    Reads are served from a write-through copy of the table kept here: every write passes through this
    object, so the copy is exact, and a configuration reload or an admin list costs no table scan (a scan
    of 30 records takes ~10 ms on moto, bench/store_backends.py) and holds the GIL for no one.
    A write whose snapshot cannot be written is undone in the table, so the admin API never reports a
    change that a restart would lose.
    """

    def __init__(self, inner: DynamoConfigStore, snapshot_path: Path) -> None:
        self._inner = inner
        self._path = snapshot_path
        self._lock = threading.RLock()
        self._records: dict[tuple[str, str], Record] = {(r.kind, r.id): r for r in inner.list_all()}

    def _commit(self, key: tuple[str, str], new: Record | None, old: Record | None) -> None:
        """Record a write that reached the table in the copy and on disk, or undo it in the table."""
        if new is None:
            self._records.pop(key, None)
        else:
            self._records[key] = new
        try:
            write_snapshot(self._path, list(self._records.values()))
        except BaseException as failure:
            try:
                if old is None:
                    self._inner.delete(*key)
                else:
                    self._inner.restore([old])
            except Exception:
                log.exception("could not undo a write whose snapshot failed; the table keeps it")
            # Whatever the undo managed, the copy must show what the table holds.
            current = self._inner.get(*key)
            if current is None:
                self._records.pop(key, None)
            else:
                self._records[key] = current
            raise failure

    def list_all(self) -> list[Record]:
        with self._lock:
            return list(self._records.values())

    def list(self, kind: str) -> list[Record]:
        with self._lock:
            return sorted((r for (k, _), r in self._records.items() if k == kind), key=lambda r: r.id)

    def get(self, kind: str, id: str) -> Record | None:
        with self._lock:
            return self._records.get((kind, id))

    def create(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        with self._lock:
            rec = self._inner.create(kind, id, data)
            self._commit((kind, id), rec, None)
            return rec

    def update(self, kind: str, id: str, data: Mapping[str, Any], expected_version: int) -> Record:
        with self._lock:
            old = self._records.get((kind, id))
            rec = self._inner.update(kind, id, data, expected_version)
            self._commit((kind, id), rec, old)
            return rec

    def put(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        with self._lock:
            old = self._records.get((kind, id))
            rec = self._inner.put(kind, id, data)
            self._commit((kind, id), rec, old)
            return rec

    def delete(self, kind: str, id: str) -> bool:
        with self._lock:
            old = self._records.get((kind, id))
            gone = self._inner.delete(kind, id)
            if gone:
                self._commit((kind, id), None, old)
            return gone
