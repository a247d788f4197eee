"""`omniroute target`, and admin calls to a cloud target signed with SigV4.

The signing tests run the commands against a loopback stand-in for API Gateway's IAM authorization: it
recomputes each request's signature with botocore from what it received (method, path, query, signed
headers, body) and the same static test credentials, and answers 403 like API Gateway when they differ. So a
signature over anything other than the bytes sent, a wrong key, or a tampered body cannot pass.
"""

from __future__ import annotations

import hmac
import json
import re
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import Result

from companion.admin_client import AdminClient, AdminFailure
from companion.target import Target, current_target
from tests.companion.cli_runner import run_command
from tests.fakes.server import ServerThread, free_port

KEY_ID = "AKIAOMNIROUTETEST01"
SECRET = "omniroute/test+secret/never-printed-0123456789"
SESSION = "omniroute-test-session-token-never-printed"
REGION = "eu-west-1"
GATEWAY = "https://abcdefghij.lambda-url.eu-west-1.on.aws/"
ADMIN = "https://k3x9q2.execute-api.eu-west-1.amazonaws.com/"
NOT_A_TOKEN = "no-admin-token-in-the-cloud"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


# --------------------------------------------------------------------------------------------
# The verifying stand-in for an IAM-authorised HTTP API
# --------------------------------------------------------------------------------------------


@dataclass
class Received:
    """Requests whose signature verified, and why others were refused."""

    verified: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # method, path, query, body
    refused: list[str] = field(default_factory=list)
    signed_headers: list[list[str]] = field(default_factory=list)


def _refuse(received: Received, why: str) -> JSONResponse:
    received.refused.append(why)
    return JSONResponse({"message": why}, status_code=403)


def check_signature(request: Request, body: bytes) -> str | None:
    """None when the request carries a valid SigV4 signature for our test credentials, else why not."""
    match = _AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
    if match is None:
        return "Missing Authentication Token"
    if (match["key"], match["region"], match["service"]) != (KEY_ID, REGION, "execute-api"):
        return "Credential should be scoped to a valid region and service"
    signed = match["signed"].split(";")
    session = request.headers.get("x-amz-security-token")
    if (
        "host" not in signed
        or "x-amz-date" not in signed
        or (session is not None and "x-amz-security-token" not in signed)
    ):
        return "host, x-amz-date and the session token must be signed"
    if any(name not in request.headers for name in signed):
        return "a signed header is missing"
    raw_path = request.scope["raw_path"].decode("ascii")
    query = request.scope["query_string"].decode("ascii")
    url = f"http://{request.headers['host']}{raw_path}" + (f"?{query}" if query else "")
    # The payload hash comes from the body received, never from a header the client could set.
    aws = AWSRequest(
        method=request.method,
        url=url,
        data=body,
        headers={name: request.headers[name] for name in signed if name != "x-amz-content-sha256"},
    )
    aws.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(Credentials(KEY_ID, SECRET, session), "execute-api", REGION)
    canonical = auth.canonical_request(aws)
    expected = auth.signature(auth.string_to_sign(aws, canonical), aws)
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None


async def _admin(request: Request) -> Response:
    received: Received = request.app.state.received
    body = await request.body()
    why = check_signature(request, body)
    if why is not None:
        return _refuse(received, why)
    path = request.scope["path"]  # decoded, as the app behind API Gateway routes it
    received.verified.append((request.method, path, request.scope["query_string"].decode(), body))
    match = _AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match is not None
    received.signed_headers.append(match["signed"].split(";"))
    if request.method == "DELETE":
        return Response(status_code=204)
    if (request.method, path) == ("GET", "/api/keys"):
        return JSONResponse({"keys": [{"id": "key_1", "name": "ci", "key": "sk-omni-ab…wxyz", "enabled": True}]})
    if (request.method, path) == ("POST", "/api/keys"):
        name = json.loads(body)["name"]
        return JSONResponse({"id": "key_2", "name": name, "key": "sk-omni-new-key", "enabled": True}, 201)
    if (request.method, path) == ("GET", "/api/echo"):
        return JSONResponse({"query": dict(request.query_params)})
    return JSONResponse({"error": {"message": f"Unknown route: {request.method} {path}."}}, 404)


