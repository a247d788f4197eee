"""What `/api/health` and `omniroute status` show about routing: breakers, cooldowns, cache, latency.

Breakers and cooldowns are read fresh from the store (the same state every gateway instance routes on).
Latency percentiles per provider come from the histograms instances add to the store every
`LATENCY_FLUSH_SECONDS`, plus what this process has not flushed yet. Cache and idempotency counts are this
process's own: locally that is the gateway; in the cloud the admin function serves no traffic, so they read
zero there (CloudWatch has the gateway's metrics).
"""

from __future__ import annotations

from typing import Any

from shared.domain.config import ConfigSnapshot
from shared.domain.latency import summary
from shared.domain.routing import BreakerPhase, policy_of
from shared.services.replay import ReplayService
from shared.services.routing_state import RoutingState

LATENCY_WINDOW_MINUTES = 15


class HealthService:
    def __init__(self, routing: RoutingState, replay: ReplayService) -> None:
        self._routing = routing
        self._replay = replay

    async def report(self, snapshot: ConfigSnapshot) -> dict[str, Any]:
        await self._routing.reload()
        view = self._routing.view()
        now = self._routing.now()
        provider_of = {c.id: c.provider for c in snapshot.connections}
        breakers = []
        for name, state in sorted(view.breakers.items()):
            policy = policy_of(name, snapshot.settings.policies)
            waiting = state.phase is BreakerPhase.OPEN and state.open_until > now
            breakers.append(
                {
                    "provider": name,
                    "state": state.phase.value,
                    "failures": state.failures,
                    "threshold": policy.breaker_threshold,
                    "retryInSeconds": round(state.open_until - now, 1) if waiting else 0.0,
                    "version": state.version,
                }
            )
        cooldowns = []
        for (connection, model), cooldown in sorted(view.cooldowns.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            if not cooldown.active(now):
                continue
            cooldowns.append(
                {
                    "connectionId": connection,
                    "provider": provider_of.get(connection, connection),
                    "model": model,
                    "reason": cooldown.reason,
                    "level": cooldown.level,
                    "remainingSeconds": round(cooldown.until - now, 1),
                }
            )
        latency = await self._routing.latency(LATENCY_WINDOW_MINUTES)
        return {
            "breakers": breakers,
            "cooldowns": cooldowns,
            "cache": self._replay.cache_view(),
            "latency": {provider: summary(buckets) for provider, buckets in sorted(latency.items())},
            "latencyWindowMinutes": LATENCY_WINDOW_MINUTES,
            "idempotency": {"replayed": self._replay.stats.replayed},
            "routingStoreErrors": self._routing.store_errors,
        }

    async def reset(self, snapshot: ConfigSnapshot, provider: str | None, connection: str | None) -> dict[str, int]:
        provider_of = {c.id: c.provider for c in snapshot.connections}
        return await self._routing.reset(provider_of, provider, connection)
