"""Combos, aliases, fallback chains, connection rate limits and routing settings through ConfigService, against
a real (moto) store: every validation rule, the combo graph, referrer-protected deletes, and the round trip
into the snapshot the gateway reads."""

from pathlib import Path
from typing import Any

import pytest

from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.domain.combos import Combo, ComboConfig, ComboTarget
from shared.domain.config import Kind
from shared.domain.routing import RateLimit
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.services.admin import ConfigService
from shared.services.snapshot import build_snapshot


@pytest.fixture
def parts(table_names: dict[str, str], dynamo_endpoint: str | None, tmp_path: Path):
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    cipher = AesGcmCipher.from_key_file(tmp_path / "k")
    changes: list[int] = []
    svc = ConfigService(store, cipher, on_change=lambda: changes.append(1))
    return svc, store, cipher, changes


def snapshot(parts):  # type: ignore[no-untyped-def]
    _, store, cipher, _ = parts
    return build_snapshot(store.list_all(), cipher)


def refused(exc: pytest.ExceptionInfo[Exception], param: str, code: str) -> str:
    err = exc.value
    assert isinstance(err, InvalidRequest)
    assert (err.param, err.code) == (param, code), err.message
    return err.message


# ----- combos: the stored shape ---------------------------------------------------------------------------


def test_combo_is_stored_in_its_api_shape_and_reaches_the_snapshot(parts) -> None:
    svc, store, _, changes = parts
    svc.routing.create_combo({"name": "cheap", "models": ["groq/llama-3.1-8b-instant"]})
    combo = svc.routing.create_combo(
        {
            "name": "team/fast",
            "models": ["ds/deepseek-chat", {"model": "cheap", "weight": 3}, {"model": "or/vendor/m", "weight": 1}],
            "strategy": "weighted",
            "config": {"maxRetries": 2, "concurrencyPerTarget": None},
        }
    )
    assert combo == {
        "name": "team/fast",
        "models": ["ds/deepseek-chat", {"model": "cheap", "weight": 3}, "or/vendor/m"],
        "strategy": "weighted",
        "config": {"maxRetries": 2, "retryDelayMs": 0},
        "createdAt": combo["createdAt"],
        "version": 1,
        "updatedAt": combo["updatedAt"],
    }
    stored = store.get(Kind.COMBO, "team/fast")
    assert stored is not None and stored.data["models"] == combo["models"]
    assert [c["name"] for c in svc.routing.list_combos()] == ["cheap", "team/fast"]
    assert svc.routing.get_combo("team/fast") == combo
    assert snapshot(parts).combos["team/fast"] == Combo(
        name="team/fast",
        targets=(ComboTarget("ds/deepseek-chat"), ComboTarget("cheap", weight=3), ComboTarget("or/vendor/m")),
        strategy="weighted",
        config=ComboConfig(max_retries=2),
    )
    assert changes == [1, 1]


def test_combo_strategy_defaults_to_priority(parts) -> None:
    svc, *_ = parts
    assert svc.routing.create_combo({"name": "c", "models": ["ds/deepseek-chat"]})["strategy"] == "priority"


@pytest.mark.parametrize(
    "target",
    ["ds/deepseek-chat", "deepseek/deepseek-chat", "moonshot/kimi-k2", "DS/deepseek-chat", "mine/local-model"],
)
def test_combo_targets_with_a_catalogue_alias_id_extra_alias_or_node_prefix_are_accepted(parts, target: str) -> None:
    svc, *_ = parts
    svc.create_node({"prefix": "mine", "baseUrl": "http://127.0.0.1:9/v1"})
    assert svc.routing.create_combo({"name": "c", "models": [target]})["models"] == [target]


def test_an_exact_alias_is_a_valid_combo_target_and_a_wildcard_never_is(parts) -> None:
    svc, *_ = parts
    svc.routing.create_alias({"pattern": "smart", "target": "ds/deepseek-reasoner"})
    svc.routing.create_alias({"pattern": "gpt-*", "target": "or/openai/gpt-4o"})
    assert svc.routing.create_combo({"name": "c", "models": ["smart"]})["models"] == ["smart"]
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_combo({"name": "d", "models": ["gpt-4o"]})  # only a wildcard alias matches it
    assert "not a combo, an exact alias pattern or `prefix/model`" in refused(exc, "models[0]", "invalid_combo")


