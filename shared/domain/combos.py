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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shared.domain.text import has_control_characters
from shared.errors import InvalidRequest

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


# ----- reading combos, aliases and fallback chains from their JSON shape -----------------------------------
#
# The admin API and the Config table use the same shape, so one parser checks what an owner sends and what a
# snapshot loads:
#   combo     {name, models: ["prefix/model" | "comboName" | {model, weight?, connectionId?}], strategy, config?}
#   alias     {pattern, target}
#   fallback  {pattern, models: [...]}
# These check shapes and bounds only; whether a target exists is the admin service's question.

MAX_TARGETS = 50
MAX_FALLBACK_MODELS = 10
MAX_TARGET_CHARS = 512
MAX_PATTERN_CHARS = 256
MAX_WEIGHT = 1000

# JSON name → (ComboConfig field, lowest, highest)
COMBO_CONFIG_FIELDS: dict[str, tuple[str, int, int]] = {
    "maxRetries": ("max_retries", 0, 5),
    "retryDelayMs": ("retry_delay_ms", 0, 60_000),
    "concurrencyPerTarget": ("concurrency_per_target", 1, 10_000),
    "firstByteTimeoutMs": ("first_byte_timeout_ms", 1_000, 600_000),
}
_TARGET_FIELDS = ("model", "weight", "connectionId")


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_target(value: object, param: str) -> str:
    """One model a combo, alias or chain points at: 1–512 characters, no control characters, no wildcard."""
    if not isinstance(value, str):
        raise _invalid(f"`{param}` must be a string.", param)
    target = value.strip()
    if not target or len(target) > MAX_TARGET_CHARS or has_control_characters(target):
        raise _invalid(f"`{param}` must be 1 to {MAX_TARGET_CHARS} characters without control characters.", param)
    if is_wildcard(target):
        raise _invalid(f"`{param}` names one model, so it cannot contain `*` or `?` (got `{target}`).", param)
    return target


