"""The three-way comparison of `omniroute sync`, case by case (pure: no gateway)."""

from __future__ import annotations

import pytest

from companion.sync_plan import Agreed, Change, Direction, Listed, agreed_after, plan

KEY = ("provider", "conn_1")


def listed(etag: str, tag: str | None = None, **data: object) -> Listed:
    return Listed("provider", "conn_1", f"{etag}+{tag}", etag, tag, {"provider": "groq", **data})


@pytest.mark.parametrize(
    ("here", "there", "base", "change", "why"),
    [
        ("a", "a", None, Change.SAME, "in sync"),
        ("b", "a", "a", Change.HERE, "changed here"),
        ("a", "b", "a", Change.THERE, "changed there"),
        ("b", "c", "a", Change.CONFLICT, "changed on both sides"),
        ("b", "c", None, Change.CONFLICT, "different on each side, never synced"),
        ("a", None, None, Change.HERE, "new here"),
        (None, "a", None, Change.THERE, "new there"),
        (None, "a", "a", Change.HERE, "deleted here"),
        ("a", None, "a", Change.THERE, "deleted there"),
        (None, "b", "a", Change.CONFLICT, "deleted here, changed there"),
        ("b", None, "a", Change.CONFLICT, "changed here, deleted there"),
    ],
)
def test_settings_are_judged_against_the_last_agreement(
    here: str | None, there: str | None, base: str | None, change: Change, why: str
) -> None:
    sides = [{KEY: listed(v)} if v else {} for v in (here, there)]
    [entry] = plan(sides[0], sides[1], {KEY: Agreed(base)} if base else {}, keys=False)
    assert (entry.change, entry.why) == (change, why)


@pytest.mark.parametrize(
    ("here", "there", "base", "change"),
    [
        ("k2", "k1", "k1", Change.HERE),
        ("k1", "k2", "k1", Change.THERE),
        ("k2", "k3", "k1", Change.CONFLICT),
        ("k2", "k1", None, Change.CONFLICT),  # keys never compared before: no side can claim to be newer
        (None, "k1", None, Change.THERE),  # nothing readable here: only there has a key to offer
        ("k1", None, None, Change.HERE),
    ],
)
def test_api_keys_are_a_second_dimension_when_compared(
    here: str | None, there: str | None, base: str | None, change: Change
) -> None:
    h, t = listed("s", here), listed("s", there)
    [entry] = plan({KEY: h}, {KEY: t}, {KEY: Agreed("s", base)}, keys=True)
    assert entry.change is change and entry.fields == ("apiKey",)
    [plain] = plan({KEY: h}, {KEY: t}, {KEY: Agreed("s", base)}, keys=False)
    assert plain.change is Change.SAME  # without --secrets keys are not compared


def test_a_settings_change_here_and_a_key_change_there_conflict() -> None:
    [entry] = plan({KEY: listed("s2", "k1")}, {KEY: listed("s1", "k2")}, {KEY: Agreed("s1", "k1")}, keys=True)
    assert entry.change is Change.CONFLICT and entry.why == "changed here, API key changed there"


def test_fields_name_what_differs_never_the_values() -> None:
    [entry] = plan({KEY: listed("b", priority=2, apiKey="sk-x")}, {KEY: listed("a", priority=1)}, {}, keys=False)
    assert entry.fields == ("priority",)


def test_requests_are_conditioned_on_the_destination_as_listed() -> None:
    here, there = listed("b", name="new"), listed("a", name="old")
    [entry] = plan({KEY: here}, {KEY: there}, {KEY: Agreed("a")}, keys=False)
    assert entry.request(Direction.PUSH) == {
        "kind": "provider",
        "id": "conn_1",
        "ifMatch": there.etag,
        "data": dict(here.data),
    }
    [gone] = plan({}, {KEY: there}, {KEY: Agreed("a")}, keys=False)
    assert gone.request(Direction.PUSH) == {"kind": "provider", "id": "conn_1", "ifMatch": there.etag, "delete": True}
    [new] = plan({KEY: here}, {}, {}, keys=False)
    assert new.request(Direction.PUSH)["ifMatch"] is None


def test_conflicts_are_carried_only_when_forced_and_linked_accounts_never_created() -> None:
    [conflict] = plan({KEY: listed("b")}, {KEY: listed("c")}, {KEY: Agreed("a")}, keys=False)
    assert not conflict.carried(Direction.PUSH, force=False) and conflict.carried(Direction.PUSH, force=True)
    assert conflict.carried(Direction.PULL, force=True)
    [linked] = plan({KEY: listed("a", linked=True)}, {}, {}, keys=False)
    assert not linked.carried(Direction.PUSH, force=True)
    assert "omniroute login groq" in linked.action(Direction.PUSH, force=False)
    [theirs] = plan({KEY: listed("a")}, {KEY: listed("b")}, {KEY: Agreed("a")}, keys=False)
    assert not theirs.carried(Direction.PUSH, force=True)  # a change there is never pushed over
    assert theirs.action(Direction.PUSH, force=False) == "leaves it (pull takes it)"


def test_the_base_moves_only_when_both_sides_hold_the_same_thing() -> None:
    here, there = listed("b", "k2"), listed("a", "k1")
    [entry] = plan({KEY: here}, {KEY: there}, {KEY: Agreed("a", "k1")}, keys=True)
    applied = {"status": "applied", "settingsEtag": "b", "keyTag": "k2"}
    assert agreed_after(entry, applied, Direction.PUSH, keys=True) == Agreed("b", "k2")
    normalised = {"status": "applied", "settingsEtag": "other", "keyTag": "k2"}
    assert agreed_after(entry, normalised, Direction.PUSH, keys=True) == Agreed("a", "k1")
    refused = {"status": "conflict", "etag": "z"}
    assert agreed_after(entry, refused, Direction.PUSH, keys=True) == Agreed("a", "k1")
    assert agreed_after(entry, None, Direction.PUSH, keys=True) == Agreed("a", "k1")  # not sent: unchanged
    [same] = plan({KEY: listed("s", "k")}, {KEY: listed("s", "k")}, {}, keys=False)
    assert agreed_after(same, None, Direction.PUSH, keys=False) == Agreed("s", None)