@pytest.fixture
def api() -> Iterator[ServerThread[Starlette]]:
    app = Starlette(routes=[Route("/{path:path}", _admin, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])
    app.state.received = Received()
    with ServerThread(app) as server:
        yield server


def received(api: ServerThread[Starlette]) -> Received:
    state: Received = api.app.state.received
    return state


# --------------------------------------------------------------------------------------------
# Environment: the config in tmp_path, AWS credentials only from what each test gives
# --------------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """HOME and the config dir in tmp_path; static AWS credentials from the environment, nothing else."""
    return {
        "HOME": str(tmp_path),
        "OMNIROUTE_CONFIG_DIR": str(tmp_path / "config"),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_REGION": None,
        "AWS_CONFIG_FILE": str(tmp_path / "aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws" / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
        "AWS_ROLE_ARN": None,
        "AWS_ENDPOINT_URL": None,
    }


def omniroute(env: dict[str, str | None], command: str, *args: str) -> Result:
    result = run_command(command, args, NOT_A_TOKEN, env)
    for secret in (SECRET, SESSION):
        assert secret not in result.output
    return result


def config_file(env: dict[str, str | None]) -> Path:
    return Path(str(env["OMNIROUTE_CONFIG_DIR"])) / "companion.json"


def point_at(api: ServerThread[Starlette], env: dict[str, str | None], *extra: str) -> None:
    """Save a cloud target whose admin API is the verifying stand-in."""
    result = omniroute(
        env, "target", "cloud", "--gateway-url", GATEWAY, "--admin-url", api.base_url, "--region", REGION, *extra
    )
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------------------------
# target show / local / cloud
# --------------------------------------------------------------------------------------------


def test_show_without_a_saved_target_is_the_local_default(env: dict[str, str | None]) -> None:
    result = omniroute(env, "target", "show", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "kind": "local",
        "gatewayUrl": "http://127.0.0.1:20128",
        "adminUrl": "http://127.0.0.1:20128",
        "configFile": str(config_file(env)),
    }
    assert not config_file(env).exists()  # showing writes nothing


def test_cloud_is_saved_0600_without_secrets_and_shown(env: dict[str, str | None]) -> None:
    result = omniroute(env, "target", "cloud", "--gateway-url", GATEWAY, "--admin-url", ADMIN, "--profile", "owner")
    assert result.exit_code == 0, result.output
    assert "Target saved." in result.stdout
    path = config_file(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved == {
        "target": {
            "kind": "cloud",
            "gatewayUrl": GATEWAY.rstrip("/"),
            "adminUrl": ADMIN.rstrip("/"),
            "region": REGION,  # read from the admin URL
            "profile": "owner",
        }
    }
    assert KEY_ID not in path.read_text() and SECRET not in path.read_text()

    shown = omniroute(env, "target", "show")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["Target:", "cloud"]
    assert lines[1].split() == ["Gateway", "URL:", GATEWAY.rstrip("/")]
    assert "SigV4-signed" in shown.stdout and "owner" in shown.stdout and REGION in shown.stdout


def test_local_replaces_the_target_and_keeps_the_rest_of_the_config(env: dict[str, str | None]) -> None:
    path = config_file(env)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"sync": {"lastPush": "2026-11-01"}, "target": {"kind": "cloud"}}))
    result = omniroute(env, "target", "local", "--url", "http://127.0.0.1:3000/")
    assert result.exit_code == 0, result.output
    saved = json.loads(path.read_text())
    assert saved == {
        "sync": {"lastPush": "2026-11-01"},
        "target": {"kind": "local", "gatewayUrl": "http://127.0.0.1:3000", "adminUrl": "http://127.0.0.1:3000"},
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_current_target_gives_other_commands_the_gateway_url(
    env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIROUTE_CONFIG_DIR", str(env["OMNIROUTE_CONFIG_DIR"]))
    assert current_target() == Target("local", "http://127.0.0.1:20128", "http://127.0.0.1:20128")
    assert omniroute(env, "target", "cloud", "--gateway-url", GATEWAY, "--admin-url", ADMIN).exit_code == 0
    target = current_target()
    assert (target.gateway_url, target.admin_url, target.kind) == (GATEWAY.rstrip("/"), ADMIN.rstrip("/"), "cloud")
    assert (target.region, target.profile) == (REGION, None)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--gateway-url", "http://gw.example.com", "--admin-url", ADMIN], "must be an https URL"),
        (["--gateway-url", GATEWAY, "--admin-url", "http://api.example.com/"], "must be an https URL"),
        (["--gateway-url", GATEWAY, "--admin-url", "ftp://x"], "must be an http(s) URL"),
        (["--gateway-url", GATEWAY, "--admin-url", "https://u:p@api.example.com"], "plain base URL"),
        (["--gateway-url", GATEWAY], "give --gateway-url and --admin-url"),
        (["--gateway-url", GATEWAY, "--admin-url", "https://admin.example.com"], "pass --region"),
        (["--stack", "omni", "--admin-url", ADMIN], "not both"),
    ],
)
def test_cloud_refuses_bad_urls(env: dict[str, str | None], args: list[str], said: str) -> None:
    result = omniroute(env, "target", "cloud", *args)
    assert result.exit_code == 2
    assert said in " ".join(result.output.replace("│", " ").split())
    assert not config_file(env).exists()


