"""The packaged admin and scheduled handlers, imported in a clean interpreter (nothing but the artifact on
its path) and invoked as Lambda invokes them: the admin handler through Mangum with recorded HTTP API v2
events carrying IAM authorizer context, the jobs with recorded EventBridge Scheduler events. They run
against DynamoDB and KMS on moto's server; the test reads back what they stored."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.infra.conftest import ACCOUNT, CloudAccount

EVENTS = Path(__file__).parent / "events"

# Runs inside the artifact: invoke `module.handler` with each event, write the results as JSON.
DRIVER = """
import json, sys
assert not any("site-packages" in p for p in sys.path), sys.path
class Context:
    function_name = sys.argv[2]
    invoked_function_arn = "arn:aws:lambda:us-east-1:%s:function:" % sys.argv[3] + function_name
    aws_request_id = "8f5e2c1a-0000-4000-8000-000000000001"
    memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self):
        return 30000
module = __import__(sys.argv[1], fromlist=["handler"])
assert module.__file__.startswith(sys.argv[5]), module.__file__
events = json.load(open(sys.argv[4]))
results = []
for event in events:
    try:
        results.append({"ok": module.handler(event, Context())})
    except Exception as exc:
        results.append({"error": type(exc).__name__, "message": str(exc)})
json.dump(results, open(sys.argv[4] + ".out", "w"))
"""


def invoke(
    artifact: Path,
    clean_python: Path,
    cloud: CloudAccount,
    module: str,
    events: list[dict[str, Any]],
    tmp_path: Path,
    account: str = ACCOUNT,
) -> tuple[list[dict[str, Any]], str]:
    events_file = tmp_path / f"{module}-events.json"
    events_file.write_text(json.dumps(events))
    function_name = module.rsplit(".", 1)[-1].replace("_", "-")
    proc = subprocess.run(
        [str(clean_python), "-c", DRIVER, module, function_name, account, str(events_file), str(artifact)],
        cwd=artifact,
        env=cloud.env(f"omniroute-{function_name}", clean_python),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(Path(str(events_file) + ".out").read_text()), proc.stdout + proc.stderr


def http_event(method: str, path: str, body: object = None, *, iam: bool = True, account: str = ACCOUNT) -> Any:
    event = json.loads((EVENTS / "http-api-v2-iam.json").read_text())
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"proxy": path.removeprefix("/api/")}
    if body is not None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        event["body"] = base64.b64encode(raw).decode()
        event["isBase64Encoded"] = True
        event["headers"]["content-type"] = "application/json"
        event["headers"]["content-length"] = str(len(raw))
    if not iam:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"]["iam"]["accountId"] = account
    return event


def _body(result: dict[str, Any]) -> Any:
    response = result["ok"]
    raw = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"].encode()
    return json.loads(raw)


def test_admin_handler_serves_signed_calls_and_refuses_unsigned_ones(
    host_artifacts: dict[str, Path], clean_python: Path, cloud: CloudAccount, tmp_path: Path
) -> None:
    node_url = "https://api.deepseek.com/v1"
    events = [
        http_event("GET", "/api/health"),
        http_event("POST", "/api/keys", {"name": "laptop"}),
        http_event("POST", "/api/providers", {"provider": "deepseek", "apiKey": "sk-live-deepseek-secret-42"}),
        http_event(
            "POST", "/api/provider-nodes", {"name": "Meta", "prefix": "meta", "baseUrl": "http://169.254.169.254"}
        ),
        http_event("POST", "/api/provider-nodes", {"name": "Remote", "prefix": "remote", "baseUrl": node_url}),
        http_event("GET", "/api/providers"),
        http_event("GET", "/api/health", iam=False),
        http_event("GET", "/api/health", account="999999999999"),
        http_event("POST", "/api/keys", b"{not json"),
    ]
    results, output = invoke(
        host_artifacts["AdminFunction"], clean_python, cloud, "functions.admin.cloud", events, tmp_path
    )
    statuses = [r["ok"]["statusCode"] for r in results]
    assert statuses == [200, 201, 201, 400, 201, 200, 401, 403, 400], results
    health, key, conn, metadata, _node, listing, unsigned, foreign, _bad = (_body(r) for r in results)
    assert health["cloud"] is True
    assert key["key"].startswith("sk-") and "keyHash" not in json.dumps(key)
    assert conn["connection"]["apiKey"] != "sk-live-deepseek-secret-42"  # masked on the way out
    assert metadata["error"]["code"] == "invalid_url" and "public" in metadata["error"]["message"]
    assert [c["provider"] for c in listing["connections"]] == ["deepseek"]
    assert unsigned["error"]["code"] == "iam_auth_required"
    assert foreign["error"]["code"] == "foreign_account"
    for secret in ("sk-live-deepseek-secret-42", key["key"]):
        assert secret not in output  # neither logged nor printed

    # What the packaged handler stored: the key sealed by KMS under the record's encryption context.
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.tables["ConfigTable"],
        Key={"pk": {"S": "provider"}, "sk": {"S": conn["connection"]["id"]}},
        ConsistentRead=True,
    )["Item"]
    sealed = json.loads(item["data"]["S"])["apiKey"]
    assert sealed.startswith("kms:v1:") and "secret" not in sealed
    blob = base64.urlsafe_b64decode(sealed.removeprefix("kms:v1:"))
    kms = cloud.client("kms")
    context = {"app": "omniroute-edge", "kind": "provider", "id": conn["connection"]["id"]}
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"sk-live-deepseek-secret-42"
    moved = copy.deepcopy(context)
    moved["id"] = "conn_other"
    try:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=moved)
    except kms.exceptions.InvalidCiphertextException:
        pass
    else:
        raise AssertionError("a ciphertext moved to another record must not decrypt")


def test_scheduled_handlers_run_from_scheduler_events(
    host_artifacts: dict[str, Path], clean_python: Path, cloud: CloudAccount, tmp_path: Path
) -> None:
    recorded = json.loads((EVENTS / "scheduler-input.json").read_text())
    default_notification = json.loads((EVENTS / "scheduler-default.json").read_text())
    cloud.services().create_connection({"provider": "deepseek", "apiKey": "sk-deepseek-for-refresh-test"})

    refresh, _ = invoke(
        host_artifacts["TokenRefreshFunction"],
        clean_python,
        cloud,
        "functions.scheduled.token_refresh",
        [recorded, {**recorded, "job": "usage-rollup"}],
        tmp_path,
    )
    assert refresh[0]["ok"] == {
        "job": "token-refresh",
        "scheduledTime": "2026-11-22T01:05:00+00:00",
        "oauthAccounts": 0,  # an API-key connection has no OAuth credentials to refresh
        "refreshed": 0,
        "skipped": 0,
        "busy": 0,
        "failed": 0,
        "relinkNeeded": 0,
        "accounts": [],
    }
    assert refresh[1]["error"] == "BadEvent"  # an event meant for another job is refused, not run

    # Two requests in the hour that closed before 02:05, one after it (written as the gateway writes them).
    from datetime import UTC, datetime

    from shared.adapters.dynamo.usage_store import DynamoUsageStore
    from shared.domain.usage import Usage, UsageEvent

    usage = DynamoUsageStore(cloud.tables["UsageTable"], "us-east-1", cloud.endpoint)

    def request(rid: str, at: str) -> UsageEvent:
        return UsageEvent(
            request_id=rid, at=datetime.fromisoformat(at).timestamp(), provider="openai", model="openai/gpt-4o",
            requested="gpt-4o", connection_id="c1", key_id="k1", combo=None, client="openai", stream=False,
            status=200, usage=Usage(input=100, output=20), estimated=False, cost=0.001, latency_ms=300.0,
            ttft_ms=120.0,
        )  # fmt: skip

    usage.put_events(
        [request("a", "2026-11-22T01:10:00+00:00"), request("b", "2026-11-22T01:59:59+00:00"),
         request("c", "2026-11-22T02:00:01+00:00")],
        datetime(2026, 12, 22, tzinfo=UTC).timestamp(),
    )  # fmt: skip
    rollup_input = {**recorded, "job": "usage-rollup", "scheduledTime": "2026-11-22T02:05:00Z"}
    rollup, output = invoke(
        host_artifacts["UsageRollupFunction"],
        clean_python,
        cloud,
        "functions.scheduled.usage_rollup",
        [rollup_input, default_notification, {}],
        tmp_path,
    )
    closed = {"2026-11-22T00": 0, "2026-11-22T01": 2}  # the two hours that closed before 02:05
    # The day has not closed yet: no day or month rollup.
    assert rollup[0]["ok"] == {
        "job": "usage-rollup", "scheduledTime": "2026-11-22T02:05:00+00:00", "hours": closed, "days": [],
        "months": [],
    }  # fmt: skip
    assert rollup[1]["ok"]["hours"] == closed  # Scheduler's default form, same time
    assert "hours" in rollup[2]["ok"] and "error" not in rollup[2]  # a manual invoke with {} runs for the current time
    emf = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    assert [m["HourItems"] for m in emf[:2]] == [[2.0], [2.0]]
    assert [m["DaysRolled"] for m in emf[:2]] == [[0.0], [0.0]]
    # The rollups are stored: both hours marked rolled up, 01 with its two requests (not 02's) in one group.
    hours = usage.hour_rollups("2026-11-22")
    assert {"00", "01"} <= set(hours)
    assert hours["00"] == []
    (group,) = hours["01"]
    assert (group.provider, group.model, group.connection_id, group.key_id) == ("openai", "openai/gpt-4o", "c1", "k1")
    assert (group.requests, group.input, group.output) == (2, 200, 40)
