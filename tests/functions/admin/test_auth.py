"""Cloud admin authentication: only an IAM identity of the function's own account, as API Gateway's IAM
authorizer reports it in the event Mangum hands over (unit, then through Mangum and the admin app on moto)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import botocore.session
import pytest
from mangum import Mangum
from moto import mock_aws

from functions.admin.app import create_app
from functions.admin.auth import require_iam_caller
from shared.adapters.dynamo.tables import create_tables
from shared.cloud import build_cloud_services, cloud_settings
from shared.errors import AuthenticationFailed, PermissionDenied

ACCOUNT = "123456789012"
OTHER = "210987654321"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:omniroute-admin"


def iam(account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "accessKey": "ASIAEXAMPLE",
        "accountId": account,
        "callerId": "AROAEXAMPLE:owner",
        "principalOrgId": None,
        "userArn": f"arn:aws:sts::{account}:assumed-role/Admin/owner",
        "userId": "AROAEXAMPLE:owner",
        "cognitoIdentity": None,
    }


def scope(event: Any, arn: str | None = FUNCTION_ARN) -> dict[str, Any]:
    context = SimpleNamespace(invoked_function_arn=arn) if arn is not None else SimpleNamespace()
    return {"type": "http", "aws.event": event, "aws.context": context}


def signed(account: str = ACCOUNT) -> dict[str, Any]:
    return {"requestContext": {"authorizer": {"iam": iam(account)}}}


def test_an_iam_caller_of_our_own_account_is_accepted() -> None:
    assert require_iam_caller(scope(signed())) == iam()


def test_a_qualified_function_arn_names_the_same_account() -> None:
    assert require_iam_caller(scope(signed(), f"{FUNCTION_ARN}:live"))["accountId"] == ACCOUNT


@pytest.mark.parametrize(
    "event",
    [
        None,  # not invoked through Mangum at all
        "not an event",
        {},
        {"requestContext": {}},
        {"requestContext": None},
        {"requestContext": {"authorizer": {}}},
        {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "x"}}}}},  # another authorizer
        {"requestContext": {"authorizer": {"iam": {}}}},
        {"requestContext": {"authorizer": {"iam": {"accountId": ""}}}},
        {"requestContext": {"authorizer": {"iam": "123456789012"}}},
    ],
)
def test_without_iam_evidence_authentication_is_required(event: Any) -> None:
    with pytest.raises(AuthenticationFailed) as exc:
        require_iam_caller(scope(event))
    assert exc.value.code == "iam_auth_required"
    assert exc.value.http_status == 401


def test_a_scope_without_any_event_is_refused() -> None:
    with pytest.raises(AuthenticationFailed, match="SigV4"):
        require_iam_caller({"type": "http"})


@pytest.mark.parametrize(
    ("event", "arn"),
    [
        (signed(OTHER), FUNCTION_ARN),  # signed by another account
        (signed(), None),  # a context without an ARN: our own account is unknown
        (signed(), ""),
        (signed(), "arn:aws:lambda"),
        (signed(), "arn:aws:lambda:us-east-1::function:omniroute-admin"),
    ],
)
def test_another_or_an_unknown_account_is_denied(event: dict[str, Any], arn: str | None) -> None:
    with pytest.raises(PermissionDenied) as exc:
        require_iam_caller(scope(event, arn))
    assert exc.value.code == "foreign_account"
    assert exc.value.http_status == 403


# ----- through Mangum: the admin app as the cloud builds it ------------------------------------------------


@pytest.fixture
def admin() -> Iterator[Mangum]:
    with mock_aws():
        names = {t: f"{t}-{uuid.uuid4().hex[:8]}" for t in ("ConfigTable", "StateTable", "UsageTable")}
        create_tables(botocore.session.get_session().create_client("dynamodb", region_name="us-east-1"), names)
        settings = cloud_settings(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "omniroute-admin",
                "AWS_REGION": "us-east-1",
                "OMNIROUTE_KMS_KEY_ID": str(uuid.uuid4()),
                "CONFIG_TABLE": names["ConfigTable"],
            }
        )
        services = build_cloud_services(settings)
        # Mangum runs each invocation on the thread's event loop, as Lambda's single thread provides one.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            yield Mangum(create_app(services), lifespan="off")
        finally:
            loop.run_until_complete(services.aclose())
            asyncio.set_event_loop(None)
            loop.close()


def http_api_event(path: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event as API Gateway sends it."""
    context: dict[str, Any] = {
        "accountId": ACCOUNT,
        "apiId": "abc123",
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "t"},
        "requestId": "r-1",
        "routeKey": "$default",
        "stage": "$default",
        "time": "01/Mar/2025:00:00:00 +0000",
        "timeEpoch": 1740787200000,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "accept": "application/json"},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def invoke(handler: Mangum, authorizer: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    context = SimpleNamespace(invoked_function_arn=FUNCTION_ARN, aws_request_id="req-1")
    response = handler(http_api_event("/api/health", authorizer), context)
    return response["statusCode"], json.loads(response["body"])


def test_the_cloud_admin_api_answers_an_iam_caller_of_its_account(admin: Mangum) -> None:
    status, body = invoke(admin, {"iam": iam()})
    assert status == 200
    assert body["status"] == "ok" and body["cloud"] is True


@pytest.mark.parametrize(
    ("authorizer", "status", "code"),
    [(None, 401, "iam_auth_required"), ({"iam": iam(OTHER)}, 403, "foreign_account")],
)
def test_the_cloud_admin_api_refuses_everyone_else(
    admin: Mangum, authorizer: dict[str, Any] | None, status: int, code: str
) -> None:
    got, body = invoke(admin, authorizer)
    assert got == status
    assert body["error"]["code"] == code
