import botocore.session

from shared.adapters.dynamo.tables import table_definitions


def test_template_declares_the_three_tables_with_pk_sk() -> None:
    defs = table_definitions()
    assert set(defs) == {"ConfigTable", "StateTable", "UsageTable"}
    for props in defs.values():
        assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert defs["ConfigTable"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert defs["StateTable"]["TimeToLiveSpecification"]["AttributeName"] == "expires_at"


def test_tables_created_from_template_exist_with_ttl(table_names: dict[str, str], dynamo_endpoint: str | None) -> None:
    client = botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=dynamo_endpoint
    )
    tables = set(client.list_tables()["TableNames"])
    assert set(table_names.values()) <= tables
    ttl = client.describe_time_to_live(TableName=table_names["StateTable"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"
