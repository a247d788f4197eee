"""Live quota windows read from what subscription providers publish: answer headers and usage documents.

Pure parsing (no I/O). Every reader is tolerant: a field that is missing, null or of an odd type is skipped,
never raised on, since these are undocumented endpoints whose shapes drift.

Headers, read on every upstream answer (`windows_from_headers`, source "headers"):
- Claude subscriptions (OAuth): `anthropic-ratelimit-unified-<window>-utilization` (a fraction, 0..1),
  `-<window>-reset` (epoch seconds) and `-<window>-status` (`allowed`, `allowed_warning`, `rejected`) for the
  windows `5h`, `7d` and model-scoped ones (`7d_oi`, `7d-sonnet`...); `-status`, `-reset`,
  `-representative-claim`, `-fallback-percentage` and `-overage-*` describe the account, not a window.
  Shapes as read by CLIProxyAPI `internal/runtime/executor/helps/claude_ratelimit.go` and by projects that
  recorded real Max-plan answers ("utilization: 0.05 fraction 0..1").
- Codex (ChatGPT login): `x-codex-{primary,secondary}-used-percent` (0..100), `-window-minutes`,
  `-reset-at` (epoch seconds) and/or `-reset-after-seconds` (openai/codex
  `codex-rs/codex-api/src/rate_limits.rs`). Which slot is the 5-hour window is not fixed (a Pro plan was
  seen reporting the weekly window as primary), so windows are named from their length.

Documents, read by the scheduled quota poll (source "poll"):
- Claude `GET /api/oauth/usage`: `five_hour`, `seven_day`, `seven_day_<model>`... `{utilization, resets_at}`,
  utilization in percent (0..100, OmniRoute#299), `resets_at` ISO 8601; null for windows the plan lacks.
- Codex `GET /backend-api/wham/usage`: `rate_limit{allowed, limit_reached, primary_window,
  secondary_window}`, each `{used_percent, limit_window_seconds, reset_after_seconds, reset_at}`
  (codex-rs `RateLimitStatusDetails` / `RateLimitWindowSnapshot`).
- Copilot `GET api.github.com/copilot_internal/user`: paid plans `quota_snapshots{kind: {entitlement,
  remaining, percent_remaining, unlimited, overage_permitted}}` + `quota_reset_date`; the free plan
  `monthly_quotas{kind: limit}` + `limited_user_quotas{kind: remaining}` + `limited_user_reset_date`.

Windows that keep only one model out (`7d_opus`, `7d_sonnet`, `7d_oi`...) keep their model in the name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from shared.domain.quota import LiveWindow

_CLAUDE_PREFIX = "anthropic-ratelimit-unified-"
_CODEX_PREFIX = "x-codex-"
_CLAUDE_FIELDS = ("-utilization", "-reset", "-status")
# `overage-*` is pay-as-you-go extra usage and `fallback-*` the fallback share: account-wide, not windows
# (the same exclusions as CLIProxyAPI's overage-only rejection check).
_CLAUDE_NOT_WINDOWS = frozenset({"overage", "fallback"})
_CODEX_SLOTS = ("primary", "secondary")
_NAME_ORDER = {"5h": 0, "7d": 1}
# Known window lengths in minutes. Lengths within 2% snap to them: a recorded `wham/usage` answer gave
# `limit_window_seconds` 17940 and 604740 for the 5-hour and weekly windows.
_KNOWN_WINDOWS = ((300, "5h"), (10080, "7d"))
_SNAP = 0.02
_MS_THRESHOLD = 1e12  # a timestamp this large is in milliseconds
_COPILOT_KINDS = ("premium_interactions", "chat", "completions")


# ----- small tolerant readers ----------------------------------------------------------------------------


def _number(value: object) -> float | None:
    """A finite number from a JSON number or a numeric string; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _instant(value: object) -> float | None:
    """Epoch seconds from epoch seconds (or milliseconds), an ISO 8601 instant, or a date (its UTC start)."""
    number = _number(value)
    if number is None and isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # a bare date or local-less time is UTC
        return parsed.timestamp()
    if number is None or number <= 0:
        return None
    return number / 1000 if number > _MS_THRESHOLD else number


def _percent(value: float) -> float:
    """0..100, rounded to hundredths (0.07 * 100 is 7.000000000000001 in floating point)."""
    return round(min(max(value, 0.0), 100.0), 2)


def _mapping(value: object) -> Mapping[str, object] | None:
    return value if isinstance(value, Mapping) else None


def window_name(minutes: float | None, fallback: str) -> str:
    """ "5h" and "7d" for the known lengths (within 2%), else "<minutes>m"; `fallback` when the length is
    unknown."""
    if minutes is None or minutes <= 0:
        return fallback
    for known, name in _KNOWN_WINDOWS:
        if abs(minutes - known) <= known * _SNAP:
            return name
    return f"{round(minutes)}m"


