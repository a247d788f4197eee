"""template.yaml as CloudFormation will see it: the SAM transform run offline, cfn-lint on its output, and
the properties the design relies on read from the generated resources (not from our own source)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import REPO, run, sam_tool

CHECK = REPO / "infra" / "check_template.py"


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("cfn") / "transformed.json"
    run([sam_tool("python"), CHECK, REPO / "template.yaml", "--out", out])  # fails the test on any lint error
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc["Resources"]


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "template.yaml").read_text()
    assert old in text
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("InvokeMode: RESPONSE_STREAM", "InvokeMode: STREAM"),
        ("Runtime: python3.13", "Runtime: python3.99"),
        ("!GetAtt GatewayFunctionUrl.FunctionUrl", "!GetAtt GatewayFunctionURL.FunctionUrl"),
    ],
)
def test_the_offline_check_catches_what_plain_lint_misses(tmp_path: Path, old: str, new: str) -> None:
    broken = _broken(tmp_path, old, new)

    plain = subprocess.run([str(sam_tool("cfn-lint")), str(broken)], capture_output=True, text=True, check=False)
    checked = subprocess.run(
        [str(sam_tool("python")), str(CHECK), str(broken)], capture_output=True, text=True, check=False
    )
    assert checked.returncode != 0, checked.stdout + checked.stderr
    assert plain.returncode == 0, "plain cfn-lint now catches this too; the case no longer shows the difference"


def _of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def test_gateway_streams_through_lambda_web_adapter(resources: dict[str, Any]) -> None:
    fn = resources["GatewayFunction"]["Properties"]
    assert fn["Runtime"] == "python3.13" and fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == "run.sh"
    assert fn["Timeout"] == 900
    env = fn["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"  # any other value silently buffers
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    layer = fn["Layers"][0]["Fn::Sub"]
    lwa = r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:753240598075:layer:LambdaAdapterLayerArm64:\d+"
    assert re.fullmatch(lwa, layer)
    assert "VpcConfig" not in fn  # a Function URL does not stream from inside a VPC
    url = resources["GatewayFunctionUrl"]["Properties"]
    assert url["InvokeMode"] == "RESPONSE_STREAM" and url["AuthType"] == "NONE"
    permissions = {
        p["Properties"]["Action"]: p["Properties"]
        for p in _of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "GatewayFunction"}
    }
    assert permissions["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True  # required since Oct 2025


def test_admin_is_mangum_behind_an_iam_authorised_http_api(resources: dict[str, Any]) -> None:
    fn = resources["AdminFunction"]["Properties"]
    assert fn["Handler"] == "functions.admin.cloud.handler"
    api = resources["AdminApi"]["Properties"]["Body"]
    assert api["paths"], "no admin routes"
    for path, methods in api["paths"].items():
        for method, spec in methods.items():
            assert spec["security"] == [{"AWS_IAM": []}], f"{method} {path} is not IAM-authorised"
    stages = _of_type(resources, "AWS::ApiGatewayV2::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == ["$default"]  # no path prefix for Mangum


def test_scheduled_jobs_have_explicit_names_and_inputs(resources: dict[str, Any]) -> None:
    schedules = _of_type(resources, "AWS::Scheduler::Schedule")
    assert len(schedules) == 3
    targets = set()
    for schedule in schedules.values():
        props = schedule["Properties"]
        assert props["Name"]["Fn::Sub"].startswith("${AWS::StackName}-")  # stacks in one account never collide
        targets.add(props["Target"]["Arn"]["Fn::GetAtt"][0])
        sent = json.loads(props["Target"]["Input"])
        assert sent["scheduledTime"] == "<aws.scheduler.scheduled-time>"
    assert targets == {"TokenRefreshFunction", "UsageRollupFunction", "QuotaPollFunction"}


def test_tables_are_on_demand_retained_and_expire(resources: dict[str, Any]) -> None:
    tables = _of_type(resources, "AWS::DynamoDB::Table")
    assert set(tables) == {"ConfigTable", "StateTable", "UsageTable"}
    for table in tables.values():
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert tables["ConfigTable"]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    for name in ("StateTable", "UsageTable"):
        assert tables[name]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_credentials_key_rotates_and_is_kept(resources: dict[str, Any]) -> None:
    key = resources["CredentialsKey"]
    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Retain"
    alias = resources["CredentialsKeyAlias"]["Properties"]
    assert alias["AliasName"]["Fn::Sub"].startswith("alias/")


def _statements(resources: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
    statements: list[dict[str, Any]] = []
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        out |= set([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return out


def test_roles_grant_each_function_only_what_it_uses(resources: dict[str, Any]) -> None:
    gateway = _statements(resources, "GatewayFunction")
    assert _actions(gateway) == {
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "kms:Decrypt",
    }  # fmt: skip
    writes = [s for s in gateway if "dynamodb:PutItem" in _actions([s])]
    # config stays read-only; usage is written, never read
    assert [w["Resource"] for w in writes] == [
        {"Fn::GetAtt": ["StateTable", "Arn"]},
        {"Fn::GetAtt": ["UsageTable", "Arn"]},
    ]
    assert _actions([writes[1]]) == {"dynamodb:PutItem", "dynamodb:BatchWriteItem"}
    assert writes[1]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["REQ#*", "LOG#*"]
    writes = writes[:1]
    # Never Scan on State: ForAllValues holds vacuously for a request that names no leading key.
    assert _actions(writes) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"
    }  # fmt: skip
    # The key prefixes of shared/adapters/dynamo: conversations.py, routing_state.py, routing_limits.py.
    assert writes[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "RESP#*", "REASON#*", "ROUTE", "RL#*", "IDEM#*", "CACHE#*", "LAT#*", "BUDGET#*"
    ]  # fmt: skip
    admin_statements = _statements(resources, "AdminFunction")
    admin = _actions(admin_statements)
    assert "kms:Encrypt" in admin and "dynamodb:PutItem" in admin
    admin_state = [s for s in admin_statements if s["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}]
    assert _actions(admin_state) == {"dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:PutItem"}
    assert [s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for s in admin_state] == [
        ["ROUTE", "LAT#*"],  # health view and resets
        ["BUDGET#*"],  # what each key spent (read only)
        ["LEASE"],  # a forced token refresh takes the account's refresh lease
    ]
    assert _actions([s for s in admin_state if "BUDGET#*" in str(s)]) == {"dynamodb:Query"}
    assert _actions([s for s in admin_state if "ROUTE" in str(s)]) == {"dynamodb:Query", "dynamodb:DeleteItem"}
    assert _actions([s for s in admin_state if "LEASE" in str(s)]) == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    rollup = _statements(resources, "UsageRollupFunction")
    assert _actions(rollup) == {"dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:PutItem"}
    assert all(s["Resource"] == {"Fn::GetAtt": ["UsageTable", "Arn"]} for s in rollup)
    # reads events and rollups; writes only rollups (shared/adapters/dynamo/usage_store.py's key layout)
    assert {frozenset(_actions([s])): s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            for s in rollup} == {frozenset({"dynamodb:Query"}): ["REQ#*", "ROLL#*"],
                                 frozenset({"dynamodb:BatchWriteItem", "dynamodb:PutItem"}): ["ROLL#*"]}  # fmt: skip
    refresh = _statements(resources, "TokenRefreshFunction")
    assert _actions(refresh) == {
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem", "kms:Encrypt", "kms:Decrypt"
    }  # fmt: skip
    # credentials and connections in Config (never Scan, never another kind); only leases in State
    refresh_tables = {s["Resource"]["Fn::GetAtt"][0]: s for s in refresh if "dynamodb:PutItem" in _actions([s])}
    assert _actions([refresh_tables["ConfigTable"]]) == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"}
    assert refresh_tables["ConfigTable"]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "oauth", "provider"
    ]  # fmt: skip
    assert _actions([refresh_tables["StateTable"]]) == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert refresh_tables["StateTable"]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["LEASE"]
    poll = _statements(resources, "QuotaPollFunction")
    assert _actions(poll) == {"dynamodb:Query", "kms:Decrypt", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    poll_writes = [s for s in poll if "dynamodb:PutItem" in _actions([s])]
    assert [s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for s in poll_writes] == [["ROUTE"]]
    functions = ("GatewayFunction", "AdminFunction", "TokenRefreshFunction", "UsageRollupFunction", "QuotaPollFunction")
    for function in functions:
        for statement in _statements(resources, function):
            assert statement["Resource"] != "*", f"{function}: {statement}"
            if any(a.startswith("kms:") for a in _actions([statement])):
                # KMS use is limited to ciphertexts sealed under our encryption context
                assert statement["Condition"]["StringEquals"]["kms:EncryptionContext:app"] == "omniroute-edge"


def test_outputs_give_what_the_owner_needs(tmp_path: Path) -> None:
    import yaml

    from shared.adapters.dynamo.tables import _CfnLoader

    doc = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)
    assert {"GatewayUrl", "OpenAIBaseUrl", "AdminApiUrl", "ConfigTableName", "StateTableName", "UsageTableName",
            "CredentialsKeyArn"} <= set(doc["Outputs"])  # fmt: skip
    assert {"StageName", "GatewayMaxConcurrency"} <= set(doc["Parameters"])
