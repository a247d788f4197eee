"""Every bad request gets its documented 4xx in OpenAI's shape, upstream failures map to 502/504, and the
server keeps serving afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.harness import Gateway
from tests.fakes.server import ServerThread, free_port

MSG = [{"role": "user", "content": "hi"}]


def post(gw: Gateway, body: Any, **kw: Any) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return httpx.post(gw.v1 + "/chat/completions", content=body, timeout=30, **kw)
    return httpx.post(gw.v1 + "/chat/completions", json=body, timeout=30, **kw)


def error_of(resp: httpx.Response) -> dict[str, Any]:
    doc = resp.json()
    assert set(doc) == {"error"}, doc
    assert {"message", "type", "param", "code"} <= set(doc["error"]), doc
    err: dict[str, Any] = doc["error"]
    return err


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (b"{not json", 400, None, "invalid_json"),
        (b"", 400, None, "invalid_json"),
        (b"[]", 400, None, "invalid_type"),
        ({"messages": MSG}, 400, "model", "missing_required_parameter"),
        ({"model": 42, "messages": MSG}, 400, "model", "invalid_type"),
        ({"model": "ds/deepseek-chat"}, 400, "messages", "missing_required_parameter"),
        ({"model": "ds/deepseek-chat", "messages": "hi"}, 400, "messages", "invalid_type"),
        ({"model": "ds/deepseek-chat", "messages": []}, 400, "messages", "empty_array"),
        (
            {"model": "ds/deepseek-chat", "messages": [{"role": "bot", "content": "x"}]},
            400,
            "messages[0].role",
            "invalid_value",
        ),
        ({"model": "ds/deepseek-chat", "messages": MSG, "stream": "yes"}, 400, "stream", "invalid_type"),
        ({"model": "ds/deepseek-chat", "messages": MSG, "max_tokens": "ten"}, 400, "max_tokens", "invalid_type"),
        ({"model": "nobody/nothing", "messages": MSG}, 404, "model", "model_not_found"),
        ({"model": "groq/llama-3.3-70b-versatile", "messages": MSG}, 404, "model", "model_not_found"),
    ],
)
def test_bad_requests_get_their_4xx(gateway: Gateway, body: Any, status: int, param: str | None, code: str) -> None:
    resp = post(gateway, body)
    assert resp.status_code == status, resp.text
    err = error_of(resp)
    assert (err["param"], err["code"]) == (param, code)
    assert "x-request-id" in resp.headers


def test_not_yet_supported_format_is_a_clear_400(gateway: Gateway) -> None:
    gateway.admin_post("/providers", {"provider": "cohere", "apiKey": "co-test-0000000000000000000"})
    resp = post(gateway, {"model": "cohere/command-a-03-2025", "messages": MSG})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "not_supported" and "cohere format" in err["message"]


def test_unknown_route_and_wrong_method(gateway: Gateway) -> None:
    resp = httpx.get(gateway.v1 + "/nope")
    assert resp.status_code == 404 and error_of(resp)["type"] == "not_found_error"
    resp = httpx.get(gateway.v1 + "/chat/completions")
    assert resp.status_code == 405 and error_of(resp)["code"] == "method_not_allowed"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429])
def test_upstream_4xx_is_relayed_faithfully(gateway: Gateway, fake_state: Any, status: int) -> None:
    body = {"error": {"message": f"upstream says {status}", "type": "x", "param": None, "code": "c"}}
    fake_state.add_script(
        [{"status": status, "body": body, "headers": {"retry-after": "9", "x-ratelimit-remaining-requests": "0"}}]
    )
    resp = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG})
    assert resp.status_code == status
    assert resp.json() == body
    assert resp.headers["retry-after"] == "9"
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert resp.headers["x-omniroute-provider"] == "deepseek"  # the upstream said it, not the gateway


def test_upstream_non_json_4xx_is_wrapped(gateway: Gateway, fake_state: Any) -> None:
    fake_state.add_script([{"status": 403, "body": "<html>denied</html>"}])
    resp = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG})
    assert resp.status_code == 403
    assert "denied" in error_of(resp)["message"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_becomes_502(gateway: Gateway, fake_state: Any, status: int) -> None:
    fake_state.add_script([{"status": status}])
    resp = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG})
    assert resp.status_code == 502
    err = error_of(resp)
    assert err["code"] == "upstream_error" and f"HTTP {status}" in err["message"]
    rid = resp.headers["x-request-id"]
    assert f"{rid} POST /v1/chat/completions -> 502 upstream_error (provider=deepseek)" in gateway.log()
    assert "upstream;dur=" in resp.headers["server-timing"]  # how long the upstream took to fail


def test_upstream_200_that_is_not_json_becomes_502(gateway: Gateway, fake_state: Any) -> None:
    fake_state.add_script([{"status": 200, "body": "<html>captive portal</html>"}])
    resp = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG})
    assert resp.status_code == 502


def test_stream_upstream_error_before_first_byte_is_a_plain_error(gateway: Gateway, fake_state: Any) -> None:
    fake_state.add_script([{"status": 429, "headers": {"retry-after": "3"}}])
    resp = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG, "stream": True})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "3"
    assert resp.headers["content-type"].startswith("application/json")


def test_cut_stream_ends_with_an_error_event_the_sdk_raises(gateway: Gateway) -> None:
    with OpenAI(base_url=gateway.v1, api_key="x", max_retries=0) as client:
        stream = client.chat.completions.create(model="fake/cut-stream", messages=MSG, stream=True)  # type: ignore[arg-type]
        received: list[str] = []

        def consume() -> None:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")

        with pytest.raises(openai.APIError, match="broke the connection"):
            consume()
    assert "".join(received)  # what arrived before the cut was relayed
    assert "ended early" in gateway.log()


def test_unreachable_upstream_is_502_and_timeout_is_504(tmp_path: Path, fake_upstream: ServerThread) -> None:
    gw = Gateway(data_dir=tmp_path / "d", env_extra={"OMNIROUTE_UPSTREAM_READ_TIMEOUT": "0.5"}).start()
    try:
        gw.admin_post(
            "/providers", {"provider": "groq", "apiKey": "k-123456789", "baseUrl": f"http://127.0.0.1:{free_port()}/v1"}
        )
        gw.admin_post(
            "/providers", {"provider": "deepseek", "apiKey": UPSTREAM_KEY, "baseUrl": fake_upstream.base_url + "/v1"}
        )
        resp = post(gw, {"model": "groq/llama-3.3-70b-versatile", "messages": MSG})
        assert resp.status_code == 502 and "connect" in error_of(resp)["message"].lower()
        resp = post(gw, {"model": "ds/slow-2000", "messages": MSG})
        assert resp.status_code == 504 and error_of(resp)["code"] == "upstream_timeout"
        # First byte within the timeout, then silence longer than it: the stream ends with an error event.
        resp = post(gw, {"model": "ds/drip-1500", "messages": MSG, "stream": True})
        assert resp.status_code == 200 and '"upstream_timeout"' in resp.text
        assert post(gw, {"model": "ds/deepseek-chat", "messages": MSG}).status_code == 200
    finally:
        gw.stop()


def test_api_keys_when_required(tmp_path: Path, fake_upstream: ServerThread) -> None:
    gw = Gateway(data_dir=tmp_path / "d").start()
    try:
        gw.admin_post(
            "/providers", {"provider": "deepseek", "apiKey": UPSTREAM_KEY, "baseUrl": fake_upstream.base_url + "/v1"}
        )
        body = {"model": "ds/deepseek-chat", "messages": MSG}
        assert post(gw, body, headers={"authorization": "Bearer whatever"}).status_code == 200  # not required yet
        with gw.admin() as admin:
            assert admin.patch("/settings", json={"requireApiKey": True}).json()["requireApiKey"] is True
            key = admin.post("/keys", json={"name": "t"}).json()
        missing = post(gw, body)
        assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
        wrong = post(gw, body, headers={"authorization": "Bearer sk-omni-wrong"})
        assert wrong.status_code == 401 and error_of(wrong)["code"] == "invalid_api_key"
        assert post(gw, body, headers={"authorization": f"Bearer {key['key']}"}).status_code == 200
        assert post(gw, body, headers={"x-api-key": key["key"]}).status_code == 200
        assert httpx.get(gw.v1 + "/models").status_code == 401
        with OpenAI(base_url=gw.v1, api_key=key["key"], max_retries=0) as client:
            assert client.chat.completions.create(model="ds/deepseek-chat", messages=MSG).choices  # type: ignore[arg-type]
        with (
            OpenAI(base_url=gw.v1, api_key="sk-omni-nope", max_retries=0) as client,
            pytest.raises(openai.AuthenticationError),
        ):
            client.chat.completions.create(model="ds/deepseek-chat", messages=MSG)  # type: ignore[arg-type]
        with gw.admin() as admin:
            assert admin.patch(f"/keys/{key['id']}", json={"enabled": False}).status_code == 200
            assert post(gw, body, headers={"authorization": f"Bearer {key['key']}"}).status_code == 403
            assert admin.delete(f"/keys/{key['id']}").status_code == 204
        assert post(gw, body, headers={"authorization": f"Bearer {key['key']}"}).status_code == 401
    finally:
        gw.stop()


def test_server_keeps_serving_after_a_burst_of_bad_input(gateway: Gateway) -> None:
    for raw in (b"{", b"null", b'{"model": []}', b"\xff\xfe", b'{"model":"x","messages":[1]}' * 1000):
        assert 400 <= post(gateway, raw).status_code < 500
    ok = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example"])
def test_keyless_browser_request_from_another_site_is_refused(gateway: Gateway, origin: str) -> None:
    resp = post(
        gateway,
        b'{"model":"ds/deepseek-chat","messages":[{"role":"user","content":"x"}]}',
        headers={"origin": origin, "content-type": "text/plain"},
    )
    assert resp.status_code == 403
    assert error_of(resp)["code"] == "cross_origin_without_key"


def test_keyless_request_from_a_local_page_is_allowed(gateway: Gateway) -> None:
    resp = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG}, headers={"origin": "http://localhost:3000"})
    assert resp.status_code == 200


def test_malformed_upstream_usage_never_breaks_the_answer(gateway: Gateway, fake_state: Any) -> None:
    head = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    chunk = head + '"choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}'
    bad_usage = head + '"choices":[],"usage":{"prompt_tokens":[1]}}'
    fake_state.add_script(
        [
            {
                "status": 200,
                "headers": {"content-type": "text/event-stream"},
                "body": f"data: {chunk}\n\ndata: {bad_usage}\n\ndata: [DONE]\n\n",
            },
            {
                "status": 200,
                "body": {"id": "x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": "n/a"}},
            },
        ]
    )
    streamed = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG, "stream": True})
    assert streamed.status_code == 200
    assert '"hello"' in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")
    plain = post(gateway, {"model": "ds/deepseek-chat", "messages": MSG})
    assert plain.status_code == 200 and plain.json()["usage"] == {"prompt_tokens": "n/a"}


def test_gemini_clients_get_errors_in_googles_shape(gateway: Gateway) -> None:
    url = gateway.base_url + "/v1beta/models/nobody/none:generateContent"
    resp = httpx.post(url, json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]})
    assert resp.status_code == 404
    assert resp.json()["error"]["status"] == "NOT_FOUND" and resp.json()["error"]["code"] == 404
    bad = httpx.post(
        gateway.base_url + "/v1beta/models/fake/gpt-4o-mini:generateContent",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    unknown_method = httpx.post(gateway.base_url + "/v1beta/models/fake/gpt-4o-mini:embedContent", json={})
    assert unknown_method.status_code == 404 and unknown_method.json()["error"]["status"] == "NOT_FOUND"


def test_responses_clients_get_errors_in_openais_shape(gateway: Gateway) -> None:
    resp = httpx.post(gateway.v1 + "/responses", json={"model": "nobody/none", "input": "x"})
    assert resp.status_code == 404 and set(resp.json()) == {"error"}
    resp = httpx.post(gateway.v1 + "/responses", json={"input": "x"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "model"