def _ordered(windows: list[LiveWindow]) -> tuple[LiveWindow, ...]:
    return tuple(sorted(windows, key=lambda w: (_NAME_ORDER.get(w.name, 2), w.name)))


# ----- headers --------------------------------------------------------------------------------------------


def windows_from_headers(headers: Mapping[str, str], now: float) -> tuple[LiveWindow, ...]:
    """The quota windows an upstream answer's headers describe; () for an answer without any.

    Runs on every answer, so the common case (an API-key provider: no such header) is one pass over the
    header names comparing two prefixes.
    """
    claude: dict[str, str] = {}
    codex: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(_CLAUDE_PREFIX):
            claude[lower[len(_CLAUDE_PREFIX) :]] = value
        elif lower.startswith(_CODEX_PREFIX):
            codex[lower[len(_CODEX_PREFIX) :]] = value
    if not claude and not codex:
        return ()
    windows = _claude_header_windows(claude) if claude else []
    if codex:
        windows += _codex_header_windows(codex, now)
    return _ordered(windows)


def _claude_header_windows(raw: Mapping[str, str]) -> list[LiveWindow]:
    names: dict[str, None] = {}
    for key in raw:
        for suffix in _CLAUDE_FIELDS:
            if key.endswith(suffix):
                name = key[: -len(suffix)]
                if name and name not in _CLAUDE_NOT_WINDOWS:
                    names[name] = None
                break
    windows: list[LiveWindow] = []
    for name in names:
        utilization = _number(raw.get(f"{name}-utilization"))
        status = raw.get(f"{name}-status", "").strip().lower()
        if utilization is None and not status:
            continue
        used = _percent(utilization * 100) if utilization is not None else None
        windows.append(
            LiveWindow(
                name=name.replace("-", "_"),  # `7d-sonnet` as the usage document's `seven_day_sonnet`: 7d_sonnet
                source="headers",
                used_percent=used,
                resets_at=_instant(raw.get(f"{name}-reset")),
                limited=status == "rejected" or (used is not None and used >= 100),
            )
        )
    # A rejection with no per-window headers at all: the whole account is out until the unified reset. When
    # the 5h/7d headers are there and none is rejected, the rejection is about overage or one model
    # (CLIProxyAPI `isOverageOrFableOnlyRejection`) and must not keep the account out.
    rejected = raw.get("status", "").strip().lower() == "rejected"
    shared_read = any(w.name in ("5h", "7d") for w in windows)
    if rejected and not shared_read and not any(w.limited for w in windows):
        windows.append(LiveWindow("unified", "headers", resets_at=_instant(raw.get("reset")), limited=True))
    return windows


def _codex_header_windows(raw: Mapping[str, str], now: float) -> list[LiveWindow]:
    windows: list[LiveWindow] = []
    for slot in _CODEX_SLOTS:
        used = _number(raw.get(f"{slot}-used-percent"))
        if used is None:
            continue
        minutes = _number(raw.get(f"{slot}-window-minutes"))
        # The absolute reset is the server's own clock; the relative one is only as good as ours.
        resets_at = _instant(raw.get(f"{slot}-reset-at"))
        if resets_at is None:
            after = _number(raw.get(f"{slot}-reset-after-seconds"))
            resets_at = now + after if after is not None and after >= 0 else None
        # codex-rs treats an all-zero window (0 %, no length, no reset) as "no data".
        if used == 0 and not minutes and resets_at is None:
            continue
        percent = _percent(used)
        windows.append(
            LiveWindow(
                name=window_name(minutes, slot),
                source="headers",
                used_percent=percent,
                resets_at=resets_at,
                limited=percent >= 100,
            )
        )
    return windows


# ----- usage documents ------------------------------------------------------------------------------------


def _claude_document_name(key: str) -> str:
    if key == "five_hour":
        return "5h"
    if key == "seven_day":
        return "7d"
    if key.startswith("seven_day_"):
        return "7d_" + key.removeprefix("seven_day_")
    return key  # codenames such as `iguana_necktie` stay as they are


def windows_from_claude_usage(doc: object, now: float) -> tuple[LiveWindow, ...]:
    """Windows of Claude's `/api/oauth/usage` document. `extra_usage` (a monthly pay-as-you-go pool, in
    cents) and the `limits` list (the same windows again) are not windows of the subscription."""
    root = _mapping(doc)
    if root is None:
        return ()
    windows: list[LiveWindow] = []
    for key, value in root.items():
        if key in ("extra_usage", "limits"):
            continue
        body = _mapping(value)
        utilization = _number(body.get("utilization")) if body is not None else None
        if body is None or utilization is None:
            continue  # null: a window this plan does not have
        used = _percent(utilization)
        windows.append(
            LiveWindow(
                name=_claude_document_name(str(key)),
                source="poll",
                used_percent=used,
                resets_at=_instant(body.get("resets_at")),
                limited=used >= 100,
            )
        )
    return _ordered(windows)


