"""The post-link steps against the fake: ids read from Codex's id token and Claude's token reply, the Copilot
token exchange and GitHub user, Google's userinfo, and Cloud Code Assist's project lookup and onboarding."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from companion.oauth.flows import obtain
from companion.oauth.grant import Grant, grant_from_reply
from companion.oauth.post_link import (
    ONBOARD_POLL_SECONDS,
    ONBOARD_POLLS,
    STEPS,
    claude_profile,
    code_assist_project,
    codex_id_token,
    copilot_token,
    google_userinfo,
)
from companion.oauth.session import FlowOptions, LinkContext, LinkError
from shared.domain.oauth import OAuthTokens
from shared.providers.oauth import OAUTH_PROVIDERS, OAuthProvider, oauth_provider
from tests.fakes.oauth_servers import (
    COPILOT_API,
    EXISTING_PROJECT,
    ONBOARDED_PROJECT,
    OAuthFake,
    make_jwt,
)


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def ctx(slept: list[float]) -> Iterator[LinkContext]:
    with httpx.Client(trust_env=False, timeout=10) as http:
        yield LinkContext(http=http, say=lambda text: None, ask=lambda prompt: "", sleep=slept.append)


def provider(provider_id: str) -> OAuthProvider:
    found = oauth_provider(provider_id)
    assert found is not None
    return found


def issued(fake: OAuthFake, provider_id: str) -> Grant:
    """A grant as the provider's token endpoint would give it (its token known to the fake's resources)."""
    return grant_from_reply(fake.issue(provider(provider_id)), 0.0)


def test_every_step_a_row_names_exists() -> None:
    assert {step for p in OAUTH_PROVIDERS for step in p.post_link} <= set(STEPS)


def test_codex_reads_account_plan_and_email_from_the_id_token(ctx: LinkContext) -> None:
    claims = {
        "email": "grace@example.com",
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct-9", "chatgpt_plan_type": "team"},
    }
    grant = Grant(tokens=OAuthTokens("at", "rt", make_jwt(claims)))
    linked = codex_id_token(ctx, provider("codex"), grant)
    assert dict(linked.meta) == {"accountId": "acct-9", "plan": "team", "email": "grace@example.com"}


@pytest.mark.parametrize("id_token", [None, "not-a-jwt", make_jwt({"email": "x@example.com"})])
def test_codex_without_a_chatgpt_account_in_the_id_token_is_refused(ctx: LinkContext, id_token: str | None) -> None:
    with pytest.raises(LinkError, match="ChatGPT account"):
        codex_id_token(ctx, provider("codex"), Grant(tokens=OAuthTokens("at", "rt", id_token)))


def test_claude_reads_the_account_and_organisation_from_the_token_reply(ctx: LinkContext, fake: OAuthFake) -> None:
    linked = claude_profile(ctx, provider("claude"), issued(fake, "claude"))
    assert dict(linked.meta) == {
        "email": "ada@example.com",
        "accountId": "acc-1234",
        "organization": "Ada's Org",
        "organizationId": "org-5678",
    }


def test_copilot_mints_its_token_from_the_github_token_and_keeps_that_as_refresh(
    ctx: LinkContext, fake: OAuthFake
) -> None:
    github = issued(fake, "github")
    linked = copilot_token(ctx, provider("github"), github)
    minted = fake.state.last_reply("copilot")
    assert linked.tokens.access_token == minted["token"]
    assert linked.tokens.refresh_token == github.tokens.access_token
    assert linked.expires_at == minted["expires_at"] and linked.base_url == COPILOT_API
    assert dict(linked.meta) == {
        "plan": "copilot_for_individual_user",
        "login": "octo-fake",
        "email": "octo@example.com",
    }


def test_copilot_refusing_the_github_token_ends_the_link(ctx: LinkContext, fake: OAuthFake) -> None:
    with pytest.raises(LinkError, match=r"Copilot refused a token \(HTTP 401, Bad credentials\)"):
        copilot_token(ctx, provider("github"), Grant(tokens=OAuthTokens("ghu_unknown")))


def test_google_userinfo_gives_the_email(ctx: LinkContext, fake: OAuthFake) -> None:
    linked = google_userinfo(ctx, provider("antigravity"), issued(fake, "antigravity"))
    assert linked.meta["email"] == "lin@example.com"


def test_an_account_with_a_code_assist_project_keeps_it(ctx: LinkContext, fake: OAuthFake, slept: list[float]) -> None:
    fake.state.code_assist_project = EXISTING_PROJECT
    linked = code_assist_project(ctx, provider("antigravity"), issued(fake, "antigravity"))
    assert linked.meta["projectId"] == EXISTING_PROJECT and linked.meta["tier"] == "standard-tier"
    assert fake.state.onboard_calls == [] and slept == []
    (loaded,) = fake.state.load_calls
    assert loaded == {
        "metadata": {"ideType": "ANTIGRAVITY", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
    }


def test_an_account_without_a_project_is_onboarded_and_the_operation_polled(
    ctx: LinkContext, fake: OAuthFake, slept: list[float]
) -> None:
    fake.state.onboard_pending = 2
    linked = code_assist_project(ctx, provider("antigravity"), issued(fake, "antigravity"))
    assert linked.meta["projectId"] == ONBOARDED_PROJECT and linked.meta["tier"] == "free-tier"
    assert len(fake.state.onboard_calls) == 3 and slept == [ONBOARD_POLL_SECONDS] * 2
    assert fake.state.onboard_calls[0] == {
        "tier_id": "free-tier",  # the allowed tier marked default
        "metadata": {"ide_type": "ANTIGRAVITY", "ide_name": "antigravity"},
    }


def test_an_onboarding_that_never_finishes_ends_the_link(ctx: LinkContext, fake: OAuthFake) -> None:
    fake.state.onboard_pending = ONBOARD_POLLS + 5
    with pytest.raises(LinkError, match="still onboarding"):
        code_assist_project(ctx, provider("antigravity"), issued(fake, "antigravity"))
    assert len(fake.state.onboard_calls) == ONBOARD_POLLS


def test_a_link_runs_the_rows_steps_and_names_its_method(ctx: LinkContext, fake: OAuthFake) -> None:
    github = provider("github")
    grant = obtain(ctx, github, github.method(None), FlowOptions(open_browser=False))
    assert grant.meta["authMethod"] == "device" and grant.meta["login"] == "octo-fake"
    assert grant.tokens.access_token == fake.state.last_reply("copilot")["token"]