# ----- combos: validation ---------------------------------------------------------------------------------

OK = ["ds/deepseek-chat"]


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"name": "-lead"}, "name", "invalid_value"),
        ({"name": "has space"}, "name", "invalid_value"),
        ({"name": "x" * 129}, "name", "invalid_value"),
        ({"name": ""}, "name", "invalid_value"),
        ({"name": None}, "name", "invalid_value"),
        ({"name": "ds/x"}, "name", "invalid_combo"),  # catalogue alias
        ({"name": "deepseek/x"}, "name", "invalid_combo"),  # catalogue id
        ({"name": "Moonshot/x"}, "name", "invalid_combo"),  # extra alias, any case
        ({"models": []}, "models", "invalid_value"),
        ({"models": OK * 51}, "models", "invalid_value"),
        ({"models": "ds/deepseek-chat"}, "models", "invalid_value"),
        ({"strategy": "fastest"}, "strategy", "invalid_value"),
        ({"models": [""]}, "models[0]", "invalid_value"),
        ({"models": ["ds/" + "m" * 510]}, "models[0]", "invalid_value"),
        ({"models": ["ds/a\nb"]}, "models[0]", "invalid_value"),
        ({"models": ["ds/*"]}, "models[0]", "invalid_value"),
        ({"models": [7]}, "models[0]", "invalid_value"),
        ({"models": [*OK, "nope/model"]}, "models[1]", "invalid_combo"),
        ({"models": ["deepseek-chat"]}, "models[0]", "invalid_combo"),  # unprefixed
        ({"models": ["ds/"]}, "models[0]", "invalid_combo"),
        ({"models": [{"weight": 2}]}, "models[0].model", "invalid_value"),
        ({"models": [{"model": "ds/m", "bogus": 1}]}, "models[0]", "invalid_value"),
        ({"models": [{"model": "ds/m", "weight": 0}]}, "models[0].weight", "invalid_value"),
        ({"models": [{"model": "ds/m", "weight": -1}]}, "models[0].weight", "invalid_value"),
        ({"models": [{"model": "ds/m", "weight": 1000.5}]}, "models[0].weight", "invalid_value"),
        ({"models": [{"model": "ds/m", "weight": True}]}, "models[0].weight", "invalid_value"),
        ({"models": [{"model": "ds/m", "weight": "2"}]}, "models[0].weight", "invalid_value"),
        ({"config": {"maxRetries": 6}}, "config.maxRetries", "invalid_value"),
        ({"config": {"maxRetries": -1}}, "config.maxRetries", "invalid_value"),
        ({"config": {"maxRetries": 1.5}}, "config.maxRetries", "invalid_value"),
        ({"config": {"retryDelayMs": 60_001}}, "config.retryDelayMs", "invalid_value"),
        ({"config": {"concurrencyPerTarget": 0}}, "config.concurrencyPerTarget", "invalid_value"),
        ({"config": {"concurrencyPerTarget": 10_001}}, "config.concurrencyPerTarget", "invalid_value"),
        ({"config": {"firstByteTimeoutMs": 999}}, "config.firstByteTimeoutMs", "invalid_value"),
        ({"config": {"firstByteTimeoutMs": 600_001}}, "config.firstByteTimeoutMs", "invalid_value"),
        ({"config": {"bogus": 1}}, "config.bogus", "invalid_value"),
    ],
)
def test_combo_validation(parts, fields: dict[str, Any], param: str, code: str) -> None:
    """Each case changes one field of an otherwise valid combo."""
    svc, store, *_ = parts
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_combo({"name": "c", "models": OK, **fields})
    refused(exc, param, code)
    assert store.list(Kind.COMBO) == []


