"""What the fallback loop does after an upstream call fails: a pure verdict from status, body and headers.

Providers report the same few situations (rate limited, out of credit, bad key, unknown model, prompt too
long, overloaded) with different statuses and wordings: OpenAI answers an empty wallet with a 429, Anthropic
with a 400, and Gemini puts its retry delay in the body. Deciding in one pure function keeps the router
simple (it only obeys a `Verdict`), leaves provider-wide trouble to the circuit breaker instead of cooling
every account, keeps a client's bad request from being retried on every account of a provider (a combo's
other targets may still take it: a 400 is often one provider's limitation), and lets each rule be tested
with recorded bodies.

    failure                          next          scope          cooldown             backoff breaker reason
    connect (refused, DNS, TLS)      NEXT_TARGET   -              -                    no      yes     connect
    timeout, cut, 408 *              NEXT_TARGET   -              -                    no      yes     timeout, cut
    429 or rate/quota text           NEXT_ACCOUNT  account|model  hint, midnight or -  yes     no      rate_limited,
                                                                                                       quota_exhausted
    402 or billing text              NEXT_ACCOUNT  account        3600                 no      no      billing
    401, 403 or bad-key text         NEXT_ACCOUNT  account        120                  no      no      auth
    403 + account disabled text      NEXT_ACCOUNT  account        86400                no      no      account_disabled
    400/404 + response-state text    NEXT_ACCOUNT  -              -                    no      no      state_elsewhere
    404, 400 + model text            NEXT_ACCOUNT  model          120                  no      no      model_unavailable
    413, 400/422 + overflow text     NEXT_TARGET   -              -                    no      no      context_overflow
    other 4xx                        FAIL          -              -                    no      no      bad_request
    500, 502-504, 520-599 *          NEXT_TARGET   -              503/529: hint        no      yes     overloaded,
                                                                                                       server_error
    anything else (1xx, 3xx, 501)    NEXT_TARGET   -              -                    no      yes     server_error

    * retryable_same_target: a transient failure that a combo's `max_retries` may retry on the same target.
    "-" as cooldown means None: the policy's exponential backoff decides (and scope NONE cools nothing).

Body texts are only read for 4xx answers, and they are read before the status: a 403 that says "quota
exceeded" is a rate limit, and OpenAI's 429 `insufficient_quota` is billing. A 5xx stays a server error
whatever its body says. `retry_hint` turns the headers and body into seconds from `now`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum


class Next(StrEnum):
    NEXT_ACCOUNT = "next_account"  # another connection of the same provider may still serve this model
    NEXT_TARGET = "next_target"  # the provider or model is the problem: go to the next target of the combo
    # The request as sent is refused here: burn no other account of this target. Another target (another
    # provider or model) may accept it; if none answers, this refusal is what the client gets.
    FAIL = "fail"


class Scope(StrEnum):
    NONE = "none"
    ACCOUNT = "account"
    MODEL = "model"  # only this model of the account; its other models stay in rotation


class FailureKind(StrEnum):
    HTTP = "http"  # the upstream answered with an error status
    TIMEOUT = "timeout"
    CONNECT = "connect"  # refused, DNS or TLS failure: nothing was sent
    CUT = "cut"  # the stream or connection ended before the first byte reached the client


REASONS = frozenset(
    {
        "connect",
        "timeout",
        "cut",
        "rate_limited",
        "quota_exhausted",
        "billing",
        "auth",
        "account_disabled",
        "model_unavailable",
        "context_overflow",
        "bad_request",
        "state_elsewhere",
        "overloaded",
        "server_error",
    }
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the router does next. `cooldown`: fixed seconds decided here (a special case or a retry hint);
    None leaves it to the policy's exponential backoff. `backoff`: whether cooling down raises the backoff
    level. `breaker`: counts as a provider failure. `reason`: one of `REASONS`."""

    next: Next
    scope: Scope
    cooldown: float | None
    backoff: bool
    breaker: bool
    reason: str
    retryable_same_target: bool


