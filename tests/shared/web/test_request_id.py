import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from shared.web.request_id import RequestIdMiddleware


def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.request_id)


@pytest.fixture
def client() -> TestClient:
    app = Starlette(routes=[Route("/", echo)])
    return TestClient(RequestIdMiddleware(app))


def test_generated_when_absent_and_seen_by_the_app(client: TestClient) -> None:
    resp = client.get("/")
    rid = resp.headers["x-request-id"]
    assert rid.startswith("req_") and len(rid) == 36
    assert resp.text == rid
    assert client.get("/").headers["x-request-id"] != rid


@pytest.mark.parametrize("sent", ["abc-123", "trace:1.2_3", "x" * 128])
def test_client_id_kept_when_safe(client: TestClient, sent: str) -> None:
    assert client.get("/", headers={"x-request-id": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "<script>", "a\tb"])
def test_unsafe_client_id_replaced(client: TestClient, sent: str) -> None:
    got = client.get("/", headers={"x-request-id": sent}).headers["x-request-id"]
    assert got.startswith("req_")
    assert got != sent
