"""Plans: combos (nested, pinned, partly unresolvable), aliases (exact and wildcard), fallback chains."""

from __future__ import annotations

import pytest

from shared.domain.combos import Alias, Combo, ComboTarget, FallbackChain
from shared.domain.config import ConfigSnapshot, Connection, ProviderNode
from shared.domain.plan import ComboNode, Leaf, leaves, plan_for
from shared.errors import InvalidRequest, ModelNotFound


def _conn(cid: str, provider: str, priority: int = 0) -> Connection:
    return Connection(id=cid, provider=provider, name=cid, api_key="k", base_url=None, priority=priority, enabled=True)


def _snapshot(**kwargs: object) -> ConfigSnapshot:
    return ConfigSnapshot.build(
        connections=[_conn("o1", "openai"), _conn("o2", "openai", 1), _conn("d1", "deepseek")],
        nodes=[ProviderNode("node_1", "Local", "local", "http://127.0.0.1:9", "openai")],
        **kwargs,  # type: ignore[arg-type]
    )


def _combo(name: str, *models: str, strategy: str = "priority") -> Combo:
    return Combo(name=name, targets=tuple(ComboTarget(m) for m in models), strategy=strategy)


def test_plain_model_is_one_leaf_with_its_accounts_in_priority_order() -> None:
    plan = plan_for("openai/gpt-4o", _snapshot())
    assert isinstance(plan.root, Leaf)
    assert [c.id for c in plan.root.route.connections if c] == ["o1", "o2"]
    assert plan.combo is None


def test_combo_expands_to_its_targets_in_list_order() -> None:
    plan = plan_for("fast", _snapshot(combos=[_combo("fast", "openai/gpt-4o", "ds/deepseek-chat", "local/llama")]))
    assert plan.combo == "fast"
    assert [leaf.route.public_model for leaf in leaves(plan.root)] == [
        "openai/gpt-4o",
        "ds/deepseek-chat",
        "local/llama",
    ]


def test_combo_is_also_reachable_as_combo_slash_name() -> None:
    assert plan_for("combo/fast", _snapshot(combos=[_combo("fast", "openai/gpt-4o")])).combo == "fast"


def test_nested_combos_keep_their_own_node() -> None:
    snap = _snapshot(combos=[_combo("outer", "inner", "ds/deepseek-chat"), _combo("inner", "openai/gpt-4o")])
    root = plan_for("outer", snap).root
    assert isinstance(root, ComboNode)
    assert isinstance(root.children[0], ComboNode) and root.children[0].combo.name == "inner"


def test_nesting_deeper_than_three_is_refused() -> None:
    snap = _snapshot(combos=[_combo("a", "b"), _combo("b", "c"), _combo("c", "d"), _combo("d", "openai/gpt-4o")])
    with pytest.raises(ModelNotFound, match="nests deeper"):
        plan_for("a", snap)
    assert leaves(plan_for("b", snap).root)[0].route.public_model == "openai/gpt-4o"


def test_unresolvable_targets_are_skipped_and_named() -> None:
    snap = _snapshot(combos=[_combo("mix", "groq/llama-3", "openai/gpt-4o")])  # no groq connection
    root = plan_for("mix", snap).root
    assert isinstance(root, ComboNode)
    assert [leaf.route.provider_id for leaf in leaves(root)] == ["openai"]
    assert root.skipped and "groq/llama-3" in root.skipped[0]


def test_combo_with_no_usable_target_says_why() -> None:
    with pytest.raises(ModelNotFound, match="groq/llama-3") as info:
        plan_for("dead", _snapshot(combos=[_combo("dead", "groq/llama-3")]))
    assert info.value.code == "combo_unavailable"


def test_pinned_account_narrows_the_target_to_it() -> None:
    combo = Combo("pin", (ComboTarget("openai/gpt-4o", connection_id="o2"),))
    leaf = leaves(plan_for("pin", _snapshot(combos=[combo])).root)[0]
    assert [c.id for c in leaf.route.connections if c] == ["o2"]


def test_pinned_to_a_missing_account_is_skipped() -> None:
    combo = Combo("pin", (ComboTarget("openai/gpt-4o", connection_id="gone"), ComboTarget("ds/deepseek-chat")))
    assert [leaf.route.provider_id for leaf in leaves(plan_for("pin", _snapshot(combos=[combo])).root)] == ["deepseek"]


def test_exact_alias_wins_over_direct_resolution() -> None:
    snap = _snapshot(aliases=[Alias("gpt-4o", "ds/deepseek-chat")])
    assert leaves(plan_for("gpt-4o", snap).root)[0].route.provider_id == "deepseek"


def test_wildcard_alias_does_not_capture_known_prefixes() -> None:
    snap = _snapshot(aliases=[Alias("*", "ds/deepseek-chat")])
    assert leaves(plan_for("openai/gpt-4o", snap).root)[0].route.provider_id == "openai"
    assert leaves(plan_for("claude-whatever", snap).root)[0].route.provider_id == "deepseek"


def test_most_specific_wildcard_alias_wins() -> None:
    snap = _snapshot(aliases=[Alias("claude-*", "ds/deepseek-chat"), Alias("claude-opus-*", "openai/gpt-4o")])
    assert leaves(plan_for("claude-opus-4", snap).root)[0].route.provider_id == "openai"
    assert leaves(plan_for("claude-haiku-4", snap).root)[0].route.provider_id == "deepseek"


def test_alias_can_name_a_combo() -> None:
    snap = _snapshot(combos=[_combo("fast", "openai/gpt-4o")], aliases=[Alias("claude-*", "fast")])
    assert plan_for("claude-sonnet-4", snap).combo == "fast"


def test_alias_loops_end() -> None:
    snap = _snapshot(aliases=[Alias("a", "b"), Alias("b", "a")])
    with pytest.raises(ModelNotFound):
        plan_for("a", snap)


def test_fallback_chain_of_the_most_specific_pattern_follows_the_plan() -> None:
    snap = _snapshot(
        fallbacks=[FallbackChain("*", ("local/any",)), FallbackChain("openai/*", ("ds/deepseek-chat", "groq/x"))]
    )
    plan = plan_for("openai/gpt-4o", snap)
    assert [leaves(n)[0].route.public_model for n in plan.fallbacks] == ["ds/deepseek-chat"]  # groq: unresolvable
    assert [leaves(n)[0].route.public_model for n in plan_for("ds/deepseek-chat", snap).fallbacks] == ["local/any"]


def test_empty_model_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequest):
        plan_for("  ", _snapshot())
