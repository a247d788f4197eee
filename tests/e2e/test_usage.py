"""Usage, cost, budgets and quota windows end to end: the real `omniroute serve`, fake upstreams of each wire
format (tests/fakes/), the official SDKs as clients, and the admin API reading back what was recorded.

One gateway serves the module. Each test starts from clean fakes (requests and scripts cleared), a clean
routing state (`POST /api/health/reset`) and the default settings (no API key required, no request log).
Usage events are written in the background, so tests poll `GET /api/usage/history` for the events of the
requests they made (told apart from earlier tests' events by request id) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import Gateway
from tests.e2e.sdk_clients import SdkClient
from tests.fakes.anthropic_upstream import create_app as create_anthropic
from tests.fakes.gemini_upstream import create_app as create_gemini
from tests.fakes.openai_upstream import create_app as create_openai
from tests.fakes.responses_upstream import create_app as create_responses
from tests.fakes.server import ServerThread, serving

# upstream format → (node prefix, fake factory, model the fake serves, base path)
UPSTREAMS: dict[str, tuple[str, Any, str, str]] = {
    "openai": ("oai", create_openai, "gpt-4o-mini", "v1"),
    "anthropic": ("ant", create_anthropic, "claude-sonnet-4-6", "v1"),
    "gemini": ("gem", create_gemini, "gemini-3-flash-preview", "v1beta"),  # a thinking model: thought tokens
    "responses": ("rsp", create_responses, "gpt-4o-mini", "v1"),
}
# USD per 1M tokens; every kind its own rate, so a token billed at the wrong rate shows in the cost
RATES = {"input": 3000, "output": 12000, "cached": 300, "cacheCreation": 3750, "reasoning": 20000}
TOKEN_FIELDS = ("inputTokens", "outputTokens", "cachedTokens", "cacheCreationTokens", "reasoningTokens")
PLACEHOLDER = "sk-any-placeholder"


# ----- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, ServerThread]]:
    with serving({name: spec[1]() for name, spec in UPSTREAMS.items()}) as servers:
        yield servers


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, ServerThread]) -> Iterator[Gateway]:
    gateway = Gateway(data_dir=tmp_path_factory.mktemp("usage") / "data").start()
    try:
        for name, (prefix, _, model, base) in UPSTREAMS.items():
            node = add_node(gateway, prefix, name, f"{fakes[name].base_url}/{base}")
            gateway.admin_post("/providers", {"provider": node, "apiKey": f"key-{prefix}", "name": prefix})
            gateway.admin_post("/provider-models", {"provider": prefix, "modelId": model})
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(autouse=True)
def clean(gw: Gateway, fakes: dict[str, ServerThread]) -> Iterator[dict[str, Any]]:
    states = {name: server.app.state.fake for name, server in fakes.items()}  # type: ignore[attr-defined]
    for state in states.values():
        state.clear_requests()
        state.clear_script()
    with gw.admin() as api:
        assert api.post("/health/reset", json={}).status_code == 200
    yield states
    with gw.admin() as api:
        reset = {"requireApiKey": False, "requestLogs": {"enabled": False}}
        assert api.patch("/settings", json=reset).status_code == 200


# ----- helpers --------------------------------------------------------------------------------------------


def add_node(gw: Gateway, prefix: str, api_type: str, base_url: str) -> str:
    body = {"name": prefix, "prefix": prefix, "baseUrl": base_url, "apiType": api_type}
    node_id: str = gw.admin_post("/provider-nodes", body)["node"]["id"]
    return node_id


def api_get(gw: Gateway, path: str, **params: Any) -> dict[str, Any]:
    with gw.admin() as api:
        resp = api.get(path, params=params)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def set_prices(gw: Gateway, prefix: str, model: str, rates: Mapping[str, float]) -> None:
    with gw.admin() as api:
        resp = api.patch("/pricing", json={prefix: {model: rates}})
    assert resp.status_code == 200, resp.text


def patch_settings(gw: Gateway, body: dict[str, Any]) -> None:
    with gw.admin() as api:
        resp = api.patch("/settings", json=body)
    assert resp.status_code == 200, resp.text


def create_key(gw: Gateway, name: str) -> tuple[str, str]:
    """(key id, the key itself)."""
    key = gw.admin_post("/keys", {"name": name})
    return key["id"], key["key"]


def settle(gw: Gateway) -> None:
    """Wait until every usage event recorded so far is written (an earlier test's last events included)."""

    def idle() -> bool:
        accounting = api_get(gw, "/health").get("accounting")
        if accounting is None:  # a gateway that does not report its queue: give the writer a moment
            time.sleep(0.3)
            return True
        return bool(accounting["pending"] == 0 and accounting["recorded"] == accounting["written"])

    wait_for(idle, "the usage writer to catch up", 10)


def seen(gw: Gateway) -> set[str]:
    """Request ids of the newest events (a test's own events are the ones not in this set)."""
    settle(gw)
    return {e["requestId"] for e in api_get(gw, "/usage/history", limit=200)["items"]}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 3.0) -> Any:
    """Poll until `condition()` is truthy (events and spend are written in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, f"timed out waiting for {what}"
            return value
        time.sleep(0.05)


def new_events(gw: Gateway, before: set[str], count: int, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The `count` events recorded since `before`, oldest first (waits for the background writer)."""

    def fresh() -> list[dict[str, Any]] | None:
        items = [e for e in api_get(gw, "/usage/history", limit=200)["items"] if e["requestId"] not in before]
        return items if len(items) >= count else None

    items: list[dict[str, Any]] = wait_for(fresh, f"{count} usage events", timeout)
    time.sleep(0.1)  # and no more than that
    items = [e for e in api_get(gw, "/usage/history", limit=200)["items"] if e["requestId"] not in before]
    assert len(items) == count, items
    return items[::-1]


