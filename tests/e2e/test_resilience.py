"""Fault injection end to end: the real `omniroute serve`, a combo over three fake upstreams that speak
OpenAI, Anthropic and Gemini, and the official SDKs as clients.

Faults are scripted on the fakes (429 with Retry-After, 500, a first byte that never comes, a refused
connection, a stream cut before and after its first byte). Each test starts from a clean routing state
(`POST /api/health/reset`) and checks both what the client got and which upstreams were called.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.clients import run_claude, run_codex
from tests.e2e.harness import ADMIN_TOKEN, Gateway
from tests.fakes.anthropic_upstream import create_app as anthropic_app
from tests.fakes.gemini_upstream import create_app as gemini_app
from tests.fakes.openai_upstream import create_app as openai_app
from tests.fakes.server import ServerThread, free_port, serving

COMBO = "trio"
RESET_SECONDS = 2
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, ServerThread]]:
    with serving({"oa": openai_app(), "an": anthropic_app(), "ge": gemini_app()}) as servers:
        yield servers


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, ServerThread]) -> Iterator[Gateway]:
    gateway = Gateway(data_dir=Path(tmp_path_factory.mktemp("resilience")) / "data").start()
    try:
        nodes = {
            "oa": ("openai", fakes["oa"].base_url + "/v1"),
            "an": ("anthropic", fakes["an"].base_url + "/v1"),
            "ge": ("gemini", fakes["ge"].base_url + "/v1beta"),
            "dead": ("openai", f"http://127.0.0.1:{free_port()}/v1"),
        }
        for prefix, (api_type, url) in nodes.items():
            node = gateway.admin_post(
                "/provider-nodes", {"name": prefix, "prefix": prefix, "baseUrl": url, "apiType": api_type}
            )["node"]
            for n in (1, 2):
                gateway.admin_post(
                    "/providers", {"provider": node["id"], "apiKey": f"key-{prefix}{n}", "name": f"{prefix}{n}"}
                )
        models = ["oa/gpt-4o-mini", "an/claude-haiku-4-5", "ge/gemini-2.5-flash"]
        gateway.admin_post("/combos", {"name": COMBO, "models": models})
        gateway.admin_post("/combos", {"name": "via-dead", "models": ["dead/gpt-4o-mini", "oa/gpt-4o-mini"]})
        with gateway.admin() as admin:
            resilience = {"apikey": {"breakerThreshold": 2, "breakerResetSeconds": RESET_SECONDS}}
            resp = admin.patch(
                "/settings",
                json={"resilience": resilience, "firstByteTimeoutSeconds": 2, "keepaliveSeconds": 1},
            )
            assert resp.status_code == 200, resp.text
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(autouse=True)
def clean(gw: Gateway, fakes: dict[str, ServerThread]) -> dict[str, Any]:
    states = {name: server.app.state.fake for name, server in fakes.items()}  # type: ignore[attr-defined]
    for state in states.values():
        state.clear_requests()
        state.clear_script()
    with gw.admin() as admin:
        assert admin.post("/health/reset", json={}).status_code == 200
    return states


_CLIENTS: list[openai.OpenAI | anthropic.Anthropic] = []  # closed after each test (their sockets)


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def oai(gw: Gateway, **headers: str) -> openai.OpenAI:
    client = openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, default_headers=headers or None)
    _CLIENTS.append(client)
    return client


def ant(gw: Gateway) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=gw.base_url, api_key="unused", max_retries=0)
    _CLIENTS.append(client)
    return client


def health(gw: Gateway) -> dict[str, Any]:
    with gw.admin() as admin:
        resp = admin.get("/health")
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def served(states: dict[str, Any]) -> dict[str, int]:
    return {name: len(state.requests) for name, state in states.items()}


def test_429_with_retry_after_moves_to_the_next_account_and_cools_the_first(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"status": 429, "headers": {"retry-after": "30"}}])
    raw = oai(gw).chat.completions.with_raw_response.create(model="oa/gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-omniroute-attempts"] == "2"
    keys = [r["headers"]["authorization"] for r in clean["oa"].requests]
    assert keys == ["Bearer key-oa1", "Bearer key-oa2"]
    cooling = [c for c in health(gw)["cooldowns"] if c["reason"] == "rate_limited"]
    assert len(cooling) == 1 and 25 < cooling[0]["remainingSeconds"] <= 30
    oai(gw).chat.completions.create(model="oa/gpt-4o-mini", messages=MESSAGES)
    assert clean["oa"].requests[-1]["headers"]["authorization"] == "Bearer key-oa2"  # oa1 is skipped


def test_combo_completes_through_another_format_when_the_first_target_fails(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"status": 500}])
    reply = oai(gw).chat.completions.with_raw_response.create(model=COMBO, messages=MESSAGES)
    assert reply.parse().choices[0].message.content  # Anthropic's answer, translated for the OpenAI SDK
    assert reply.headers["x-omniroute-combo"] == COMBO
    # a 5xx is the provider's trouble: the next target, not the provider's second account
    assert served(clean) == {"oa": 1, "an": 1, "ge": 0}


def test_failing_provider_stops_receiving_traffic_and_is_probed_back(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"status": 500}] * 20)
    client = oai(gw)
    for _ in range(6):
        assert client.chat.completions.create(model=COMBO, messages=MESSAGES).choices[0].message.content
    # two failures opened the breaker (threshold 2), and no request reached oa after that
    assert served(clean)["oa"] == 2
    breaker = next(b for b in health(gw)["breakers"] if b["state"] == "open")
    assert 0 < breaker["retryInSeconds"] <= RESET_SECONDS
    clean["oa"].clear_script()
    time.sleep(RESET_SECONDS + 0.3)
    first = client.chat.completions.with_raw_response.create(model=COMBO, messages=MESSAGES)
    assert first.headers["x-omniroute-provider"].startswith("node_") and served(clean)["oa"] == 3  # the probe
    assert all(b["state"] == "closed" for b in health(gw)["breakers"])
    client.chat.completions.create(model=COMBO, messages=MESSAGES)
    assert served(clean)["oa"] == 4


def test_first_byte_timeout_moves_a_stream_to_the_next_target(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"fault": "hang"}])
    started = time.monotonic()
    stream = oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text and served(clean) == {"oa": 1, "an": 1, "ge": 0}
    assert 2 <= time.monotonic() - started < 2 + 3  # the 2 s first-byte timeout, then the next target


def test_refused_connection_falls_back(gw: Gateway, clean: dict[str, Any]) -> None:
    reply = oai(gw).chat.completions.create(model="via-dead", messages=MESSAGES)
    assert reply.choices[0].message.content and served(clean)["oa"] == 1


def test_stream_cut_before_the_first_byte_is_retried_elsewhere(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"fault": "cut-before-body"}])
    stream = oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text and served(clean) == {"oa": 1, "an": 1, "ge": 0}


def test_stream_cut_after_the_first_byte_ends_with_an_error_event(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"fault": "cut-stream"}])
    stream = oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    assert served(clean) == {"oa": 1, "an": 0, "ge": 0}  # committed: no second answer spliced in


def test_anthropic_client_gets_its_own_error_event_on_a_cut_stream(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["an"].add_script([{"fault": "cut-stream"}])
    client = ant(gw)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(model="an/claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as stream,
    ):
        for _ in stream:
            pass


def test_a_refusal_burns_no_other_account_and_all_refusals_reach_the_caller_as_the_first(
    gw: Gateway, clean: dict[str, Any]
) -> None:
    refusal = {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}}
    clean["oa"].add_script([{"status": 400, "body": refusal}])
    reply = oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES)  # one provider's limitation
    assert reply.choices[0].message.content and served(clean) == {"oa": 1, "an": 1, "ge": 0}
    clean["oa"].add_script([{"status": 400, "body": refusal}])
    clean["an"].add_script([{"status": 400}])
    clean["ge"].add_script([{"status": 400}])
    with pytest.raises(openai.BadRequestError) as info:  # the request itself: every target refuses it
        oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES)
    assert "temperature" in str(info.value)  # the first refusal, as the upstream worded it
    assert served(clean) == {"oa": 2, "an": 2, "ge": 1}  # one account of each: none burnt twice


def test_everything_rate_limited_answers_429_with_retry_after(gw: Gateway, clean: dict[str, Any]) -> None:
    for name in ("oa", "an", "ge"):
        clean[name].add_script([{"status": 429, "headers": {"retry-after": "9"}}] * 2)
    with pytest.raises(openai.RateLimitError) as info:
        oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES)
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 9
    client = ant(gw)
    with pytest.raises(anthropic.RateLimitError):  # every account cools down: nothing is called again
        client.messages.create(model=COMBO, max_tokens=32, messages=MESSAGES)
    assert served(clean) == {"oa": 2, "an": 2, "ge": 2}


def test_idempotency_key_replays_the_first_answer(gw: Gateway, clean: dict[str, Any]) -> None:
    client = oai(gw, **{"Idempotency-Key": "retry-1"})
    first = client.chat.completions.with_raw_response.create(model=COMBO, messages=MESSAGES)
    second = client.chat.completions.with_raw_response.create(model=COMBO, messages=MESSAGES)
    assert second.headers.get("x-omniroute-idempotent") == "true"
    assert second.parse().id == first.parse().id and served(clean)["oa"] == 1
    other = oai(gw, **{"Idempotency-Key": "retry-2"}).chat.completions.create(model=COMBO, messages=MESSAGES)
    assert other.id != first.parse().id and served(clean)["oa"] == 2


def test_idempotent_stream_is_replayed_byte_for_byte(gw: Gateway, clean: dict[str, Any]) -> None:
    body = {"model": COMBO, "messages": MESSAGES, "stream": True}
    headers = {"idempotency-key": "stream-1"}
    with httpx.Client(timeout=10) as http:
        first = http.post(gw.v1 + "/chat/completions", json=body, headers=headers)
        second = http.post(gw.v1 + "/chat/completions", json=body, headers=headers)
    assert first.text.count("[DONE]") == 1 and second.text == first.text
    assert second.headers["x-omniroute-idempotent"] == "true" and served(clean)["oa"] == 1


def test_temperature_zero_answers_come_from_the_cache(gw: Gateway, clean: dict[str, Any]) -> None:
    client = oai(gw)
    first = client.chat.completions.with_raw_response.create(model=COMBO, messages=MESSAGES, temperature=0)
    second = client.chat.completions.with_raw_response.create(model=COMBO, messages=MESSAGES, temperature=0)
    assert (first.headers["x-omniroute-cache"], second.headers["x-omniroute-cache"]) == ("MISS", "HIT")
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert served(clean)["oa"] == 1
    system = [{"role": "system", "content": "be terse"}, *MESSAGES]
    client.chat.completions.create(model=COMBO, messages=system, temperature=0)  # another system prompt: miss
    bypass = oai(gw, **{"X-OmniRoute-No-Cache": "true"}).chat.completions.with_raw_response.create(
        model=COMBO, messages=MESSAGES, temperature=0
    )
    assert bypass.headers["x-omniroute-cache"] == "MISS" and served(clean)["oa"] == 3
    assert health(gw)["cache"]["hits"] >= 1


def test_silent_streams_get_keepalives_and_progress_frames(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"fault": "stall-after-first", "stall_ms": 2500}])
    body = {"model": "oa/gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.Client(timeout=15) as http:
        reply = http.post(gw.v1 + "/chat/completions", json=body, headers={"x-omniroute-progress": "true"})
    text = reply.text
    assert ": keepalive" in text
    assert "event: progress" in text and '"done":true' in text and text.count("data: [DONE]") == 1
    clean["oa"].add_script([{"fault": "stall-after-first", "stall_ms": 2500}])
    stream = oai(gw).chat.completions.create(model="oa/gpt-4o-mini", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)  # the SDK ignores comments


def test_models_list_names_the_combos(gw: Gateway) -> None:
    ids = {m.id for m in oai(gw).models.list()}
    assert {COMBO, "via-dead"} <= ids


def test_health_reset_clears_breakers_and_cooldowns(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"status": 500}, {"status": 500}])
    clean["an"].add_script([{"status": 429}])
    for _ in range(2):
        oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES)
    before = health(gw)
    assert any(b["state"] == "open" for b in before["breakers"]) and before["cooldowns"]
    with gw.admin() as admin:
        reset = admin.post("/health/reset", json={}).json()
    assert reset["breakers"] >= 1 and reset["cooldowns"] >= 1
    report = health(gw)
    assert not report["cooldowns"] and all(b["state"] == "closed" for b in report["breakers"])


def test_omniroute_status_shows_the_live_gateway(gw: Gateway, clean: dict[str, Any]) -> None:
    clean["oa"].add_script([{"status": 500}, {"status": 500}])
    for _ in range(2):
        oai(gw).chat.completions.create(model=COMBO, messages=MESSAGES)
    omniroute = Path(sys.executable).with_name("omniroute")
    env = {**os.environ, "OMNIROUTE_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    shown = subprocess.run(
        [str(omniroute), "status", "--url", gw.base_url], capture_output=True, text=True, env=env, timeout=30
    )
    assert shown.returncode == 0, shown.stderr
    node = next(b["provider"] for b in health(gw)["breakers"] if b["state"] == "open")
    assert node in shown.stdout and "open" in shown.stdout and ADMIN_TOKEN not in shown.stdout + shown.stderr
    reset = subprocess.run(
        [str(omniroute), "status", "--url", gw.base_url, "--reset", "--provider", node],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert all(b["state"] == "closed" for b in health(gw)["breakers"])


def test_claude_code_keeps_working_when_its_provider_is_overloaded(
    gw: Gateway, clean: dict[str, Any], tmp_path: Path
) -> None:
    """The real Claude Code CLI on a combo whose first target answers Anthropic's 529 overloaded: the
    gateway moves on to the OpenAI-speaking target, and Claude Code never sees the failure."""
    gw.admin_post("/combos", {"name": "coding", "models": ["an/claude-haiku-4-5", "oa/gpt-4o-mini"]})
    clean["an"].add_script([{"status": 529}] * 10)
    result = run_claude(gw, tmp_path, "say hi", model="coding")
    assert result["is_error"] is False, result
    assert result["result"].startswith("Hello from fake-openai:")
    assert len(clean["an"].requests) >= 1 and len(clean["oa"].requests) >= 1


def test_codex_keeps_working_when_its_first_account_is_rate_limited(
    gw: Gateway, clean: dict[str, Any], tmp_path: Path
) -> None:
    """The real Codex CLI on one provider with two accounts: the first answers 429 with Retry-After, the
    second answers, and Codex finishes its turn."""
    clean["oa"].add_script([{"status": 429, "headers": {"retry-after": "60"}}])
    proc = run_codex(gw, tmp_path, "say hi", model="oa/gpt-4o-mini")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Tool said:" in proc.stdout, proc.stdout[-2000:]
    keys = [r["headers"]["authorization"] for r in clean["oa"].requests]
    assert keys[0] == "Bearer key-oa1" and set(keys[1:]) == {"Bearer key-oa2"}  # oa1 cools down for 60 s