MAX_HINT = 86400.0  # no hint cools anything down for longer than a day
AUTH_COOLDOWN = 120.0  # a rotated key or refreshed token is picked up within two minutes
MODEL_COOLDOWN = 120.0
BILLING_COOLDOWN = 3600.0  # credit comes back when someone pays, not in seconds
DISABLED_COOLDOWN = 86400.0
_DAY = 86400.0
_TEXT_LIMIT = 65536  # error bodies are small; an HTML error page is not worth lowercasing in full

# Billing wording that wins over any quota wording: OpenAI's `insufficient_quota` message reads "You
# exceeded your current quota, please check your plan and billing details".
_BILLING_TEXTS = (
    "insufficient_quota",
    "credit balance is too low",
    "payment required",
    "credits exhausted",
    "billing_hard_limit",
)
# Bare "billing" is weaker than quota wording: Gemini's temporary 429 quota message also says "check your
# plan and billing details".
_BILLING_WEAK_TEXTS = ("billing",)
_LIMIT_TEXTS = (
    "rate limit",
    "rate_limit",
    "ratelimit",
    "too many requests",
    "quota exceeded",
    "quota_exceeded",
    "exceeded your current quota",
    "quota will reset",
    "resource_exhausted",
    "resource exhausted",
    "exhausted your capacity",
)
_QUOTA_TEXTS = ("quota", "exhausted")
_DAILY_TEXTS = ("daily", "per day", "perday", "today")  # Gemini quota ids read "...RequestsPerDayPerModel..."
_MODEL_LIMIT = re.compile(
    r"\bmodel:\s*[\w.\-/]"  # Gemini: "Quota exceeded for metric: ..., limit: 0, model: gemini-2.5-pro"
    r"|for model|per model|per-model|model_rate_limit"
    r"|(?:for|on) this model"  # Gemini Code Assist: "You have exhausted your capacity on this model."
    r"|rate limit reached for \S+ in organization"  # OpenAI limits are per model: "...for gpt-4o in organization"
)
# Gemini answers a bad key with 400 INVALID_ARGUMENT "API key not valid": an auth failure, not a bad request.
_AUTH_TEXTS = ("api key not valid", "api_key_invalid", "invalid api key", "incorrect api key", "invalid x-api-key")
_DISABLED_TEXTS = ("deactivated", "suspended", "disabled", "banned")
_OVERFLOW_TEXTS = (
    "context length",
    "context_length_exceeded",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the context window",
    "exceeds the maximum number of tokens",  # Gemini: "The input token count (…) exceeds the maximum number…"
)
# Server-side conversation state (Responses `previous_response_id`, `item_reference`) lives with the account
# that created it: another account of the provider may hold it, and this one is not at fault.
_STATE_TEXTS = ("previous response with id", "item with id")
_MODEL_TEXTS = (
    "model not found",
    "model_not_found",
    "model not exist",  # DeepSeek: "Model Not Exist"
    "not a valid model",  # OpenRouter: "… is not a valid model ID"
    "does not exist",
    "not supported for this model",
    "unsupported model",
    "not available",
)
_OVERLOADED_TEXTS = ("overloaded", "capacity")
_SERVER_ERRORS = frozenset({500, 502, 503, 504, *range(520, 600)})
_HINTED_SERVER_ERRORS = frozenset({503, 529})  # Retry-After is defined for 503; 529 is Anthropic's overloaded


def _verdict(
    step: Next,
    reason: str,
    *,
    scope: Scope = Scope.NONE,
    cooldown: float | None = None,
    backoff: bool = False,
    breaker: bool = False,
    retryable: bool = False,
) -> Verdict:
    return Verdict(step, scope, cooldown, backoff, breaker, reason, retryable)


