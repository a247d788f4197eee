"""Browser logins: authorization code + PKCE (S256), the browser sent back to a loopback callback.

    authorize URL ──browser──▶ provider sign-in ──redirect──▶ http://localhost:<port><path>?code&state
    code + verifier ──POST token_url (form or JSON, per the row)──▶ tokens

Headless machines finish by pasting instead (`--paste`, or on their own when no browser can be opened here):
the provider's code page shows `code#state` (Claude), or, for providers without one, the browser's address
bar holds the whole redirected URL even though the page does not load. Either way `state` is checked before
the code is used. Providers that register only loopback redirects (Google, for Antigravity) have no paste
fallback at all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from companion.oauth.grant import Grant, grant_from_reply
from companion.oauth.loopback import DEFAULT_TIMEOUT_SECONDS, bind_callback, judge
from companion.oauth.pkce import Pkce, new_pkce, new_state
from companion.oauth.session import FlowOptions, LinkContext, LinkError, error_text, post
from shared.providers.oauth import BrowserLogin, LoginMethod, OAuthProvider, endpoint

PASTE_ATTEMPTS = 3


def authorize_url(login: BrowserLogin, redirect_uri: str, pkce: Pkce, state: str) -> str:
    """Where the browser goes. A row without a client id is a provider's own sign-in page (Kiro's), which
    takes no client id, response type or scope: only its params, the redirect, PKCE and state."""
    params: dict[str, str] = dict(login.params)
    if login.client_id:
        params["client_id"] = login.client_id
        params["response_type"] = "code"
    params["redirect_uri"] = redirect_uri
    if login.scope:
        params["scope"] = login.scope
    params.update(code_challenge=pkce.challenge, code_challenge_method=pkce.method, state=state)
    return f"{endpoint(login.authorize_url)}?{urlencode(params)}"


def exchange_code(
    ctx: LinkContext,
    provider: OAuthProvider,
    login: BrowserLogin,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    state: str | None = None,
) -> Grant:
    """Trade the code for tokens at the row's token URL (RFC 6749 §4.1.3 + RFC 7636 §4.5). Kiro's auth
    service, which has no client id, takes just {code, code_verifier, redirect_uri}."""
    fields: dict[str, Any] = {}
    if login.client_id:
        fields.update(grant_type="authorization_code", client_id=login.client_id)
    fields.update({login.code_field: code, "redirect_uri": redirect_uri, "code_verifier": verifier})
    if login.client_secret:
        fields["client_secret"] = login.client_secret
    if login.state_in_token_request and state is not None:
        fields["state"] = state
    reply = post(ctx, login.token_url, fields, login.body, provider.headers)
    if not reply.ok:
        raise LinkError(
            f"{provider.name} did not accept the authorization code ({error_text(reply)}); nothing was linked"
        )
    return grant_from_reply(reply.body, ctx.now(), what=f"{provider.name}'s token endpoint")


def code_from_paste(text: str, state: str) -> str:
    """The code in what the user pasted: `code#state` (a provider's code page), or the redirected URL (or
    just its query). LinkError when the state is not this login's, or the provider reported an error;
    ValueError when the text holds no code and state to check (the user may try again)."""
    text = text.strip()
    if "code=" in text or "error=" in text:
        query = urlsplit(text).query if "://" in text else text.split("?", 1)[-1]
        outcome, *_ = judge(query.split("#", 1)[0], state)
        if outcome.failure is not None:
            raise outcome.failure
        assert outcome.code is not None
        return outcome.code
    code, sep, pasted_state = text.partition("#")
    if not sep or not code:
        raise ValueError("paste the whole `code#state` line, or the full address the browser ended on")
    if pasted_state != state:
        raise LinkError(
            "state mismatch: the pasted code belongs to another login, so it was not used; run the login again"
        )
    return code


def _read_paste(ctx: LinkContext, state: str, prompt: str) -> str:
    for _ in range(PASTE_ATTEMPTS):
        try:
            text = ctx.ask(prompt)
        except EOFError:
            raise LinkError("nothing was pasted; nothing was linked") from None
        try:
            return code_from_paste(text, state)
        except ValueError as why:
            ctx.say(str(why))
    raise LinkError("no code and state could be read from what was pasted; nothing was linked")


def _show(ctx: LinkContext, provider: OAuthProvider, url: str, options: FlowOptions) -> None:
    opened = options.open_browser and ctx.browser is not None and ctx.browser(url)
    if opened:
        ctx.say(f"Your browser was opened to sign in to {provider.name}. If it did not, open this address:")
    else:
        ctx.say(f"Open this address in a browser to sign in to {provider.name}:")
    ctx.say(f"  {url}")


def run_browser(ctx: LinkContext, provider: OAuthProvider, method: LoginMethod, options: FlowOptions) -> Grant:
    login = method.login
    if not isinstance(login, BrowserLogin):
        raise TypeError(f"{provider.id} {method.name} is not a browser login")
    paste = options.paste  # flows.check refused --paste for loopback-only rows
    if not paste and options.open_browser and ctx.browser is None and not login.loopback_only:
        ctx.say("No browser can be opened on this machine: sign in on any device, then paste the result here.")
        paste = True
    pkce, state = new_pkce(), new_state()
    ports = (options.port,) if options.port else login.ports
    if paste:
        redirect_uri = login.paste_redirect or login.redirect_uri(ports[0])
        _show(ctx, provider, authorize_url(login, redirect_uri, pkce, state), options)
        prompt = (
            "Paste the code the page shows"
            if login.paste_redirect
            else "Paste the full address your browser ended on (the page itself will not load)"
        )
        code = _read_paste(ctx, state, prompt)
    else:
        hint = (
            "close the program holding it, or forward the port from a machine with a browser"
            if login.loopback_only
            else "close the program holding it, or finish by pasting with --paste"
        )
        timeout = options.timeout or DEFAULT_TIMEOUT_SECONDS
        with bind_callback(ports, login.redirect_path, state, busy_hint=hint) as server:
            redirect_uri = login.redirect_uri(server.port)
            _show(ctx, provider, authorize_url(login, redirect_uri, pkce, state), options)
            ctx.say(f"Waiting for the sign-in to come back on port {server.port} (up to {timeout:g} s)...")
            code = server.wait(timeout)
    return exchange_code(
        ctx, provider, login, code=code, verifier=pkce.verifier, redirect_uri=redirect_uri, state=state
    )
