"""Linking subscription accounts from the owner's machine (`omniroute login <provider>`).

The rows in `shared.providers.oauth` say everything a flow needs; these modules only speak the wire styles:

    pkce.py       verifier, S256 challenge, state
    loopback.py   the one-shot callback server on the provider's registered port
    browser.py    authorization code + PKCE (loopback, or pasted on a headless machine)
    device.py     device codes: RFC 8628, AWS SSO-OIDC (Kiro Builder ID), ChatGPT's own
    post_link.py  the named steps after the tokens arrive (account ids, Copilot token, Code Assist project)
    flows.py      one login start to finish;  push.py  the grant to the target's `POST /api/oauth/link`
    session.py    what a flow is handed (terminal, browser, HTTP, clock) and its error;  grant.py  its result
"""
