"""Fixtures the service tests share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import botocore.session
import pytest

from shared.adapters.dynamo.usage_store import DynamoUsageStore

REGION = "us-east-1"


@pytest.fixture
def usage() -> Iterator[DynamoUsageStore]:
    """A Usage table built from template.yaml on moto in-process (one writer: these tests run alone)."""
    from moto import mock_aws

    from shared.adapters.dynamo.tables import create_tables

    with mock_aws():
        name = f"Usage-{uuid.uuid4().hex[:8]}"
        client = botocore.session.get_session().create_client("dynamodb", region_name=REGION)
        create_tables(client, {"UsageTable": name, "StateTable": f"State-{name}", "ConfigTable": f"Config-{name}"})
        yield DynamoUsageStore(name, REGION)