def test_combo_bounds_are_inclusive(parts) -> None:
    svc, *_ = parts
    config = {"maxRetries": 5, "retryDelayMs": 60_000, "concurrencyPerTarget": 10_000, "firstByteTimeoutMs": 600_000}
    models = [{"model": "ds/a", "weight": 1000}, {"model": "ds/b", "weight": 0.001}, *(["ds/c"] * 48)]
    combo = svc.routing.create_combo({"name": "x" * 128, "models": models, "config": config})
    assert combo["config"] == config and len(combo["models"]) == 50
    low = {"maxRetries": 0, "retryDelayMs": 0, "concurrencyPerTarget": 1, "firstByteTimeoutMs": 1000}
    assert svc.routing.create_combo({"name": "low", "models": OK, "config": low})["config"] == low


def test_a_combo_name_under_a_node_prefix_is_refused_and_a_node_cannot_claim_a_combo_names_prefix(parts) -> None:
    svc, *_ = parts
    svc.create_node({"prefix": "lab", "baseUrl": "http://127.0.0.1:9/v1"})
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_combo({"name": "lab/fast", "models": OK})
    assert "provider prefix `lab/`" in refused(exc, "name", "invalid_combo")
    svc.routing.create_combo({"name": "team/fast", "models": OK})
    svc.routing.create_combo({"name": "team", "models": OK})  # no slash: never read as `prefix/model`
    with pytest.raises(InvalidRequest, match="team/fast"):
        svc.create_node({"prefix": "team", "baseUrl": "http://127.0.0.1:9/v1"})
    node = svc.create_node({"prefix": "other", "baseUrl": "http://127.0.0.1:9/v1"})
    with pytest.raises(InvalidRequest, match="team/fast"):
        svc.update_node(node["id"], {"prefix": "TEAM"})


def test_a_pinned_account_must_exist_and_serve_the_targets_provider(parts) -> None:
    svc, *_ = parts
    groq = svc.create_connection({"provider": "groq", "apiKey": "gsk-000000000001"})
    deepseek = svc.create_connection({"provider": "deepseek", "apiKey": "sk-000000000001"})
    combo = svc.routing.create_combo({"name": "c", "models": [{"model": "groq/m", "connectionId": groq["id"]}]})
    assert combo["models"] == [{"model": "groq/m", "connectionId": groq["id"]}]
    cases = [
        ({"model": "groq/m", "connectionId": "conn_missing"}, "no connection"),
        ({"model": "groq/m", "connectionId": deepseek["id"]}, "belongs to deepseek, not to groq"),
        ({"model": "c", "connectionId": groq["id"]}, "only a `prefix/model` target"),
    ]
    for entry, needle in cases:
        with pytest.raises(InvalidRequest) as exc:
            svc.routing.create_combo({"name": "d", "models": [entry]})
        assert needle in refused(exc, "models[0].connectionId", "invalid_combo")


def test_duplicate_combo_is_a_conflict_and_unknown_names_are_not_found(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "c", "models": OK})
    with pytest.raises(Conflict) as exc:
        svc.routing.create_combo({"name": "c", "models": OK})
    assert exc.value.code == "combo_exists"
    for call in (
        lambda: svc.routing.get_combo("nope"),
        lambda: svc.routing.replace_combo("nope", {"models": OK}),
        lambda: svc.routing.update_combo("nope", {"strategy": "random"}),
        lambda: svc.routing.delete_combo("nope"),
    ):
        with pytest.raises(NotFound, match="No combo `nope`"):
            call()


def test_combo_and_exact_alias_names_never_collide(parts) -> None:
    svc, *_ = parts
    svc.routing.create_alias({"pattern": "smart", "target": "ds/deepseek-reasoner"})
    with pytest.raises(Conflict) as exc:
        svc.routing.create_combo({"name": "smart", "models": OK})
    assert exc.value.code == "name_taken"
    svc.routing.create_combo({"name": "fast", "models": OK})
    with pytest.raises(Conflict) as exc:
        svc.routing.create_alias({"pattern": "fast", "target": "ds/deepseek-chat"})
    assert exc.value.code == "name_taken"


# ----- combos: the reference graph ------------------------------------------------------------------------


