"""The admin FastAPI app. In the cloud it runs behind Mangum (`lifespan="off"`) and an IAM-authorised HTTP API."""

from __future__ import annotations

from fastapi import FastAPI

from functions.admin.routes import router
from functions.admin.routes_oauth import router as oauth_router
from functions.admin.routes_pricing import router as pricing_router
from functions.admin.routes_sync import router as sync_router
from functions.admin.routes_usage import router as usage_router
from shared.services.container import Services
from shared.web.errors import add_error_handlers
from shared.web.request_id import RequestIdMiddleware


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="OmniRoute Edge admin", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.include_router(router)
    app.include_router(pricing_router)
    app.include_router(usage_router)
    app.include_router(oauth_router)
    app.include_router(sync_router)
    add_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    return app
