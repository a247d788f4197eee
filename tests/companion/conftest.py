"""Fixtures the companion's OAuth tests share: the fake authorization server (every provider's OAuth
endpoints on loopback), with each provider's URLs pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.providers.oauth import HOSTS_ENV
from tests.fakes.oauth_servers import OAuthFake, OAuthFakeState, serve_oauth_fake


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OAuthFake, str]]:
    """The fake, one per test module, and the OMNIROUTE_OAUTH_HOSTS value that points providers at it."""
    with serve_oauth_fake() as running:
        yield running


@pytest.fixture
def fake(served: tuple[OAuthFake, str], monkeypatch: pytest.MonkeyPatch) -> OAuthFake:
    """The fake with fresh state, every provider URL (through `endpoint()`) rewritten to it for this test."""
    server, hosts = served
    server.state = OAuthFakeState()
    monkeypatch.setenv(HOSTS_ENV, hosts)
    return server
