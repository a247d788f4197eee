"""The translator playground: any request or answer body, from its format to another, through the
canonical model, with the canonical form shown alongside (what the gateway does on every translated call)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import InvalidRequest
from shared.formats.canonical import to_json
from shared.formats.detect import detect
from shared.formats.registry import FORMATS

KINDS = ("request", "response")


def translate(
    body: Mapping[str, Any],
    *,
    to: str,
    source: str | None = None,
    kind: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    known = ", ".join(sorted(FORMATS))
    if to not in FORMATS:
        raise InvalidRequest(f"`to` must be one of {known}, got {to!r}.", param="to", code="invalid_value")
    if source is not None and source not in FORMATS:
        raise InvalidRequest(f"`from` must be one of {known}, got {source!r}.", param="from", code="invalid_value")
    if kind is not None and kind not in KINDS:
        raise InvalidRequest("`kind` must be request or response.", param="kind", code="invalid_value")
    if source is None or kind is None:
        detected_format, detected_kind = detect(body)
        source = source or detected_format
        kind = kind or detected_kind
    codec, target = FORMATS[source], FORMATS[to]
    if kind == "request":
        canonical = codec.parse_request(body, model=model)
        rendered = target.render_request(canonical)
    else:
        canonical = codec.parse_response(body, model=model)
        rendered = target.render_response(canonical)
    return {"from": source, "to": to, "kind": kind, "canonical": to_json(canonical), "body": rendered}
