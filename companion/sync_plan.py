"""The three-way comparison behind `omniroute sync`: this side ("here", `--from`), the other side ("there",
`--to`), and the etags both sides last agreed on (the base, kept in the state file).

Per record: the same etag on both sides is in sync; changed only on one side (its etag differs from the
base, the other side's does not) is that side's change, which push or pull carries over; changed on both
sides is a conflict, carried only with `--force`. A record absent from one side is "changed" there when
the base knew it (deleted) and unchanged when the base did not. With API keys compared (`--secrets`), a
connection's key is a second dimension judged the same way by its tag; a side without a readable key has
nothing to offer, and keys that differ where no base tag exists conflict. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SECRET_FIELD = "apiKey"
Key = tuple[str, str]  # (kind, id)
# Kinds in the order the server applies them (what others depend on first): the order records are shown in.
KIND_ORDER = ("settings", "price", "apikey", "node", "provider", "model", "combo", "alias", "fallback")


@dataclass(frozen=True, slots=True)
class Listed:
    """One record as a side's `GET /api/sync/records` listed it."""

    kind: str
    id: str
    etag: str  # the version in the listing's mode: what `ifMatch` must name
    settings_etag: str  # the version without API keys
    key_tag: str | None
    data: Mapping[str, Any] = field(repr=False)  # holds a connection's API key when synced with secrets

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Listed:
        tag = entry.get("keyTag")
        return cls(
            kind=str(entry["kind"]),
            id=str(entry["id"]),
            etag=str(entry["etag"]),
            settings_etag=str(entry.get("settingsEtag") or entry["etag"]),
            key_tag=tag if isinstance(tag, str) else None,
            data=dict(entry["data"]),
        )

    @property
    def linked(self) -> bool:
        """A linked subscription account: its settings sync, the account itself is never created by sync."""
        return self.kind == "provider" and self.data.get("linked") is True

    @property
    def label(self) -> str:
        name = self.data.get("name")
        return f"{self.id} ({name})" if isinstance(name, str) and name and name != self.id else self.id


@dataclass(frozen=True, slots=True)
class Agreed:
    """What both sides held when they last agreed: the settings etag, and the key tag when keys were
    compared then (None: never compared)."""

    etag: str
    key_tag: str | None = None


class Change(StrEnum):
    SAME = "in sync"
    HERE = "changed here"
    THERE = "changed there"
    CONFLICT = "conflict"


class Direction(StrEnum):
    PUSH = "push"  # here → there
    PULL = "pull"  # there → here


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    id: str
    here: Listed | None
    there: Listed | None
    base: Agreed | None
    change: Change
    why: str  # in words: "new here", "deleted there", "changed on both sides", ...
    fields: tuple[str, ...]  # which fields differ (names only: values may be secret)

    @property
    def label(self) -> str:
        side = self.here or self.there
        return side.label if side is not None else self.id

    def ends(self, direction: Direction) -> tuple[Listed | None, Listed | None]:
        """(source, destination) of a change carried in `direction`."""
        return (self.here, self.there) if direction is Direction.PUSH else (self.there, self.here)

    def carried(self, direction: Direction, *, force: bool) -> bool:
        """Whether `direction` writes this record (a conflict only with `force`: this side's version wins)."""
        own = Change.HERE if direction is Direction.PUSH else Change.THERE
        if self.change is own or (self.change is Change.CONFLICT and force):
            source, destination = self.ends(direction)
            return not (source is not None and source.linked and destination is None)
        return False

    def action(self, direction: Direction, *, force: bool) -> str:
        """What `direction` does with this record, in words."""
        own, other = (Change.HERE, Change.THERE) if direction is Direction.PUSH else (Change.THERE, Change.HERE)
        source, destination = self.ends(direction)
        if self.change is Change.SAME:
            return "nothing"
        if self.change is other:
            return f"leaves it ({Direction.PULL if direction is Direction.PUSH else Direction.PUSH} takes it)"
        if self.change is Change.CONFLICT and not force:
            overwritten = "there" if direction is Direction.PUSH else "here"
            return f"conflict: not written ({direction} --force overwrites it {overwritten})"
        if source is not None and source.linked and destination is None:
            where = "there" if direction is Direction.PUSH else "here"
            return f"link it {where} with `omniroute login {source.data.get('provider')}`"
        verb = "delete" if source is None else "create" if destination is None else "update"
        return f"{verb} (forced)" if self.change is not own else verb

    def request(self, direction: Direction) -> dict[str, Any]:
        """The change `POST /api/sync/apply` takes, conditioned on the destination's etag as listed."""
        source, destination = self.ends(direction)
        if_match = destination.etag if destination is not None else None
        if source is None:
            return {"kind": self.kind, "id": self.id, "ifMatch": if_match, "delete": True}
        return {"kind": self.kind, "id": self.id, "ifMatch": if_match, "data": dict(source.data)}


