"""The working copy `SyncService.apply` reads and writes through (shared/services/sync.py).

`MemoryStore` is a ConfigStore in memory with the real one's version rules: the configuration as it was when
a batch began plus the batch's own writes, a dry run's only target, and the scratch copies the admin services
check each change on. `WorkingCopy` is where a batch writes: the real store (the copy follows each write), or
in a dry run the copy alone. It writes a synced record together with what goes with it in the admin API (a
node's prefix claim; on delete, a connection's OAuth record and a node's claim).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.domain.config import Kind, Record
from shared.errors import Conflict, NotFound
from shared.ports import ConfigStore
from shared.services.admin import ConfigService


class MemoryStore:
    """A ConfigStore in memory with the real one's version rules (create only when absent, update only from
    the version read)."""

    def __init__(self, records: Iterable[Record]) -> None:
        self._records = {(r.kind, r.id): r for r in records}

    def fork(self) -> MemoryStore:
        return MemoryStore(self._records.values())

    def keep(self, record: Record) -> None:
        self._records[(record.kind, record.id)] = record

    def forget(self, kind: str, id: str) -> None:
        self._records.pop((kind, id), None)

    def list_all(self) -> list[Record]:
        return list(self._records.values())

    def list(self, kind: str) -> list[Record]:
        return sorted((r for (k, _), r in self._records.items() if k == kind), key=lambda r: r.id)

    def get(self, kind: str, id: str) -> Record | None:
        return self._records.get((kind, id))

    def _write(self, kind: str, id: str, data: Mapping[str, Any], version: int) -> Record:
        record = Record(kind, id, dict(data), version, datetime.now(UTC).isoformat(timespec="milliseconds"))
        self._records[(kind, id)] = record
        return record

    def create(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        if (kind, id) in self._records:
            raise Conflict(f"A {kind} with id `{id}` already exists.")
        return self._write(kind, id, data, 1)

    def update(self, kind: str, id: str, data: Mapping[str, Any], expected_version: int) -> Record:
        current = self._records.get((kind, id))
        if current is None:
            raise NotFound(f"No {kind} with id `{id}`.")
        if current.version != expected_version:
            raise Conflict(f"The {kind} `{id}` was changed by someone else.", code="version_conflict")
        return self._write(kind, id, data, expected_version + 1)

    def put(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        current = self._records.get((kind, id))
        return self._write(kind, id, data, current.version + 1 if current else 1)

    def delete(self, kind: str, id: str) -> bool:
        return self._records.pop((kind, id), None) is not None


class WorkingCopy:
    """Where a batch writes, as a ConfigStore: the real store (the copy in `mirror` follows each write), or in
    a dry run the copy alone."""

    def __init__(self, store: ConfigStore, mirror: MemoryStore, *, commit: bool) -> None:
        self._backend: ConfigStore = store if commit else mirror
        self.mirror = mirror
        self.wrote = False

    def list_all(self) -> list[Record]:
        return self._backend.list_all()

    def list(self, kind: str) -> list[Record]:
        return self._backend.list(kind)

    def get(self, kind: str, id: str) -> Record | None:
        return self._backend.get(kind, id)

    def _kept(self, record: Record) -> Record:
        self.mirror.keep(record)
        self.wrote = True
        return record

    def create(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        return self._kept(self._backend.create(kind, id, data))

    def update(self, kind: str, id: str, data: Mapping[str, Any], expected_version: int) -> Record:
        return self._kept(self._backend.update(kind, id, data, expected_version))

    def put(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        return self._kept(self._backend.put(kind, id, data))

    def delete(self, kind: str, id: str) -> bool:
        gone = self._backend.delete(kind, id)
        self.mirror.forget(kind, id)
        self.wrote = self.wrote or gone
        return gone

    def refresh(self, kind: str, id: str) -> Record | None:
        """The record as the store holds it now (after a conflict), also in the working copy."""
        current = self._backend.get(kind, id)
        if current is None:
            self.mirror.forget(kind, id)
        else:
            self.mirror.keep(current)
        return current

    def write_record(self, kind: str, id: str, data: Mapping[str, Any], current: Record | None) -> None:
        """Create, or update conditioned on the version read with the etag; a node also claims its prefix
        (the claim the admin API makes, so a node created here keeps prefixes unique with later ones)."""
        moved: str | None = None
        if kind == Kind.NODE:
            prefix, before = str(data["prefix"]), str(current.data["prefix"]) if current is not None else None
            if prefix != before:
                ConfigService(self, ScratchCipher(), ignore).claim_prefix(prefix, id)
                moved = prefix
        try:
            if current is None:
                self.create(kind, id, data)
            else:
                self.update(kind, id, data, current.version)
        except BaseException:
            if moved is not None:
                self._release(moved, id)
            raise
        if moved is not None and current is not None:
            self._release(str(current.data["prefix"]), id)

    def delete_record(self, current: Record) -> None:
        """Delete a record unless it changed since it was read: the port has no conditional delete, so a
        conditional write of the same data comes first (a writer that read before it then fails on its own
        version check instead of being deleted unseen). A connection's OAuth credentials and a node's prefix
        claim go with it, as in the admin API."""
        self.update(current.kind, current.id, current.data, current.version)
        self.delete(current.kind, current.id)
        if current.kind == Kind.PROVIDER:
            self.delete(Kind.OAUTH, current.id)
        elif current.kind == Kind.NODE:
            self._release(str(current.data.get("prefix")), current.id)

    def _release(self, prefix: str, node_id: str) -> None:
        claim = self.get(Kind.PREFIX, prefix)
        if claim is not None and claim.data.get("node") == node_id:
            self.delete(Kind.PREFIX, prefix)


class ScratchCipher:
    """Scratch copies never hold a real secret: the admin services' encryption there is a stand-in."""

    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str:
        return "scratch"

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str:
        return "scratch"


def ignore() -> None:
    """Scratch copies notify no one."""
