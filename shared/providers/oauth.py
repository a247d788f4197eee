"""How each subscription provider's accounts are linked and kept fresh: data, one row per catalogue id.

The companion's login flows (`companion/oauth/`) and the cloud's refresher (`shared/services/token_refresh.py`)
read these rows and never branch on a provider's name; what cannot be data is a named step (`post_link`) or a
named refresh style. Facts from the project notes `oauth-providers.md` (endpoints, public client ids, registered
redirect ports, lead times) with the sources cited there: the official CLIs, CLIProxyAPI(+) and 9router.

Three kinds of login method:
- `browser`: authorization code + PKCE (S256), the browser sent back to a loopback callback server on the port
  the provider registered for its client; `paste_redirect` (or the loopback URL itself when the provider has
  no paste page) lets a headless machine finish by pasting the code or the whole redirected URL.
- `device`: RFC 8628 device authorization (GitHub, Kimi, xAI), or a provider's own variant named by `style`
  (`aws-oidc` for Kiro's Builder ID, `codex` for ChatGPT's device login).

Every absolute URL here goes through `endpoint()`, which lets tests (and only an owner who sets the variable)
move a provider's hosts to fake servers on loopback with `OMNIROUTE_OAUTH_HOSTS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from urllib.parse import urlsplit

HOSTS_ENV = "OMNIROUTE_OAUTH_HOSTS"


class Body(StrEnum):
    """How a token endpoint wants its request body."""

    FORM = "form"  # application/x-www-form-urlencoded
    JSON = "json"


class DeviceStyle(StrEnum):
    RFC8628 = "rfc8628"  # form POST, `authorization_pending` / `slow_down` in an error body (GitHub, Kimi, xAI)
    AWS_OIDC = "aws-oidc"  # AWS SSO-OIDC: register a client, then JSON camelCase device authorization (Kiro)
    CODEX = "codex"  # ChatGPT's device login: user code, poll for an authorization code, then a PKCE exchange


class RefreshStyle(StrEnum):
    OAUTH2 = "oauth2"  # grant_type=refresh_token to the token URL (form or JSON per `body`)
    COPILOT_EXCHANGE = "copilot-exchange"  # mint a short-lived Copilot token from the long-lived GitHub token
    AWS_OIDC = "aws-oidc"  # {clientId, clientSecret, refreshToken, grantType} JSON to the OIDC token URL
    KIRO_SOCIAL = "kiro-social"  # {refreshToken} JSON to Kiro's auth service /refreshToken


@dataclass(frozen=True, slots=True)
class BrowserLogin:
    """Authorization code + PKCE with a loopback callback.

    `ports`: the registered callback ports, tried in order (Codex: 1455, then 1457). `redirect_host` is the
    host name the provider registered (`localhost` or `127.0.0.1`); the server binds 127.0.0.1 either way.
    `paste_redirect`: a provider page that shows the code to copy (Claude shows `code#state`); None means
    the paste fallback takes the loopback URL the browser was sent to (it fails to load on a headless
    machine, but its address bar holds the code and state). `loopback_only`: no paste fallback at all.
    """

    authorize_url: str
    token_url: str
    client_id: str
    scope: str
    ports: tuple[int, ...]
    redirect_path: str
    redirect_host: str = "localhost"
    client_secret: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    body: Body = Body.FORM
    state_in_token_request: bool = False  # Claude's token endpoint wants `state` echoed
    paste_redirect: str | None = None
    loopback_only: bool = False
    # the exchange's name for the code. Kiro's social login has no client id: its exchange is just
    # {code, code_verifier, redirect_uri} (no grant_type), answered in camelCase (CLIProxyAPIPlus social_auth.go)
    code_field: str = "code"

    def redirect_uri(self, port: int) -> str:
        return f"http://{self.redirect_host}:{port}{self.redirect_path}"


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """A device authorization flow: the user opens a URL on any device and types a code."""

    style: DeviceStyle
    device_url: str
    token_url: str
    client_id: str = ""
    scope: str = ""
    # AWS SSO-OIDC: where clients are registered and which start URL the login uses (Builder ID's by default)
    register_url: str = ""
    start_url: str = ""
    # xAI publishes its endpoints through OpenID discovery; when set, device_url/token_url are its fallbacks
    discovery_url: str = ""
    # ChatGPT's device login: where the user goes, and the redirect the exchange names
    verification_url: str = ""
    exchange_redirect: str = ""
    default_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class LoginMethod:
    name: str  # what `omniroute login <provider> --method <name>` takes
    label: str
    login: BrowserLogin | DeviceLogin


@dataclass(frozen=True, slots=True)
class RefreshSpec:
    """How the cloud keeps an account's access token fresh.

    `lead_seconds`: refresh when the access token has less than this left (the scheduled run every 5 minutes
    adds its own period on top, see `token_refresh`). `rotates`: the provider returns a new refresh token and
    the old one stops working (single use), so exactly one refresher may ever send it. `serialize`:
    `account` (one refresher per account) or `provider` (one at a time across all accounts: sibling Codex
    accounts refreshing at once revoked each other, OmniRoute#2941).
    """

    style: RefreshStyle
    url: str
    lead_seconds: float
    rotates: bool
    body: Body = Body.FORM
    client_id: str = ""
    client_secret: str | None = None
    scope: str = ""
    serialize: str = "account"
    # token-endpoint errors that mean the grant is gone for good: never retried, the account needs relinking
    fatal_errors: tuple[str, ...] = ("invalid_grant", "refresh_token_reused", "invalid_client", "unauthorized_client")


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """One linkable subscription provider. `id` is the catalogue id the connection is stored under.

    `post_link`: named steps run after the tokens arrive (at link time, in the companion), each filling
    per-account metadata the executors need: `codex-id-token` (ChatGPT account id, plan and email from the
    id token), `copilot-token` (first Copilot token and the plan's API host), `google-userinfo` (email),
    `code-assist-project` (the Cloud Code Assist project, onboarding the account when it has none),
    `claude-profile` (account email and organisation from the token reply).
    """

    id: str
    name: str
    methods: tuple[LoginMethod, ...]
    refresh: RefreshSpec
    post_link: tuple[str, ...] = ()
    retired_note: str = ""
    terms_note: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # sent on this provider's auth calls

    def method(self, name: str | None) -> LoginMethod:
        """The named method, or the first (the provider's usual one). Raises KeyError for an unknown name."""
        if name is None:
            return self.methods[0]
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)


GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
GOOGLE_USERINFO = "https://www.googleapis.com/oauth2/v2/userinfo"
CODE_ASSIST = "https://cloudcode-pa.googleapis.com/v1internal"
CODE_ASSIST_DAILY = "https://daily-cloudcode-pa.googleapis.com/v1internal"
COPILOT_TOKEN_URL = "https://api.github.com/copilot_internal/v2/token"
GITHUB_USER_URL = "https://api.github.com/user"
KIRO_AUTH = "https://prod.us-east-1.auth.desktop.kiro.dev"
AWS_OIDC = "https://oidc.us-east-1.amazonaws.com"
BUILDER_ID_START_URL = "https://view.awsapps.com/start"

_CLAUDE_CLIENT = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
_CODEX_CLIENT = "app_EMoamEEZ73f0CkXaXp7hrann"
_COPILOT_CLIENT = "Iv1.b507a08c87ecfe98"
_ANTIGRAVITY_CLIENT = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
_ANTIGRAVITY_SECRET = "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"  # public by design: installed-app client
_KIMI_CLIENT = "17e5f671-d194-4dfb-9706-5516cb48c098"
_XAI_CLIENT = "b1a00492-073a-47ea-816f-4c329264a828"

_ANTHROPIC_TERMS = (
    "Anthropic's terms limit Pro/Max OAuth tokens to Claude Code and claude.ai; using them through a gateway may "
    "get the account flagged. You decide."
)
_GOOGLE_TERMS = "Google's Antigravity terms forbid third-party use of its OAuth; accounts have been suspended."

OAUTH_PROVIDERS: tuple[OAuthProvider, ...] = (
    OAuthProvider(
        id="claude",
        name="Claude Code (Pro/Max)",
        methods=(
            LoginMethod(
                "browser",
                "Browser (loopback callback on port 54545; --paste shows a code to paste instead)",
                BrowserLogin(
                    authorize_url="https://claude.ai/oauth/authorize",
                    token_url="https://platform.claude.com/v1/oauth/token",
                    client_id=_CLAUDE_CLIENT,
                    scope="user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload",
                    ports=(54545,),
                    redirect_path="/callback",
                    params=(("code", "true"),),
                    body=Body.JSON,
                    state_in_token_request=True,
                    paste_redirect="https://platform.claude.com/oauth/code/callback",
                ),
            ),
        ),
        refresh=RefreshSpec(
            style=RefreshStyle.OAUTH2,
            url="https://platform.claude.com/v1/oauth/token",
            lead_seconds=4 * 3600,
            rotates=True,
            body=Body.JSON,
            client_id=_CLAUDE_CLIENT,
        ),
        post_link=("claude-profile",),
        terms_note=_ANTHROPIC_TERMS,
        # a versioned claude-code User-Agent on refresh drew 429s (WhereMyTokens#9)
        headers={"user-agent": "axios/1.15.2"},
    ),
    OAuthProvider(
        id="codex",
        name="OpenAI Codex (ChatGPT Plus/Pro/Team)",
        methods=(
            LoginMethod(
                "browser",
                "Browser (loopback callback on port 1455, or 1457 when 1455 is taken)",
                BrowserLogin(
                    authorize_url="https://auth.openai.com/oauth/authorize",
                    token_url="https://auth.openai.com/oauth/token",
                    client_id=_CODEX_CLIENT,
                    scope="openid profile email offline_access",
                    ports=(1455, 1457),
                    redirect_path="/auth/callback",
                    params=(
                        ("id_token_add_organizations", "true"),
                        ("codex_cli_simplified_flow", "true"),
                        ("originator", "codex_cli_rs"),
                    ),
                ),
            ),
            LoginMethod(
                "device",
                "Device code (open auth.openai.com/codex/device on any device)",
                DeviceLogin(
                    style=DeviceStyle.CODEX,
                    device_url="https://auth.openai.com/api/accounts/deviceauth/usercode",
                    token_url="https://auth.openai.com/api/accounts/deviceauth/token",
                    client_id=_CODEX_CLIENT,
                    verification_url="https://auth.openai.com/codex/device",
                    exchange_redirect="https://auth.openai.com/deviceauth/callback",
                ),
            ),
        ),
        refresh=RefreshSpec(
            style=RefreshStyle.OAUTH2,
            url="https://auth.openai.com/oauth/token",
            lead_seconds=5 * 86400,
            rotates=True,
            client_id=_CODEX_CLIENT,
            scope="openid profile email",
            serialize="provider",
        ),
        post_link=("codex-id-token",),
    ),
    OAuthProvider(
        id="github",
        name="GitHub Copilot",
        methods=(
            LoginMethod(
                "device",
                "Device code (github.com/login/device)",
                DeviceLogin(
                    style=DeviceStyle.RFC8628,
                    device_url="https://github.com/login/device/code",
                    token_url="https://github.com/login/oauth/access_token",
                    client_id=_COPILOT_CLIENT,
                    scope="read:user",
                ),
            ),
        ),
        # The GitHub token is long-lived and is kept as the refresh token; the "access token" is the Copilot
        # token minted from it, good for about 25 minutes (refresh_in ≈ 1500 s).
        refresh=RefreshSpec(
            style=RefreshStyle.COPILOT_EXCHANGE,
            url=COPILOT_TOKEN_URL,
            lead_seconds=5 * 60,
            rotates=False,
        ),
        post_link=("copilot-token",),
        headers={
            "editor-version": "vscode/1.110.0",
            "editor-plugin-version": "copilot-chat/0.38.0",
            "user-agent": "GitHubCopilotChat/0.38.0",
            "x-github-api-version": "2025-04-01",
        },
    ),
    OAuthProvider(
        id="antigravity",
        name="Google Antigravity",
        methods=(
            LoginMethod(
                "browser",
                "Browser (loopback callback on port 51121; Google allows loopback redirects only)",
                BrowserLogin(
                    authorize_url=GOOGLE_AUTHORIZE,
                    token_url=GOOGLE_TOKEN,
                    client_id=_ANTIGRAVITY_CLIENT,
                    client_secret=_ANTIGRAVITY_SECRET,
                    scope=" ".join(
                        (
                            "https://www.googleapis.com/auth/cloud-platform",
                            "https://www.googleapis.com/auth/userinfo.email",
                            "https://www.googleapis.com/auth/userinfo.profile",
                            "https://www.googleapis.com/auth/cclog",
                            "https://www.googleapis.com/auth/experimentsandconfigs",
                        )
                    ),
                    ports=(51121,),
                    redirect_path="/oauth-callback",
                    params=(("access_type", "offline"), ("prompt", "consent")),
                    loopback_only=True,
                ),
            ),
        ),
        refresh=RefreshSpec(
            style=RefreshStyle.OAUTH2,
            url=GOOGLE_TOKEN,
            lead_seconds=5 * 60,
            rotates=False,
            client_id=_ANTIGRAVITY_CLIENT,
            client_secret=_ANTIGRAVITY_SECRET,
        ),
        post_link=("google-userinfo", "code-assist-project"),
        terms_note=_GOOGLE_TERMS,
    ),
    OAuthProvider(
        id="kiro",
        name="Kiro (AWS CodeWhisperer)",
        methods=(
            LoginMethod(
                "builder-id",
                "AWS Builder ID device code",
                DeviceLogin(
                    style=DeviceStyle.AWS_OIDC,
                    register_url=f"{AWS_OIDC}/client/register",
                    device_url=f"{AWS_OIDC}/device_authorization",
                    token_url=f"{AWS_OIDC}/token",
                    start_url=BUILDER_ID_START_URL,
                    scope="codewhisperer:completions codewhisperer:analysis codewhisperer:conversations",
                ),
            ),
            LoginMethod(
                "google",
                "Google account through Kiro's sign-in (loopback callback on port 9876)",
                BrowserLogin(
                    authorize_url=f"{KIRO_AUTH}/login",
                    token_url=f"{KIRO_AUTH}/oauth/token",
                    client_id="",
                    scope="",
                    ports=(9876,),
                    redirect_path="/oauth/callback",
                    params=(("idp", "Google"), ("prompt", "select_account")),
                    body=Body.JSON,
                ),
            ),
            LoginMethod(
                "github",
                "GitHub account through Kiro's sign-in (loopback callback on port 9876)",
                BrowserLogin(
                    authorize_url=f"{KIRO_AUTH}/login",
                    token_url=f"{KIRO_AUTH}/oauth/token",
                    client_id="",
                    scope="",
                    ports=(9876,),
                    redirect_path="/oauth/callback",
                    params=(("idp", "Github"), ("prompt", "select_account")),
                    body=Body.JSON,
                ),
            ),
        ),
        # Builder ID accounts refresh at the OIDC token URL with their registered client; social logins use
        # Kiro's /refreshToken (which does not work for IdC tokens). The stored `authMethod` picks the style.
        refresh=RefreshSpec(
            style=RefreshStyle.AWS_OIDC,
            url=f"{AWS_OIDC}/token",
            lead_seconds=10 * 60,
            rotates=True,
        ),
    ),
    OAuthProvider(
        id="kimi-code",
        name="Kimi Code",
        methods=(
            LoginMethod(
                "device",
                "Device code (auth.kimi.com)",
                DeviceLogin(
                    style=DeviceStyle.RFC8628,
                    device_url="https://auth.kimi.com/api/oauth/device_authorization",
                    token_url="https://auth.kimi.com/api/oauth/token",
                    client_id=_KIMI_CLIENT,
                ),
            ),
        ),
        refresh=RefreshSpec(
            style=RefreshStyle.OAUTH2,
            url="https://auth.kimi.com/api/oauth/token",
            lead_seconds=5 * 60,
            rotates=True,
            client_id=_KIMI_CLIENT,
        ),
    ),
    OAuthProvider(
        id="grok-cli",
        name="Grok CLI (xAI)",
        methods=(
            LoginMethod(
                "device",
                "Device code (auth.x.ai)",
                DeviceLogin(
                    style=DeviceStyle.RFC8628,
                    discovery_url="https://auth.x.ai/.well-known/openid-configuration",
                    device_url="https://auth.x.ai/oauth2/device/code",
                    token_url="https://auth.x.ai/oauth2/token",
                    client_id=_XAI_CLIENT,
                    scope="openid profile email offline_access grok-cli:access api:access",
                ),
            ),
        ),
        refresh=RefreshSpec(
            style=RefreshStyle.OAUTH2,
            url="https://auth.x.ai/oauth2/token",
            lead_seconds=5 * 60,
            rotates=True,
            client_id=_XAI_CLIENT,
        ),
    ),
)

# Catalogue rows whose free OAuth ended upstream: `omniroute login` explains instead of starting a flow.
RETIRED_OAUTH = ("gemini-cli", "qwen", "iflow")

KIRO_SOCIAL_REFRESH = RefreshSpec(
    style=RefreshStyle.KIRO_SOCIAL, url=f"{KIRO_AUTH}/refreshToken", lead_seconds=10 * 60, rotates=True, body=Body.JSON
)


@cache
def _by_id() -> dict[str, OAuthProvider]:
    return {p.id: p for p in OAUTH_PROVIDERS}


def oauth_provider(provider_id: str) -> OAuthProvider | None:
    """The linking and refresh rules of a catalogue id ("claude", "codex", ...); None for any other."""
    return _by_id().get(provider_id)


def refresh_spec(provider_id: str, meta: Mapping[str, object]) -> RefreshSpec | None:
    """How to refresh one account: the provider's rule, or Kiro's social rule for a Google/GitHub login."""
    provider = oauth_provider(provider_id)
    if provider is None:
        return None
    if provider.id == "kiro" and meta.get("authMethod") in ("google", "github"):
        return KIRO_SOCIAL_REFRESH
    return provider.refresh


@cache
def _host_map(raw: str) -> dict[str, str]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    return {str(k).rstrip("/").lower(): str(v).rstrip("/") for k, v in doc.items()}


def endpoint(url: str) -> str:
    """`url`, or the same path on the origin `OMNIROUTE_OAUTH_HOSTS` maps its origin to.

    `OMNIROUTE_OAUTH_HOSTS='{"https://auth.openai.com": "http://127.0.0.1:5555"}'` sends every call to
    auth.openai.com to a fake server. Only an owner can set it (the deployed functions never do), so it is not a
    way for a request to reach an address of its choosing.
    """
    raw = os.environ.get(HOSTS_ENV)
    if not raw:
        return url
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    target = _host_map(raw).get(origin)
    if target is None:
        return url
    rest = url[len(origin) :]
    return target + rest
