from fastapi import FastAPI
from starlette.testclient import TestClient

from shared.errors import InvalidRequest
from shared.web.errors import add_error_handlers
from shared.web.request_id import RequestIdMiddleware


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret sk-live-should-not-leak")

    @app.get("/bad")
    def bad() -> None:
        raise InvalidRequest("nope", param="x")

    add_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    return app


def test_unexpected_error_is_a_generic_500_with_the_request_id() -> None:
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        resp = client.get("/boom", headers={"x-request-id": "trace-42"})
    assert resp.status_code == 500
    assert resp.headers["x-request-id"] == "trace-42"
    assert "sk-live" not in resp.text
    assert "trace-42" in resp.json()["error"]["message"]


def test_gateway_error_keeps_its_status_and_param() -> None:
    with TestClient(make_app()) as client:
        resp = client.get("/bad")
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "x"
    assert resp.headers["x-request-id"].startswith("req_")
