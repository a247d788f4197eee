"""The cloud's composition root, shared by the Lambda entry points: settings from the environment,
DynamoDB through pynamodb, KMS for credentials, upstreams limited to public addresses.

Each function's module builds its services once per execution environment (at import, during Lambda's
init phase) and reuses them for every invocation.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.adapters.dynamo.conversations import DynamoConversationStore, bind_conversation_model
from shared.adapters.dynamo.routing_state import DynamoRoutingStore
from shared.adapters.dynamo.spend import DynamoSpendStore
from shared.adapters.dynamo.usage_store import DynamoUsageStore
from shared.adapters.kms import KmsCipher
from shared.services.container import Services, assemble
from shared.services.snapshot import ConfigCache
from shared.settings import Settings


class CloudConfigError(RuntimeError):
    """The function's environment is incomplete (the template sets all of it)."""


def cloud_settings(environ: dict[str, str] | None = None) -> Settings:
    settings = Settings.from_env(environ)
    if not settings.cloud:
        raise CloudConfigError("not running in Lambda: set AWS_LAMBDA_FUNCTION_NAME (or OMNIROUTE_CLOUD=true)")
    if not settings.kms_key_id:
        raise CloudConfigError("OMNIROUTE_KMS_KEY_ID is not set: credentials cannot be decrypted")
    return settings


def config_store(settings: Settings) -> DynamoConfigStore:
    # host=None: the SDK's own endpoint resolution (AWS_ENDPOINT_URL_DYNAMODB in tests, the region in AWS).
    return DynamoConfigStore(bind_config_model(settings.config_table, settings.region, None))


def build_cloud_services(settings: Settings, *, on_change: Callable[[], None] | None = None) -> Services:
    """Services for the gateway or admin function. Nothing here touches the network until first use."""
    assert settings.kms_key_id is not None
    store = config_store(settings)
    cipher = KmsCipher(settings.kms_key_id, settings.region)
    cache = ConfigCache(store, cipher, ttl=settings.config_ttl, max_stale=settings.config_max_stale)
    # The admin function shares no process with any gateway: gateways see a change within their TTL.
    state_model = bind_conversation_model(settings.state_table, settings.region, None)
    routing_store = DynamoRoutingStore(settings.state_table, settings.region)
    return assemble(
        settings,
        store,
        cipher,
        cache,
        on_change=on_change or (lambda: None),
        conversations=DynamoConversationStore(state_model),
        reasoning=DynamoConversationStore(state_model, prefix="REASON#"),
        routing_store=routing_store,
        usage_store=DynamoUsageStore(settings.usage_table, settings.region),
        spend_store=DynamoSpendStore(routing_store.items),
        # The log stream names the execution environment: breaker probes and slots are owned per instance.
        instance_id=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")[-12:],
    )