_CONNECT = _verdict(Next.NEXT_TARGET, "connect", breaker=True)
_TIMEOUT = _verdict(Next.NEXT_TARGET, "timeout", breaker=True, retryable=True)
_CUT = _verdict(Next.NEXT_TARGET, "cut", breaker=True, retryable=True)
_BILLING = _verdict(Next.NEXT_ACCOUNT, "billing", scope=Scope.ACCOUNT, cooldown=BILLING_COOLDOWN)
_AUTH = _verdict(Next.NEXT_ACCOUNT, "auth", scope=Scope.ACCOUNT, cooldown=AUTH_COOLDOWN)
_DISABLED = _verdict(Next.NEXT_ACCOUNT, "account_disabled", scope=Scope.ACCOUNT, cooldown=DISABLED_COOLDOWN)
_MODEL_UNAVAILABLE = _verdict(Next.NEXT_ACCOUNT, "model_unavailable", scope=Scope.MODEL, cooldown=MODEL_COOLDOWN)
_OVERFLOW = _verdict(Next.NEXT_TARGET, "context_overflow")
_BAD_REQUEST = _verdict(Next.FAIL, "bad_request")
_STATE_ELSEWHERE = _verdict(Next.NEXT_ACCOUNT, "state_elsewhere")
# Not a known server error: another target may do better, retrying this one will not.
_UNEXPECTED = _verdict(Next.NEXT_TARGET, "server_error", breaker=True)


def classify(kind: FailureKind, status: int | None, body: str, headers: Mapping[str, str], now: float) -> Verdict:
    """The verdict for one failed upstream call (`now` in epoch seconds, for reset times in the hints)."""
    if kind is FailureKind.CONNECT:
        return _CONNECT
    if kind is FailureKind.CUT:
        return _CUT
    if kind is FailureKind.TIMEOUT or status == 408:
        return _TIMEOUT
    if status is None:
        return _UNEXPECTED
    text = body[:_TEXT_LIMIT].lower()
    if 400 <= status < 500:
        return _client_error(status, text, body, headers, now)
    if status in _SERVER_ERRORS:
        overloaded = status in _HINTED_SERVER_ERRORS or _mentions(text, _OVERLOADED_TEXTS)
        hint = retry_hint(headers, body, now) if status in _HINTED_SERVER_ERRORS else None
        reason = "overloaded" if overloaded else "server_error"
        # Scope stays NONE even with a hint: provider-wide trouble is the breaker's job, not one account's.
        return _verdict(Next.NEXT_TARGET, reason, cooldown=hint, breaker=True, retryable=True)
    return _UNEXPECTED


def _client_error(status: int, text: str, body: str, headers: Mapping[str, str], now: float) -> Verdict:
    if _mentions(text, _BILLING_TEXTS):
        return _BILLING
    if status == 429 or _mentions(text, _LIMIT_TEXTS):
        return _rate_limited(text, body, headers, now)
    if status == 402 or _mentions(text, _BILLING_WEAK_TEXTS):
        return _BILLING
    if status == 403 and _mentions(text, _DISABLED_TEXTS):
        return _DISABLED
    if status in (401, 403) or _mentions(text, _AUTH_TEXTS):
        return _AUTH
    if status in (400, 404) and (
        "previous_response_not_found" in text or ("not found" in text and _mentions(text, _STATE_TEXTS))
    ):
        return _STATE_ELSEWHERE
    if status == 404:
        return _MODEL_UNAVAILABLE
    if status == 413 or (status in (400, 422) and _mentions(text, _OVERFLOW_TEXTS)):
        return _OVERFLOW
    if status == 400 and _mentions(text, _MODEL_TEXTS):
        return _MODEL_UNAVAILABLE
    return _BAD_REQUEST


def _rate_limited(text: str, body: str, headers: Mapping[str, str], now: float) -> Verdict:
    scope = Scope.MODEL if _MODEL_LIMIT.search(text) else Scope.ACCOUNT
    daily = _mentions(text, _DAILY_TEXTS)
    reason = "quota_exhausted" if daily or _mentions(text, _QUOTA_TEXTS) else "rate_limited"
    cooldown = retry_hint(headers, body, now)
    if cooldown is None and daily:
        cooldown = _DAY - now % _DAY  # daily quotas reset at midnight UTC; epoch seconds count whole UTC days
    return _verdict(Next.NEXT_ACCOUNT, reason, scope=scope, cooldown=cooldown, backoff=True)


def _mentions(text: str, needles: Iterable[str]) -> bool:
    return any(needle in text for needle in needles)