def test_a_cycle_is_refused(parts) -> None:
    svc, store, *_ = parts
    svc.routing.create_combo({"name": "a", "models": OK})
    svc.routing.create_combo({"name": "b", "models": ["a"]})
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.update_combo("a", {"models": ["b"]})
    assert "a → b → a" in refused(exc, "models", "invalid_combo")
    assert store.get(Kind.COMBO, "a").data["models"] == OK
    with pytest.raises(InvalidRequest, match="self → self"):
        svc.routing.create_combo({"name": "self", "models": [*OK, "self"]})


def test_a_cycle_through_an_exact_alias_is_refused(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "a", "models": OK})
    svc.routing.create_alias({"pattern": "to-a", "target": "a"})
    with pytest.raises(InvalidRequest, match="a → a"):
        svc.routing.update_combo("a", {"models": [*OK, "to-a"]})


def test_nesting_deeper_than_three_is_refused(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "d", "models": OK})
    svc.routing.create_combo({"name": "c", "models": ["d"]})
    svc.routing.create_combo({"name": "b", "models": ["c", *OK]})  # b → c → d: depth 3, the most allowed
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_combo({"name": "a", "models": ["b"]})
    assert "`a` would nest deeper (a → b → c → d)" in refused(exc, "models", "invalid_combo")


def test_deepening_a_combo_is_refused_when_a_combo_referencing_it_would_nest_too_deep(parts) -> None:
    """The whole graph after the change counts: `d` itself stays shallow, its referrer `b` would not."""
    svc, *_ = parts
    svc.routing.create_combo({"name": "x", "models": OK})
    svc.routing.create_combo({"name": "d", "models": OK})
    svc.routing.create_combo({"name": "c", "models": ["d"]})
    svc.routing.create_combo({"name": "b", "models": ["c"]})
    with pytest.raises(InvalidRequest, match=r"`b` would nest deeper \(b → c → d → x\)"):
        svc.routing.update_combo("d", {"models": ["x"]})
    svc.routing.update_combo("c", {"models": ["x"]})  # b → c → x: still 3


def test_nesting_through_an_alias_counts_the_combo_it_leads_to(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "c", "models": OK})
    svc.routing.create_combo({"name": "b", "models": ["c"]})
    svc.routing.create_alias({"pattern": "best", "target": "b"})
    svc.routing.create_combo({"name": "a", "models": ["best"]})  # a → (best) → b → c: 3
    with pytest.raises(InvalidRequest, match="nest deeper"):
        svc.routing.create_combo({"name": "top", "models": ["a"]})


def test_a_stored_combo_that_does_not_parse_blocks_no_other_write(parts) -> None:
    svc, store, *_ = parts
    store.create(Kind.COMBO, "broken", {"models": "not a list"})
    assert svc.routing.create_combo({"name": "fine", "models": ["broken"]})["models"] == ["broken"]
    svc.routing.replace_combo("broken", {"models": OK})  # and it can be repaired
    assert set(snapshot(parts).combos) == {"broken", "fine"}


# ----- combos: updates and deletes ------------------------------------------------------------------------


def test_patch_merges_and_put_replaces(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo(
        {"name": "c", "models": OK, "strategy": "round-robin", "config": {"maxRetries": 2, "retryDelayMs": 500}}
    )
    patched = svc.routing.update_combo("c", {"config": {"maxRetries": 3, "concurrencyPerTarget": 4}})
    assert patched["strategy"] == "round-robin" and patched["models"] == OK
    assert patched["config"] == {"maxRetries": 3, "retryDelayMs": 500, "concurrencyPerTarget": 4}
    assert patched["version"] == 2 and patched["createdAt"]
    cleared = svc.routing.update_combo("c", {"config": {"concurrencyPerTarget": None}, "models": ["groq/m"]})
    assert cleared["config"] == {"maxRetries": 3, "retryDelayMs": 500} and cleared["models"] == ["groq/m"]
    assert svc.routing.update_combo("c", {"config": None})["config"] == {"maxRetries": 0, "retryDelayMs": 0}
    replaced = svc.routing.replace_combo("c", {"name": "c", "models": OK, "config": {"maxRetries": 1}})
    assert replaced["strategy"] == "priority" and replaced["config"] == {"maxRetries": 1, "retryDelayMs": 0}
    assert replaced["version"] == 5 and replaced["createdAt"] == patched["createdAt"]


def test_updates_check_like_creates_and_never_rename(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "c", "models": OK})
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.update_combo("c", {"config": {"maxRetries": 9}})
    refused(exc, "config.maxRetries", "invalid_value")
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.replace_combo("c", {"models": ["nope/x"]})
    refused(exc, "models[0]", "invalid_combo")
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.update_combo("c", {"name": "d"})
    refused(exc, "name", "invalid_value")
    assert svc.routing.get_combo("c")["version"] == 1


