#!/bin/sh
# The gateway function's handler: Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs this,
# waits until GET $AWS_LWA_READINESS_CHECK_PATH answers, then relays each Function URL invocation to it.
# Started from the artifact's root (LAMBDA_TASK_ROOT), which holds our packages and their dependencies.
cd "$(dirname "$0")" || exit 1
exec python3 -u -m uvicorn functions.gateway.cloud:app \
  --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
  --loop asyncio --http httptools \
  --no-access-log --no-server-header --no-proxy-headers --timeout-graceful-shutdown 2