# --- retry hints ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|h|m|s))+")  # Go's time.Duration.String()
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|h|m|s)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RESET_HEADERS = ("x-ratelimit-reset", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_ANTHROPIC_RESET_HEADERS = (
    "anthropic-ratelimit-unified-reset",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
)
# Gemini's google.rpc.RetryInfo in error.details: {"@type": "...RetryInfo", "retryDelay": "30s"}. A search
# finds it in every shape Gemini answers with (an object, a list of objects, pretty-printed or not).
_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')
_WAIT_TEXT = re.compile(
    r"\b(?:resets?|try again|retry)\s+(?:in|after)\s+(?:"
    r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?)\b"
    r"|(?P<go>(?:\d+(?:\.\d+)?(?:ms|h|m|s))+)\b)",
    re.IGNORECASE,
)
_WORD_UNITS = (("milli", 1e-3), ("sec", 1.0), ("min", 60.0), ("h", 3600.0), ("day", _DAY))  # by prefix


def retry_hint(headers: Mapping[str, str], body: str, now: float) -> float | None:
    """Seconds from `now` the upstream asks us to wait, clamped to [0, 86400]; None when it gives no hint.
    Sources, first found wins: retry-after-ms, Retry-After, x-ratelimit-reset*, anthropic-ratelimit-*-reset,
    then the body (Gemini's retryDelay, or "try again in 20s" style text)."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    seconds = _retry_after_ms(lowered)
    if seconds is None:
        seconds = _retry_after(lowered, now)
    if seconds is None:
        seconds = _latest(_reset_seconds(lowered[name], now) for name in _RESET_HEADERS if name in lowered)
    if seconds is None:
        instants = (_instant(lowered[name]) for name in _ANTHROPIC_RESET_HEADERS if name in lowered)
        latest = _latest(instants)
        seconds = None if latest is None else latest - now
    if seconds is None:
        seconds = _body_hint(body[:_TEXT_LIMIT])
    return None if seconds is None else min(max(seconds, 0.0), MAX_HINT)


def _retry_after_ms(headers: Mapping[str, str]) -> float | None:
    millis = _number(headers.get("retry-after-ms"))
    return None if millis is None else millis / 1000


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """RFC 9110 §10.2.3: delta-seconds or an HTTP-date (decimals tolerated: some providers send them)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    delta = _number(value)
    if delta is not None:
        return delta
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _utc(when).timestamp() - now


def _reset_seconds(value: str, now: float) -> float | None:
    """OpenAI sends a duration ("6m0s", "20ms"); others a number that is an epoch (in ms or s) or a delta."""
    if _GO_DURATION.fullmatch(value):
        return _go_duration(value)
    number = _number(value)
    if number is None:
        return None
    if number > 1e12:
        return number / 1000 - now
    if number > 1e9:
        return number - now
    return number


def _instant(value: str) -> float | None:
    """An absolute time as epoch seconds: a number (seconds, or ms when that large) or an RFC 3339 stamp."""
    number = _number(value)
    if number is not None:
        return number / 1000 if number > 1e12 else number
    try:
        return _utc(datetime.fromisoformat(value)).timestamp()
    except ValueError:
        return None


def _body_hint(body: str) -> float | None:
    delay = _RETRY_DELAY.search(body)
    if delay:
        return float(delay[1])
    wait = _WAIT_TEXT.search(body)
    if wait is None:
        return None
    if wait["go"]:
        return _go_duration(wait["go"].lower())
    unit = wait["unit"].lower()
    return float(wait["n"]) * next(size for prefix, size in _WORD_UNITS if unit.startswith(prefix))


def _go_duration(value: str) -> float:
    return sum(float(amount) * _GO_UNITS[unit] for amount, unit in _GO_PART.findall(value))


def _number(value: str | None) -> float | None:
    if value is None or not _NUMBER.fullmatch(value):
        return None
    return float(value)


def _latest(values: Iterable[float | None]) -> float | None:
    found = [value for value in values if value is not None]
    return max(found) if found else None


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
