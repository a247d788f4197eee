"""One login from start to grant: the method's flow (browser or device), then the provider's post-link steps.

Nothing here branches on a provider: the row says which flow, which wire style and which steps.
"""

from __future__ import annotations

from companion.oauth.browser import run_browser
from companion.oauth.device import run_device
from companion.oauth.grant import Grant
from companion.oauth.post_link import run_steps
from companion.oauth.session import FlowOptions, LinkContext, LinkError
from shared.providers.oauth import BrowserLogin, LoginMethod, OAuthProvider


def check(provider: OAuthProvider, method: LoginMethod, options: FlowOptions) -> None:
    """Refuse, before anything starts, options the method cannot honour (LinkError with exit code 2)."""
    login = method.login
    if not isinstance(login, BrowserLogin):
        if options.paste:
            raise LinkError(f"--paste applies to browser logins; {provider.id} {method.name} uses a device code", 2)
        return
    if options.paste and login.loopback_only:
        port = login.ports[0]
        raise LinkError(
            f"{provider.name} only accepts its loopback callback (port {port}), so --paste cannot finish this "
            "login. Run it where a browser can reach this machine's loopback; on a remote machine, forward the "
            f"port first (ssh -L {port}:127.0.0.1:{port} <this machine>).",
            2,
        )


def obtain(ctx: LinkContext, provider: OAuthProvider, method: LoginMethod, options: FlowOptions) -> Grant:
    """Run `method` and the provider's post-link steps. The grant's meta names the method (`authMethod`): the
    refresher tells Kiro's social logins from Builder ID by it."""
    check(provider, method, options)
    run = run_browser if isinstance(method.login, BrowserLogin) else run_device
    grant = run(ctx, provider, method, options).with_meta(authMethod=method.name)
    return run_steps(ctx, provider, grant)
