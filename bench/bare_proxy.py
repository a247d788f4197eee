"""The barest FastAPI + httpx pass-through proxy: the reference floor of DESIGN §8.

One shared `httpx.AsyncClient`; `POST /v1/chat/completions` reads the body bytes and forwards them unchanged
to `<upstream>/v1/chat/completions` (with the client's `Authorization`, if any). A JSON answer is returned as
the upstream's bytes; an SSE answer is relayed with `aiter_raw()` through a `StreamingResponse`. Nothing is
parsed, validated or rewritten: whatever the gateway costs above this is the gateway's own work.

Served by uvicorn with the settings `omniroute serve` uses (loop and http "auto", i.e. uvloop and httptools
when installed), access log off:

    python -m bench.bare_proxy --port 8090 --upstream http://127.0.0.1:8089
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask


def create_app(upstream: str) -> FastAPI:
    url = upstream.rstrip("/") + "/v1/chat/completions"
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=600.0, write=30.0, pool=10.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=64, keepalive_expiry=60),
        trust_env=False,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await request.body()
        headers = {"content-type": "application/json"}
        authorization = request.headers.get("authorization")
        if authorization:
            headers["authorization"] = authorization
        resp = await client.send(client.build_request("POST", url, headers=headers, content=body), stream=True)
        media_type = resp.headers.get("content-type", "application/json")
        if media_type.startswith("text/event-stream"):
            return StreamingResponse(
                resp.aiter_raw(),
                status_code=resp.status_code,
                media_type=media_type,
                background=BackgroundTask(resp.aclose),
            )
        try:
            content = await resp.aread()
        finally:
            await resp.aclose()
        return Response(content, status_code=resp.status_code, media_type=media_type)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.bare_proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the upstream, e.g. http://127.0.0.1:8089")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="auto",
        http="auto",
    )


if __name__ == "__main__":
    main()