def expected_cost(event: dict[str, Any], rates: Mapping[str, float]) -> float:
    """The billing rule (shared/domain/pricing.py), spelled out independently."""
    fresh = event["inputTokens"] - event["cachedTokens"] - event["cacheCreationTokens"]
    answer = event["outputTokens"] - event["reasoningTokens"]
    micro = (
        fresh * rates["input"]
        + event["cachedTokens"] * rates["cached"]
        + event["cacheCreationTokens"] * rates["cacheCreation"]
        + answer * rates["output"]
        + event["reasoningTokens"] * rates["reasoning"]
    )
    return round(float(micro) / 1e6, 6)


def upstream_usage(upstream: str, fake: ServerThread, recorded: dict[str, Any]) -> dict[str, int]:
    """What the fake reports for the request the gateway sent it: the recorded body replayed to the fake
    directly as a non-streamed request, its usage in the gateway's terms (input includes cached and
    cache-creation tokens, output includes reasoning tokens)."""
    body = dict(recorded["body"])
    path = recorded["path"].replace(":streamGenerateContent", ":generateContent")
    body.pop("stream", None)
    body.pop("stream_options", None)
    headers = {k: v for k, v in recorded["headers"].items() if k in ("authorization", "x-api-key", "x-goog-api-key")}
    if "anthropic-version" in recorded["headers"]:
        headers["anthropic-version"] = recorded["headers"]["anthropic-version"]
    resp = httpx.post(fake.base_url + path, json=body, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    if upstream == "openai":
        u = doc["usage"]
        return {
            "inputTokens": u["prompt_tokens"],
            "outputTokens": u["completion_tokens"],
            "cachedTokens": u["prompt_tokens_details"]["cached_tokens"],
            "cacheCreationTokens": 0,
            "reasoningTokens": u["completion_tokens_details"]["reasoning_tokens"],
        }
    if upstream == "anthropic":
        u = doc["usage"]
        cached, creation = u["cache_read_input_tokens"], u["cache_creation_input_tokens"]
        return {
            "inputTokens": u["input_tokens"] + cached + creation,
            "outputTokens": u["output_tokens"],
            "cachedTokens": cached,
            "cacheCreationTokens": creation,
            "reasoningTokens": 0,
        }
    if upstream == "gemini":
        u = doc["usageMetadata"]
        thoughts = u.get("thoughtsTokenCount", 0)
        return {
            "inputTokens": u["promptTokenCount"],
            "outputTokens": u.get("candidatesTokenCount", 0) + thoughts,
            "cachedTokens": u.get("cachedContentTokenCount", 0),
            "cacheCreationTokens": 0,
            "reasoningTokens": thoughts,
        }
    u = doc["usage"]
    return {
        "inputTokens": u["input_tokens"],
        "outputTokens": u["output_tokens"],
        "cachedTokens": u["input_tokens_details"]["cached_tokens"],
        "cacheCreationTokens": 0,
        "reasoningTokens": u["output_tokens_details"]["reasoning_tokens"],
    }


CELLS = [
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("gemini", "gemini"),
    ("responses", "responses"),
    ("anthropic", "openai"),
    ("openai", "anthropic"),
    ("responses", "gemini"),
    ("gemini", "responses"),
]


@pytest.mark.parametrize(("client_kind", "upstream"), [pytest.param(c, u, id=f"{c}-from-{u}") for c, u in CELLS])
def test_streamed_and_plain_usage_match_what_the_upstream_reported(
    gw: Gateway, fakes: dict[str, ServerThread], clean: dict[str, Any], client_kind: str, upstream: str
) -> None:
    prefix, _, model_id, _ = UPSTREAMS[upstream]
    set_prices(gw, prefix, model_id, RATES)
    model = f"{prefix}/{model_id}"
    # the Responses fake reasons (and counts reasoning tokens) when asked to
    extra: dict[str, Any] = {"reasoning": {"effort": "low"}} if client_kind == upstream == "responses" else {}
    prompt = "count the tokens of these seven words please"
    before = seen(gw)
    client = SdkClient(client_kind, gw)
    try:
        plain = client.text(model, prompt, **extra)
        streamed = client.stream_text(model, prompt, **extra)
    finally:
        client.close()
    assert plain == streamed and prompt in plain
    first, second = new_events(gw, before, 2)
    assert (first["stream"], second["stream"]) == (False, True)
    reported = upstream_usage(upstream, fakes[upstream], clean[upstream].requests[0])
    for event in (first, second):
        assert event["status"] == 200 and event["estimated"] is False and event["client"] == client_kind
        assert {f: event[f] for f in TOKEN_FIELDS} == reported
        assert event["costUsd"] == expected_cost(event, RATES) > 0
    if upstream == "gemini" or client_kind == upstream == "responses":
        assert reported["reasoningTokens"] > 0  # the reasoning rate is exercised


# ----- 2. estimated usage --------------------------------------------------------------------------------

ANSWER = "An answer whose upstream reported no usage at all, so the gateway must estimate it."


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-nousage",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return "data: " + json.dumps(chunk) + "\n\n"


def test_usage_is_estimated_when_the_upstream_reports_none(gw: Gateway, clean: dict[str, Any]) -> None:
    completion = {
        "id": "chatcmpl-nousage",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
    }  # no `usage`
    half = len(ANSWER) // 2
    stream = (
        _chunk({"role": "assistant", "content": ""})
        + _chunk({"content": ANSWER[:half]})
        + _chunk({"content": ANSWER[half:]})
        + _chunk({}, "stop")
        + "data: [DONE]\n\n"
    )  # no usage chunk, although the gateway asks for one
    clean["openai"].add_script(
        [
            {"status": 200, "body": completion},
            {"status": 200, "headers": {"content-type": "text/event-stream"}, "body": stream},
        ]
    )
    before = seen(gw)
    client = SdkClient("openai", gw)
    try:
        assert client.text("oai/gpt-4o-mini", "please answer without usage") == ANSWER
        assert client.stream_text("oai/gpt-4o-mini", "please answer without usage") == ANSWER
    finally:
        client.close()
    for event in new_events(gw, before, 2):
        assert event["estimated"] is True and event["status"] == 200
        assert event["inputTokens"] > 0
        assert event["outputTokens"] == math.ceil(len(ANSWER) / 4)
    totals = api_get(gw, "/usage/analytics", groupBy="provider")["totals"]
    assert totals["estimatedRequests"] >= 2


# ----- 3. concurrency ------------------------------------------------------------------------------------

N_REQUESTS = 200
CONCURRENCY = 50


def test_concurrent_requests_through_one_key_give_exact_totals(gw: Gateway) -> None:
    patch_settings(gw, {"requireApiKey": True})
    key_id, key = create_key(gw, "load")
    before = seen(gw)

    async def fire() -> list[Any]:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with openai.AsyncOpenAI(base_url=gw.v1, api_key=key, max_retries=0, timeout=30) as client:

            async def one(n: int) -> Any:
                async with gate:
                    reply = await client.chat.completions.create(
                        model="oai/gpt-4o-mini", messages=[{"role": "user", "content": "the same prompt each time"}]
                    )
                    return reply.usage

            return await asyncio.gather(*(one(n) for n in range(N_REQUESTS)))

    usages = asyncio.run(fire())
    per_request = {(u.prompt_tokens, u.completion_tokens) for u in usages}
    assert len(per_request) == 1
    prompt_tokens, completion_tokens = per_request.pop()

    events = new_events(gw, before, N_REQUESTS, timeout=15)
    assert {e["keyId"] for e in events} == {key_id} and {e["status"] for e in events} == {200}
    assert len({e["requestId"] for e in events}) == N_REQUESTS

    def mine() -> dict[str, Any]:
        rows = api_get(gw, "/usage/analytics", groupBy="key,day")["groups"]
        return next(r for r in rows if r["keyId"] == key_id)

    row = mine()
    assert (row["requests"], row["errors"], row["keyName"]) == (N_REQUESTS, 0, "load")
    assert row["inputTokens"] == N_REQUESTS * prompt_tokens
    assert row["outputTokens"] == N_REQUESTS * completion_tokens
    assert row["day"] == datetime.now(UTC).date().isoformat()
    with gw.admin() as api:
        for _ in range(2):  # rolling up (twice: re-running is safe) changes nothing
            assert api.post("/usage/rollup", params={"hours": 48}).status_code == 200
            assert mine() == row


# ----- 4. budgets ----------------------------------------------------------------------------------------


def next_utc_midnight() -> float:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() + 86_400


def test_budget_refuses_requests_in_each_clients_format_once_spent(gw: Gateway) -> None:
    set_prices(gw, "oai", "gpt-4o-mini", {"input": 10_000, "output": 10_000})
    patch_settings(gw, {"requireApiKey": True})
    key_id, key = create_key(gw, "budgeted")
    oai = openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)
    ant = anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0)
    messages: Any = [{"role": "user", "content": "spend some money"}]

    def ask() -> Any:
        return oai.chat.completions.with_raw_response.create(model="oai/gpt-4o-mini", messages=messages)

    def daily() -> dict[str, Any]:
        budget = next(b for b in api_get(gw, "/budgets")["budgets"] if b["keyId"] == key_id)
        period: dict[str, Any] = next(p for p in budget["periods"] if p["period"] == "daily")
        return period

    try:
        # one request without a budget: what a request costs (spend is only counted under a budget)
        before = seen(gw)
        ask()
        (probe,) = new_events(gw, before, 1)
        each = probe["costUsd"]
        assert each > 0
        limit = round(each * 2.2, 6)  # two requests fit, the third passes (spend under the limit), a fourth not
        with gw.admin() as api:
            resp = api.put(f"/budgets/{key_id}", json={"dailyLimitUsd": limit, "warningThreshold": 0.8})
        assert resp.status_code == 200, resp.text
        assert daily()["status"] == "ok" and daily()["spentUsd"] == 0

        warnings = []
        for n in (1, 2, 3):
            raw = ask()
            assert raw.parse().choices[0].message.content
            warnings.append(raw.headers.get("x-omniroute-budget-warning"))
            wait_for(lambda n=n: daily()["spentUsd"] == pytest.approx(n * each, abs=1e-6), f"spend of {n}")
        assert warnings[:2] == [None, None]  # 0 % and 45 % of the limit before them
        assert warnings[2] is not None and "daily" in warnings[2]  # 91 % before the third
        period = daily()
        assert period["status"] == "exceeded" and period["remainingUsd"] == 0
        reset_in = next_utc_midnight() - time.time()

        with pytest.raises(openai.RateLimitError) as refused:
            oai.chat.completions.create(model="oai/gpt-4o-mini", messages=messages)
        assert refused.value.code == "budget_exceeded"
        assert abs(int(refused.value.response.headers["retry-after"]) - reset_in) <= 3

        with pytest.raises(anthropic.RateLimitError) as refused_ant:
            ant.messages.create(model="oai/gpt-4o-mini", max_tokens=64, messages=messages)
        body = refused_ant.value.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "budget" in body["error"]["message"]
        assert abs(int(refused_ant.value.response.headers["retry-after"]) - reset_in) <= 3

        google = httpx.post(
            gw.base_url + "/v1beta/models/oai/gpt-4o-mini:generateContent",
            headers={"x-goog-api-key": key},
            json={"contents": [{"role": "user", "parts": [{"text": "spend some money"}]}]},
        )
        assert google.status_code == 429
        error = google.json()["error"]
        assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED") and "budget" in error["message"]
        assert abs(int(google.headers["retry-after"]) - reset_in) <= 3

        with gw.admin() as api:
            assert api.delete(f"/budgets/{key_id}").status_code == 204
        assert all(b["keyId"] != key_id for b in api_get(gw, "/budgets")["budgets"])
        after = ask()
        assert after.parse().choices[0].message.content
        assert "x-omniroute-budget-warning" not in after.headers
    finally:
        oai.close()
        ant.close()


