"""ConfigStore on DynamoDB through pynamodb: pk = record kind, sk = record id, data as JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.models import Model

from shared.domain.config import Record
from shared.errors import Conflict, NotFound


class _ConfigItem(Model):
    """Persistence shape of one configuration record. Bound to a table by `bind_config_model`."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    version = NumberAttribute(default=1)
    updated_at = UnicodeAttribute()


def bind_config_model(table_name: str, region: str, host: str | None) -> type[_ConfigItem]:
    """A model class bound to one physical table (pynamodb binds tables per class, so we make one)."""
    meta = type("Meta", (), {"table_name": table_name, "region": region, "host": host, "max_retry_attempts": 3})
    return type("ConfigItem", (_ConfigItem,), {"Meta": meta, "__module__": __name__})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _conditional_failed(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def _record(item: _ConfigItem) -> Record:
    return Record(
        kind=item.pk,
        id=item.sk,
        data=dict(item.data or {}),
        version=int(item.version or 1),
        updated_at=item.updated_at,
    )


class DynamoConfigStore:
    def __init__(self, model: type[_ConfigItem]) -> None:
        self._model = model

    def list_all(self) -> list[Record]:
        return [_record(i) for i in self._model.scan(consistent_read=True)]

    def list(self, kind: str) -> list[Record]:
        return [_record(i) for i in self._model.query(kind, consistent_read=True)]

    def get(self, kind: str, id: str) -> Record | None:
        try:
            return _record(self._model.get(kind, id, consistent_read=True))
        except self._model.DoesNotExist:
            return None

    def create(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        item = self._model(kind, id, data=dict(data), version=1, updated_at=_now())
        try:
            item.save(condition=self._model.pk.does_not_exist())
        except PutError as exc:
            if _conditional_failed(exc):
                raise Conflict(f"A {kind} with id `{id}` already exists.") from exc
            raise
        return _record(item)

    def update(self, kind: str, id: str, data: Mapping[str, Any], expected_version: int) -> Record:
        item = self._model(kind, id, data=dict(data), version=expected_version + 1, updated_at=_now())
        try:
            item.save(condition=self._model.version == expected_version)
        except PutError as exc:
            if not _conditional_failed(exc):
                raise
            if self.get(kind, id) is None:
                raise NotFound(f"No {kind} with id `{id}`.") from exc
            raise Conflict(
                f"The {kind} `{id}` was changed by someone else; read it again and retry.",
                code="version_conflict",
            ) from exc
        return _record(item)

    def put(self, kind: str, id: str, data: Mapping[str, Any]) -> Record:
        item = self._model(kind, id)
        m = self._model
        item.update(actions=[m.data.set(dict(data)), m.version.add(1), m.updated_at.set(_now())])
        return _record(item)

    def restore(self, records: Iterable[Record]) -> None:
        """Write records back exactly as they were (versions and timestamps kept)."""
        restore_records(self._model, records)

    def delete(self, kind: str, id: str) -> bool:
        try:
            self._model(kind, id).delete(condition=self._model.pk.exists())
        except DeleteError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True


def restore_records(model: type[_ConfigItem], records: Iterable[Record]) -> None:
    """Write records back exactly as they were (versions and timestamps kept), e.g. from a snapshot."""
    with model.batch_write() as batch:
        for r in records:
            batch.save(model(r.kind, r.id, data=dict(r.data), version=r.version, updated_at=r.updated_at))
