"""Token usage by kind, as every later part (accounting, cost, quotas) counts it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """`input` includes cached and cache-creation tokens; `output` includes reasoning tokens."""

    input: int = 0
    output: int = 0
    cached: int = 0
    cache_creation: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output
