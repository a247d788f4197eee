"""Invariants of the built-in provider catalogue (`shared.providers.catalog`)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest

from shared.providers import catalog
from shared.providers.catalog import PROVIDERS, by_prefix, get_provider
from shared.providers.spec import (
    AuthHeader,
    AuthKind,
    Capability,
    ProviderSpec,
    WireFormat,
)

PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _row_prefixes(spec: ProviderSpec) -> set[str]:
    return {p.lower() for p in spec.prefixes}


def _by_id(provider_id: str) -> ProviderSpec:
    matches = [p for p in PROVIDERS if p.id == provider_id]
    assert len(matches) == 1, provider_id
    return matches[0]


# --- identity -------------------------------------------------------------------------------------------------


def test_catalogue_is_not_empty_and_ids_are_unique() -> None:
    assert PROVIDERS
    ids = Counter(p.id for p in PROVIDERS)
    assert [i for i, n in ids.items() if n > 1] == []


def test_no_prefix_is_claimed_by_two_rows() -> None:
    owners: dict[str, str] = {}
    clashes: list[tuple[str, str, str]] = []
    for spec in PROVIDERS:
        for prefix in _row_prefixes(spec):
            if prefix in owners:
                clashes.append((prefix, owners[prefix], spec.id))
            owners[prefix] = spec.id
    assert clashes == []


def test_extra_aliases_are_really_extra() -> None:
    for spec in PROVIDERS:
        assert len(set(spec.aliases)) == len(spec.aliases), spec.id
        assert spec.alias not in spec.aliases, spec.id
        assert spec.id not in spec.aliases, spec.id


@pytest.mark.parametrize("spec", PROVIDERS, ids=lambda s: s.id)
def test_every_prefix_is_lowercase_and_well_formed(spec: ProviderSpec) -> None:
    for prefix in spec.prefixes:
        assert PREFIX_RE.fullmatch(prefix), (spec.id, prefix)


def test_by_prefix_indexes_every_prefix_of_every_row() -> None:
    index = by_prefix()
    expected = {prefix for spec in PROVIDERS for prefix in _row_prefixes(spec)}
    assert set(index) == expected
    for spec in PROVIDERS:
        for prefix in _row_prefixes(spec):
            assert index[prefix] is spec


def test_by_prefix_is_computed_once() -> None:
    assert by_prefix() is by_prefix()


def test_by_prefix_rejects_a_clashing_row(monkeypatch: pytest.MonkeyPatch) -> None:
    deepseek = _by_id("deepseek")
    impostor = dataclasses.replace(deepseek, id="impostor", alias="imp", aliases=("DS",))
    monkeypatch.setattr(catalog, "PROVIDERS", (*PROVIDERS, impostor))
    by_prefix.cache_clear()
    try:
        with pytest.raises(ValueError, match="'ds'"):
            by_prefix()
    finally:
        monkeypatch.undo()
        by_prefix.cache_clear()
    assert get_provider("ds") is deepseek


# --- URLs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", PROVIDERS, ids=lambda s: s.id)
def test_base_url_shape(spec: ProviderSpec) -> None:
    url = spec.base_url
    parts = urlsplit(url)
    assert not url.endswith("/"), url
    assert parts.netloc, url
    assert not parts.query and not parts.fragment, url
    if parts.scheme == "http":
        # Plain HTTP only for credential-less servers on the owner's own machine.
        assert parts.hostname in LOCAL_HOSTS, url
        assert spec.auth is AuthKind.NONE, spec.id
    else:
        assert parts.scheme == "https", url


@pytest.mark.parametrize("spec", PROVIDERS, ids=lambda s: s.id)
def test_docs_url_is_https_when_present(spec: ProviderSpec) -> None:
    if spec.docs_url:
        assert urlsplit(spec.docs_url).scheme == "https", spec.docs_url


def test_spot_checked_base_urls() -> None:
    expected = {
        "groq": "https://api.groq.com/openai/v1",
        "deepseek": "https://api.deepseek.com/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "anthropic": "https://api.anthropic.com/v1",
        "gemini": "https://generativelanguage.googleapis.com/v1beta",
        "codex": "https://chatgpt.com/backend-api/codex",
        "github": "https://api.githubcopilot.com",
    }
    assert {k: _by_id(k).base_url for k in expected} == expected


# --- auth -----------------------------------------------------------------------------------------------------


def test_openai_format_api_key_rows_send_bearer() -> None:
    rows = [p for p in PROVIDERS if p.wire_format is WireFormat.OPENAI and p.auth is AuthKind.API_KEY]
    assert rows
    assert [p.id for p in rows if p.auth_header is not AuthHeader.BEARER] == []


def test_auth_kind_and_header_agree() -> None:
    for spec in PROVIDERS:
        assert (spec.auth is AuthKind.NONE) == (spec.auth_header is AuthHeader.NONE), spec.id


def test_native_api_key_schemes() -> None:
    anthropic = _by_id("anthropic")
    assert anthropic.auth_header is AuthHeader.X_API_KEY
    assert ("anthropic-version", "2023-06-01") in anthropic.extra_headers
    assert _by_id("gemini").auth_header is AuthHeader.X_GOOG_API_KEY


@pytest.mark.parametrize(
    ("provider_id", "alias", "wire_format"),
    [
        ("claude", "cc", WireFormat.ANTHROPIC),
        ("codex", "cx", WireFormat.RESPONSES),
        ("github", "gh", WireFormat.OPENAI),
        ("antigravity", "ag", WireFormat.CLOUD_CODE),
        ("gemini-cli", "gc", WireFormat.CLOUD_CODE),
        ("kiro", "kr", WireFormat.KIRO),
        ("qwen", "qw", WireFormat.OPENAI),
        ("iflow", "if", WireFormat.OPENAI),
    ],
)
def test_subscription_rows_are_oauth(provider_id: str, alias: str, wire_format: WireFormat) -> None:
    spec = _by_id(provider_id)
    assert spec.alias == alias
    assert spec.auth is AuthKind.OAUTH
    assert spec.wire_format is wire_format


@pytest.mark.parametrize("provider_id", ["gemini-cli", "qwen", "iflow"])
def test_ended_free_routes_carry_a_retired_note(provider_id: str) -> None:
    assert _by_id(provider_id).retired_note


def test_local_servers_need_no_credential() -> None:
    for provider_id in ("ollama", "lmstudio"):
        spec = _by_id(provider_id)
        assert spec.auth is AuthKind.NONE
        assert spec.auth_header is AuthHeader.NONE


# --- content --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", PROVIDERS, ids=lambda s: s.id)
def test_row_content(spec: ProviderSpec) -> None:
    assert spec.name.strip()
    assert {Capability.CHAT, Capability.STREAMING} <= spec.capabilities
    assert 2 <= len(spec.models) <= 6, spec.models
    assert len(set(spec.models)) == len(spec.models)
    for model in spec.models:
        assert model and model == model.strip(), model
    for name, value in spec.extra_headers:
        assert name and name == name.strip(), name
        assert value, name


# --- lookup ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "provider_id"),
    [
        ("ds", "deepseek"),
        ("DS", "deepseek"),
        ("deepseek", "deepseek"),
        ("DeepSeek", "deepseek"),
        ("or", "openrouter"),
        ("pplx", "perplexity"),
        ("moonshot", "kimi"),
        ("MOONSHOT", "kimi"),
        ("kimi", "kimi"),
        ("qwen-api", "dashscope"),
        ("qw", "qwen"),
        ("cc", "claude"),
        ("Gemini-CLI", "gemini-cli"),
    ],
)
def test_get_provider_resolves_alias_id_and_extra_aliases(prefix: str, provider_id: str) -> None:
    spec = get_provider(prefix)
    assert spec is not None
    assert spec.id == provider_id


def test_get_provider_resolves_every_prefix_in_any_case() -> None:
    for spec in PROVIDERS:
        for prefix in spec.prefixes:
            assert get_provider(prefix) is spec
            assert get_provider(prefix.upper()) is spec


@pytest.mark.parametrize("prefix", ["", "nope", "deepseek/", "ds/deepseek-chat", "open ai"])
def test_get_provider_returns_none_for_unknown(prefix: str) -> None:
    assert get_provider(prefix) is None
