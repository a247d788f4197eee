"""companion.tool_files: merging settings into JSON and TOML files without losing anything, and writing them
safely (backups that never overwrite each other, atomic replacement, modes)."""

from __future__ import annotations

import json
import stat
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from companion.tool_files import (
    Assignment,
    Format,
    ListEntry,
    Unreadable,
    backup_file,
    plan_edit,
    write_plan,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
CODEX = [
    Assignment(("model",), "m/x"),
    Assignment(("model_provider",), "omniroute"),
    Assignment(("model_providers", "omniroute", "base_url"), "http://127.0.0.1:1/v1"),
]


def toml_after(tmp_path: Path, text: str, assignments: list[Assignment] = CODEX) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8", newline="")
    plan = plan_edit(path, Format.TOML, assignments, force=False)
    write_plan(plan, NOW)
    return path.read_bytes().decode("utf-8")


def test_toml_root_keys_go_after_the_root_settings_and_before_the_first_tables_comment(tmp_path: Path) -> None:
    text = "a = 1\nlist = [\n  1,\n  2\n]\n\n# tables\n[t]\nb = 2\n"
    assert toml_after(tmp_path, text) == (
        'a = 1\nlist = [\n  1,\n  2\n]\nmodel = "m/x"\nmodel_provider = "omniroute"\n\n# tables\n[t]\nb = 2\n\n'
        '[model_providers.omniroute]\nbase_url = "http://127.0.0.1:1/v1"\n'
    )


def test_toml_existing_keys_are_replaced_where_they_are(tmp_path: Path) -> None:
    text = '[model_providers.omniroute]\nbase_url = "old"  # mine\nextra = true\n\n[x]\nmodel = "not root"\n'
    after = toml_after(tmp_path, text)
    assert after.startswith('model = "m/x"\nmodel_provider = "omniroute"\n\n[model_providers.omniroute]\n')
    assert 'base_url = "http://127.0.0.1:1/v1"\nextra = true\n\n[x]\nmodel = "not root"\n' in after


def test_toml_keeps_crlf_line_endings(tmp_path: Path) -> None:
    after = toml_after(tmp_path, "a = 1\r\n[t]\r\nb = 2\r\n")
    assert "\r\n" in after and "\n" not in after.replace("\r\n", "")
    assert tomllib.loads(after)["model"] == "m/x"


@pytest.mark.parametrize(
    "text",
    [
        'model_providers = { omniroute = { name = "inline" } }\n',
        'model_providers.omniroute.name = "dotted"\n',
        '[model_providers]\nomniroute = { name = "inline" }\n',
    ],
    ids=["inline-table", "dotted-keys", "inline-in-parent"],
)
def test_toml_written_in_another_form_is_refused_rather_than_misedited(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(Unreadable, match="no safe place"):
        plan_edit(path, Format.TOML, CODEX, force=False)
    forced = plan_edit(path, Format.TOML, CODEX, force=True)
    assert forced.replaced and tomllib.loads(forced.after.decode())["model_providers"]["omniroute"] == {
        "base_url": "http://127.0.0.1:1/v1"
    }


def test_toml_strings_are_escaped(tmp_path: Path) -> None:
    odd = 'a "quoted" \\ back\nslash\ttab\x01'
    after = toml_after(tmp_path, "", [Assignment(("model",), odd), Assignment(("t", "a.b", "k"), "v")])
    doc = tomllib.loads(after)
    assert doc["model"] == odd and doc["t"]["a.b"] == {"k": "v"}


def test_toml_arrays_of_tables_are_left_alone(tmp_path: Path) -> None:
    text = '[[model_providers.omniroute]]\nname = "array"\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(Unreadable):  # model_providers.omniroute is a list there, not a table
        plan_edit(path, Format.TOML, CODEX, force=False)


def test_json_list_entries_are_updated_in_place_by_id(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": [{"id": "a", "name": "A", "ctx": 1}, {"id": "b"}]}))
    entry = ListEntry({"id": "a", "name": "new"})
    plan = plan_edit(path, Format.JSON, [Assignment(("models",), entry)], force=False)
    assert json.loads(plan.after) == {"models": [{"id": "a", "name": "new", "ctx": 1}, {"id": "b"}]}
    assert [e.label for e in plan.edits] == ["models[id=a]"]


def test_json_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(Unreadable, match="not UTF-8"):
        plan_edit(path, Format.JSON, [Assignment(("a",), "b")], force=False)


def test_backups_in_the_same_second_never_overwrite_each_other(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    first = backup_file(path, b"one", NOW)
    second = backup_file(path, b"two", NOW)
    assert first.name == "settings.json.bak-20260304T050607Z"
    assert second.name == "settings.json.bak-20260304T050607Z-2"
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600


def test_a_file_without_a_secret_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("a = 1\n")
    path.chmod(0o640)
    write_plan(plan_edit(path, Format.TOML, CODEX, force=False), NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_an_unchanged_file_holding_a_secret_is_only_made_private(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"k": "secret"}')
    path.chmod(0o644)
    written = write_plan(plan_edit(path, Format.JSON, [Assignment(("k",), "secret", secret=True)], force=False), NOW)
    assert not written.wrote and written.mode_tightened and written.backup is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == '{"k": "secret"}'
    assert list(tmp_path.iterdir()) == [path]


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "c.json"
    write_plan(plan_edit(path, Format.JSON, [Assignment(("a",), "b")], force=False), NOW)
    assert [p.name for p in path.parent.iterdir()] == ["c.json"]
