"""The named steps a row's `post_link` lists, run after the tokens arrive and before they are pushed. Each
fills what the provider's executor needs to know about the account (or, for Copilot, mints the token it
actually sends), and every URL goes through `endpoint()` (inside `call`).

- `codex-id-token`: the id token's claims (read, not verified: it came straight from the token endpoint over
  TLS) give the ChatGPT account id the Codex backend wants in `ChatGPT-Account-Id`, the plan and the email.
- `claude-profile`: Claude's token reply carries `account` and `organization`.
- `copilot-token`: the GitHub token buys a Copilot token (about 25 minutes) and names the plan's API host;
  the Copilot token becomes the access token, the GitHub token the refresh token (the refresher mints the
  next Copilot token from it).
- `google-userinfo`: the Google account's email.
- `code-assist-project`: the Cloud Code Assist project requests are billed to; an account without one is
  onboarded (free tier unless the account offers another default) and the long-running operation is polled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from companion.oauth.grant import Grant
from companion.oauth.session import LinkContext, LinkError, call, error_text, post
from shared.domain.oauth import OAuthTokens
from shared.providers import chatgpt
from shared.providers.oauth import (
    CODE_ASSIST,
    CODE_ASSIST_DAILY,
    COPILOT_TOKEN_URL,
    GITHUB_USER_URL,
    GOOGLE_USERINFO,
    Body,
    OAuthProvider,
)
from shared.services.refresh_wire import Refreshed, read_reply

Step = Callable[[LinkContext, OAuthProvider, Grant], Grant]

ONBOARD_POLL_SECONDS = 2.0
ONBOARD_POLLS = 30
FREE_TIER = "free-tier"
# What Antigravity says about itself to Cloud Code Assist (CLIProxyAPI internal/auth/antigravity/auth.go)
LOAD_METADATA = {"ideType": "ANTIGRAVITY", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
ONBOARD_METADATA = {"ide_type": "ANTIGRAVITY", "ide_name": "antigravity"}


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def codex_id_token(ctx: LinkContext, provider: OAuthProvider, grant: Grant) -> Grant:
    claims = chatgpt.jwt_claims(grant.tokens.id_token)
    if claims is None:
        raise LinkError(f"{provider.name} sent no readable id token, so the ChatGPT account is unknown")
    found = chatgpt.identity(claims)
    if "accountId" not in found:
        raise LinkError(f"{provider.name}'s id token names no ChatGPT account (is this a ChatGPT plan login?)")
    return grant.with_meta(**found)


def claude_profile(ctx: LinkContext, provider: OAuthProvider, grant: Grant) -> Grant:
    account, org = _object(grant.reply.get("account")), _object(grant.reply.get("organization"))
    return grant.with_meta(
        email=_str(account.get("email_address")),
        accountId=_str(account.get("uuid")),
        organization=_str(org.get("name")),
        organizationId=_str(org.get("uuid")),
    )


def copilot_token(ctx: LinkContext, provider: OAuthProvider, grant: Grant) -> Grant:
    """The first Copilot token, minted and read exactly as the target's refresher mints the next ones."""
    github = grant.tokens.access_token
    auth = {**provider.headers, "authorization": f"token {github}"}
    minted = call(ctx, "GET", COPILOT_TOKEN_URL, headers=auth)
    held = OAuthTokens(access_token=github, refresh_token=github)
    result = read_reply(provider.refresh, provider, minted.status, {}, orjson.dumps(minted.body), held, time.time())
    if not minted.ok or not isinstance(result, Refreshed):
        raise LinkError(
            f"GitHub signed you in but Copilot refused a token ({error_text(minted)}): does this account have a "
            "Copilot plan?"
        )
    user = call(ctx, "GET", GITHUB_USER_URL, headers=auth).body
    linked = replace(grant, tokens=result.tokens, expires_at=result.expires_at, base_url=result.base_url)
    return linked.with_meta(**result.meta, login=_str(user.get("login")), email=_str(user.get("email")))


def _bearer(grant: Grant) -> dict[str, str]:
    return {"authorization": f"Bearer {grant.tokens.access_token}"}


def google_userinfo(ctx: LinkContext, provider: OAuthProvider, grant: Grant) -> Grant:
    info = call(ctx, "GET", GOOGLE_USERINFO, headers=_bearer(grant))
    if not info.ok:
        raise LinkError(f"Google did not tell who signed in ({error_text(info)})")
    return grant.with_meta(email=_str(info.body.get("email")))


def _project(doc: Mapping[str, Any]) -> str | None:
    """`cloudaicompanionProject` as a string or as `{id, name}`."""
    value = doc.get("cloudaicompanionProject")
    return _str(value) or _str(_object(value).get("id"))


def _default_tier(loaded: Mapping[str, Any]) -> str:
    for tier in loaded.get("allowedTiers") or []:
        if isinstance(tier, Mapping) and tier.get("isDefault") and _str(tier.get("id")):
            return str(tier["id"]).strip()
    return _str(_object(loaded.get("currentTier")).get("id")) or FREE_TIER


def code_assist_project(ctx: LinkContext, provider: OAuthProvider, grant: Grant) -> Grant:
    headers = {**provider.headers, **_bearer(grant)}
    loaded = post(ctx, f"{CODE_ASSIST}:loadCodeAssist", {"metadata": LOAD_METADATA}, Body.JSON, headers)
    if not loaded.ok:
        raise LinkError(f"Cloud Code Assist did not answer for this account ({error_text(loaded)})")
    project = _project(loaded.body)
    if project is not None:
        tier = _str(_object(loaded.body.get("currentTier")).get("id")) or _default_tier(loaded.body)
        return grant.with_meta(projectId=project, tier=tier)
    tier = _default_tier(loaded.body)
    ctx.say(f"This account has no Cloud Code Assist project yet: onboarding it ({tier})...")
    request = {"tier_id": tier, "metadata": ONBOARD_METADATA}
    for attempt in range(ONBOARD_POLLS):
        if attempt:
            ctx.sleep(ONBOARD_POLL_SECONDS)
        # Polled by asking again, as the official clients do: the answer is the operation, done or not.
        operation = post(ctx, f"{CODE_ASSIST_DAILY}:onboardUser", request, Body.JSON, headers)
        if not operation.ok:
            raise LinkError(f"Cloud Code Assist refused to onboard this account ({error_text(operation)})")
        if operation.body.get("done"):
            project = _project(_object(operation.body.get("response")))
            if project is None:
                raise LinkError("Cloud Code Assist onboarded the account but named no project")
            return grant.with_meta(projectId=project, tier=tier)
    raise LinkError(f"Cloud Code Assist was still onboarding after {ONBOARD_POLLS} checks; run the login again")


STEPS: dict[str, Step] = {
    "codex-id-token": codex_id_token,
    "claude-profile": claude_profile,
    "copilot-token": copilot_token,
    "google-userinfo": google_userinfo,
    "code-assist-project": code_assist_project,
}


def run_steps(ctx: LinkContext, provider: OAuthProvider, grant: Grant) -> Grant:
    for name in provider.post_link:
        grant = STEPS[name](ctx, provider, grant)
    return grant
