import orjson

from shared.errors import InvalidRequest, RateLimited, UpstreamFailed, UpstreamRejected
from shared.formats.errors import ErrorFormat, error_headers, render_error, upstream_error_message


def test_openai_shape() -> None:
    status, body = render_error(InvalidRequest("bad", param="model", code="x"))
    assert status == 400
    assert orjson.loads(body) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": "x"}
    }


def test_anthropic_shape() -> None:
    status, body = render_error(UpstreamFailed("down"), ErrorFormat.ANTHROPIC)
    assert status == 502
    assert orjson.loads(body) == {"type": "error", "error": {"type": "api_error", "message": "down"}}


def test_gemini_shape() -> None:
    status, body = render_error(RateLimited("slow down", retry_after=3), ErrorFormat.GEMINI)
    assert status == 429
    assert orjson.loads(body) == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}


def test_upstream_openai_error_body_is_relayed_verbatim_with_its_status_and_headers() -> None:
    raw = b'{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
    err = UpstreamRejected("x", upstream_status=429, body=raw, headers=(("retry-after", "7"),), provider="groq")
    assert render_error(err) == (429, raw)
    assert error_headers(err) == {"retry-after": "7", "x-omniroute-provider": "groq"}


def test_upstream_non_openai_body_is_wrapped() -> None:
    err = UpstreamRejected("Upstream x answered HTTP 403: nope", upstream_status=403, body=b"<html>nope</html>")
    status, body = render_error(err)
    assert status == 403
    assert orjson.loads(body)["error"]["message"] == "Upstream x answered HTTP 403: nope"


def test_upstream_error_message_reads_common_shapes() -> None:
    assert upstream_error_message("p", 400, b'{"error":{"message":"m"}}') == "Upstream p answered HTTP 400: m"
    assert upstream_error_message("p", 400, b'{"detail":"d"}') == "Upstream p answered HTTP 400: d"
    assert upstream_error_message("p", 500, b"boom") == "Upstream p answered HTTP 500: boom"
    assert upstream_error_message("p", 500, b"") == "Upstream p answered HTTP 500"
