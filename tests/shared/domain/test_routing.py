"""Breaker keys, credential profiles and the breaker's transitions as one instance makes them alone."""

from __future__ import annotations

from shared.domain.routing import (
    DEFAULT_POLICIES,
    BreakerPhase,
    BreakerState,
    Policy,
    breaker_key,
    policy_of,
    profile_of,
)


def test_an_account_with_its_own_base_url_has_its_own_breaker() -> None:
    assert breaker_key("groq", None) == "groq"
    assert breaker_key("groq", "https://proxy.example/v1/") == "groq@https://proxy.example/v1"


def test_the_profile_follows_the_provider_also_through_a_breaker_key() -> None:
    assert profile_of("claude") == profile_of("claude@https://x.example") == "oauth"
    assert profile_of("deepseek") == profile_of("node_abc") == "apikey"
    strict = {"oauth": Policy(1.0, 1, 2, 5.0)}
    assert policy_of("claude@https://x.example", strict).breaker_threshold == 2
    assert policy_of("deepseek", strict) == DEFAULT_POLICIES["apikey"]


def test_the_breaker_opens_at_its_threshold_and_only_its_probe_decides_then() -> None:
    state = BreakerState("p")
    for _ in range(2):
        state = state.after_failure(100.0, 3, 30.0)
    assert state.phase is BreakerPhase.CLOSED and state.failures == 2
    state = state.after_failure(100.0, 3, 30.0)
    assert (state.phase, state.failures, state.open_until) == (BreakerPhase.OPEN, 0, 130.0)
    assert state.after_failure(101.0, 3, 30.0) == state  # no counting while open
    assert state.with_probe("a", 129.0, 10.0) is None
    probing = state.with_probe("a", 130.0, 10.0)
    assert probing is not None and probing.with_probe("b", 135.0, 10.0) is None
    assert probing.after_probe("b", False, 136.0, 30.0) == probing  # not b's probe to fail
    assert probing.after_probe("b", True, 136.0, 30.0).phase is BreakerPhase.CLOSED  # any success closes
    assert probing.after_probe("a", False, 136.0, 30.0).open_until == 166.0
