"""Combos, model aliases and fallback chains as the core sees them (parsed from Config records).

A combo is a named, ordered list of targets that clients call like a model. A target is a `prefix/model`
(any id the resolver understands) or the name of another combo; nesting is at most `MAX_DEPTH` deep and
never circular (checked when a combo is written). The strategy decides the order targets are tried in;
`ComboConfig` bounds retries and concurrency.

An alias maps a model pattern (`*` any run of characters, `?` one character) to a target; an exact pattern
beats any wildcard, and among wildcards the most specific wins (`pattern_specificity`). A fallback chain
names the models tried, in order, once everything a request's own model resolves to has failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

MAX_DEPTH = 3  # a combo may reference combos that reference combos, no deeper

TARGET_STRATEGIES = (
    "priority",
    "fill-first",  # same as priority: list order
    "round-robin",
    "weighted",
    "random",
    "least-used",
    "cost-optimized",
    "p2c",  # power of two choices
)

ACCOUNT_STRATEGIES = ("fill-first", "round-robin", "p2c", "random", "least-used", "cost-optimized")

COMBO_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}$")


@dataclass(frozen=True, slots=True)
class ComboConfig:
    """Per-combo knobs. `max_retries`: extra tries of one target after a retryable failure (5xx, timeout)
    before moving on; `retry_delay_ms` between them; `concurrency_per_target`: at most this many requests
    in flight to one target across all instances (None: unlimited); `first_byte_timeout_ms`: a target
    whose stream sends nothing for this long is abandoned for the next one."""

    max_retries: int = 0
    retry_delay_ms: int = 0
    concurrency_per_target: int | None = None
    first_byte_timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ComboTarget:
    model: str  # `prefix/model`, an alias, or another combo's name
    weight: float = 1.0  # the weighted strategy's share
    connection_id: str | None = None  # pin one account of the target's provider


@dataclass(frozen=True, slots=True)
class Combo:
    name: str
    targets: tuple[ComboTarget, ...]
    strategy: str = "priority"
    config: ComboConfig = field(default_factory=ComboConfig)


@dataclass(frozen=True, slots=True)
class Alias:
    pattern: str
    target: str


@dataclass(frozen=True, slots=True)
class FallbackChain:
    pattern: str  # which requested models it applies to (`*` for all)
    models: tuple[str, ...]


def is_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def pattern_matches(pattern: str, model: str) -> bool:
    """Whole-string, case-sensitive glob match (`*` any run, `?` exactly one character)."""
    if not is_wildcard(pattern):
        return pattern == model
    return _compiled(pattern).fullmatch(model) is not None


def pattern_specificity(pattern: str) -> tuple[int, int, int]:
    """Sort key, larger = more specific: an exact pattern beats every wildcard; then more literal
    characters; then fewer `*` (a `?` pins a character, a `*` does not)."""
    stars = pattern.count("*")
    literal = len(pattern) - stars - pattern.count("?")
    return (0 if is_wildcard(pattern) else 1, literal, -stars)


def best_match(patterns: list[str] | tuple[str, ...], model: str) -> str | None:
    """The most specific pattern matching `model`, or None. Ties go to the lexically smallest pattern so
    every instance picks the same one."""
    found = [p for p in patterns if pattern_matches(p, model)]
    if not found:
        return None
    return max(found, key=lambda p: (pattern_specificity(p), _reverse(p)))


def _reverse(pattern: str) -> tuple[int, ...]:
    # max() with this picks the lexically smallest among equals
    return tuple(-ord(c) for c in pattern)
