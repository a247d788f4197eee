"""Cloud telemetry: redaction of secrets, JSON log lines on stdout, and the per-request EMF record."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from shared.adapters.telemetry import configure_logging, emit_request_metrics, redact
from shared.context import current_lambda_request_id, current_request_id

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
GITHUB = "ghp_" + "a1B2c3D4" * 5


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer sk-abc123456789", "abc123456789"),
        ("Authorization: Bearer ya29.a0AfH6SMBxyz123", "ya29.a0AfH6SMBxyz123"),  # no key-shaped pattern helps here
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("Proxy-Authorization: Bearer gsk_abcdefghijk", "gsk_abcdefghijk"),
        ("{'x-api-key': 'abc123'}", "abc123"),
        ('{"x-goog-api-key": "AIzaXYZ"}', "AIzaXYZ"),
        ('"refresh_token": "1//0gabc"', "1//0gabc"),
        ("grant_type=refresh&client_secret=xyz&scope=a", "xyz"),
        ("password: hunter2", "hunter2"),
        ("apiKey=k-0123", "k-0123"),
        ("Cookie: session=abcdef123; path=/", "abcdef123"),
        ("calling with sk-proj-AAAAAAAAAAAA now", "sk-proj-AAAAAAAAAAAA"),
        ("key=AIzaSyA1234567890abcdefghijkl", "AIzaSyA1234567890abcdefghijkl"),
        (f"token {GITHUB} used", GITHUB),
        (f"id {JWT}", JWT),
        ("sent Bearer abcdefghijkl123", "abcdefghijkl123"),
    ],
)
def test_redact_removes_the_secret(text: str, secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert "[REDACTED]" in redacted


def test_redact_keeps_the_name_of_what_it_removed() -> None:
    assert redact("Authorization: Bearer ya29.token-value") == "Authorization: [REDACTED]"
    assert redact("client_secret=xyz&grant_type=refresh") == "client_secret=[REDACTED]&grant_type=refresh"
    assert redact('"refresh_token": "1//0gabc", "ok": 1') == '"refresh_token": [REDACTED], "ok": 1'


@pytest.mark.parametrize(
    "text",
    [
        "usage tokens: 5",
        "prompt_tokens=12 completion_tokens: 7",
        "POST https://api.openai.com/v1/chat/completions -> 200 in 1.2 s",
        "model gpt-4o-mini, provider openai",
        "task-runner sk-1 finished",  # too short to be a key
        "the token bucket is empty",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


# ----- configure_logging --------------------------------------------------------------------------------

CHATTY = ("botocore", "boto3", "httpx", "httpcore", "pynamodb", "urllib3")


@pytest.fixture
def json_logging(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Calls configure_logging('svc') (from the test itself, so its handler writes to the test's stdout) and
    returns the lines written since as parsed JSON; puts the root logger and the chatty loggers back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY}

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    def start(level: str = "INFO") -> Any:
        configure_logging("svc", level)
        return lines

    try:
        yield start
    finally:
        # pytest's own capture handlers come back with its next phase; keep only any others.
        root.handlers[:] = [h for h in handlers if not type(h).__module__.startswith("_pytest")]
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


def test_one_json_line_per_record_with_service_and_level(json_logging: Any) -> None:
    lines = json_logging()
    logging.getLogger("omniroute.test").info("hello %s", "world")
    logging.getLogger("omniroute.test").debug("not at INFO")
    (line,) = lines()
    assert line["message"] == "hello world"
    assert line["service"] == "svc"
    assert line["level"] == "INFO"
    assert "request_id" not in line


def test_the_request_id_is_added_while_one_is_set(json_logging: Any) -> None:
    lines = json_logging()
    log = logging.getLogger("omniroute.test")
    token = current_request_id.set("req_0123")
    lambda_token = current_lambda_request_id.set("0f4c1e2a-3b5d-4e6f-8a9b-0c1d2e3f4a5b")
    try:
        log.warning("inside")
    finally:
        current_request_id.reset(token)
        current_lambda_request_id.reset(lambda_token)
    log.warning("outside")
    inside, outside = lines()
    assert inside["request_id"] == "req_0123"
    assert inside["lambda_request_id"] == "0f4c1e2a-3b5d-4e6f-8a9b-0c1d2e3f4a5b"
    assert "request_id" not in outside and "lambda_request_id" not in outside


def test_secrets_are_redacted_in_message_args_extra_and_exceptions(json_logging: Any) -> None:
    read = json_logging()
    log = logging.getLogger("omniroute.test")
    log.info("upstream said %s", "Authorization: Bearer secret-token-123")
    log.info(
        "forwarding",
        extra={
            "headers": {"authorization": "Bearer secret-token-123", "content-type": "application/json"},
            "apiKey": "secret-token-123",
            "note": "x-api-key=secret-token-123",
            "attempt": 2,
        },
    )
    try:
        raise RuntimeError("upstream rejected Authorization: Bearer secret-token-123")
    except RuntimeError as exc:
        log.exception("failed", extra={"error": exc})
    lines = read()
    assert len(lines) == 3
    assert "secret-token-123" not in json.dumps(lines)
    message, extra, failure = lines
    assert message["message"] == "upstream said Authorization: [REDACTED]"
    assert extra["headers"] == {"authorization": "[REDACTED]", "content-type": "application/json"}
    assert extra["apiKey"] == "[REDACTED]"
    assert extra["attempt"] == 2  # numbers stay numbers
    assert "RuntimeError: upstream rejected Authorization: [REDACTED]" in failure["exception"]
    assert failure["error"] == "upstream rejected Authorization: [REDACTED]"


def test_exception_objects_in_the_stack_trace_are_redacted(json_logging: Any) -> None:
    lines = json_logging()
    try:
        raise ValueError("bad key sk-proj-AAAAAAAAAAAA")
    except ValueError:
        logging.getLogger("omniroute.test").exception("failed")
    (line,) = lines()
    assert "sk-proj-AAAAAAAAAAAA" not in json.dumps(line)
    assert line["stack_trace"]["value"] == "bad key [REDACTED]"


def test_chatty_library_loggers_only_warn(json_logging: Any) -> None:
    lines = json_logging()
    for name in CHATTY:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpx").info("HTTP Request: POST https://api.openai.com")
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
    logging.getLogger("httpx").warning("kept")
    assert [line["message"] for line in lines()] == ["kept"]


def test_a_quieter_root_level_is_not_loosened_for_chatty_loggers(json_logging: Any) -> None:
    json_logging("error")
    assert logging.getLogger().level == logging.ERROR
    assert logging.getLogger("httpx").level == logging.ERROR


# ----- EMF metrics --------------------------------------------------------------------------------------


def emf(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    (line,) = capsys.readouterr().out.splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


def test_one_emf_record_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    emit_request_metrics(
        service="gateway",
        provider="openai",
        status=200,
        latency_ms=123.45678,
        ttfb_ms=40.5,
        tokens={"InputTokens": 10, "OutputTokens": 3, "CachedTokens": 2},
        metadata={"request_id": "req_1", "status": 200, "model": "gpt-4o-mini", "path": "/v1/chat/completions"},
    )
    record = emf(capsys)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "OmniRouteEdge"
    assert directive["Dimensions"] == [["provider", "service"]]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {
        "Requests": "Count",
        "Errors": "Count",
        "Latency": "Milliseconds",
        "UpstreamTimeToFirstByte": "Milliseconds",
        "InputTokens": "Count",
        "OutputTokens": "Count",
    }
    assert record["provider"] == "openai" and record["service"] == "gateway"
    assert record["Requests"] == [1] and record["Errors"] == [0]
    assert record["Latency"] == [123.457] and record["UpstreamTimeToFirstByte"] == [40.5]
    assert record["InputTokens"] == [10] and record["OutputTokens"] == [3]
    # Everything else rides along as properties, not billed metrics.
    assert record["CachedTokens"] == 2
    assert record["request_id"] == "req_1" and record["status"] == 200 and record["model"] == "gpt-4o-mini"
    assert isinstance(record["_aws"]["Timestamp"], int)


@pytest.mark.parametrize(("status", "errors"), [(200, 0), (429, 0), (502, 1), (504, 1)])
def test_errors_count_server_side_failures_only(capsys: pytest.CaptureFixture[str], status: int, errors: int) -> None:
    emit_request_metrics(
        service="gateway", provider=None, status=status, latency_ms=1.0, ttfb_ms=None, tokens=None, metadata={}
    )
    record = emf(capsys)
    assert record["Errors"] == [errors]
    assert record["provider"] == "none"
    names = {m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"Requests", "Errors", "Latency"}  # no time to first byte and no tokens were given


def test_the_api_key_is_never_a_dimension_or_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    emit_request_metrics(
        service="gateway",
        provider="openai",
        status=200,
        latency_ms=1.0,
        ttfb_ms=None,
        tokens={"InputTokens": 1},
        metadata={"request_id": "req_2", "key_id": "key_abc"},
    )
    line = emf(capsys)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["provider", "service"]]
    assert "sk-" not in json.dumps(line)
