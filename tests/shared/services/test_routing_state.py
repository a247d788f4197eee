"""The routing copy on its own (no store): local transitions, and the admin reset."""

from __future__ import annotations

import pytest

from shared.domain.routing import DEFAULT_POLICIES, BreakerPhase
from shared.services.routing_state import RoutingState

pytestmark = pytest.mark.anyio
POLICY = DEFAULT_POLICIES["apikey"]


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_without_a_store_the_breaker_opens_and_probes_alone() -> None:
    clock = Clock()
    state = RoutingState(None, clock=clock)
    for _ in range(POLICY.breaker_threshold):
        opened = await state.record_failure("p", POLICY)
    assert opened.phase is BreakerPhase.OPEN and state.store_errors == 0
    assert not await state.try_probe("p", "me", 30)  # not due yet
    clock.now += POLICY.breaker_reset
    assert await state.try_probe("p", "me", 30)
    assert not await state.try_probe("p", "other", 30)  # one probe
    await state.finish_probe("p", "me", True, POLICY)
    assert state.view().breakers["p"].phase is BreakerPhase.CLOSED


async def test_reset_by_provider_clears_its_accounts_and_the_keyless_provider_itself() -> None:
    state = RoutingState(None, clock=Clock())
    for conn in ("c1", "c2", "ollama", "other"):
        await state.mark_cooldown(conn, None, POLICY, 30.0, "rate_limited")
    await state.record_failure("ollama", POLICY)
    result = await state.reset({"c1": "groq", "c2": "groq", "other": "xai"}, "groq", None)
    assert result == {"breakers": 0, "cooldowns": 2}
    result = await state.reset({}, "ollama", None)
    assert result == {"breakers": 1, "cooldowns": 1}
    assert set(state.view().cooldowns) == {("other", None)} and state.store_errors == 0
    assert (await state.reset({}, None, None))["cooldowns"] == 1
