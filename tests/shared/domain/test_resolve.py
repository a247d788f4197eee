import pytest

from shared.domain.config import ConfigSnapshot, Connection, CustomModel, ProviderNode
from shared.domain.resolve import list_models, resolve_model
from shared.errors import InvalidRequest, ModelNotFound
from shared.providers.spec import AuthHeader, WireFormat


def conn(provider: str, id: str = "c1", *, priority: int = 0, enabled: bool = True, base_url: str | None = None):
    return Connection(
        id=id, provider=provider, name=id, api_key="k-" + id, base_url=base_url, priority=priority, enabled=enabled
    )


def test_alias_prefix_routes_to_catalogue_provider() -> None:
    snap = ConfigSnapshot.build(connections=[conn("deepseek")])
    route = resolve_model("ds/deepseek-chat", snap)
    assert route.provider_id == "deepseek"
    assert route.upstream_model == "deepseek-chat"
    assert route.base_url == "https://api.deepseek.com/v1"
    assert route.auth_header is AuthHeader.BEARER
    assert route.public_model == "ds/deepseek-chat"


def test_provider_id_works_as_prefix_too() -> None:
    snap = ConfigSnapshot.build(connections=[conn("deepseek")])
    assert resolve_model("deepseek/deepseek-chat", snap).provider_id == "deepseek"


def test_connection_base_url_overrides_catalogue() -> None:
    snap = ConfigSnapshot.build(connections=[conn("groq", base_url="http://127.0.0.1:9/v1/")])
    route = resolve_model("groq/llama-3.3-70b-versatile", snap)
    assert route.base_url_for(route.connections[0]) == "http://127.0.0.1:9/v1"


def test_connections_ordered_by_priority_and_disabled_skipped() -> None:
    snap = ConfigSnapshot.build(
        connections=[conn("groq", "b", priority=2), conn("groq", "a", priority=1), conn("groq", "off", enabled=False)]
    )
    route = resolve_model("groq/x", snap)
    assert [c.id for c in route.connections if c] == ["a", "b"]


def test_model_id_keeps_slashes_after_the_prefix() -> None:
    snap = ConfigSnapshot.build(connections=[conn("openrouter")])
    route = resolve_model("or/meta-llama/llama-3.3-70b-instruct", snap)
    assert route.upstream_model == "meta-llama/llama-3.3-70b-instruct"


def test_known_provider_without_connection_is_model_not_found_with_hint() -> None:
    with pytest.raises(ModelNotFound, match="POST /api/providers"):
        resolve_model("ds/deepseek-chat", ConfigSnapshot.build())


def test_unknown_model_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound):
        resolve_model("nobody/nothing", ConfigSnapshot.build(connections=[conn("groq")]))


def test_empty_model_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        resolve_model("  ", ConfigSnapshot.build())


def test_node_prefix_wins_and_uses_node_format() -> None:
    node = ProviderNode(
        id="node_1", name="Local", prefix="mine", base_url="http://127.0.0.1:1234/v1", api_type="openai"
    )
    snap = ConfigSnapshot.build(nodes=[node], connections=[conn("node_1")])
    route = resolve_model("MINE/qwen3", snap)
    assert route.provider_id == "node_1"
    assert route.wire_format is WireFormat.OPENAI
    assert route.connections[0] is not None and route.connections[0].id == "c1"


def test_node_without_connection_is_called_without_a_key() -> None:
    node = ProviderNode(
        id="node_1", name="Local", prefix="mine", base_url="http://127.0.0.1:1234/v1", api_type="openai"
    )
    route = resolve_model("mine/qwen3", ConfigSnapshot.build(nodes=[node]))
    assert route.connections == (None,)


def test_anthropic_node_gets_x_api_key_and_version_header() -> None:
    node = ProviderNode(id="n", name="A", prefix="ant", base_url="http://127.0.0.1:1/v1", api_type="anthropic")
    route = resolve_model("ant/claude", ConfigSnapshot.build(nodes=[node]))
    assert route.auth_header is AuthHeader.X_API_KEY
    assert ("anthropic-version", "2023-06-01") in route.extra_headers


def test_unprefixed_known_model_resolves_when_unique() -> None:
    snap = ConfigSnapshot.build(connections=[conn("deepseek")])
    assert resolve_model("deepseek-chat", snap).provider_id == "deepseek"


def test_unprefixed_custom_model_resolves_and_ambiguity_is_reported() -> None:
    snap = ConfigSnapshot.build(
        connections=[conn("groq", "g"), conn("together", "t")],
        models=[CustomModel("groq", "shared-model", ""), CustomModel("together", "shared-model", "")],
    )
    with pytest.raises(InvalidRequest, match="Ambiguous") as exc:
        resolve_model("shared-model", snap)
    assert exc.value.code == "ambiguous_model"
    only = ConfigSnapshot.build(connections=[conn("groq")], models=[CustomModel("groq", "mine", "")])
    assert resolve_model("mine", only).provider_id == "groq"


def test_list_models_covers_catalogue_custom_and_default_models() -> None:
    node = ProviderNode(id="node_1", name="L", prefix="mine", base_url="http://127.0.0.1:1/v1", api_type="openai")
    c = Connection(
        id="c",
        provider="deepseek",
        name="c",
        api_key="k",
        base_url=None,
        priority=0,
        enabled=True,
        default_model="deepseek-v9",
    )
    snap = ConfigSnapshot.build(connections=[c], nodes=[node], models=[CustomModel("node_1", "qwen3", "")])
    ids = [mid for mid, _ in list_models(snap)]
    assert "ds/deepseek-chat" in ids
    assert "ds/deepseek-v9" in ids
    assert "mine/qwen3" in ids
    assert not any(i.startswith("groq/") for i in ids)  # not configured, not listed
    assert ids == sorted(ids)
