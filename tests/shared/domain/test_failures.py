"""Failure classification for the fallback loop, driven by error bodies in each provider's documented shape."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from shared.domain.failures import REASONS, FailureKind, Next, Scope, Verdict, classify, retry_hint

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
TO_MIDNIGHT = 6_400.0  # seconds from NOW to Wed, 15 Nov 2023 00:00:00 GMT


def openai(message: str, type_: str, code: str | None = None, param: str | None = None) -> str:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def anthropic(type_: str, message: str) -> str:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}})


def gemini(code: int, status: str, message: str, details: Sequence[Mapping[str, Any]] = ()) -> str:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error})


def retry_info(delay: str) -> dict[str, str]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(quota_id: str, model: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": "2",
            }
        ],
    }


GEMINI_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: "
    "generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 2, model: gemini-2.5-pro\n"
    "Please retry in 56.53s."
)
OPENAI_RATE_MESSAGE = (
    "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, "
    "Requested 2000. Please try again in 2s. Visit https://platform.openai.com/account/rate-limits to learn more."
)
ANTHROPIC_RATE_MESSAGE = (
    "This request would exceed the rate limit for your organization (8c0a…) of 50,000 input tokens per minute. "
    "For details, refer to: https://docs.claude.com/en/api/rate-limits."
)


def http(status: int | None, body: str = "", headers: Mapping[str, str] | None = None) -> Verdict:
    return classify(FailureKind.HTTP, status, body, headers or {}, NOW)


def expect(
    next_: Next,
    reason: str,
    scope: Scope = Scope.NONE,
    cooldown: float | None = None,
    *,
    backoff: bool = False,
    breaker: bool = False,
    retryable: bool = False,
) -> Verdict:
    return Verdict(next_, scope, cooldown, backoff, breaker, reason, retryable)


def limited(scope: Scope, reason: str, cooldown: float | None) -> Verdict:
    return expect(Next.NEXT_ACCOUNT, reason, scope, cooldown, backoff=True)


BILLING = expect(Next.NEXT_ACCOUNT, "billing", Scope.ACCOUNT, 3600.0)
AUTH = expect(Next.NEXT_ACCOUNT, "auth", Scope.ACCOUNT, 120.0)
DISABLED = expect(Next.NEXT_ACCOUNT, "account_disabled", Scope.ACCOUNT, 86400.0)
MODEL_UNAVAILABLE = expect(Next.NEXT_ACCOUNT, "model_unavailable", Scope.MODEL, 120.0)
OVERFLOW = expect(Next.NEXT_TARGET, "context_overflow")
BAD_REQUEST = expect(Next.FAIL, "bad_request")


# --- transport failures --------------------------------------------------------------------------------


def test_connect_failures_move_to_the_next_target_without_retrying_the_same_one() -> None:
    verdict = classify(FailureKind.CONNECT, None, "", {}, NOW)
    assert verdict == expect(Next.NEXT_TARGET, "connect", breaker=True)


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        pytest.param(FailureKind.TIMEOUT, None, "timeout", id="timeout"),
        pytest.param(FailureKind.CUT, None, "cut", id="cut-before-first-byte"),
        pytest.param(FailureKind.HTTP, 408, "timeout", id="http-408"),
    ],
)
def test_timeouts_and_cut_streams_move_on_but_may_retry_the_same_target(
    kind: FailureKind, status: int | None, reason: str
) -> None:
    verdict = classify(kind, status, "", {}, NOW)
    assert verdict == expect(Next.NEXT_TARGET, reason, breaker=True, retryable=True)


def test_transport_kinds_win_over_any_status_and_body() -> None:
    body = anthropic("rate_limit_error", ANTHROPIC_RATE_MESSAGE)
    assert classify(FailureKind.TIMEOUT, 429, body, {"retry-after": "5"}, NOW).reason == "timeout"
    assert classify(FailureKind.CUT, 429, body, {}, NOW).reason == "cut"
    assert classify(FailureKind.CONNECT, 503, "", {}, NOW).reason == "connect"


# --- rate limits and quotas ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "verdict"),
    [
        pytest.param(429, "", {}, limited(Scope.ACCOUNT, "rate_limited", None), id="bare-429-no-hint"),
        pytest.param(
            429,
            anthropic("rate_limit_error", ANTHROPIC_RATE_MESSAGE),
            {"retry-after": "17"},
            limited(Scope.ACCOUNT, "rate_limited", 17.0),
            id="anthropic-rate-limit-error",
        ),
        pytest.param(
            429,
            openai("Too Many Requests", "requests"),
            {"x-ratelimit-reset-requests": "6m0s"},
            limited(Scope.ACCOUNT, "rate_limited", 360.0),
            id="openai-too-many-requests",
        ),
        pytest.param(
            400,
            openai("Rate limit exceeded, slow down.", "invalid_request_error", "rate_limit_exceeded"),
            {},
            limited(Scope.ACCOUNT, "rate_limited", None),
            id="rate-text-in-400",
        ),
        pytest.param(
            403,
            gemini(403, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
            {},
            limited(Scope.ACCOUNT, "quota_exhausted", None),
            id="resource-exhausted-text-in-403",
        ),
        pytest.param(
            400,
            "You have exhausted your capacity on this model. Your quota will reset after 1h2m3s.",
            {},
            limited(Scope.MODEL, "quota_exhausted", 3723.0),
            id="exhausted-capacity-on-this-model-in-400",
        ),
        pytest.param(
            404,
            "RATE LIMIT reached",
            {},
            limited(Scope.ACCOUNT, "rate_limited", None),
            id="upper-case-rate-text-in-404",
        ),
    ],
)
def test_rate_limits_cool_the_account_with_backoff_and_spare_the_breaker(
    status: int, body: str, headers: Mapping[str, str], verdict: Verdict
) -> None:
    assert http(status, body, headers) == verdict


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            gemini(
                429,
                "RESOURCE_EXHAUSTED",
                GEMINI_QUOTA_MESSAGE,
                [quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "gemini-2.5-pro")],
            ),
            id="gemini-quota-metric-model",
        ),
        pytest.param(openai(OPENAI_RATE_MESSAGE, "tokens", "rate_limit_exceeded"), id="openai-per-model-limit"),
        pytest.param("Rate limit exceeded for model deepseek-chat", id="for-model"),
        pytest.param("Per model request limit reached", id="per-model"),
        pytest.param(json.dumps({"error": {"code": "model_rate_limit", "message": "Slow down"}}), id="model-rate-code"),
    ],
)
def test_model_specific_limits_cool_only_that_model(body: str) -> None:
    verdict = http(429, body)
    assert verdict.scope is Scope.MODEL
    assert verdict.next is Next.NEXT_ACCOUNT and verdict.backoff and not verdict.breaker


def test_echoed_model_field_does_not_make_a_limit_model_specific() -> None:
    body = json.dumps({"error": {"message": "Too many requests", "model": "gpt-4o"}})
    assert http(429, body).scope is Scope.ACCOUNT


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(anthropic("rate_limit_error", ANTHROPIC_RATE_MESSAGE), "rate_limited", id="anthropic-rate"),
        pytest.param(openai(OPENAI_RATE_MESSAGE, "tokens", "rate_limit_exceeded"), "rate_limited", id="openai-rate"),
        pytest.param(gemini(429, "RESOURCE_EXHAUSTED", GEMINI_QUOTA_MESSAGE), "quota_exhausted", id="gemini-quota"),
        pytest.param("Quota exceeded. Your quota will reset later.", "quota_exhausted", id="plain-quota"),
    ],
)
def test_quota_wording_is_reported_as_quota_exhausted_and_rate_wording_as_rate_limited(body: str, reason: str) -> None:
    assert http(429, body).reason == reason


def test_rate_limit_cooldown_is_the_retry_hint() -> None:
    body = gemini(
        429,
        "RESOURCE_EXHAUSTED",
        GEMINI_QUOTA_MESSAGE,
        [quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "gemini-2.5-pro"), retry_info("56s")],
    )
    assert http(429, body) == limited(Scope.MODEL, "quota_exhausted", 56.0)


def test_rate_limit_without_any_hint_leaves_the_cooldown_to_the_backoff_policy() -> None:
    assert http(429, anthropic("rate_limit_error", ANTHROPIC_RATE_MESSAGE)).cooldown is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            gemini(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota. * Quota exceeded for metric: "
                "generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 50",
                [quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "gemini-2.5-pro")],
            ),
            id="gemini-per-day-quota-id",
        ),
        pytest.param("Daily request limit reached", id="daily"),
        pytest.param("You have reached the maximum number of requests per day", id="per-day"),
        pytest.param("Too many requests today", id="today"),
    ],
)
def test_daily_quota_without_hint_cools_down_until_the_next_utc_midnight(body: str) -> None:
    verdict = http(429, body)
    assert verdict.cooldown == TO_MIDNIGHT
    assert verdict.reason == "quota_exhausted"


def test_daily_quota_at_exactly_midnight_waits_a_whole_day() -> None:
    midnight = NOW + TO_MIDNIGHT
    assert classify(FailureKind.HTTP, 429, "daily quota exceeded", {}, midnight).cooldown == 86400.0


def test_daily_quota_with_a_hint_uses_the_hint() -> None:
    assert http(429, "Daily quota exceeded", {"Retry-After": "30"}).cooldown == 30.0


# --- billing, auth, models -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(402, "", id="bare-402"),
        pytest.param(
            429,
            openai(
                "You exceeded your current quota, please check your plan and billing details. For more information "
                "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                "insufficient_quota",
            ),
            id="openai-insufficient-quota-429",
        ),
        pytest.param(
            400,
            anthropic(
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. "
                "Please go to Plans & Billing to upgrade or purchase credits.",
            ),
            id="anthropic-credit-balance-400",
        ),
        pytest.param(
            403,
            gemini(403, "PERMISSION_DENIED", "This API method requires billing to be enabled."),
            id="billing-text-403",
        ),
        pytest.param(400, json.dumps({"error": {"message": "Payment Required", "code": 402}}), id="payment-required"),
        pytest.param(401, "Credits exhausted for this account", id="credits-exhausted"),
    ],
)
def test_billing_failures_cool_the_account_for_an_hour_without_backoff(status: int, body: str) -> None:
    assert http(status, body, {"retry-after": "5"}) == BILLING


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(401, openai("Incorrect API key provided: sk-abc***xyz.", "invalid_request_error"), id="openai"),
        pytest.param(401, anthropic("authentication_error", "invalid x-api-key"), id="anthropic"),
        pytest.param(
            403,
            anthropic("permission_error", "Your API key does not have permission to use the specified resource."),
            id="anthropic-permission",
        ),
        pytest.param(
            400,
            gemini(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
            id="gemini-bad-key-is-a-400",
        ),
        pytest.param(403, "<html><body>Forbidden</body></html>", id="html-403"),
    ],
)
def test_auth_failures_cool_the_account_briefly_without_backoff(status: int, body: str) -> None:
    assert http(status, body) == AUTH


@pytest.mark.parametrize(
    "message",
    [
        "This organization has been disabled.",
        "Your account has been deactivated.",
        "Account SUSPENDED for violating the usage policies",
        "This user is banned",
    ],
)
def test_a_disabled_account_cools_down_for_a_day(message: str) -> None:
    assert http(403, anthropic("permission_error", message)) == DISABLED


def test_a_401_about_a_disabled_key_is_still_an_ordinary_auth_failure() -> None:
    assert http(401, openai("This API key has been disabled.", "invalid_request_error")) == AUTH


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(
            404,
            openai(
                "The model `gpt-9` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            ),
            id="openai-404",
        ),
        pytest.param(404, anthropic("not_found_error", "model: claude-9"), id="anthropic-404"),
        pytest.param(
            404,
            gemini(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta."),
            id="gemini-404",
        ),
        pytest.param(404, "", id="bare-404"),
        pytest.param(400, "Model Not Exist", id="deepseek-400"),
        pytest.param(400, openai("anthropic/claude-9 is not a valid model ID", "invalid_request_error"), id="400-id"),
        pytest.param(400, openai("Unsupported model: o9", "invalid_request_error"), id="400-unsupported"),
        pytest.param(400, "model_not_found", id="400-code"),
        pytest.param(400, "Tool calling is not supported for this model.", id="400-not-supported-for-model"),
        pytest.param(400, "The model is not available in your region.", id="400-not-available"),
    ],
)
def test_an_unknown_model_locks_only_that_model_of_the_account(status: int, body: str) -> None:
    assert http(status, body) == MODEL_UNAVAILABLE


# --- requests the upstream refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(
            400,
            openai(
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 "
                "tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            ),
            id="openai",
        ),
        pytest.param(
            400,
            anthropic("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            id="anthropic",
        ),
        pytest.param(
            400,
            gemini(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            id="gemini",
        ),
        pytest.param(
            413, anthropic("request_too_large", "Request exceeds the maximum allowed number of bytes."), id="413"
        ),
        pytest.param(413, "", id="bare-413"),
        pytest.param(422, "Input is too long for requested model.", id="422-text"),
        pytest.param(400, "Too many tokens in the request", id="too-many-tokens"),
        pytest.param(400, "The request exceeds the context window of this model.", id="context-window"),
    ],
)
def test_context_overflow_moves_to_a_target_that_may_have_a_bigger_window(status: int, body: str) -> None:
    assert http(status, body) == OVERFLOW


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(
            400,
            openai(
                "Invalid parameter: 'temperature' must be a number between 0 and 2.",
                "invalid_request_error",
                "invalid_value",
                "temperature",
            ),
            id="400-invalid-parameter",
        ),
        pytest.param(400, anthropic("invalid_request_error", "max_tokens: Field required"), id="400-anthropic"),
        pytest.param(400, "", id="bare-400"),
        pytest.param(405, "Method Not Allowed", id="405"),
        pytest.param(409, "", id="409"),
        pytest.param(415, "Unsupported Media Type", id="415"),
        pytest.param(422, json.dumps({"detail": [{"msg": "field required"}]}), id="422"),
        pytest.param(418, "", id="other-4xx"),
        pytest.param(400, openai("Unrecognized request argument supplied: foo", "invalid_request_error"), id="400-arg"),
    ],
)
def test_bad_requests_fail_fast_without_burning_other_accounts(status: int, body: str) -> None:
    assert http(status, body, {"retry-after": "3"}) == BAD_REQUEST


def test_overflow_text_on_a_status_other_than_400_or_422_does_not_count() -> None:
    assert http(409, "maximum context length exceeded") == BAD_REQUEST


# --- server errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(
            500, openai("The server had an error while processing your request.", "server_error"), "server_error"
        ),
        pytest.param(500, anthropic("api_error", "Internal server error"), "server_error"),
        pytest.param(502, "<html><body>502 Bad Gateway</body></html>", "server_error"),
        pytest.param(504, "", "server_error"),
        pytest.param(520, "", "server_error", id="520-cloudflare"),
        pytest.param(599, "", "server_error"),
        pytest.param(503, gemini(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), "overloaded"),
        pytest.param(503, "", "overloaded", id="bare-503"),
        pytest.param(529, anthropic("overloaded_error", "Overloaded"), "overloaded"),
        pytest.param(500, openai("The engine is currently overloaded.", "server_error"), "overloaded"),
        pytest.param(502, "Upstream has no capacity right now", "overloaded", id="capacity-text"),
    ],
)
def test_server_errors_move_to_the_next_target_and_count_against_the_breaker(
    status: int, body: str, reason: str
) -> None:
    assert http(status, body) == expect(Next.NEXT_TARGET, reason, breaker=True, retryable=True)


@pytest.mark.parametrize("status", [503, 529])
def test_overloaded_keeps_the_retry_hint_but_cools_nothing_down(status: int) -> None:
    verdict = http(status, anthropic("overloaded_error", "Overloaded"), {"Retry-After": "7"})
    assert verdict.cooldown == 7.0 and verdict.scope is Scope.NONE and not verdict.backoff


def test_other_server_errors_ignore_retry_hints() -> None:
    assert http(500, "", {"retry-after": "7"}).cooldown is None


def test_a_5xx_body_about_quota_is_still_a_server_error() -> None:
    verdict = http(500, gemini(500, "INTERNAL", "Quota exceeded while checking billing"))
    assert verdict.reason == "server_error" and verdict.next is Next.NEXT_TARGET


@pytest.mark.parametrize("status", [None, 101, 302, 501, 505, 511, 600])
def test_other_statuses_move_on_without_retrying_the_same_target(status: int | None) -> None:
    assert http(status) == expect(Next.NEXT_TARGET, "server_error", breaker=True)


@pytest.mark.parametrize(
    ("kind", "status"),
    [(FailureKind.HTTP, status) for status in (None, 101, 302, *range(400, 430), *range(500, 531), 600)]
    + [(kind, None) for kind in (FailureKind.TIMEOUT, FailureKind.CONNECT, FailureKind.CUT)],
)
def test_every_verdict_carries_a_known_reason(kind: FailureKind, status: int | None) -> None:
    assert classify(kind, status, "", {}, NOW).reason in REASONS


# --- retry hints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, id="ms-wins-over-seconds"),
        pytest.param({"Retry-After-Ms": "250"}, 0.25, id="ms-any-case"),
        pytest.param({"Retry-After": "20"}, 20.0, id="delta-seconds"),
        pytest.param({"RETRY-AFTER": "2.5"}, 2.5, id="decimal-seconds-upper-case"),
        pytest.param({"retry-after": " 12 "}, 12.0, id="whitespace"),
        pytest.param({"Retry-After": "Tue, 14 Nov 2023 22:15:00 GMT"}, 100.0, id="http-date"),
        pytest.param({"Retry-After": "Tue, 14 Nov 2023 22:00:00 GMT"}, 0.0, id="http-date-in-the-past"),
        pytest.param({"retry-after": "-5"}, 0.0, id="negative-delta"),
        pytest.param({"retry-after-ms": "soon", "retry-after": "4"}, 4.0, id="bad-ms-falls-through"),
        pytest.param({"retry-after": "whenever", "x-ratelimit-reset": "8"}, 8.0, id="bad-retry-after-falls-through"),
    ],
)
def test_retry_after_headers(headers: Mapping[str, str], seconds: float) -> None:
    assert retry_hint(headers, "", NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("1s", 1.0, id="seconds"),
        pytest.param("6m0s", 360.0, id="minutes-seconds"),
        pytest.param("20ms", 0.02, id="milliseconds"),
        pytest.param("1h2m3.5s", 3723.5, id="hours-minutes-fractional-seconds"),
        pytest.param("500us", 0.0005, id="microseconds"),
        pytest.param("30", 30.0, id="delta-number"),
        pytest.param("1.5", 1.5, id="decimal-delta"),
        pytest.param(str(int(NOW) + 45), 45.0, id="epoch-seconds"),
        pytest.param(str(int(NOW * 1000) + 2500), 2.5, id="epoch-milliseconds"),
        pytest.param(str(int(NOW) - 100), 0.0, id="epoch-in-the-past"),
    ],
)
def test_ratelimit_reset_reads_durations_epochs_and_deltas(value: str, seconds: float) -> None:
    assert retry_hint({"X-RateLimit-Reset": value}, "", NOW) == pytest.approx(seconds)


def test_ratelimit_reset_takes_the_largest_of_several_headers() -> None:
    headers = {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-reset": "20"}
    assert retry_hint(headers, "", NOW) == 360.0


def test_ratelimit_reset_skips_values_it_cannot_read() -> None:
    assert retry_hint({"x-ratelimit-reset-requests": "later", "x-ratelimit-reset-tokens": "3s"}, "", NOW) == 3.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"anthropic-ratelimit-unified-reset": str(int(NOW) + 300)}, 300.0, id="unified-epoch"),
        pytest.param(
            {
                "anthropic-ratelimit-requests-reset": "2023-11-14T22:14:00Z",
                "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:30Z",
                "anthropic-ratelimit-input-tokens-reset": "2023-11-14T22:15:00.500Z",
                "anthropic-ratelimit-output-tokens-reset": "2023-11-14T22:13:25+00:00",
            },
            100.5,
            id="latest-of-rfc3339",
        ),
        pytest.param({"Anthropic-RateLimit-Tokens-Reset": "2023-11-14T22:13:00Z"}, 0.0, id="past-clamps"),
        pytest.param(
            {
                "anthropic-ratelimit-requests-reset": "garbage",
                "anthropic-ratelimit-tokens-reset": "2023-11-14T22:14:00Z",
            },
            40.0,
            id="skips-unreadable",
        ),
    ],
)
def test_anthropic_reset_headers_give_the_latest_reset(headers: Mapping[str, str], seconds: float) -> None:
    assert retry_hint(headers, "", NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        pytest.param(
            gemini(429, "RESOURCE_EXHAUSTED", GEMINI_QUOTA_MESSAGE, [retry_info("30s")]), 30.0, id="gemini-retry-info"
        ),
        pytest.param(gemini(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [retry_info("1.5s")]), 1.5, id="fraction"),
        pytest.param(
            json.dumps([{"error": {"code": 429, "details": [retry_info("12s")]}}], indent=2), 12.0, id="list-pretty"
        ),
        pytest.param(gemini(429, "RESOURCE_EXHAUSTED", GEMINI_QUOTA_MESSAGE), 56.53, id="please-retry-in"),
        pytest.param("Your quota will reset after 1h2m3s.", 3723.0, id="reset-after-go-duration"),
        pytest.param("Limit resets in 45s", 45.0, id="resets-in"),
        pytest.param(openai(OPENAI_RATE_MESSAGE, "tokens"), 2.0, id="openai-try-again-in"),
        pytest.param("Please try again in 820ms.", 0.82, id="milliseconds"),
        pytest.param("retry in 2.5s", 2.5, id="retry-in"),
        pytest.param("Please try again in 5 minutes.", 300.0, id="minutes-word"),
        pytest.param("Retry after 30 seconds", 30.0, id="retry-after-seconds-word"),
        pytest.param("Try again in 2 hours", 7200.0, id="hours-word"),
        pytest.param("Try again in 1 hr", 3600.0, id="hr-word"),
    ],
)
def test_body_hints(body: str, seconds: float) -> None:
    assert retry_hint({}, body, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("headers", "body", "seconds"),
    [
        pytest.param({"retry-after": "1", "x-ratelimit-reset": "9"}, "retry in 7s", 1.0, id="retry-after-first"),
        pytest.param(
            {"x-ratelimit-reset": "2", "anthropic-ratelimit-unified-reset": str(int(NOW) + 9)},
            "",
            2.0,
            id="ratelimit-reset-before-anthropic",
        ),
        pytest.param(
            {"anthropic-ratelimit-unified-reset": str(int(NOW) + 3)}, "retry in 7s", 3.0, id="headers-before-body"
        ),
        pytest.param({}, 'retry in 7s "retryDelay": "4s"', 4.0, id="retry-info-before-text"),
    ],
)
def test_the_first_source_found_wins(headers: Mapping[str, str], body: str, seconds: float) -> None:
    assert retry_hint(headers, body, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param({"retry-after": "604800"}, "", id="week-delta"),
        pytest.param({"retry-after": "Tue, 21 Nov 2023 22:13:20 GMT"}, "", id="week-date"),
        pytest.param({"x-ratelimit-reset": "48h"}, "", id="duration"),
        pytest.param({}, "Please try again in 3 days.", id="body"),
    ],
)
def test_hints_are_capped_at_a_day(headers: Mapping[str, str], body: str) -> None:
    assert retry_hint(headers, body, NOW) == 86400.0


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param({}, "", id="nothing"),
        pytest.param({"content-type": "application/json"}, anthropic("rate_limit_error", "Slow down"), id="no-hint"),
        pytest.param({"retry-after": "nan"}, "", id="not-a-number"),
        pytest.param({"retry-after": "inf"}, "", id="infinity"),
        pytest.param({}, "Please try again later.", id="vague-text"),
    ],
)
def test_no_hint_gives_none(headers: Mapping[str, str], body: str) -> None:
    assert retry_hint(headers, body, NOW) is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(
            400,
            openai(
                "Previous response with id 'resp_1' not found.", "invalid_request_error", "previous_response_not_found"
            ),
            id="previous-response",
        ),
        pytest.param(404, openai("Item with id 'msg_1' not found.", "invalid_request_error"), id="item-reference"),
    ],
)
def test_response_state_kept_by_another_account_moves_on_without_blame(status: int, body: str) -> None:
    verdict = http(status, body)
    assert (verdict.next, verdict.scope, verdict.breaker, verdict.reason) == (
        Next.NEXT_ACCOUNT, Scope.NONE, False, "state_elsewhere"
    )  # fmt: skip


def test_an_item_text_without_not_found_is_no_state_problem() -> None:
    assert (
        http(400, openai("Invalid 'input[1]': item with id 'x' is duplicated.", "invalid_request_error")) == BAD_REQUEST
    )