def _codex_window(value: object, slot: str, now: float) -> LiveWindow | None:
    body = _mapping(value)
    used = _number(body.get("used_percent")) if body is not None else None
    if body is None or used is None:
        return None
    seconds = _number(body.get("limit_window_seconds"))
    resets_at = _instant(body.get("reset_at"))
    if resets_at is None:
        after = _number(body.get("reset_after_seconds"))
        resets_at = now + after if after is not None and after >= 0 else None
    percent = _percent(used)
    return LiveWindow(
        name=window_name(seconds / 60 if seconds is not None else None, slot),
        source="poll",
        used_percent=percent,
        resets_at=resets_at,
        limited=percent >= 100,
    )


def windows_from_codex_usage(doc: object, now: float) -> tuple[LiveWindow, ...]:
    """Windows of Codex's `wham/usage` document (`rate_limit` only: `code_review_rate_limit` and the
    model-specific `additional_rate_limits` do not keep the account's inference out)."""
    root = _mapping(doc)
    rate_limit = _mapping(root.get("rate_limit")) if root is not None else None
    if rate_limit is None:
        return ()
    windows = [w for slot in _CODEX_SLOTS if (w := _codex_window(rate_limit.get(f"{slot}_window"), slot, now))]
    reached = rate_limit.get("limit_reached") is True or rate_limit.get("allowed") is False
    if reached and windows and not any(w.limited for w in windows):
        # The service says the limit is reached while every used_percent (an integer) still reads below
        # 100: the most-used window is the one that ran out.
        fullest = max(windows, key=lambda w: w.used_percent or 0.0)
        windows = [replace(w, limited=True) if w is fullest else w for w in windows]
    return _ordered(windows)


def _copilot_snapshot(kind: str, value: object, resets_at: float | None) -> LiveWindow | None:
    body = _mapping(value)
    if body is None:
        return None
    if body.get("unlimited") is True:
        return LiveWindow(name=kind, source="poll", unit="requests", resets_at=resets_at)
    entitlement = _number(body.get("entitlement"))
    remaining = _number(body.get("remaining"))
    if remaining is None:
        remaining = _number(body.get("quota_remaining"))
    percent_remaining = _number(body.get("percent_remaining"))
    if entitlement is None and remaining is None and percent_remaining is None:
        return None
    used = entitlement - remaining if entitlement is not None and remaining is not None else None
    if entitlement is not None and entitlement > 0 and used is not None:
        used_percent: float | None = _percent(used / entitlement * 100)
    elif percent_remaining is not None:
        used_percent = _percent(100 - percent_remaining)
    else:
        used_percent = None
    # An entitlement of 0 is usage-based billing (no monthly cap), not an exhausted quota.
    capped = entitlement is None or entitlement > 0
    limited = capped and remaining is not None and remaining <= 0 and body.get("overage_permitted") is not True
    return LiveWindow(
        name=kind,
        source="poll",
        used_percent=used_percent,
        used=used,
        limit=entitlement,
        remaining=remaining,
        unit="requests",
        resets_at=resets_at,
        limited=limited,
    )


def windows_from_copilot_user(doc: object, now: float) -> tuple[LiveWindow, ...]:
    """Windows of GitHub's `copilot_internal/user` document: one per quota kind, monthly."""
    root = _mapping(doc)
    if root is None:
        return ()
    windows: dict[str, LiveWindow] = {}
    snapshots = _mapping(root.get("quota_snapshots"))
    if snapshots is not None:
        resets_at = _instant(root.get("quota_reset_date_utc")) or _instant(root.get("quota_reset_date"))
        kinds = [*_COPILOT_KINDS, *sorted(str(k) for k in snapshots if k not in _COPILOT_KINDS)]
        for kind in kinds:
            window = _copilot_snapshot(kind, snapshots.get(kind), resets_at)
            if window is not None:
                windows[kind] = window
    monthly = _mapping(root.get("monthly_quotas"))
    left = _mapping(root.get("limited_user_quotas"))
    if monthly is not None and left is not None:
        # The free plan: `limited_user_quotas` counts what is left of `monthly_quotas` (a fresh account has
        # equal values). OmniRoute's usage.ts reads it as used instead; CodexBar and openusage as remaining.
        free_reset = _instant(root.get("limited_user_reset_date"))
        for kind in (*_COPILOT_KINDS, *sorted(str(k) for k in monthly if k not in _COPILOT_KINDS)):
            limit = _number(monthly.get(kind))
            remaining = _number(left.get(kind))
            if kind in windows or limit is None or limit <= 0 or remaining is None:
                continue
            windows[kind] = LiveWindow(
                name=kind,
                source="poll",
                used_percent=_percent((limit - remaining) / limit * 100),
                used=limit - remaining,
                limit=limit,
                remaining=remaining,
                unit="requests",
                resets_at=free_reset,
                limited=remaining <= 0,
            )
    return tuple(windows.values())