def test_a_combo_in_use_cannot_be_deleted_and_the_answer_names_its_users(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "base", "models": OK})
    svc.routing.create_combo({"name": "top", "models": ["base"]})
    svc.routing.create_alias({"pattern": "b", "target": "base"})
    svc.routing.create_fallback({"pattern": "*", "models": ["base"]})
    with pytest.raises(Conflict) as exc:
        svc.routing.delete_combo("base")
    assert exc.value.code == "combo_in_use"
    for user in ("combo `top`", "alias `b`", "fallback chain `*`"):
        assert user in exc.value.message
    svc.routing.delete_combo("top")
    svc.routing.delete_alias("b")
    svc.routing.delete_fallback("*")
    svc.routing.delete_combo("base")
    assert svc.routing.list_combos() == []


# ----- aliases --------------------------------------------------------------------------------------------


def test_alias_create_list_delete(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "fast", "models": OK})
    alias = svc.routing.create_alias({"pattern": "claude-*", "target": "fast"})
    assert (alias["pattern"], alias["target"], alias["version"]) == ("claude-*", "fast", 1)
    svc.routing.create_alias({"pattern": "gpt-4?", "target": "or/openai/gpt-4o"})
    assert [a["pattern"] for a in svc.routing.list_aliases()] == ["claude-*", "gpt-4?"]
    with pytest.raises(Conflict) as exc:
        svc.routing.create_alias({"pattern": "claude-*", "target": "ds/deepseek-chat"})
    assert exc.value.code == "alias_exists"
    svc.routing.delete_alias("claude-*")
    with pytest.raises(NotFound):
        svc.routing.delete_alias("claude-*")
    assert [(a.pattern, a.target) for a in snapshot(parts).aliases] == [("gpt-4?", "or/openai/gpt-4o")]


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"pattern": "", "target": "ds/m"}, "pattern", "invalid_value"),
        ({"pattern": "a" * 257, "target": "ds/m"}, "pattern", "invalid_value"),
        ({"pattern": "two words", "target": "ds/m"}, "pattern", "invalid_value"),
        ({"pattern": "tab\there", "target": "ds/m"}, "pattern", "invalid_value"),
        ({"pattern": "bell\x07", "target": "ds/m"}, "pattern", "invalid_value"),
        ({"target": "ds/m"}, "pattern", "invalid_value"),
        ({"pattern": "p"}, "target", "invalid_value"),
        ({"pattern": "p", "target": ""}, "target", "invalid_value"),
        ({"pattern": "p", "target": "ds/*"}, "target", "invalid_value"),
        ({"pattern": "p", "target": "ds/m?"}, "target", "invalid_value"),
        ({"pattern": "p", "target": "nope/m"}, "target", "invalid_combo"),
        ({"pattern": "p", "target": "unprefixed"}, "target", "invalid_combo"),
    ],
)
def test_alias_validation(parts, fields: dict[str, Any], param: str, code: str) -> None:
    svc, *_ = parts
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_alias(fields)
    refused(exc, param, code)


def test_alias_bounds_are_inclusive(parts) -> None:
    svc, *_ = parts
    assert svc.routing.create_alias({"pattern": "a" * 256, "target": "ds/" + "m" * 509})["pattern"] == "a" * 256


def test_an_alias_a_combo_targets_cannot_be_deleted(parts) -> None:
    svc, *_ = parts
    svc.routing.create_alias({"pattern": "smart", "target": "ds/deepseek-reasoner"})
    svc.routing.create_combo({"name": "c", "models": ["smart"]})
    with pytest.raises(Conflict, match="combo `c`") as exc:
        svc.routing.delete_alias("smart")
    assert exc.value.code == "alias_in_use"


