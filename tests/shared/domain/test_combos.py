"""Alias patterns: glob matching and which pattern is the most specific."""

from __future__ import annotations

import pytest

from shared.domain.combos import best_match, pattern_matches


@pytest.mark.parametrize(
    ("pattern", "model", "matches"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-*", "gpt-4o-mini", True),
        ("gpt-?o", "gpt-4o", True),
        ("gpt-?o", "gpt-40o", False),
        ("*", "anything/with/slashes", True),
        ("claude-*-4", "claude-sonnet-4", True),
        ("claude-*-4", "claude-sonnet-4-5", False),
        ("a.b", "axb", False),  # dots are literal, not regex
        ("GPT-*", "gpt-4o", False),  # case-sensitive, like model ids
    ],
)
def test_pattern_matching(pattern: str, model: str, matches: bool) -> None:
    assert pattern_matches(pattern, model) is matches


def test_exact_pattern_beats_every_wildcard() -> None:
    assert best_match(["*", "gpt-*", "gpt-4o"], "gpt-4o") == "gpt-4o"


def test_more_literal_characters_win_among_wildcards() -> None:
    assert best_match(["*", "gpt-*", "gpt-4*"], "gpt-4o-mini") == "gpt-4*"


def test_question_mark_is_more_specific_than_star() -> None:
    assert best_match(["gpt-4*", "gpt-4?"], "gpt-4o") == "gpt-4?"


def test_no_match_is_none() -> None:
    assert best_match(["claude-*"], "gpt-4o") is None


def test_ties_resolve_the_same_way_whatever_the_order() -> None:
    a = best_match(["a*c", "ab*"], "abc")
    b = best_match(["ab*", "a*c"], "abc")
    assert a == b
