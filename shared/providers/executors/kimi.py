"""Kimi Code (the kimi.com coding subscription): OpenAI Chat at api.kimi.com/coding/v1, called as Kimi CLI.

Kimi CLI names itself and the device it runs on in `X-Msh-*` headers (CLIProxyAPI `internal/auth/kimi`,
project notes `oauth-providers.md` §10), and the device id is the one its OAuth grant was made for. The
companion records the device it linked from in the account's `meta` (`deviceId`, `deviceName`,
`deviceModel`, `osVersion`); an account linked without them gets a device id derived from its connection
id, the same on every call, so the service sees one steady device per account.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from shared.domain.config import Connection
from shared.ports import UpstreamResponse
from shared.providers.executors import UpstreamCall
from shared.providers.spec import WireFormat

PLATFORM = "kimi_cli"
CLI_VERSION = "1.41.0"
USER_AGENT = f"KimiCLI/{CLI_VERSION}"
DEFAULT_DEVICE_NAME = "omniroute"
DEFAULT_DEVICE_MODEL = "Linux x86_64"
DEFAULT_OS_VERSION = "Linux"


def _visible_ascii(value: object) -> str:
    """A header value: visible ASCII and spaces only (a host name may hold anything)."""
    text = "".join(c for c in str(value) if " " <= c <= "~").strip()
    return text[:128]


def device_id(connection: Connection | None) -> str:
    meta: Mapping[str, Any] = connection.oauth.meta if connection is not None and connection.oauth else {}
    linked = _visible_ascii(meta.get("deviceId") or "")
    if linked:
        return linked
    seed = f"omniroute-kimi-device:{connection.id if connection is not None else ''}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def device_headers(connection: Connection | None) -> dict[str, str]:
    meta: Mapping[str, Any] = connection.oauth.meta if connection is not None and connection.oauth else {}

    def pick(key: str, default: str) -> str:
        return _visible_ascii(meta.get(key) or "") or default

    return {
        "user-agent": USER_AGENT,
        "x-msh-platform": PLATFORM,
        "x-msh-version": CLI_VERSION,
        "x-msh-device-name": pick("deviceName", DEFAULT_DEVICE_NAME),
        "x-msh-device-model": pick("deviceModel", DEFAULT_DEVICE_MODEL),
        "x-msh-os-version": pick("osVersion", DEFAULT_OS_VERSION),
        "x-msh-device-id": device_id(connection),
    }


class KimiExecutor:
    wire_format = WireFormat.OPENAI

    def prepare(self, call: UpstreamCall, connection: Connection | None) -> UpstreamCall:
        headers = {**call.headers, **device_headers(connection)}
        return UpstreamCall(call.url, headers, call.payload, call.stream, call.notes)

    def adapt(self, resp: UpstreamResponse, call: UpstreamCall, *, client_stream: bool) -> UpstreamResponse:
        return resp