# ----- fallback chains ------------------------------------------------------------------------------------


def test_fallback_chain_create_replace_delete(parts) -> None:
    svc, *_ = parts
    svc.routing.create_combo({"name": "fast", "models": OK})
    chain = svc.routing.create_fallback({"pattern": "*", "models": ["fast", "groq/m"]})
    assert (chain["pattern"], chain["models"], chain["version"]) == ("*", ["fast", "groq/m"], 1)
    with pytest.raises(Conflict) as exc:
        svc.routing.create_fallback({"pattern": "*", "models": OK})
    assert exc.value.code == "fallback_exists"
    replaced = svc.routing.replace_fallback("*", {"models": OK * 10})
    assert replaced["models"] == OK * 10 and replaced["version"] == 2
    with pytest.raises(NotFound):
        svc.routing.replace_fallback("gpt-*", {"models": OK})
    with pytest.raises(InvalidRequest):
        svc.routing.replace_fallback("*", {"pattern": "other", "models": OK})
    assert [(f.pattern, f.models) for f in snapshot(parts).fallbacks] == [("*", tuple(OK * 10))]
    svc.routing.delete_fallback("*")
    assert svc.routing.list_fallbacks() == []
    with pytest.raises(NotFound):
        svc.routing.delete_fallback("*")


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"pattern": "*", "models": []}, "models", "invalid_value"),
        ({"pattern": "*", "models": OK * 11}, "models", "invalid_value"),
        ({"pattern": "a b", "models": OK}, "pattern", "invalid_value"),
        ({"pattern": "*", "models": ["ds/*"]}, "models[0]", "invalid_value"),
        ({"pattern": "*", "models": [*OK, "nope/m"]}, "models[1]", "invalid_combo"),
        ({"pattern": "*", "models": ["no-such-combo"]}, "models[0]", "invalid_combo"),
    ],
)
def test_fallback_chain_validation(parts, fields: dict[str, Any], param: str, code: str) -> None:
    svc, *_ = parts
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_fallback(fields)
    refused(exc, param, code)


def test_fallback_models_may_not_be_aliases(parts) -> None:
    svc, *_ = parts
    svc.routing.create_alias({"pattern": "smart", "target": "ds/deepseek-reasoner"})
    with pytest.raises(InvalidRequest) as exc:
        svc.routing.create_fallback({"pattern": "*", "models": ["smart"]})
    refused(exc, "models[0]", "invalid_combo")


# ----- connection rate limits -----------------------------------------------------------------------------


def test_rate_limit_round_trip_into_the_snapshot(parts) -> None:
    svc, store, *_ = parts
    conn = svc.create_connection(
        {"provider": "groq", "apiKey": "gsk-test-key-000000000001", "rateLimit": {"rpm": 60, "maxConcurrent": 2}}
    )
    assert conn["rateLimit"] == {"rpm": 60, "maxConcurrent": 2} and conn["apiKey"] == "gsk-…0001"
    assert snapshot(parts).connections[0].rate_limit == RateLimit(rpm=60, max_concurrent=2)
    patched = svc.update_connection(conn["id"], {"rateLimit": {"minGapMs": 250}})  # replaces, not merges
    assert patched["rateLimit"] == {"minGapMs": 250} and patched["apiKey"] == "gsk-…0001"
    assert snapshot(parts).connections[0].rate_limit == RateLimit(min_gap_ms=250)
    svc.update_connection(conn["id"], {"priority": 2})  # other updates keep it
    assert snapshot(parts).connections[0].rate_limit == RateLimit(min_gap_ms=250)
    cleared = svc.update_connection(conn["id"], {"rateLimit": None})
    assert "rateLimit" not in cleared and "rateLimit" not in store.get(Kind.PROVIDER, conn["id"]).data
    assert not snapshot(parts).connections[0].rate_limit.configured
    unlimited = svc.create_connection({"provider": "groq", "apiKey": "gsk-000000000002", "rateLimit": {}})
    assert "rateLimit" not in unlimited


