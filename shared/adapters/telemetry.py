"""Cloud logs and metrics with aws-lambda-powertools: JSON log lines with the request id and no secrets,
and one CloudWatch EMF record per request.

Logs: every logger in the process writes through one handler with powertools' JSON formatter. The
request id (`X-Request-Id`, from a context variable the request middleware sets) and the Lambda request
id (which Lambda's own START/END/REPORT lines carry) are added to each line,
and every value of the line is redacted before it is serialised: `Authorization`/`x-api-key`/
`x-goog-api-key` values, bearer tokens, key-shaped strings (`sk-...`, `AIza...`, GitHub tokens, JWTs) and
`*token*`/`*secret*`/`*password*`/`apiKey` fields, in the message, its arguments, extra keys and
tracebacks alike.

Metrics: EMF is a log line CloudWatch turns into metrics, so emitting costs no API call and nothing is
lost when Lambda freezes the environment after the response. Dimensions are the service and the
provider only, never the API key (cardinality is what CloudWatch bills).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from shared.context import current_lambda_request_id, current_request_id

NAMESPACE = "OmniRouteEdge"

_REDACTED = "[REDACTED]"
_PATTERNS = [
    # "authorization": "Bearer x", 'x-api-key': 'x', apiKey=x, refresh_token: x, client_secret=x ...
    re.compile(
        r"""(?ix)
        ( ["']? (?: authorization | proxy-authorization | x-api-key | x-goog-api-key | api[_-]?key | apikey
                 | [a-z_-]*token | [a-z_-]*secret | password | cookie | set-cookie ) ["']?
          \s* [:=] \s* )
        ( "[^"]*" | '[^']*' | (?: (?:bearer|basic) \s+ )? [^\s,;&}\]]+ )  # unquoted: the scheme and its credential
        """
    ),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|github_pat)_[A-Za-z0-9_]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs
]


def _keep_name(match: re.Match[str]) -> str:
    if match.re is _PATTERNS[0]:
        return match.group(1) + _REDACTED
    if match.re is _PATTERNS[1]:
        return match.group(1) + " " + _REDACTED
    return _REDACTED


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_name, text)
    return text


_SENSITIVE_KEY = re.compile(
    r"(?i)^(authorization|proxy-authorization|x-api-key|x-goog-api-key|api[_-]?key|apikey|cookie|set-cookie"
    r"|password|[a-z_-]*secret|[a-z_-]*token)$"
)


def redact_value(value: Any) -> Any:
    """A log record's fields with secrets replaced: by key name, and by pattern inside every string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            k: _REDACTED if isinstance(k, str) and _SENSITIVE_KEY.match(k) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else would be written as str(value) (an exception object in powertools' `stack_trace.value`,
    # an object passed in `extra=`): redact that text, not the object.
    return redact(str(value))


def _serialise(log: Any) -> str:
    return json.dumps(redact_value(log), default=str, separators=(",", ":"), ensure_ascii=False)


class RedactingFormatter(LambdaPowertoolsFormatter):
    def __init__(self, service: str) -> None:
        super().__init__(service=service, json_serializer=_serialise)


class _RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rid = current_request_id.get()
        if rid is not None:
            record.request_id = rid
        lambda_rid = current_lambda_request_id.get()
        if lambda_rid is not None:
            record.lambda_request_id = lambda_rid
        return True


# Libraries that log every request or credential lookup at INFO: CloudWatch bills each line.
_CHATTY = ("botocore", "boto3", "httpx", "httpcore", "pynamodb", "urllib3")


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger in this process to one JSON, redacting handler on stdout (CloudWatch Logs)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedactingFormatter(service=service))
    handler.addFilter(_RequestContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def emit_request_metrics(
    *,
    service: str,
    provider: str | None,
    status: int,
    latency_ms: float,
    ttfb_ms: float | None,
    tokens: Mapping[str, int] | None,
    metadata: Mapping[str, Any],
) -> None:
    """One EMF record for one finished request, written to stdout at once.

    Six metrics per provider (Requests, Errors, Latency, UpstreamTimeToFirstByte, InputTokens,
    OutputTokens): CloudWatch bills each metric name × dimension set for every hour it receives data, so
    the rest (status, model, cached and reasoning tokens, the request id) rides along as properties,
    searchable with Logs Insights at no metric cost.
    """
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=service)
    metrics.add_dimension("provider", provider or "none")
    metrics.add_metric("Requests", MetricUnit.Count, 1)
    metrics.add_metric("Errors", MetricUnit.Count, 1 if status >= 500 else 0)
    metrics.add_metric("Latency", MetricUnit.Milliseconds, round(latency_ms, 3))
    if ttfb_ms is not None:
        metrics.add_metric("UpstreamTimeToFirstByte", MetricUnit.Milliseconds, round(ttfb_ms, 3))
    tokens = tokens or {}
    for name in ("InputTokens", "OutputTokens"):
        if name in tokens:
            metrics.add_metric(name, MetricUnit.Count, tokens[name])
    for name, value in tokens.items():
        if name not in ("InputTokens", "OutputTokens"):
            metrics.add_metadata(name, value)
    for key, value in metadata.items():
        metrics.add_metadata(key, value)
    write_emf(metrics.serialize_metric_set())


def write_emf(record: Mapping[str, Any]) -> None:
    """One EMF line, flushed at once: stdout is a pipe in Lambda (block-buffered), and a process that is
    frozen or ends by a signal (uvicorn re-raises SIGTERM) would otherwise lose what is still buffered."""
    sys.stdout.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
