"""Where each subscription provider publishes an account's quota: one `QuotaSource` row per provider id.

Data, like the catalogue: the scheduled quota poll (`shared.services.quota_poll`) reads these rows and
never branches on a provider's name. Endpoints and headers as the official clients (and the projects that
follow them) call them:

- claude: `GET https://api.anthropic.com/api/oauth/usage`, `Authorization: Bearer <access token>`,
  `anthropic-beta: oauth-2025-04-20` (refused without it), no `anthropic-version`; Claude Code sends
  `User-Agent: claude-code/<version>` (CodexBar `ClaudeOAuthUsageFetcher.swift`, OmniRoute
  `open-sse/services/usage.ts`).
- codex: `GET https://chatgpt.com/backend-api/wham/usage`, `Authorization: Bearer <access token>`, with the
  optional `ChatGPT-Account-Id` that selects the workspace: the `chatgpt_account_id` of the access token's
  `https://api.openai.com/auth` claim (openai/codex `codex-rs/backend-client`, openusage `docs/providers/codex.md`).
- github: `GET https://api.github.com/copilot_internal/user` with the GitHub token (`Authorization: token
  <ghu_...>`, not the short-lived Copilot token) and the editor headers the Copilot Chat extension sends
  (OmniRoute `getGitHubCopilotInternalUserHeaders`).

A connection's own `base_url` (a relay, or a fake server in tests) moves the endpoint to that base's scheme
and host; a base on the provider's own hosts keeps the absolute URL (a Copilot connection's base is its plan
host, `api.business.githubcopilot.com`, while the quota lives on `api.github.com`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.domain.config import Connection
from shared.domain.live_quota import windows_from_claude_usage, windows_from_codex_usage, windows_from_copilot_user
from shared.domain.quota import LiveWindow
from shared.providers.catalog import get_provider
from shared.providers.chatgpt import account_id as chatgpt_account_id

__all__ = ["QUOTA_SOURCES", "QuotaSource", "chatgpt_account_id", "quota_source"]

Parser = Callable[[object, float], tuple[LiveWindow, ...]]

# What Claude Code sends on its own usage call; CodexBar falls back to this version when it knows no newer.
CLAUDE_CODE_USER_AGENT = "claude-code/2.1.0"


@dataclass(frozen=True, slots=True)
class QuotaSource:
    """How to read one provider's quota for a connection.

    `url`: the absolute endpoint. `path`: the same endpoint on another base's scheme and host.
    `official_hosts`: hosts (and their subdomains) that keep `url` even when the connection names a base.
    `auth_scheme`: the word before the credential in `Authorization`. `headers`: sent on every call.
    `token_headers`: headers derived from the credential itself (e.g. the account id inside a JWT).
    `parse`: the document (decoded JSON) and the time it was read → the account's windows.
    """

    provider: str
    url: str
    path: str
    official_hosts: tuple[str, ...]
    auth_scheme: str
    headers: tuple[tuple[str, str], ...]
    parse: Parser
    token_headers: Callable[[str], tuple[tuple[str, str], ...]] | None = None
    docs_url: str = ""
    # Copilot's quota is read with the long-lived GitHub token, which a linked account keeps as its refresh
    # token (its access token is the short-lived Copilot token minted from it).
    uses_refresh_token: bool = False

    def credential(self, connection: Connection) -> str | None:
        """The token this source is read with, for one account (None: it has none)."""
        account = connection.oauth
        if self.uses_refresh_token and account is not None and account.tokens is not None:
            return account.tokens.refresh_token or None
        return connection.api_key

    def url_for(self, connection: Connection) -> str:
        base = urlsplit(connection.base_url or "")
        host = (base.hostname or "").lower()
        if base.scheme not in ("http", "https") or not host or self._official(host):
            return self.url
        return f"{base.scheme}://{base.netloc}{self.path}"

    def _official(self, host: str) -> bool:
        return any(host == h or host.endswith("." + h) for h in self.official_hosts)

    def headers_for(self, token: str) -> dict[str, str]:
        headers = dict(self.headers)
        headers["authorization"] = f"{self.auth_scheme} {token}"
        if self.token_headers is not None:
            headers.update(self.token_headers(token))
        return headers


def _codex_account_header(token: str) -> tuple[tuple[str, str], ...]:
    account = chatgpt_account_id(token)
    return (("chatgpt-account-id", account),) if account else ()


def _catalogue_headers(provider: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Headers the catalogue row already sends upstream, so the quota call presents the same client."""
    spec = get_provider(provider)
    sent = dict(spec.extra_headers) if spec is not None else {}
    return tuple((name, sent[name]) for name in names if name in sent)


_JSON = ("accept", "application/json")

QUOTA_SOURCES: dict[str, QuotaSource] = {
    source.provider: source
    for source in (
        # Rate-limited per access token and hard (429 `rate_limit_error` for hours after polling every few
        # minutes: anthropics/claude-code#30930, #31637); the 15-minute schedule stays well clear, answers'
        # headers carry the same windows for busy accounts, and a 429 here says nothing about the quota.
        QuotaSource(
            provider="claude",
            url="https://api.anthropic.com/api/oauth/usage",
            path="/api/oauth/usage",
            official_hosts=("anthropic.com",),
            auth_scheme="Bearer",
            headers=(_JSON, ("anthropic-beta", "oauth-2025-04-20"), ("user-agent", CLAUDE_CODE_USER_AGENT)),
            parse=windows_from_claude_usage,
            docs_url="https://docs.anthropic.com/en/docs/claude-code/overview",
        ),
        QuotaSource(
            provider="codex",
            url="https://chatgpt.com/backend-api/wham/usage",
            path="/backend-api/wham/usage",
            official_hosts=("chatgpt.com",),
            auth_scheme="Bearer",
            headers=(_JSON, *_catalogue_headers("codex", ("originator",))),
            parse=windows_from_codex_usage,
            token_headers=_codex_account_header,
            docs_url="https://github.com/openai/codex",
        ),
        QuotaSource(
            provider="github",
            url="https://api.github.com/copilot_internal/user",
            path="/copilot_internal/user",
            official_hosts=("github.com", "githubcopilot.com"),
            # GitHub's REST API takes `token` and `Bearer` alike; the Copilot extension sends `token`.
            auth_scheme="token",
            headers=(
                _JSON,
                *_catalogue_headers(
                    "github", ("editor-version", "editor-plugin-version", "user-agent", "x-github-api-version")
                ),
            ),
            parse=windows_from_copilot_user,
            docs_url="https://docs.github.com/en/copilot",
            uses_refresh_token=True,
        ),
    )
}


def quota_source(provider_id: str) -> QuotaSource | None:
    """The quota source of a catalogue provider id ("claude", "codex", "github"); None when it has none."""
    return QUOTA_SOURCES.get(provider_id)
