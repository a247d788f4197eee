"""build_snapshot reads combos, aliases, fallback chains and connection rate limits; a stored record that does
not parse is left out with a log line, never a failure; /v1/models lists combos and exact aliases."""

from collections.abc import Mapping
from typing import Any

import pytest

from shared.domain.combos import Alias, Combo, ComboConfig, ComboTarget, FallbackChain
from shared.domain.config import Kind, Record
from shared.domain.resolve import list_models
from shared.domain.routing import RateLimit
from shared.services.snapshot import build_snapshot


class PlainCipher:
    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str:
        return plaintext

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str:
        return ciphertext


def rec(kind: str, id: str, data: dict[str, Any]) -> Record:
    return Record(kind, id, data, 1, "2026-01-01T00:00:00+00:00")


def connection(id: str, **extra: Any) -> Record:
    return rec(Kind.PROVIDER, id, {"provider": "deepseek", "name": id, "apiKey": "sk-x", **extra})


def test_combos_aliases_and_fallbacks_become_dataclasses() -> None:
    snap = build_snapshot(
        [
            rec(
                Kind.COMBO,
                "team/fast",
                {
                    "name": "team/fast",
                    "models": ["ds/deepseek-chat", {"model": "groq/m", "weight": 2.5, "connectionId": "conn_1"}],
                    "strategy": "p2c",
                    "config": {"maxRetries": 1, "firstByteTimeoutMs": 5000},
                    "createdAt": "2026-01-01T00:00:00+00:00",
                },
            ),
            rec(Kind.ALIAS, "gpt-*", {"pattern": "gpt-*", "target": "team/fast"}),
            rec(Kind.ALIAS, "claude", {"pattern": "claude", "target": "ds/deepseek-chat"}),
            rec(Kind.FALLBACK, "*", {"pattern": "*", "models": ["team/fast", "groq/m"]}),
        ],
        PlainCipher(),
    )
    assert dict(snap.combos) == {
        "team/fast": Combo(
            name="team/fast",
            targets=(ComboTarget("ds/deepseek-chat"), ComboTarget("groq/m", weight=2.5, connection_id="conn_1")),
            strategy="p2c",
            config=ComboConfig(max_retries=1, first_byte_timeout_ms=5000),
        )
    }
    assert snap.aliases == (Alias("claude", "ds/deepseek-chat"), Alias("gpt-*", "team/fast"))
    assert snap.fallbacks == (FallbackChain("*", ("team/fast", "groq/m")),)


def test_the_record_id_names_a_combo_and_missing_fields_take_defaults() -> None:
    snap = build_snapshot([rec(Kind.COMBO, "c", {"name": "other", "models": ["ds/m"]})], PlainCipher())
    assert snap.combos["c"] == Combo(name="c", targets=(ComboTarget("ds/m"),))


@pytest.mark.parametrize(
    "bad",
    [
        rec(Kind.COMBO, "no-models", {"strategy": "priority"}),
        rec(Kind.COMBO, "models-not-a-list", {"models": "ds/m"}),
        rec(Kind.COMBO, "bad-strategy", {"models": ["ds/m"], "strategy": "fastest"}),
        rec(Kind.COMBO, "bad-weight", {"models": [{"model": "ds/m", "weight": "heavy"}]}),
        rec(Kind.COMBO, "bad-config", {"models": ["ds/m"], "config": {"maxRetries": 99}}),
        rec(Kind.COMBO, "config-not-an-object", {"models": ["ds/m"], "config": [1]}),
        rec(Kind.COMBO, "entry-not-a-model", {"models": [None]}),
        rec(Kind.COMBO, "-bad name", {"models": ["ds/m"]}),
        rec(Kind.ALIAS, "no-target", {"pattern": "no-target"}),
        rec(Kind.ALIAS, "wild-target", {"target": "ds/*"}),
        rec(Kind.ALIAS, "white space", {"target": "ds/m"}),
        rec(Kind.FALLBACK, "too-many", {"models": ["ds/m"] * 11}),
        rec(Kind.FALLBACK, "none", {"models": []}),
        rec(Kind.FALLBACK, "not-strings", {"models": [{"model": "ds/m"}]}),
    ],
    ids=lambda r: f"{r.kind}:{r.id}",
)
def test_a_record_that_does_not_parse_is_skipped_with_a_log_line(bad: Record, caplog: pytest.LogCaptureFixture) -> None:
    good = [
        rec(Kind.COMBO, "ok", {"models": ["ds/m"]}),
        rec(Kind.ALIAS, "ok", {"target": "ds/m"}),
        rec(Kind.FALLBACK, "ok", {"models": ["ds/m"]}),
    ]
    snap = build_snapshot([good[0], bad, *good[1:]], PlainCipher())
    assert list(snap.combos) == ["ok"]
    assert [a.pattern for a in snap.aliases] == ["ok"]
    assert [f.pattern for f in snap.fallbacks] == ["ok"]
    assert f"stored {bad.kind} {bad.id!r} is skipped" in caplog.text


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"rpm": 60, "minGapMs": 100, "maxConcurrent": 3}, RateLimit(rpm=60, min_gap_ms=100, max_concurrent=3)),
        ({"maxConcurrent": 1}, RateLimit(max_concurrent=1)),
        (None, RateLimit()),
        ("60/min", RateLimit()),
        ({"rpm": "60", "minGapMs": True, "maxConcurrent": -1}, RateLimit()),
        ({"rpm": 0, "minGapMs": 1.5}, RateLimit()),
    ],
)
def test_connection_rate_limit_is_read_tolerantly(stored: object, expected: RateLimit) -> None:
    data = {} if stored is None else {"rateLimit": stored}
    snap = build_snapshot([connection("conn_1", **data)], PlainCipher())
    assert snap.connections[0].rate_limit == expected
    assert snap.connections_by_provider["deepseek"][0].rate_limit == expected


def test_models_list_shows_combos_and_exact_aliases_but_not_wildcards() -> None:
    snap = build_snapshot(
        [
            connection("conn_1"),
            rec(Kind.COMBO, "team/fast", {"models": ["ds/deepseek-chat"]}),
            rec(Kind.ALIAS, "smart", {"target": "ds/deepseek-reasoner"}),
            rec(Kind.ALIAS, "gpt-*", {"target": "team/fast"}),
        ],
        PlainCipher(),
    )
    owners = dict(list_models(snap))
    assert owners["team/fast"] == "combo"
    assert owners["smart"] == "alias"
    assert "gpt-*" not in owners
    assert owners["ds/deepseek-chat"] == "deepseek"
    ids = [mid for mid, _ in list_models(snap)]
    assert ids == sorted(ids)