# ----- 5 and 6. quota windows ----------------------------------------------------------------------------


def upstream_key(request: dict[str, Any]) -> str:
    headers = request["headers"]
    return str(headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer "))


def account(gw: Gateway, connection_id: str) -> dict[str, Any] | None:
    accounts = api_get(gw, "/usage/quota")["accounts"]
    return next((a for a in accounts if a["connectionId"] == connection_id), None)


def test_a_configured_quota_window_skips_the_account_before_it_fails(
    gw: Gateway, fakes: dict[str, ServerThread], clean: dict[str, Any]
) -> None:
    node = add_node(gw, "qa", "openai", fakes["openai"].base_url + "/v1")
    quotas = [{"window": "daily", "requests": 3}]
    first = gw.admin_post("/providers", {"provider": node, "apiKey": "key-qa1", "name": "qa1", "priority": 0})
    second = gw.admin_post("/providers", {"provider": node, "apiKey": "key-qa2", "name": "qa2", "priority": 1})
    first_id, second_id = first["connection"]["id"], second["connection"]["id"]
    with gw.admin() as api:
        resp = api.patch(f"/providers/{first_id}", json={"quotas": quotas})
    assert resp.status_code == 200, resp.text
    assert resp.json()["connection"]["quotas"][0]["requests"] == 3

    client = SdkClient("openai", gw)
    before = seen(gw)
    try:
        for _ in range(3):
            assert client.text("qa/gpt-4o-mini", "count me")
        assert [upstream_key(r) for r in clean["openai"].requests] == ["key-qa1"] * 3
        blocked = wait_for(lambda: (a := account(gw, first_id)) is not None and a["blocked"] and a, "a full window")
        midnight = datetime.fromtimestamp(next_utc_midnight(), UTC).isoformat().replace("+00:00", "Z")
        (window,) = blocked["windows"]
        assert (window["name"], window["source"], window["used"], window["limit"]) == ("daily", "counter", 3, 3)
        assert window["limited"] is True and window["resetsAt"] == midnight and blocked["blockedUntil"] == midnight
        raws = [
            client.sdk.chat.completions.with_raw_response.create(
                model="qa/gpt-4o-mini", messages=[{"role": "user", "content": "count me"}]
            )
            for _ in range(2)
        ]
    finally:
        client.close()
    assert all(r.headers["x-omniroute-attempts"] == "1" for r in raws)  # no failed attempt at the full account
    assert [r.headers["x-omniroute-provider"] for r in raws] == [node, node]
    # the full account was never called again, so it never had the chance to answer 429
    assert [upstream_key(r) for r in clean["openai"].requests] == ["key-qa1"] * 3 + ["key-qa2"] * 2
    events = new_events(gw, before, 5)
    assert [e["connectionId"] for e in events] == [first_id] * 3 + [second_id] * 2
    assert {e["status"] for e in events} == {200}


def claude_message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_limited",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }


def test_a_live_window_from_answer_headers_skips_the_account(
    gw: Gateway, fakes: dict[str, ServerThread], clean: dict[str, Any]
) -> None:
    node = add_node(gw, "live", "anthropic", fakes["anthropic"].base_url + "/v1")
    first = gw.admin_post("/providers", {"provider": node, "apiKey": "key-live1", "name": "live1", "priority": 0})
    second = gw.admin_post("/providers", {"provider": node, "apiKey": "key-live2", "name": "live2", "priority": 1})
    first_id, second_id = first["connection"]["id"], second["connection"]["id"]
    resets = int(time.time()) + 3 * 3600
    headers = {
        "anthropic-ratelimit-unified-5h-status": "rejected",
        "anthropic-ratelimit-unified-5h-reset": str(resets),
        "anthropic-ratelimit-unified-5h-utilization": "1.0",
    }
    clean["anthropic"].add_script([{"status": 200, "headers": headers, "body": claude_message("last one")}])
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=PLACEHOLDER, max_retries=0)
    messages: Any = [{"role": "user", "content": "hello"}]
    try:
        answer = client.messages.create(model="live/claude-sonnet-4-6", max_tokens=64, messages=messages)
        assert answer.content[0].text == "last one"  # the answer itself is fine; its headers say "no more"
        quota = account(gw, first_id)
        assert quota is not None and quota["blocked"] is True
        (window,) = quota["windows"]
        assert (window["name"], window["source"], window["limited"]) == ("5h", "headers", True)
        assert window["resetsAt"] == datetime.fromtimestamp(resets, UTC).isoformat().replace("+00:00", "Z")
        assert window["usedPercent"] == 100
        assert 3 * 3600 - 60 < quota["blockedForSeconds"] <= 3 * 3600
        assert account(gw, second_id) is None  # nothing known about the second account
        raw = client.messages.with_raw_response.create(model="live/claude-sonnet-4-6", max_tokens=64, messages=messages)
        assert raw.parse().content[0].text.startswith("Hello from fake-anthropic")
        assert raw.headers["x-omniroute-attempts"] == "1"
    finally:
        client.close()
    assert [upstream_key(r) for r in clean["anthropic"].requests] == ["key-live1", "key-live2"]