def test_rate_limit_bounds_are_inclusive(parts) -> None:
    svc, *_ = parts
    top = {"rpm": 100_000, "minGapMs": 3_600_000, "maxConcurrent": 10_000}
    assert svc.create_connection({"provider": "groq", "apiKey": "k-1", "rateLimit": top})["rateLimit"] == top
    low = {"rpm": 1, "minGapMs": 1, "maxConcurrent": 1}
    assert svc.create_connection({"provider": "groq", "apiKey": "k-1", "rateLimit": low})["rateLimit"] == low


@pytest.mark.parametrize(
    ("limits", "param"),
    [
        ({"rpm": 0}, "rateLimit.rpm"),
        ({"rpm": 100_001}, "rateLimit.rpm"),
        ({"rpm": True}, "rateLimit.rpm"),
        ({"rpm": 1.5}, "rateLimit.rpm"),
        ({"minGapMs": 0}, "rateLimit.minGapMs"),
        ({"minGapMs": 3_600_001}, "rateLimit.minGapMs"),
        ({"maxConcurrent": 0}, "rateLimit.maxConcurrent"),
        ({"maxConcurrent": 10_001}, "rateLimit.maxConcurrent"),
        ({"burst": 3}, "rateLimit.burst"),
        ("60/min", "rateLimit"),
    ],
)
def test_rate_limit_validation(parts, limits: object, param: str) -> None:
    svc, store, *_ = parts
    with pytest.raises(InvalidRequest) as exc:
        svc.create_connection({"provider": "groq", "apiKey": "gsk-000000000001", "rateLimit": limits})
    refused(exc, param, "invalid_value")
    conn = svc.create_connection({"provider": "groq", "apiKey": "gsk-000000000001"})
    with pytest.raises(InvalidRequest) as exc:
        svc.update_connection(conn["id"], {"rateLimit": limits})
    refused(exc, param, "invalid_value")
    assert "rateLimit" not in store.get(Kind.PROVIDER, conn["id"]).data


# ----- routing settings -----------------------------------------------------------------------------------


def test_routing_settings_round_trip_into_gateway_settings(parts) -> None:
    svc, *_ = parts
    svc.update_settings(
        {
            "accountStrategy": "round-robin",
            "stickyLimit": 7,
            "resilience": {"apikey": {"breakerThreshold": 3, "cooldownBaseSeconds": 0.5}},
            "firstByteTimeoutSeconds": 20,
            "cacheTtlSeconds": 0,
            "maxAttempts": 4,
        }
    )
    settings = snapshot(parts).settings
    assert (settings.account_strategy, settings.sticky_limit) == ("round-robin", 7)
    assert settings.policies["apikey"].breaker_threshold == 3
    assert settings.policies["apikey"].cooldown_base == 0.5
    assert settings.policies["apikey"].max_steps == 5  # untouched fields keep the default
    assert settings.policies["oauth"].breaker_threshold == 8
    assert (settings.first_byte_timeout, settings.cache_ttl, settings.max_attempts) == (20.0, 0.0, 4)


def test_resilience_updates_merge_per_profile_and_field(parts) -> None:
    svc, *_ = parts
    svc.update_settings({"resilience": {"apikey": {"breakerThreshold": 3, "maxBackoffSteps": 2}}})
    svc.update_settings({"resilience": {"oauth": {"breakerResetSeconds": 120}}})
    stored = svc.update_settings({"resilience": {"apikey": {"maxBackoffSteps": None}}})
    assert stored["resilience"] == {"apikey": {"breakerThreshold": 3}, "oauth": {"breakerResetSeconds": 120}}
    policies = snapshot(parts).settings.policies
    assert (policies["apikey"].breaker_threshold, policies["apikey"].max_steps) == (3, 5)
    assert policies["oauth"].breaker_reset == 120.0
    assert svc.update_settings({"resilience": {"oauth": None}})["resilience"] == {"apikey": {"breakerThreshold": 3}}
    assert svc.update_settings({"resilience": None})["resilience"] is None
    assert snapshot(parts).settings.policies["apikey"].breaker_threshold == 5
