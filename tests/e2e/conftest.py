"""End-to-end fixtures: a fake OpenAI upstream on loopback and a real `omniroute serve` pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Gateway
from tests.fakes.openai_upstream import create_app
from tests.fakes.server import ServerThread

UPSTREAM_KEY = "sk-upstream-fake-0123456789"


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[ServerThread]:
    with ServerThread(create_app(api_key=UPSTREAM_KEY)) as server:
        yield server


@pytest.fixture
def fake_state(fake_upstream: ServerThread, gateway: Gateway):  # type: ignore[no-untyped-def]
    """The fake's in-process state, emptied before each test, and the shared gateway's routing state reset
    (a scripted 429 or 401 cools the only account down, which would answer the next test's request)."""
    state = fake_upstream.app.state.fake  # type: ignore[attr-defined]
    state.clear_requests()
    state.clear_script()
    with gateway.admin() as admin:
        assert admin.post("/health/reset", json={}).status_code == 200
    return state


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: ServerThread) -> Iterator[Gateway]:
    """One shared gateway with two routes to the fake: a catalogue provider (deepseek) with a baseUrl override,
    and a custom node with prefix `fake`."""
    gw = Gateway(data_dir=tmp_path_factory.mktemp("gw") / "data").start()
    try:
        gw.admin_post(
            "/providers", {"provider": "deepseek", "apiKey": UPSTREAM_KEY, "baseUrl": fake_upstream.base_url + "/v1"}
        )
        node = gw.admin_post(
            "/provider-nodes", {"name": "Fake", "prefix": "fake", "baseUrl": fake_upstream.base_url + "/v1"}
        )["node"]
        gw.admin_post("/providers", {"provider": node["id"], "apiKey": UPSTREAM_KEY, "name": "fake-1"})
        gw.admin_post("/provider-models", {"provider": "fake", "modelId": "gpt-4o-mini"})
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def fresh_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of its own (for tests that restart or kill it)."""
    gw = Gateway(data_dir=tmp_path / "data")
    try:
        yield gw
    finally:
        gw.stop()