def test_a_corrupt_config_file_is_reported_not_overwritten(env: dict[str, str | None]) -> None:
    path = config_file(env)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    for args in (("show",), ("local",)):
        result = omniroute(env, "target", *args)
        assert result.exit_code == 2
        assert f"{path} is not valid JSON" in result.stderr.replace("\n", "")
    assert path.read_text() == "{not json"


def test_cloud_reads_the_urls_from_the_stack_outputs(env: dict[str, str | None], moto_endpoint: str) -> None:
    stack = f"omni-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"GatewayUrl": {"Value": GATEWAY}, "AdminApiUrl": {"Value": ADMIN}},
    }
    cfn: Any = botocore.session.get_session().create_client(
        "cloudformation", region_name=REGION, endpoint_url=moto_endpoint
    )
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    env = env | {"AWS_ENDPOINT_URL_CLOUDFORMATION": moto_endpoint}

    result = omniroute(env, "target", "cloud", "--stack", stack, "--region", REGION)
    assert result.exit_code == 0, result.output
    saved = json.loads(config_file(env).read_text())["target"]
    assert (saved["gatewayUrl"], saved["adminUrl"], saved["region"]) == (GATEWAY.rstrip("/"), ADMIN.rstrip("/"), REGION)

    missing = omniroute(env, "target", "cloud", "--stack", "nosuch-stack", "--region", REGION)
    assert missing.exit_code == 1
    assert "cannot read stack 'nosuch-stack'" in missing.stderr and "does not exist" in missing.stderr


# --------------------------------------------------------------------------------------------
# SigV4: every admin call to a cloud target is signed over exactly what is sent
# --------------------------------------------------------------------------------------------


def test_commands_sign_get_post_and_delete_for_the_verifier(
    api: ServerThread[Starlette], env: dict[str, str | None]
) -> None:
    point_at(api, env)
    listed = omniroute(env, "keys", "list")
    assert listed.exit_code == 0, listed.output
    assert "key_1" in listed.stdout
    created = omniroute(env, "keys", "create", "laptop")
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == "sk-omni-new-key"
    deleted = omniroute(env, "combos", "delete", "team/fast?v2")
    assert deleted.exit_code == 0, deleted.output
    state = received(api)
    assert state.refused == []
    assert state.verified == [
        ("GET", "/api/keys", "", b""),
        ("POST", "/api/keys", "", b'{"name":"laptop"}'),
        ("DELETE", "/api/combos/team/fast?v2", "", b""),
    ]
    assert all({"host", "x-amz-date"} <= set(signed) for signed in state.signed_headers)
    assert "content-type" in state.signed_headers[1]


def test_commands_without_url_go_to_the_cloud_target_signed(
    api: ServerThread[Starlette], env: dict[str, str | None]
) -> None:
    """An older command whose --url has a default (`status`) still follows the saved target when left out."""
    point_at(api, env)
    result = omniroute(env, "status", "--json")
    # The stand-in has no /api/health: reaching it signed and being answered 404 is the point.
    assert result.exit_code == 1, result.output
    assert "HTTP 404: Unknown route: GET /api/health." in result.stderr.replace("\n", "")
    assert received(api).verified == [("GET", "/api/health", "", b"")]


def test_a_session_token_is_sent_and_signed(api: ServerThread[Starlette], env: dict[str, str | None]) -> None:
    point_at(api, env)
    result = omniroute(env | {"AWS_SESSION_TOKEN": SESSION}, "keys", "list")
    assert result.exit_code == 0, result.output
    assert "x-amz-security-token" in received(api).signed_headers[0]