# ----- 7. request logs -----------------------------------------------------------------------------------

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"


def test_request_logs_are_off_by_default_and_redacted_when_on(gw: Gateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=PLACEHOLDER, max_retries=0)
    messages: Any = [{"role": "user", "content": f"my key is {SECRET}, keep it"}]
    try:
        before = seen(gw)
        client.chat.completions.create(model="oai/gpt-4o-mini", messages=messages)
        new_events(gw, before, 1)  # written: a log entry would be written with it
        assert api_get(gw, "/usage/request-logs")["items"] == []

        patch_settings(gw, {"requestLogs": {"enabled": True, "ttlHours": 2}})
        raw = client.chat.completions.with_raw_response.create(model="oai/gpt-4o-mini", messages=messages)
        request_id = raw.headers["x-request-id"]
        usage = raw.parse().usage
    finally:
        client.close()
    entry = wait_for(
        lambda: next((i for i in api_get(gw, "/usage/request-logs")["items"] if i["requestId"] == request_id), None),
        "the request's log entry",
    )
    assert SECRET not in str(entry)
    assert entry["request"]["messages"][0]["content"] == "my key is [redacted], keep it"
    assert entry["status"] == 200 and entry["stream"] is False and entry["path"] == "/v1/chat/completions"
    assert entry["requested"] == "oai/gpt-4o-mini"
    assert (entry["usage"]["input"], entry["usage"]["output"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert "[redacted]" in entry["response"]["choices"][0]["message"]["content"]  # the echo, too


# ----- 8. admin validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dailyLimitUsd": -1}, "dailyLimitUsd"),
        ({"dailyLimitUsd": 5, "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"dailyLimitUsd": 5, "resetTime": "25:00"}, "resetTime"),
        ({"dailyLimitUsd": 5, "warningThreshold": 1.5}, "warningThreshold"),
        ({"warningThreshold": 0.5}, "dailyLimitUsd"),  # no limit at all
    ],
)
def test_a_bad_budget_is_refused_naming_the_field(gw: Gateway, body: dict[str, Any], field: str) -> None:
    key_id, _ = create_key(gw, "validation")
    with gw.admin() as api:
        put = api.put(f"/budgets/{key_id}", json=body)
        post = api.post("/usage/budget", json={"apiKeyId": key_id, **body})
    for resp in (put, post):
        assert resp.status_code == 400, resp.text
        assert field in resp.json()["error"]["message"], resp.text
    assert all(b["keyId"] != key_id for b in api_get(gw, "/budgets")["budgets"])


@pytest.mark.parametrize(
    "quotas",
    [
        [{"window": "hourly", "requests": 3}],
        [{"window": "daily"}],
        [{"window": "daily", "requests": -1}],
        [{"window": "daily", "requests": 3, "timezone": "Nowhere/Land"}],
        [{"window": "daily", "resetTime": "7am", "tokens": 100}],
        [{"window": "daily", "requests": 1}, {"window": "daily", "requests": 2}],
        "daily",
    ],
)
def test_bad_quotas_are_refused(gw: Gateway, quotas: Any) -> None:
    connections = api_get(gw, "/providers")["connections"]
    conn = next(c for c in connections if c["name"] == "oai")
    with gw.admin() as api:
        resp = api.patch(f"/providers/{conn['id']}", json={"quotas": quotas})
        assert resp.status_code == 400, resp.text
        assert "quotas" in resp.json()["error"]["message"]
        assert not api.get(f"/providers/{conn['id']}").json()["connection"].get("quotas")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/budgets"),
        ("PUT", "/api/budgets/key_x"),
        ("DELETE", "/api/budgets/key_x"),
        ("POST", "/api/usage/budget"),
        ("GET", "/api/usage/history"),
        ("GET", "/api/usage/analytics"),
        ("GET", "/api/usage/quota"),
        ("GET", "/api/usage/request-logs"),
        ("POST", "/api/usage/rollup"),
        ("PATCH", "/api/pricing"),
    ],
)
def test_usage_endpoints_need_the_admin_token(gw: Gateway, method: str, path: str) -> None:
    for headers in ({}, {"authorization": "Bearer not-the-admin-token"}):
        resp = httpx.request(method, gw.base_url + path, headers=headers, json={"dailyLimitUsd": 1})
        assert resp.status_code == 401, (path, resp.text)
