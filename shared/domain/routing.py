"""Routing state as the core sees it: breakers, cooldowns, limits, and the policies that drive them.

The state lives in the State table (see `shared.ports.RoutingStore`) so that it holds across Lambda
instances; each instance keeps a short-lived copy (`RoutingView`) for the hot path and learns the global
state from every write it makes (writes return the item as stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from shared.domain.quota import AccountQuota, QuotaCount
from shared.providers.catalog import get_provider
from shared.providers.spec import AuthKind


class BreakerPhase(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One provider's circuit breaker. `failures`: consecutive failures while closed. `open_until`: when an
    open breaker may be probed (epoch seconds). `probe_owner`/`probe_until`: the one request probing a
    half-open breaker, and when its claim lapses (a prober that died must not block the provider)."""

    provider: str
    phase: BreakerPhase = BreakerPhase.CLOSED
    failures: int = 0
    version: int = 0
    opened_at: float = 0.0
    open_until: float = 0.0
    probe_owner: str | None = None
    probe_until: float = 0.0

    @property
    def admits(self) -> bool:
        """Whether ordinary traffic may go to the provider (a probe is decided separately)."""
        return self.phase is BreakerPhase.CLOSED

    def probe_due(self, now: float) -> bool:
        """Whether a request could claim the probe now (open and cooled off, or a lapsed probe)."""
        if self.phase is BreakerPhase.OPEN:
            return self.open_until <= now
        if self.phase is BreakerPhase.HALF_OPEN:
            return self.probe_until < now
        return False

    # The transitions, as the store makes them atomically (and an instance makes them alone when the
    # store cannot be reached).

    def after_failure(self, now: float, threshold: int, reset: float) -> BreakerState:
        """One more failure: a closed breaker opens when the count reaches `threshold`; an open or
        half-open one does not count (its probe decides)."""
        if self.phase is not BreakerPhase.CLOSED:
            return self
        if self.failures + 1 >= threshold:
            return replace(
                self, phase=BreakerPhase.OPEN, failures=0, opened_at=now, open_until=now + reset,
                version=self.version + 1,
            )  # fmt: skip
        return replace(self, failures=self.failures + 1)

    def with_probe(self, owner: str, now: float, seconds: float) -> BreakerState | None:
        """Half-open with `owner` probing, or None when no probe is due."""
        if not self.probe_due(now):
            return None
        return replace(
            self, phase=BreakerPhase.HALF_OPEN, probe_owner=owner, probe_until=now + seconds, version=self.version + 1
        )

    def after_probe(self, owner: str, ok: bool, now: float, reset: float) -> BreakerState:
        """A probe's result: any prober's success closes the breaker (the provider answered, even if that
        probe's claim lapsed and another took over); a failure reopens it only from the current owner."""
        if self.phase is not BreakerPhase.HALF_OPEN or (not ok and self.probe_owner != owner):
            return self
        if ok:
            return replace(
                self, phase=BreakerPhase.CLOSED, failures=0, probe_owner=None, probe_until=0.0,
                version=self.version + 1,
            )  # fmt: skip
        return replace(
            self, phase=BreakerPhase.OPEN, opened_at=now, open_until=now + reset, probe_owner=None, probe_until=0.0,
            version=self.version + 1,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Cooldown:
    """An account (model None) or one model of an account, out of rotation until `until` (epoch seconds).
    `level` is the exponential backoff step reached; it drops back to 0 after a success."""

    connection_id: str
    model: str | None
    until: float
    level: int
    reason: str = ""

    def active(self, now: float) -> bool:
        return self.until > now


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RoutingView:
    """Everything routing reads, loaded with one query: breakers by provider, cooldowns by (connection,
    model-or-None), use counters by name → member → count (least-used), quota windows, as of `loaded_at`."""

    breakers: Mapping[str, BreakerState] = field(default_factory=_empty)
    cooldowns: Mapping[tuple[str, str | None], Cooldown] = field(default_factory=_empty)
    uses: Mapping[str, Mapping[str, int]] = field(default_factory=_empty)
    # quota windows: live ones by connection, and what the gateway counted by (connection, window name)
    quotas: Mapping[str, AccountQuota] = field(default_factory=_empty)
    quota_counts: Mapping[tuple[str, str], QuotaCount] = field(default_factory=_empty)
    loaded_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of a rate limiter: admitted (holding `slot_id` when concurrency is limited), or refused
    until `retry_after` seconds from now, with which limit refused (`rpm`, `gap`, `concurrency`)."""

    admitted: bool
    retry_after: float = 0.0
    limit: str | None = None
    slot_id: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-account limits, all enforced globally; None means not limited."""

    rpm: int | None = None
    min_gap_ms: int | None = None
    max_concurrent: int | None = None

    @property
    def configured(self) -> bool:
        return self.rpm is not None or self.min_gap_ms is not None or self.max_concurrent is not None


@dataclass(frozen=True, slots=True)
class StoredReply:
    """A complete answer kept for replay (idempotency) or reuse (response cache)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Claim:
    """An idempotency claim: `owned` when this request is the first within the window; otherwise
    `reply` holds the first request's answer once it finished (None while it is still running)."""

    owned: bool
    reply: StoredReply | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """How hard to back off, per credential profile. Cooldown = `cooldown_base` × 2^level, at most
    `max_steps` doublings; the breaker opens after `breaker_threshold` consecutive failures and is probed
    again after `breaker_reset` seconds."""

    cooldown_base: float
    max_steps: int
    breaker_threshold: int
    breaker_reset: float

    def cooldown(self, level: int) -> float:
        return float(self.cooldown_base * (2 ** min(max(level, 0), self.max_steps)))


# Subscriptions (OAuth) recover slower and their limits are windows, so they back off longer and trip later.
DEFAULT_POLICIES: Mapping[str, Policy] = MappingProxyType(
    {
        "apikey": Policy(cooldown_base=3.0, max_steps=5, breaker_threshold=5, breaker_reset=30.0),
        "oauth": Policy(cooldown_base=5.0, max_steps=8, breaker_threshold=8, breaker_reset=60.0),
    }
)


def profile_of(provider: str) -> str:
    """The credential profile whose policy a provider (or one of its breaker keys) follows: subscriptions
    linked by OAuth back off like subscriptions, everything else like API keys."""
    spec = get_provider(provider.partition("@")[0])
    return "oauth" if spec is not None and spec.auth is AuthKind.OAUTH else "apikey"


def policy_of(provider: str, policies: Mapping[str, Policy]) -> Policy:
    profile = profile_of(provider)
    return policies.get(profile) or DEFAULT_POLICIES[profile]


def breaker_key(provider: str, base_url: str | None) -> str:
    """The breaker an account answers to: its provider's, unless it has its own base URL (another endpoint
    fails on its own): `<provider>@<base URL>`."""
    return f"{provider}@{base_url.rstrip('/')}" if base_url else provider
