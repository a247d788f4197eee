"""The `/_fake/*` control plane every fake upstream shares: its request log and its scripted replies.

    GET/DELETE /_fake/requests   the recorded requests / clear them
    GET/POST/DELETE /_fake/script the queued reply directives / add some / clear them
    GET /_fake/health            liveness

Errors in a posted script are raised with the fake's own `bad_request` factory, so they come back in
that provider's error shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _json(payload: object) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


class ControlPlane:
    def __init__(self, state: Any, bad_request: Callable[[str], Exception]) -> None:
        self.state = state
        self.bad_request = bad_request

    async def get_requests(self, request: Request) -> Response:
        return _json(list(self.state.requests))

    async def delete_requests(self, request: Request) -> Response:
        cleared = len(self.state.requests)
        self.state.clear_requests()
        return _json({"cleared": cleared})

    async def get_script(self, request: Request) -> Response:
        return _json([d.source for d in list(self.state.script)])

    async def post_script(self, request: Request) -> Response:
        try:
            posted = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise self.bad_request("The script is not valid JSON.") from None
        directives = posted if isinstance(posted, list) else [posted]
        try:
            queued = self.state.add_script(directives)
        except (TypeError, ValueError) as exc:
            raise self.bad_request(f"Invalid script directive: {exc}") from None
        return _json({"queued": queued})

    async def delete_script(self, request: Request) -> Response:
        cleared = len(self.state.script)
        self.state.clear_script()
        return _json({"cleared": cleared})

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    def routes(self) -> list[Route]:
        return [
            Route("/_fake/requests", self.get_requests, methods=["GET"]),
            Route("/_fake/requests", self.delete_requests, methods=["DELETE"]),
            Route("/_fake/script", self.get_script, methods=["GET"]),
            Route("/_fake/script", self.post_script, methods=["POST"]),
            Route("/_fake/script", self.delete_script, methods=["DELETE"]),
            Route("/_fake/health", self.health, methods=["GET"]),
        ]


def run_standalone(
    module: str,
    description: str,
    port: int,
    key_help: str,
    build: Callable[[str | None, bool, bool], Any],
    argv: Any = None,
) -> None:
    """`python -m tests.fakes.<module>`: one fake on its own port. `build(api_key, record, any_model)`."""
    import argparse

    import uvicorn  # only the standalone mode needs it

    parser = argparse.ArgumentParser(prog=f"python -m tests.fakes.{module}", description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"TCP port (default: {port})")
    parser.add_argument("--api-key", default=None, help=key_help)
    parser.add_argument("--any-model", action="store_true", help="accept every model name")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    parser.add_argument("--no-record", action="store_true", help="do not keep the request log")
    args = parser.parse_args(argv)
    uvicorn.run(
        build(args.api_key, not args.no_record, args.any_model),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        ws="none",
    )


def fake_app(
    state: Any,
    routes: list[Route],
    *,
    error_type: type[Exception],
    error_handler: Callable[..., Any],
    bad_request: Callable[[str], Exception],
) -> Any:
    """A fake upstream's Starlette app: its own routes plus the control plane, every error (its own, and
    routing's 404/405) in its provider's shape, and its state at `app.state.fake` (with `requests` and
    `script` aliasing the request log and the directive queue)."""
    from starlette.applications import Starlette

    app = Starlette(
        routes=[*routes, *ControlPlane(state, bad_request).routes()],
        exception_handlers={error_type: error_handler, 404: error_handler, 405: error_handler},
    )
    app.state.fake = state
    app.state.requests = state.requests
    app.state.script = state.script
    return app