def plan(
    here: Mapping[Key, Listed], there: Mapping[Key, Listed], base: Mapping[Key, Agreed], *, keys: bool
) -> list[Entry]:
    """Every record either side holds or the base remembers, judged (see the module's docstring)."""
    entries = []
    for key in sorted(set(here) | set(there) | set(base), key=_display_order):
        h, t, b = here.get(key), there.get(key), base.get(key)
        if h is None and t is None:
            entries.append(Entry(key[0], key[1], None, None, b, Change.SAME, "deleted on both sides", ()))
            continue
        change, why = _judge(
            h.settings_etag if h else None, t.settings_etag if t else None, b.etag if b else None, h is None, t is None
        )
        if keys and h is not None and t is not None and h.key_tag != t.key_tag:
            change, why = _with_key(change, why, h.key_tag, t.key_tag, b.key_tag if b else None)
        entries.append(Entry(key[0], key[1], h, t, b, change, why, differing(h, t, keys=keys)))
    return entries


def _display_order(key: Key) -> tuple[int, str]:
    kind, id = key
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), id)


def _judge(
    mine: str | None, theirs: str | None, agreed: str | None, gone_here: bool, gone_there: bool
) -> tuple[Change, str]:
    if mine == theirs:
        return Change.SAME, "in sync"
    changed_here, changed_there = mine != agreed, theirs != agreed
    if changed_here and not changed_there:
        return Change.HERE, "deleted here" if gone_here else "new here" if gone_there else "changed here"
    if changed_there and not changed_here:
        return Change.THERE, "deleted there" if gone_there else "new there" if gone_here else "changed there"
    if gone_here:
        return Change.CONFLICT, "deleted here, changed there"
    if gone_there:
        return Change.CONFLICT, "changed here, deleted there"
    if agreed is None:
        return Change.CONFLICT, "different on each side, never synced"
    return Change.CONFLICT, "changed on both sides"


def _with_key(change: Change, why: str, mine: str | None, theirs: str | None, agreed: str | None) -> tuple[Change, str]:
    """Both sides hold the connection and their API keys differ: whose key is newer?"""
    if mine is None:
        key = Change.THERE  # nothing readable here: only there has a key to offer
    elif theirs is None:
        key = Change.HERE
    elif agreed is not None and mine == agreed:
        key = Change.THERE
    elif agreed is not None and theirs == agreed:
        key = Change.HERE
    else:
        key = Change.CONFLICT
    words = {
        Change.HERE: "API key changed here",
        Change.THERE: "API key changed there",
        Change.CONFLICT: "API keys differ on each side",
    }[key]
    if change is Change.SAME or change is key:
        return key, words if change is Change.SAME else f"{why}, {words}"
    return Change.CONFLICT, f"{why}, {words}"


def differing(here: Listed | None, there: Listed | None, *, keys: bool) -> tuple[str, ...]:
    """Names of the fields that differ (never values): `apiKey` when keys are compared and differ."""
    if here is None or there is None:
        return ()
    missing = object()
    names = sorted(
        name
        for name in set(here.data) | set(there.data)
        if name != SECRET_FIELD and here.data.get(name, missing) != there.data.get(name, missing)
    )
    if keys and here.key_tag != there.key_tag:
        names.append(SECRET_FIELD)
    return tuple(names)


def agreed_after(entry: Entry, result: Mapping[str, Any] | None, direction: Direction, *, keys: bool) -> Agreed | None:
    """The base after this run: what both sides now hold, or the old base when they still differ.

    `result` is the apply result for a carried record (None when nothing was sent)."""
    if result is None:
        if entry.change is not Change.SAME:
            return entry.base
        side = entry.here or entry.there
        if side is None:
            return None
        previous = entry.base.key_tag if entry.base is not None else None
        return Agreed(side.settings_etag, side.key_tag if keys else previous)
    if result.get("status") not in ("applied", "unchanged"):
        return entry.base
    source, _ = entry.ends(direction)
    if source is None:
        return None  # deleted on both sides now
    if result.get("settingsEtag") != source.settings_etag:
        return entry.base  # the receiver stored something else: they do not agree
    previous = entry.base.key_tag if entry.base is not None else None
    tag = result.get("keyTag")
    return Agreed(source.settings_etag, tag if keys and tag == source.key_tag else previous)
