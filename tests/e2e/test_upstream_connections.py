"""Upstream connections are always given back to the pool, however a request ends."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import orjson

from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.harness import Gateway
from tests.fakes.server import ServerThread

POOL = 4


def abandon_stream_request(gw: Gateway, model: str) -> None:
    """Send a streaming request and hang up before the answer starts (a user pressing Ctrl-C)."""
    body = orjson.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]})
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )


def test_abandoned_and_failed_streams_do_not_exhaust_the_pool(tmp_path: Path, fake_upstream: ServerThread) -> None:
    gw = Gateway(
        data_dir=tmp_path / "d",
        env_extra={"OMNIROUTE_UPSTREAM_MAX_CONNECTIONS": str(POOL), "OMNIROUTE_UPSTREAM_CONNECT_TIMEOUT": "2"},
    ).start()
    try:
        gw.admin_post("/provider-nodes", {"prefix": "fake", "baseUrl": fake_upstream.base_url + "/v1"})
        gw.admin_post("/providers", {"provider": "fake", "apiKey": UPSTREAM_KEY})
        for _ in range(POOL * 4):
            abandon_stream_request(gw, "fake/slow-150")  # client gone before the upstream answers
        time.sleep(0.5)  # let the abandoned requests reach the upstream and end
        for _ in range(POOL * 4):  # streams that fail mid-way
            httpx.post(
                gw.v1 + "/chat/completions",
                timeout=10,
                json={"model": "fake/cut-stream", "stream": True, "messages": [{"role": "user", "content": "x"}]},
            )
        with gw.admin() as admin:  # so many cut streams opened the provider's breaker; close it again
            assert admin.post("/health/reset", json={}).json()["breakers"] == 1
        start = time.monotonic()
        ok = httpx.post(
            gw.v1 + "/chat/completions",
            timeout=10,
            json={"model": "fake/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        )
        assert ok.status_code == 200, ok.text
        assert "data: [DONE]" in ok.text
        assert time.monotonic() - start < 1.5  # no wait for a pool slot
    finally:
        gw.stop()


def test_non_latin1_model_id_is_served_and_its_header_escaped(gateway: Gateway, fake_state: object) -> None:
    for stream in (False, True):
        resp = httpx.post(
            gateway.v1 + "/chat/completions",
            timeout=10,
            json={"model": "fake/模型-ü", "stream": stream, "messages": [{"role": "user", "content": "x"}]},
        )
        assert resp.status_code == 200, resp.text
        assert unquote(resp.headers["x-omniroute-model"]) == "fake/模型-ü"
        assert resp.headers["x-omniroute-model"].isascii()


def test_model_with_control_characters_is_400(gateway: Gateway) -> None:
    resp = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "fake/a\r\nx-evil: 1", "messages": [{"role": "user", "content": "x"}]},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "model"


def test_stream_answered_with_json_error_is_a_502_not_an_empty_stream(gateway: Gateway, fake_state: object) -> None:
    fake_state.add_script([{"status": 200, "body": {"error": {"message": "quota exceeded"}}}])  # type: ignore[attr-defined]
    resp = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "fake/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert resp.status_code == 502
    assert "quota exceeded" in resp.json()["error"]["message"]


def test_client_gone_before_the_answer_cancels_the_upstream_call(tmp_path: Path, fake_upstream: ServerThread) -> None:
    """With one pooled connection, an abandoned slow request must not make the next one wait for it."""
    gw = Gateway(
        data_dir=tmp_path / "d",
        env_extra={"OMNIROUTE_UPSTREAM_MAX_CONNECTIONS": "1", "OMNIROUTE_UPSTREAM_CONNECT_TIMEOUT": "3"},
    ).start()
    try:
        gw.admin_post("/provider-nodes", {"prefix": "fake", "baseUrl": fake_upstream.base_url + "/v1"})
        gw.admin_post("/providers", {"provider": "fake", "apiKey": UPSTREAM_KEY})
        for stream in (False, True):
            body = orjson.dumps(
                {"model": "fake/slow-8000", "stream": stream, "messages": [{"role": "user", "content": "x"}]}
            )
            with socket.create_connection(("127.0.0.1", gw.port)) as sock:
                sock.sendall(
                    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                time.sleep(0.3)  # the gateway is now waiting on the upstream, holding the only connection
            start = time.monotonic()
            ok = httpx.post(
                gw.v1 + "/chat/completions",
                timeout=10,
                json={"model": "fake/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            )
            assert ok.status_code == 200, ok.text
            assert time.monotonic() - start < 2.5  # not the 8 s the abandoned call would have held it
    finally:
        gw.stop()