def test_query_strings_are_signed_as_sent(
    api: ServerThread[Starlette], env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(api, env)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    client = AdminClient.resolve(None, None, None)
    assert client.cloud and client.url == api.base_url
    params = {"to": "2026-11-22", "from": "2026-11-01", "tz": "Europe/Paris", "q": "a b+c&d=é"}
    assert client.get("/api/echo", params) == {"query": params}
    assert received(api).refused == []


def test_a_tampered_body_is_refused(
    api: ServerThread[Starlette], env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(api, env)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    client = AdminClient.resolve(None, None, None)
    assert client.signer is not None
    with httpx.Client(trust_env=False) as http:
        request = http.build_request("POST", api.url("/api/keys"), json={"name": "laptop"})
        client.signer.sign(request)
        tampered = http.build_request(
            "POST", api.url("/api/keys"), content=b'{"name":"attacker"}', headers=dict(request.headers)
        )
        tampered.headers["content-length"] = str(len(tampered.content))
        assert http.send(tampered).status_code == 403
        assert http.send(request).status_code == 201  # the signature itself was good
    assert received(api).refused == ["The request signature we calculated does not match the signature you provided."]
    assert [v[3] for v in received(api).verified] == [b'{"name":"laptop"}']


def test_a_wrong_secret_is_refused_with_the_iam_hint(api: ServerThread[Starlette], env: dict[str, str | None]) -> None:
    point_at(api, env)
    result = omniroute(env | {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "keys", "list")
    assert result.exit_code == 2
    message = result.stderr.replace("\n", "")
    assert "refused the signed request (The request signature we calculated does not match" in message
    assert "execute-api:Invoke" in message
    assert received(api).verified == []


def test_missing_aws_credentials_exit_2_saying_how_to_sign_in(
    api: ServerThread[Starlette], env: dict[str, str | None]
) -> None:
    point_at(api, env)
    bare = env | {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    result = omniroute(bare, "keys", "list")
    assert result.exit_code == 2
    assert result.stdout == ""
    message = result.stderr.replace("\n", "")
    assert "no AWS credentials found in the default AWS credential chain" in message
    assert "aws sso login" in message
    assert received(api).verified == [] and received(api).refused == []  # nothing was sent


def test_an_unknown_profile_exits_2_naming_it(api: ServerThread[Starlette], env: dict[str, str | None]) -> None:
    point_at(api, env, "--profile", "nosuch")
    result = omniroute(env, "keys", "list")
    assert result.exit_code == 2
    assert "cannot load AWS credentials from AWS profile 'nosuch'" in result.stderr.replace("\n", "")
    assert received(api).verified == []


def test_an_unreachable_cloud_admin_api_exits_2(env: dict[str, str | None]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert (
        omniroute(env, "target", "cloud", "--gateway-url", GATEWAY, "--admin-url", url, "--region", REGION).exit_code
        == 0
    )
    result = omniroute(env, "keys", "list")
    assert result.exit_code == 2
    assert f"the admin API at {url} does not answer" in result.stderr.replace("\n", "")


def test_an_explicit_url_still_uses_the_admin_token(api: ServerThread[Starlette], env: dict[str, str | None]) -> None:
    """--url naming another gateway means one with an admin token, whatever the saved target: nothing is signed."""
    point_at(api, env)
    other = f"http://localhost:{api.port}"  # the same server under another name: not the saved admin URL
    result = omniroute(env, "keys", "list", "--url", other, "--token", NOT_A_TOKEN)
    assert result.exit_code == 1  # the stand-in refuses what is not signed, as API Gateway would
    assert "HTTP 403: Missing Authentication Token" in result.stderr
    assert received(api).refused == ["Missing Authentication Token"]


def test_naming_the_cloud_admin_url_explicitly_signs_too(
    api: ServerThread[Starlette], env: dict[str, str | None]
) -> None:
    point_at(api, env)
    result = omniroute(env | {"OMNIROUTE_URL": api.base_url + "/"}, "status", "--json")
    assert result.exit_code == 1, result.output
    assert received(api).verified == [("GET", "/api/health", "", b"")]


def test_admin_failure_keeps_its_old_signature() -> None:
    failure = AdminFailure("x")
    assert (failure.message, failure.exit_code, failure.status, failure.code) == ("x", 2, None, None)


def test_help_lists_the_target_commands(env: dict[str, str | None]) -> None:
    result = omniroute(env, "target", "--help")
    assert result.exit_code == 0
    for command in ("show", "local", "cloud"):
        assert command in result.stdout
    cloud = omniroute(env, "target", "cloud", "--help")
    for option in ("--gateway-url", "--admin-url", "--stack", "--region", "--profile"):
        assert option in cloud.stdout


def test_admin_calls_over_plain_http_go_only_to_this_machine(tmp_path: Path) -> None:
    """The admin token (and, for login or `sync --secrets`, credentials) must not cross a network unencrypted."""
    result = run_command(
        "status", ("--url", "http://192.0.2.10:20128", "--token", "secret-admin-token"), "secret-admin-token",
        {"HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 2 and "plain http to another machine" in result.output
