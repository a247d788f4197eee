"""The admin API in Lambda: `handler = Mangum(app, lifespan="off")` behind an IAM-authorised HTTP API.

Mangum buffers each response, which suits request/response admin calls (never the /v1 streams). Its
lifespan support would run startup and shutdown on every invocation, so it is off; the services are
built once per execution environment, at import.
"""

from __future__ import annotations

import os
from typing import Any

from mangum import Mangum

from functions.admin.app import create_app
from shared.adapters.telemetry import configure_logging
from shared.cloud import build_cloud_services, cloud_settings
from shared.context import current_lambda_request_id

configure_logging("admin", os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
settings = cloud_settings()
services = build_cloud_services(settings)
app = create_app(services)
_mangum = Mangum(app, lifespan="off", api_gateway_base_path="/")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point: Mangum, with the invocation's request id on every log line it causes."""
    token = current_lambda_request_id.set(getattr(context, "aws_request_id", None))
    try:
        return _mangum(event, context)
    finally:
        current_lambda_request_id.reset(token)