def check_pattern(value: object, param: str = "pattern") -> str:
    """A model pattern: 1–256 characters, `*` and `?` allowed, no whitespace or control characters."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_PATTERN_CHARS
        or any(ch.isspace() for ch in value)
        or has_control_characters(value)
    ):
        raise _invalid(
            f"`{param}` must be 1 to {MAX_PATTERN_CHARS} characters without whitespace or control characters "
            "(`*` matches any run of characters, `?` one).",
            param,
        )
    return value


def check_combo_name(value: object) -> str:
    if not isinstance(value, str) or not COMBO_NAME_RE.match(value):
        raise _invalid(
            "`name` must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-' or '/', starting with a letter "
            "or digit.",
            "name",
        )
    return value


def _target(entry: object, param: str) -> ComboTarget:
    if isinstance(entry, str):
        return ComboTarget(model=check_target(entry, param))
    if not isinstance(entry, Mapping):
        raise _invalid(f"`{param}` must be a model id or an object `{{model, weight?, connectionId?}}`.", param)
    unknown = sorted(set(entry) - set(_TARGET_FIELDS))
    if unknown:
        raise _invalid(f"`{param}` has unknown field `{unknown[0]}` (allowed: model, weight, connectionId).", param)
    if "model" not in entry:
        raise _invalid(f"`{param}.model` is required.", f"{param}.model")
    weight = entry.get("weight", 1.0)
    if not (is_int(weight) or isinstance(weight, float)) or not 0 < weight <= MAX_WEIGHT:
        raise _invalid(f"`{param}.weight` must be a number above 0 and at most {MAX_WEIGHT}.", f"{param}.weight")
    pinned = entry.get("connectionId")
    if pinned is not None and (not isinstance(pinned, str) or not 1 <= len(pinned) <= 100):
        raise _invalid(f"`{param}.connectionId` must be a connection id.", f"{param}.connectionId")
    return ComboTarget(model=check_target(entry["model"], f"{param}.model"), weight=weight, connection_id=pinned)


def _combo_config(value: object) -> ComboConfig:
    if value is None:
        return ComboConfig()
    if not isinstance(value, Mapping):
        raise _invalid("`config` must be an object.", "config")
    unknown = sorted(set(value) - set(COMBO_CONFIG_FIELDS))
    if unknown:
        allowed = ", ".join(COMBO_CONFIG_FIELDS)
        raise _invalid(f"`config` has unknown field `{unknown[0]}` (allowed: {allowed}).", f"config.{unknown[0]}")
    fields: dict[str, int] = {}
    for name, (attr, low, high) in COMBO_CONFIG_FIELDS.items():
        raw = value.get(name)
        if raw is None:
            continue
        if not is_int(raw) or not low <= raw <= high:
            raise _invalid(f"`config.{name}` must be an integer from {low} to {high}.", f"config.{name}")
        fields[attr] = raw
    return ComboConfig(**fields)


def parse_combo(name: object, data: Mapping[str, Any]) -> Combo:
    """A combo from its JSON shape (`name` is the record id; `data["name"]` is not read)."""
    models = data.get("models")
    if not isinstance(models, list | tuple) or not 1 <= len(models) <= MAX_TARGETS:
        raise _invalid(f"`models` must list 1 to {MAX_TARGETS} targets.", "models")
    strategy = data.get("strategy") or "priority"
    if strategy not in TARGET_STRATEGIES:
        raise _invalid(f"`strategy` must be one of {', '.join(TARGET_STRATEGIES)}.", "strategy")
    return Combo(
        name=check_combo_name(name),
        targets=tuple(_target(entry, f"models[{i}]") for i, entry in enumerate(models)),
        strategy=strategy,
        config=_combo_config(data.get("config")),
    )


def combo_data(combo: Combo) -> dict[str, Any]:
    """The JSON shape of a combo, as stored and shown: a bare target stays a string."""
    models: list[str | dict[str, Any]] = []
    for t in combo.targets:
        if t.weight == 1 and t.connection_id is None:
            models.append(t.model)
            continue
        entry: dict[str, Any] = {"model": t.model}
        if t.weight != 1:
            entry["weight"] = t.weight
        if t.connection_id is not None:
            entry["connectionId"] = t.connection_id
        models.append(entry)
    config = {
        name: getattr(combo.config, attr)
        for name, (attr, _, _) in COMBO_CONFIG_FIELDS.items()
        if getattr(combo.config, attr) is not None
    }
    return {"name": combo.name, "models": models, "strategy": combo.strategy, "config": config}


def parse_alias(pattern: object, data: Mapping[str, Any]) -> Alias:
    return Alias(pattern=check_pattern(pattern), target=check_target(data.get("target"), "target"))


def parse_fallback(pattern: object, data: Mapping[str, Any]) -> FallbackChain:
    models = data.get("models")
    if not isinstance(models, list | tuple) or not 1 <= len(models) <= MAX_FALLBACK_MODELS:
        raise _invalid(f"`models` must list 1 to {MAX_FALLBACK_MODELS} models.", "models")
    return FallbackChain(
        pattern=check_pattern(pattern),
        models=tuple(check_target(m, f"models[{i}]") for i, m in enumerate(models)),
    )


# ----- the graph of combos referencing combos ---------------------------------------------------------------
# `refs` maps a combo's name to the names of the combos it references (directly, or through an exact alias).


def find_cycle(refs: Mapping[str, Collection[str]], start: str) -> tuple[str, ...] | None:
    """A cycle reachable from `start`, as the path that closes it (`a, b, a`), or None."""
    done: set[str] = set()

    def walk(name: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        for child in refs.get(name, ()):
            if child in path:
                return (*path[path.index(child) :], child)
            if child not in done:
                found = walk(child, (*path, child))
                if found:
                    return found
        done.add(name)
        return None

    return walk(start, (start,))


def deepest_chain(refs: Mapping[str, Collection[str]], start: str, limit: int = MAX_DEPTH + 1) -> tuple[str, ...]:
    """The longest chain of references from `start` (itself first), cut at `limit` names: enough to tell
    whether a combo nests deeper than `MAX_DEPTH` (its depth is the chain's length). Edges that would
    close a cycle are not followed (`find_cycle` reports those)."""
    memo: dict[tuple[str, int], tuple[str, ...]] = {}

    def walk(name: str, budget: int, path: frozenset[str]) -> tuple[str, ...]:
        key = (name, budget)
        if key not in memo:
            best: tuple[str, ...] = ()
            if budget > 1:
                for child in refs.get(name, ()):
                    if child not in path:
                        chain = walk(child, budget - 1, path | {child})
                        best = chain if len(chain) > len(best) else best
            memo[key] = (name, *best)
        return memo[key]

    return walk(start, limit, frozenset({start}))


def referrers(refs: Mapping[str, Collection[str]], name: str) -> set[str]:
    """Every combo that reaches `name` through one or more references."""
    found: set[str] = set()
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for combo, children in refs.items():
            if current in children and combo not in found:
                found.add(combo)
                frontier.append(combo)
    found.discard(name)
    return found
