"""Token usage by kind, as every later part (accounting, cost, quotas) counts it."""

from __future__ import annotations

from collections.abc import Iterable
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


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One request as accounting records it, once, when it ended (the answer sent, or the request failed).

    `at`: epoch seconds when it ended (its hour names the partition it is stored in). `model`: the public
    id of the model that answered (`openai/gpt-4o`); `requested`: what the client asked for (a combo, an
    alias). `cost`: USD, computed once from the pricing table (`shared.domain.pricing.cost`). `estimated`:
    the upstream reported no usage, so the counts are our estimate. `ttft_ms`: time to the first byte of
    the answer (the whole answer for JSON). `status`: what the client got (a stream that failed after its
    first byte is 200 with `error` set).
    """

    request_id: str
    at: float
    provider: str
    model: str
    requested: str
    connection_id: str | None
    key_id: str | None
    combo: str | None
    client: str
    stream: bool
    status: int
    usage: Usage
    estimated: bool
    cost: float
    latency_ms: float
    ttft_ms: float | None
    attempts: int = 1
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status >= 400 or self.error is not None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Summed events of one group (provider, model, account, key) in one period: what rollups store and
    analytics add up. Latencies are sums, so averages stay exact when groups are merged."""

    provider: str = ""
    model: str = ""
    connection_id: str = ""
    key_id: str = ""
    requests: int = 0
    errors: int = 0
    input: int = 0
    output: int = 0
    cached: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    cost: float = 0.0
    estimated: int = 0
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    ttft_count: int = 0

    @property
    def group(self) -> tuple[str, str, str, str]:
        return (self.provider, self.model, self.connection_id, self.key_id)

    def plus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            self.provider, self.model, self.connection_id, self.key_id,
            self.requests + other.requests, self.errors + other.errors, self.input + other.input,
            self.output + other.output, self.cached + other.cached, self.cache_creation + other.cache_creation,
            self.reasoning + other.reasoning, self.cost + other.cost, self.estimated + other.estimated,
            self.latency_ms + other.latency_ms, self.ttft_ms + other.ttft_ms, self.ttft_count + other.ttft_count,
        )  # fmt: skip


def totals_of(event: UsageEvent) -> UsageTotals:
    u = event.usage
    return UsageTotals(
        event.provider, event.model, event.connection_id or "", event.key_id or "",
        1, 1 if event.failed else 0, u.input, u.output, u.cached, u.cache_creation, u.reasoning, event.cost,
        1 if event.estimated else 0, event.latency_ms, event.ttft_ms or 0.0, 1 if event.ttft_ms is not None else 0,
    )  # fmt: skip


def summarise(events: Iterable[UsageEvent]) -> list[UsageTotals]:
    """Events summed per group (provider, model, account, key), in a stable order."""
    return merge(totals_of(event) for event in events)


def merge(totals: Iterable[UsageTotals]) -> list[UsageTotals]:
    """Groups of several periods summed per group (a day from its hours, a month from its days)."""
    groups: dict[tuple[str, str, str, str], UsageTotals] = {}
    for t in totals:
        groups[t.group] = groups[t.group].plus(t) if t.group in groups else t
    return [groups[g] for g in sorted(groups)]
