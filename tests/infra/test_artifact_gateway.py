"""The packaged gateway, run the way Lambda Web Adapter runs it: the artifact's own `run.sh` starts uvicorn
in a clean interpreter (nothing importable but the artifact), configured by the template's environment,
against DynamoDB and KMS on moto's server; the official OpenAI SDK streams a chat completion through it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import create_app as create_fake_upstream
from tests.fakes.server import ServerThread, free_port
from tests.infra.conftest import CloudAccount

UPSTREAM_KEY = "sk-upstream-artifact-test-0123456789"
LAMBDA_CONTEXT = {
    "request_id": "0f4c1e2a-3b5d-4e6f-8a9b-0c1d2e3f4a5b",
    "deadline": 1795310000000,
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:omniroute-gateway",
    "xray_trace_id": "Root=1-6740d9fb-0b2c3d4e5f60718293a4b5c6;Parent=53995c3f42cd8ad8;Sampled=0",
    "client_context": None,
    "identity": None,
    "env_config": {"function_name": "omniroute-gateway", "memory": 1024, "version": "$LATEST"},
}


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[ServerThread]:
    with ServerThread(create_fake_upstream(api_key=UPSTREAM_KEY)) as server:
        yield server


@pytest.fixture
def seeded(cloud: CloudAccount, fake_upstream: ServerThread) -> dict[str, str]:
    """Configuration written by the cloud's admin service: a node on the fake, its key, a gateway key."""
    admin = cloud.services()
    node = admin.create_node({"name": "Fake", "prefix": "fake", "baseUrl": fake_upstream.base_url + "/v1"})
    admin.create_connection({"provider": node["id"], "apiKey": UPSTREAM_KEY, "name": "fake-1"})
    key = admin.create_key("ci")["key"]
    return {"key": key, "node": node["id"]}


@contextmanager
def lwa_process(artifact: Path, env: dict[str, str], out: Path) -> Iterator[str]:
    """Start run.sh as LWA does and wait for its readiness path; yields the base URL."""
    port = free_port()
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [str(artifact / "run.sh")], env={**env, "AWS_LWA_PORT": str(port)}, stdout=sink, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"run.sh exited with {proc.returncode}:\n{out.read_text()[-4000:]}")
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"readiness never passed:\n{out.read_text()[-4000:]}")
                time.sleep(0.05)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            with suppress(json.JSONDecodeError):
                lines.append(json.loads(line))
    return lines


def test_streamed_chat_through_the_packaged_gateway(
    host_artifacts: dict[str, Path], clean_python: Path, cloud: CloudAccount, seeded: dict[str, str], tmp_path: Path
) -> None:
    artifact = host_artifacts["GatewayFunction"]
    env = cloud.env("omniroute-gateway", clean_python, OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS="true")
    log = tmp_path / "gateway.log"
    with lwa_process(artifact, env, log) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key=seeded["key"], max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="fake/gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello from the packaged gateway"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-amzn-lambda-context": json.dumps(LAMBDA_CONTEXT)},  # as LWA adds it
        )
        assert raw.headers["content-type"].startswith("text/event-stream")
        timing = raw.headers["server-timing"]
        assert all(f"{phase};dur=" in timing for phase in ("auth", "route", "upstream", "total")), timing
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip()
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        # the cloud requires a key, always
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base + "/v1", api_key="sk-wrong", max_retries=0).models.list()
    output = log.read_text()
    assert seeded["key"] not in output and UPSTREAM_KEY not in output  # no secret reaches the logs
    records = _json_lines(output)
    emf = [r for r in records if "_aws" in r and r.get("path") == "/v1/chat/completions"]
    assert len(emf) == 1, output[-3000:]
    metric = emf[0]
    assert metric["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["provider", "service"]]  # never the key
    assert metric["provider"] == seeded["node"] and metric["Requests"] == [1.0]
    assert metric["OutputTokens"][0] > 0 and metric["Errors"] == [0.0]
    assert metric["request_id"] == raw.headers["x-request-id"]
    assert metric["lambda_request_id"] == LAMBDA_CONTEXT["request_id"]


def test_the_packaged_gateway_refuses_private_upstreams_by_default(
    host_artifacts: dict[str, Path], clean_python: Path, cloud: CloudAccount, seeded: dict[str, str], tmp_path: Path
) -> None:
    env = cloud.env("omniroute-gateway", clean_python)  # the template's default: public upstreams only
    with lwa_process(host_artifacts["GatewayFunction"], env, tmp_path / "gateway.log") as base:
        resp = httpx.post(
            base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {seeded['key']}"},
            json={"model": "fake/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "upstream_address_refused" and "127.0.0.1" in error["message"]


def test_the_packaged_gateway_imports_nothing_from_outside_the_artifact(
    host_artifacts: dict[str, Path], clean_python: Path, cloud: CloudAccount
) -> None:
    artifact = host_artifacts["GatewayFunction"]
    code = (
        "import sys, json, functions.gateway.cloud as m, fastapi, pynamodb, botocore\n"
        "print(json.dumps({'path': sys.path, 'files': [m.__file__, fastapi.__file__, pynamodb.__file__,"
        " botocore.__file__], 'heavy': [n for n in ('moto', 'cryptography', 'yaml', 'typer') if n in sys.modules]}))"
    )
    proc = subprocess.run(
        [str(clean_python), "-c", code],
        cwd=artifact,
        env=cloud.env("omniroute-gateway", clean_python),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert not any("site-packages" in p for p in report["path"]), report["path"]
    assert all(f.startswith(str(artifact)) for f in report["files"]), report["files"]
    assert report["heavy"] == []
    assert os.access(artifact / "run.sh", os.X_OK)
