"""Reading token endpoint answers (shared/services/refresh_wire.py): the error shapes providers use, which
ones are fatal, expiry in its several spellings, and no token in a stored reason. Pure: no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.domain.oauth import OAuthTokens
from shared.providers.oauth import oauth_provider, refresh_spec
from shared.services.refresh_wire import CannotRefresh, Refreshed, Rejected, build_call, read_reply
from tests.fakes.token_server import fake_jwt

NOW = 1_800_000_000.0
OLD = OAuthTokens("at-old-access-token", "rt-old-refresh-token", "id-old", None)


def reply(provider: str, status: int, body: Any, headers: dict[str, str] | None = None) -> Refreshed | Rejected:
    spec = refresh_spec(provider, {})
    assert spec is not None
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return read_reply(spec, oauth_provider(provider), status, headers or {}, raw, OLD, NOW)


@pytest.mark.parametrize(
    ("provider", "status", "body", "code"),
    [
        ("codex", 400, {"error": "refresh_token_reused", "error_description": "Already used."}, "refresh_token_reused"),
        (  # OpenAI's own error envelope
            "codex",
            401,
            {"error": {"message": "Your refresh token has already been used.", "type": "invalid_request_error",
                       "code": "refresh_token_reused"}},
            "refresh_token_reused",
        ),
        ("claude", 400, {"error": "invalid_grant", "error_description": "Refresh token not found"}, "invalid_grant"),
        ("kiro", 400, {"__type": "com.amazonaws.ssooidc#InvalidGrantException", "message": "Invalid"}, "invalid_grant"),
        ("kiro", 400, {"__type": "ExpiredTokenException", "message": "Token is expired"}, "invalid_grant"),
        ("antigravity", 401, {"error": "invalid_client", "error_description": "Unauthorized"}, "invalid_client"),
        ("github", 401, {"message": "Bad credentials"}, None),
    ],
)  # fmt: skip
def test_a_gone_grant_is_fatal(provider: str, status: int, body: Any, code: str | None) -> None:
    verdict = reply(provider, status, body)
    assert isinstance(verdict, Rejected) and verdict.fatal
    assert (code or "Bad credentials") in verdict.reason and f"HTTP {status}" in verdict.reason


@pytest.mark.parametrize(
    ("provider", "status", "body"),
    [
        ("codex", 500, {"error": "server_error"}),
        ("codex", 403, {"error": {"code": "unsupported_country_region_territory", "message": "Not here."}}),
        ("claude", 403, b"<html>Just a moment...</html>"),  # a Cloudflare challenge
        ("github", 403, {"message": "Resource not accessible by integration"}),
        ("github", 404, {"message": "Not Found"}),
        ("codex", 200, {"token_type": "Bearer"}),  # no access token
        ("codex", 200, b"not json"),
    ],
)
def test_anything_else_is_transient(provider: str, status: int, body: Any) -> None:
    verdict = reply(provider, status, body)
    assert isinstance(verdict, Rejected) and not verdict.fatal


def test_a_429_carries_its_retry_after() -> None:
    verdict = reply("claude", 429, {"error": "rate_limited"}, {"Retry-After": "120"})
    assert isinstance(verdict, Rejected) and not verdict.fatal and verdict.retry_after == 120


def test_a_token_quoted_back_in_an_error_is_blanked_and_long_reasons_are_cut() -> None:
    text = f"bad token {OLD.refresh_token} " + "x" * 1000
    verdict = reply("claude", 400, {"error": "invalid_grant", "error_description": text})
    assert isinstance(verdict, Rejected)
    assert OLD.refresh_token not in verdict.reason and "<redacted>" in verdict.reason
    assert len(verdict.reason) <= 300


@pytest.mark.parametrize(
    ("fields", "expiry"),
    [
        ({"expires_in": 3600}, NOW + 3600),
        ({"expiresIn": "600"}, NOW + 600),
        ({"expires_at": 1_800_001_800}, 1_800_001_800),
        ({"expires_at": 1_800_001_800_000}, 1_800_001_800),  # milliseconds
        ({"expiresAt": "2027-01-15T09:00:00Z"}, 1_800_003_600),
        ({}, 0.0),
    ],
)
def test_expiry_is_read_in_each_spelling(fields: dict[str, Any], expiry: float) -> None:
    verdict = reply("kimi-code", 200, {"access_token": "at-new", **fields})
    assert isinstance(verdict, Refreshed) and verdict.expires_at == expiry


def test_without_an_expiry_a_jwt_access_tokens_own_exp_is_used() -> None:
    verdict = reply("kimi-code", 200, {"access_token": fake_jwt({"exp": 1_800_000_900})})
    assert isinstance(verdict, Refreshed) and verdict.expires_at == 1_800_000_900


def test_what_the_answer_leaves_out_is_kept_from_the_old_tokens() -> None:
    verdict = reply("antigravity", 200, {"access_token": "at-new", "expires_in": 3599})
    assert isinstance(verdict, Refreshed)
    assert (verdict.tokens.access_token, verdict.tokens.refresh_token, verdict.tokens.id_token) == (
        "at-new", OLD.refresh_token, OLD.id_token
    )  # fmt: skip


def test_an_account_without_what_its_style_needs_cannot_be_refreshed() -> None:
    spec = refresh_spec("kiro", {"authMethod": "builder-id"})
    assert spec is not None
    with pytest.raises(CannotRefresh, match="clientId"):
        build_call(spec, oauth_provider("kiro"), OLD, {"authMethod": "builder-id"})
    claude = refresh_spec("claude", {})
    assert claude is not None
    with pytest.raises(CannotRefresh, match="no refresh token"):
        build_call(claude, oauth_provider("claude"), OAuthTokens("at"), {})


def test_a_region_that_is_not_one_leaves_the_oidc_host_alone() -> None:
    spec = refresh_spec("kiro", {})
    assert spec is not None
    tokens = OAuthTokens("at", "rt", client_secret="cs")
    evil = build_call(spec, None, tokens, {"clientId": "c", "region": "evil.example.com/x"})
    good = build_call(spec, None, tokens, {"clientId": "c", "region": "ap-southeast-2"})
    assert evil.url == "https://oidc.us-east-1.amazonaws.com/token"
    assert good.url == "https://oidc.ap-southeast-2.amazonaws.com/token"
    assert "rt" not in repr(good) and "cs" not in repr(good)


def test_copilot_keeps_the_github_token_and_takes_the_plan_host_only_over_tls() -> None:
    doc = {
        "token": "tid=new",
        "expires_at": 1_800_001_500,
        "endpoints": {"api": "https://api.enterprise.githubcopilot.com/"},
    }
    verdict = reply("github", 200, doc)
    assert isinstance(verdict, Refreshed)
    assert (verdict.tokens.access_token, verdict.tokens.refresh_token) == ("tid=new", OLD.refresh_token)
    assert (verdict.expires_at, verdict.base_url) == (1_800_001_500, "https://api.enterprise.githubcopilot.com")
    plain = reply("github", 200, {**doc, "endpoints": {"api": "http://api.githubcopilot.example"}})
    assert isinstance(plain, Refreshed) and plain.base_url is None


def test_a_codex_id_token_updates_the_account_as_linking_read_it() -> None:
    claims = {
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct-9", "chatgpt_plan_type": "team"},
        "https://api.openai.com/profile": {"email": "t@example.com"},
    }
    verdict = reply("codex", 200, {"access_token": "at", "id_token": fake_jwt(claims), "expires_in": 10})
    assert isinstance(verdict, Refreshed)
    assert verdict.meta == {"accountId": "acct-9", "plan": "team", "email": "t@example.com"}
