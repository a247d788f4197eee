"""Quota windows of one account, as routing and the admin API see them.

Two sources fill them:
- **live** windows a subscription provider publishes: Claude's `anthropic-ratelimit-unified-*` headers and
  its OAuth usage endpoint, Codex's `x-codex-primary-*`/`x-codex-secondary-*` headers and `wham/usage`,
  Copilot's quota snapshots (`shared.domain.live_quota` parses them; the scheduled quota poll and every
  answer keep them current);
- **counted** windows the owner configures on a connection (`quotas` on the connection: rolling 5 h, daily
  at a local time, weekly, monthly, with token and/or request limits), counted by the gateway itself.

An account with a window that is `limited` and not yet reset is skipped before it is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.windows import WindowKind, WindowSpec, parse_window, period

NEVER_BLOCKS = "-"
_ACCOUNT_WIDE = frozenset(
    {"5h", "7d", "unified", "primary", "secondary", "chat", "rolling", "daily", "weekly", "monthly"}
)
_INFORMATIONAL = frozenset({"premium_interactions", "completions"})


def window_scope(name: str) -> str | None:
    """Which requests a window limits: None = every request of the account; a model token (`opus` for
    Claude's `7d_opus`) = models whose id contains it; NEVER_BLOCKS = none (Copilot's premium requests
    and code completions: chat keeps working without them). Unknown names count as account-wide."""
    if name in _ACCOUNT_WIDE:
        return None
    if name in _INFORMATIONAL:
        return NEVER_BLOCKS
    if name.startswith("7d_"):
        return name[3:].lower() or None
    return None


@dataclass(frozen=True, slots=True)
class LiveWindow:
    """One window of an account's quota.

    `name`: "5h", "7d", "7d_opus", "daily", "weekly", "monthly", "premium_interactions", ...
    `source`: "headers" (read from an answer), "poll" (the provider's usage endpoint), "counter" (ours).
    `used_percent`: 0..100 when the provider says it; `used`/`limit`/`remaining`: absolute counts where
    known (requests, tokens or premium interactions, named by `unit`). `resets_at`: epoch seconds.
    `limited`: this window refuses requests until `resets_at` (the provider said so, or the count reached
    its limit).
    """

    name: str
    source: str
    used_percent: float | None = None
    used: float | None = None
    limit: float | None = None
    remaining: float | None = None
    unit: str | None = None
    resets_at: float | None = None
    limited: bool = False

    def blocks(self, now: float, skip_at_percent: float = 100.0, model: str | None = None) -> bool:
        """Whether this window keeps the account out at `now` (for `model`, when given): limited (or used
        up to `skip_at_percent`) and not yet reset. A limited window without a reset time blocks until a
        newer reading replaces it. A window scoped to some models (`7d_opus`) keeps only those out; one
        that never stops a request (Copilot's premium requests: Copilot falls back to its base models
        itself) keeps nothing out."""
        scope = window_scope(self.name)
        if scope == NEVER_BLOCKS:
            return False
        if scope is not None and model is not None and scope not in model.lower():
            return False
        if self.resets_at is not None and self.resets_at <= now:
            return False
        if self.limited:
            return True
        return self.used_percent is not None and self.used_percent >= skip_at_percent


@dataclass(frozen=True, slots=True)
class AccountQuota:
    """The latest windows of one account (connection), and when they were read (epoch seconds)."""

    connection_id: str
    windows: tuple[LiveWindow, ...] = ()
    updated_at: float = 0.0

    def blocking(self, now: float, skip_at_percent: float = 100.0, model: str | None = None) -> LiveWindow | None:
        """The window keeping the account out at `now` (for `model`: the one resetting last), or None."""
        blocked = [w for w in self.windows if w.blocks(now, skip_at_percent, model)]
        if not blocked:
            return None
        return max(blocked, key=lambda w: w.resets_at if w.resets_at is not None else float("inf"))


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """A window the owner configured on a connection: at most `tokens` and/or `requests` per window."""

    spec: WindowSpec
    tokens: int | None = None
    requests: int | None = None

    @property
    def name(self) -> str:
        return self.spec.kind.value

    def to_data(self) -> dict[str, Any]:
        data = self.spec.to_data()
        if self.tokens is not None:
            data["tokens"] = self.tokens
        if self.requests is not None:
            data["requests"] = self.requests
        return data


def parse_quota_rules(value: object) -> tuple[QuotaRule, ...]:
    """A connection's `quotas` list; ValueError naming the entry and field when one is unusable."""
    if not isinstance(value, list):
        raise ValueError("quotas must be a list of windows")
    rules: list[QuotaRule] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise ValueError(f"quotas[{index}] must be an object")
        try:
            spec = parse_window(entry)
        except ValueError as exc:
            raise ValueError(f"quotas[{index}]: {exc}") from None
        limits: dict[str, int] = {}
        for field in ("tokens", "requests"):
            raw = entry.get(field)
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise ValueError(f"quotas[{index}].{field} must be a positive whole number, got {raw!r}")
            limits[field] = raw
        if not limits:
            raise ValueError(f"quotas[{index}] needs a limit: tokens and/or requests")
        if any(r.name == spec.kind.value for r in rules):
            raise ValueError(f"quotas[{index}]: only one {spec.kind.value} window per connection")
        rules.append(QuotaRule(spec, limits.get("tokens"), limits.get("requests")))
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class QuotaCount:
    """What the gateway counted in one configured window of one account: since `start` (epoch seconds)."""

    start: float
    tokens: int
    requests: int


def counted_window(rule: QuotaRule, count: QuotaCount | None, now: float) -> LiveWindow:
    """A configured window as a `LiveWindow` at `now`: the count only if it belongs to the current period
    (a count from an earlier period is a window that has reset)."""
    first_use = count.start if count is not None else None
    current = period(rule.spec, now, first_use)
    live = (
        count is not None
        and count.start >= current.start
        and (rule.spec.kind is not WindowKind.ROLLING or count.start + rule.spec.hours * 3600 > now)
    )
    tokens = count.tokens if live and count is not None else 0
    requests = count.requests if live and count is not None else 0
    shares: list[tuple[float, float, str]] = []
    if rule.tokens is not None:
        shares.append((tokens, rule.tokens, "tokens"))
    if rule.requests is not None:
        shares.append((requests, rule.requests, "requests"))
    used, limit, unit = max(shares, key=lambda s: s[0] / s[1])  # the window's tightest limit
    # a rolling window that has not started has nothing to reset; a calendar one resets regardless
    resets_at = current.end if live or rule.spec.kind is not WindowKind.ROLLING else None
    return LiveWindow(
        name=rule.name, source="counter", used_percent=round(100.0 * used / limit, 2), used=used, limit=limit,
        remaining=max(limit - used, 0), unit=unit, resets_at=resets_at, limited=live and used >= limit,
    )  # fmt: skip
