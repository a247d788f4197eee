import json
import stat
from pathlib import Path

import pytest

from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.adapters.dynamo.embedded import LockedConfigStore, SnapshotError, read_snapshot, write_snapshot
from shared.domain.config import Record


@pytest.fixture
def locked(table_names: dict[str, str], dynamo_endpoint: str | None, tmp_path: Path) -> LockedConfigStore:
    inner = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    return LockedConfigStore(inner, tmp_path / "config.json")


def test_every_change_is_in_the_snapshot_before_the_call_returns(locked: LockedConfigStore, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    rec = locked.create("provider", "a", {"x": 1})
    assert [r.id for r in read_snapshot(path)] == ["a"]
    locked.update("provider", "a", {"x": 2}, rec.version)
    assert read_snapshot(path)[0].data == {"x": 2}
    locked.put("settings", "global", {"requireApiKey": True})
    assert {r.kind for r in read_snapshot(path)} == {"provider", "settings"}
    locked.delete("provider", "a")
    assert [r.kind for r in read_snapshot(path)] == ["settings"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("config.json.tmp").exists()


def test_failed_write_leaves_snapshot_untouched(locked: LockedConfigStore, tmp_path: Path) -> None:
    locked.create("provider", "a", {"x": 1})
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(Exception, match="already exists"):
        locked.create("provider", "a", {"x": 2})
    assert (tmp_path / "config.json").read_bytes() == before


def test_snapshot_round_trip(tmp_path: Path) -> None:
    recs = [Record("node", "n", {"prefix": "p", "ü": "ok"}, 3, "2026-01-01T00:00:00+00:00")]
    write_snapshot(tmp_path / "s.json", recs)
    assert read_snapshot(tmp_path / "s.json") == recs
    assert read_snapshot(tmp_path / "missing.json") == []


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"format": "other"}), json.dumps({"format": "omniroute-config-snapshot"})]
)
def test_unreadable_snapshot_refuses_to_load(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(SnapshotError, match="move it aside"):
        read_snapshot(path)


@pytest.mark.parametrize("content", ["[]", '"x"', "null", '{"format": "omniroute-config-snapshot", "records": [1]}'])
def test_snapshot_of_the_wrong_shape_is_refused_cleanly(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(SnapshotError):
        read_snapshot(path)


def test_write_whose_snapshot_fails_is_undone(
    locked: LockedConfigStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.adapters.dynamo.embedded as embedded

    kept = locked.create("provider", "keep", {"x": 1})
    before = (tmp_path / "config.json").read_bytes()

    def disk_full(path: Path, records: list[Record]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(embedded, "write_snapshot", disk_full)
    with pytest.raises(OSError, match="No space"):
        locked.create("provider", "new", {"x": 2})
    with pytest.raises(OSError, match="No space"):
        locked.update("provider", "keep", {"x": 3}, kept.version)
    with pytest.raises(OSError, match="No space"):
        locked.delete("provider", "keep")
    # Neither the copy, nor the table underneath, nor the file shows any of the failed writes.
    assert locked.get("provider", "new") is None
    assert locked.get("provider", "keep") == kept
    assert locked._inner.get("provider", "new") is None
    assert locked._inner.get("provider", "keep") == kept
    assert (tmp_path / "config.json").read_bytes() == before


def test_when_the_undo_fails_too_the_copy_follows_the_table_and_the_first_error_wins(
    locked: LockedConfigStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.adapters.dynamo.embedded as embedded

    def disk_full(path: Path, records: list[Record]) -> None:
        raise OSError(28, "No space left on device")

    def delete_fails(kind: str, id: str) -> bool:
        raise RuntimeError("table unreachable")

    monkeypatch.setattr(embedded, "write_snapshot", disk_full)
    monkeypatch.setattr(locked._inner, "delete", delete_fails)
    with pytest.raises(OSError, match="No space"):
        locked.create("provider", "stuck", {"x": 1})
    in_table = locked._inner.get("provider", "stuck")
    assert in_table is not None  # the undo could not remove it...
    assert locked.get("provider", "stuck") == in_table  # ...so the copy says so, instead of diverging
    monkeypatch.undo()
    updated = locked.update("provider", "stuck", {"x": 2}, in_table.version)  # no phantom version conflict
    assert updated.data == {"x": 2}
    assert read_snapshot(tmp_path / "config.json")[0].data == {"x": 2}
