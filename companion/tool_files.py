"""Changing a coding tool's own configuration file without losing anything the user put there.

    plan = plan_edit(path, Format.JSON, assignments, force=False)   # reads and merges; raises Unreadable
    backup = write_plan(plan, now)                                   # backs up, then replaces atomically

The rules every write follows:
- merge: only the assigned keys change; every other setting (and, for TOML, every comment and the layout)
  is kept; a run that would change nothing writes nothing and makes no backup (so running twice is safe);
- a file that does not parse, or whose shape leaves no safe place for a key, is refused (`Unreadable`)
  unless `force`, which replaces it with only the assigned keys (the backup keeps the old content);
- the old bytes go to `<file>.bak-<UTC timestamp>` first, never over an earlier backup;
- the new content is written to a temporary file beside the target and renamed over it, so a crash leaves
  either the old file or the new one; a file that holds a secret ends up 0600, any other keeps its mode;
- a symlinked file (dotfiles repositories) is written through the link, which stays in place.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

NEW_FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600


class Format(StrEnum):
    JSON = "json"
    TOML = "toml"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """An item that a list must contain, matched by `key` (an existing item with that key is updated in place,
    keeping its other fields; otherwise the item is appended)."""

    item: Mapping[str, str]
    key: str = "id"


Value = str | ListEntry
KeyPath = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assignment:
    path: KeyPath
    value: Value
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Edit:
    """One setting that changes: where (dotted, for people), from what, to what (None: absent)."""

    label: str
    old: object
    new: object
    secret: bool


class Unreadable(Exception):
    """The file cannot be edited safely (it does not parse, or has a shape that leaves no place for a key)."""


@dataclass(frozen=True, slots=True)
class Plan:
    path: Path  # the file that is written (a symlink's target)
    before: bytes | None  # None: the file does not exist yet
    after: bytes
    edits: tuple[Edit, ...]
    holds_secret: bool
    replaced: str | None = None  # why a forced run replaced an unreadable file

    @property
    def changes_content(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class Written:
    wrote: bool
    backup: Path | None = None
    mode_tightened: bool = False


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def plan_edit(
    path: Path, fmt: Format, assignments: Sequence[Assignment], *, force: bool, shorthand: KeyPath | None = None
) -> Plan:
    """What writing `assignments` into `path` would do. `shorthand` names an object the tool also accepts
    as a plain string (OpenClaw's `agents.defaults.model`): a string found there becomes the object."""
    target = path.resolve() if path.is_symlink() else path
    before = target.read_bytes() if target.exists() else None
    holds_secret = any(a.secret for a in assignments)
    try:
        after, edits = _merged(before, fmt, assignments, shorthand)
        return Plan(target, before, after, tuple(edits), holds_secret)
    except Unreadable as exc:
        if not force:
            raise
        after, edits = _merged(None, fmt, assignments, shorthand)
        return Plan(target, before, after, tuple(edits), holds_secret, replaced=str(exc))


def fresh_content(fmt: Format, assignments: Sequence[Assignment], shorthand: KeyPath | None = None) -> str:
    """The file as it would be written from nothing (what `--print` shows)."""
    return _merged(None, fmt, assignments, shorthand)[0].decode("utf-8")


def _merged(
    before: bytes | None, fmt: Format, assignments: Sequence[Assignment], shorthand: KeyPath | None
) -> tuple[bytes, list[Edit]]:
    text = _decode(before) if before is not None else ""
    if fmt is Format.JSON:
        return _merged_json(text, assignments, shorthand)
    return _merged_toml(text, assignments)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _merged_json(text: str, assignments: Sequence[Assignment], shorthand: KeyPath | None) -> tuple[bytes, list[Edit]]:
    if text.strip():
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            # Comments and trailing commas (JSONC, JSON5) land here: rewriting would drop the comments.
            raise Unreadable(f"it is not plain JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from exc
        if not isinstance(doc, dict):
            raise Unreadable(f"it holds a JSON {type(doc).__name__}, not an object")
    else:
        doc = {}
    merged, edits = apply_assignments(doc, assignments, shorthand)
    if not edits:
        return text.encode("utf-8"), edits
    return (json.dumps(merged, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), edits


def apply_assignments(
    doc: Mapping[str, Any], assignments: Sequence[Assignment], shorthand: KeyPath | None = None
) -> tuple[dict[str, Any], list[Edit]]:
    """A copy of `doc` with every assignment made, and the edits that made a difference."""
    merged: dict[str, Any] = copy.deepcopy(dict(doc))
    edits: list[Edit] = []
    for a in assignments:
        node, replaced_shorthand = _parent(merged, a.path, shorthand)
        leaf = a.path[-1]
        old = node.get(leaf, replaced_shorthand)
        if isinstance(a.value, ListEntry):
            edits.extend(_upsert(node, a.path, a.value, a.secret))
        elif old != a.value or leaf not in node:
            node[leaf] = a.value
            edits.append(Edit(_dotted(a.path), old, a.value, a.secret))
    return merged, edits


def _parent(doc: dict[str, Any], path: KeyPath, shorthand: KeyPath | None) -> tuple[dict[str, Any], object]:
    """The object that holds `path`'s last key, creating missing objects on the way; with the string a
    shorthand object replaced (None if none was)."""
    node = doc
    replaced: object = None
    for depth, part in enumerate(path[:-1], start=1):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            if path[:depth] == shorthand and isinstance(child, str):
                replaced, child = child, {}
                node[part] = child
            else:
                kind = "list" if isinstance(child, list) else type(child).__name__
                raise Unreadable(f"`{_dotted(path[:depth])}` is a {kind} where an object is expected")
        node = child
    return node, replaced


def _upsert(node: dict[str, Any], path: KeyPath, entry: ListEntry, secret: bool) -> list[Edit]:
    items = node.get(path[-1])
    if items is None:
        items = node[path[-1]] = []
    if not isinstance(items, list):
        raise Unreadable(f"`{_dotted(path)}` is a {type(items).__name__} where a list is expected")
    wanted = entry.item[entry.key]
    label = f"{_dotted(path)}[{entry.key}={wanted}]"
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(entry.key) == wanted:
            updated = {**item, **entry.item}
            if updated == item:
                return []
            items[index] = updated
            return [Edit(label, item, updated, secret)]
    items.append(dict(entry.item))
    return [Edit(label, None, dict(entry.item), secret)]


def _dotted(path: KeyPath) -> str:
    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_$-]+", part) else json.dumps(part) for part in path)


# --------------------------------------------------------------------------------------------
# TOML: edited as text, so comments and layout survive, and checked by parsing the result
# --------------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _merged_toml(text: str, assignments: Sequence[Assignment]) -> tuple[bytes, list[Edit]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Unreadable(f"it is not valid TOML ({exc})") from exc
    if any(isinstance(a.value, ListEntry) for a in assignments):
        raise TypeError("TOML assignments take strings only")
    expected, edits = apply_assignments(doc, assignments)
    if not edits:
        return text.encode("utf-8"), edits
    edited = _edit_toml_text(text, [(a.path, str(a.value)) for a in assignments])
    try:
        result = tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:
        raise Unreadable(f"its layout leaves no safe place for the settings ({exc})") from exc
    if result != expected:
        # e.g. the table is written inline or with dotted keys elsewhere: editing lines would change meaning
        raise Unreadable("its layout leaves no safe place for the settings (they are written in another form)")
    return edited.encode("utf-8"), edits


def _edit_toml_text(text: str, values: Sequence[tuple[KeyPath, str]]) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    by_table: dict[KeyPath, list[tuple[str, str]]] = {}
    for path, value in values:
        by_table.setdefault(path[:-1], []).append((path[-1], value))
    for table, pairs in by_table.items():
        lines = _set_in_table(lines, table, pairs)
    return newline.join(lines) + newline


def _sections(lines: Sequence[str]) -> list[tuple[KeyPath | None, int, int]]:
    """(table path, first line, end line) per section; the root section has path () and starts at line 0;
    arrays of tables get None (never edited)."""
    out: list[tuple[KeyPath | None, int, int]] = []
    name: KeyPath | None = ()
    start = 0
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if match:
            out.append((name, start, index))
            parts = tuple(p.strip().strip('"').strip("'") for p in match.group(2).split("."))
            name, start = (None if match.group(1) == "[[" else parts), index
    out.append((name, start, len(lines)))
    return out


def _set_in_table(lines: list[str], table: KeyPath, pairs: Sequence[tuple[str, str]]) -> list[str]:
    section = next(((s, e) for name, s, e in _sections(lines) if name == table), None)
    new = list(lines)
    if section is None:  # a table that does not exist yet goes at the end, a blank line before it
        block = [f"{_toml_key(k)} = {_toml_string(v)}" for k, v in pairs]
        if table:
            block.insert(0, "[" + ".".join(_toml_key(p) for p in table) + "]")
        while new and not new[-1].strip():
            new.pop()
        return [*new, *([""] if new else []), *block]
    start, end = section
    body_start = start + (1 if table else 0)
    missing: list[str] = []
    for key, value in pairs:
        line = f"{_toml_key(key)} = {_toml_string(value)}"
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
        found = next((i for i in range(body_start, end) if pattern.match(new[i])), None)
        if found is None:
            missing.append(line)
        else:
            new[found] = line
    if missing:
        # after the section's last setting: before the blank lines and the comments that introduce the
        # next table
        at = end
        while at > body_start and (not new[at - 1].strip() or new[at - 1].lstrip().startswith("#")):
            at -= 1
        trailer = [""] if at < len(new) and new[at].strip() else []
        new[at:at] = [*missing, *trailer]
    return new


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(value: str) -> str:
    """A TOML basic string (the escapes JSON uses are valid TOML, except that TOML has no \\/)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_plan(plan: Plan, now: datetime) -> Written:
    """Back the old file up and put the new content in place (nothing at all when nothing changes, except
    that a file holding a secret that others can read is made 0600)."""
    if not plan.changes_content:
        return Written(wrote=False, mode_tightened=_tighten(plan))
    plan.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_mode = stat.S_IMODE(plan.path.stat().st_mode) if plan.before is not None else NEW_FILE_MODE
    backup = backup_file(plan.path, plan.before, now) if plan.before is not None else None
    mode = SECRET_FILE_MODE if plan.holds_secret else old_mode
    atomic_write(plan.path, plan.after, mode)
    return Written(wrote=True, backup=backup)


def _tighten(plan: Plan) -> bool:
    if not plan.holds_secret or plan.before is None:
        return False
    mode = stat.S_IMODE(plan.path.stat().st_mode)
    if not mode & 0o077:
        return False
    os.chmod(plan.path, SECRET_FILE_MODE)
    return True


def backup_file(path: Path, content: bytes, now: datetime) -> Path:
    """`<file>.bak-<UTC timestamp>` (then -2, -3, ... within the same second), created exclusively and 0600:
    it may hold an older secret."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        candidate = path.with_name(f"{path.name}.bak-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        return candidate
    raise OSError(f"no free backup name for {path}")


def atomic_write(path: Path, content: bytes, mode: int) -> None:
    """Replace `path` with `content` whole: a unique temporary file beside it (with `mode` before any byte is
    written), fsynced, then renamed over it; a failure leaves the old file and no temporary behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
