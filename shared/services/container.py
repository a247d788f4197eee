"""The services one process uses, built by an entry point's composition root and passed to its apps."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.adapters.dynamo.leases import DynamoLeaseStore
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.upstream import HttpxUpstream
from shared.ports import (
    Cipher,
    ConfigStore,
    ConversationStore,
    LeaseStore,
    RoutingStore,
    SpendStore,
    UpstreamClient,
    UsageStore,
)
from shared.services.accounting import Accountant
from shared.services.admin import ConfigService
from shared.services.admin_pricing import PricingService
from shared.services.chat import ChatService
from shared.services.health import HealthService
from shared.services.oauth_accounts import OAuthAccountsService
from shared.services.reasoning_memory import ReasoningMemory
from shared.services.replay import ReplayService
from shared.services.responses_state import ResponsesState
from shared.services.router import Router
from shared.services.routing_state import RoutingState
from shared.services.snapshot import ConfigCache
from shared.services.token_refresh import CLOUD_SCHEDULE_SECONDS, LOCAL_REFRESH_SECONDS, TokenRefresher
from shared.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    config: ConfigCache
    admin: ConfigService
    chat: ChatService
    upstream: UpstreamClient
    routing: RoutingState
    router: Router
    replay: ReplayService
    health: HealthService
    accounting: Accountant
    pricing: PricingService
    oauth: OAuthAccountsService
    usage: UsageStore | None = None
    spend: SpendStore | None = None
    routing_store: RoutingStore | None = None
    admin_token: str | None = None
    # linked accounts' token refresher (admin's forced refresh; local mode's loop); None without a lease store
    refresher: TokenRefresher | None = None

    async def settle(self) -> None:
        """Wait for the writes requests left behind (usage events, routing state): before a Lambda
        environment may freeze, and at shutdown."""
        await self.accounting.drain()
        await self.routing.drain()

    async def aclose(self) -> None:
        await self.routing.flush_latency()
        await self.settle()
        await self.upstream.aclose()


# Seconds local events wait to share one write (the local store's work runs in this process); a kill -9
# loses at most this much. Shutdown drains the queue.
LOCAL_FLUSH_DELAY = 0.25


def assemble(
    settings: Settings,
    store: ConfigStore,
    cipher: Cipher,
    cache: ConfigCache,
    *,
    on_change: Callable[[], None],
    admin_token: str | None = None,
    conversations: ConversationStore | None = None,
    reasoning: ConversationStore | None = None,
    routing_store: RoutingStore | None = None,
    usage_store: UsageStore | None = None,
    spend_store: SpendStore | None = None,
    leases: LeaseStore | None = None,
    instance_id: str = "",
    local_stores: bool = False,
) -> Services:
    """The services every entry point shares, wired the same way locally and in the cloud: one upstream
    client (public addresses only unless private upstreams are allowed), and an admin service that refuses
    the same URLs at write time. `local_stores`: usage and spend live in this process (SQLite), so
    accounting writes them on the event loop instead of a worker thread. `leases`: where token refreshers
    take their leases; by default the State table the routing store uses."""
    public_only = not settings.allow_private_upstreams
    upstream = HttpxUpstream(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=settings.upstream_max_connections,
        public_only=public_only,
    )
    chat = ChatService(
        upstream,
        memory=ReasoningMemory(store=reasoning),
        responses_state=ResponsesState(conversations) if conversations else None,
    )
    instance_id = instance_id or secrets.token_hex(4)
    routing = RoutingState(routing_store, instance_id=instance_id)
    replay = ReplayService(routing)
    if leases is None and isinstance(routing_store, DynamoRoutingStore):
        leases = DynamoLeaseStore(routing_store.items)
    refresher = (
        TokenRefresher(
            store,
            cipher,
            leases,
            upstream,
            time.time,
            # locally `serve` runs it every minute; in the cloud the schedule runs it, admin only forces it
            period=CLOUD_SCHEDULE_SECONDS if settings.cloud else LOCAL_REFRESH_SECONDS,
            owner=f"{'cloud' if settings.cloud else 'local'}-{instance_id}",
            on_change=on_change,
            public_urls_only=public_only,
        )
        if leases is not None
        else None
    )
    return Services(
        settings=settings,
        config=cache,
        admin=ConfigService(store, cipher, on_change=on_change, public_urls_only=public_only),
        chat=chat,
        upstream=upstream,
        routing=routing,
        # cost-optimized combos order their targets by the live pricing table's input rate
        router=Router(chat, routing, price=lambda provider, model: cache.snapshot.prices.input_rate(provider, model)),
        replay=replay,
        health=HealthService(routing, replay),
        # in the cloud an invocation drains its own events at once; locally they are batched for a moment
        accounting=Accountant(
            usage_store,
            spend_store,
            routing,
            routing_store,
            flush_delay=0.0 if settings.cloud else LOCAL_FLUSH_DELAY,
            inline=local_stores,
        ),
        pricing=PricingService(store, on_change=on_change),
        oauth=OAuthAccountsService(store, cipher, on_change=on_change, public_urls_only=public_only),
        usage=usage_store,
        spend=spend_store,
        routing_store=routing_store,
        admin_token=admin_token,
        refresher=refresher,
    )
