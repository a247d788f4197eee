"""Settings read once from the environment by each entry point's composition root."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in _TRUE


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide settings. `cloud` is true inside Lambda, where API keys are always required.

    Cloud-only: `kms_key_id` (credential encryption; locally an AES-GCM key file), `config_ttl` and
    `config_max_stale` (how old a gateway instance's configuration copy may get; locally the admin API
    shares the process and the copy never expires), and `allow_private_upstreams` (false in the cloud:
    upstream URLs resolving to private, loopback or link-local addresses are refused). DynamoDB and KMS
    endpoints come from the AWS SDK's own settings (e.g. `AWS_ENDPOINT_URL_DYNAMODB`), region from
    `AWS_REGION`.
    """

    cloud: bool
    data_dir: Path
    require_api_key: bool
    admin_token: str | None
    config_table: str
    state_table: str
    usage_table: str
    region: str
    upstream_connect_timeout: float
    upstream_read_timeout: float
    upstream_max_connections: int
    kms_key_id: str | None = None
    config_ttl: float | None = None
    config_max_stale: float = 3600.0
    allow_private_upstreams: bool = True
    # Local only: where usage and budget spend go. "sqlite" (default: a file in the data dir that survives
    # restarts) or "dynamodb" (the embedded DynamoDB, as the cloud does: for measuring the cloud's calls).
    local_usage_store: str = "sqlite"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        cloud = "AWS_LAMBDA_FUNCTION_NAME" in env or _flag(env, "OMNIROUTE_CLOUD", False)
        data_dir = Path(env.get("OMNIROUTE_DATA_DIR") or Path.home() / ".omniroute").expanduser()
        return cls(
            cloud=cloud,
            data_dir=data_dir,
            require_api_key=True if cloud else _flag(env, "OMNIROUTE_REQUIRE_API_KEY", False),
            admin_token=env.get("OMNIROUTE_ADMIN_TOKEN") or None,
            config_table=env.get("CONFIG_TABLE", "ConfigTable"),
            state_table=env.get("STATE_TABLE", "StateTable"),
            usage_table=env.get("USAGE_TABLE", "UsageTable"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            upstream_connect_timeout=_float(env, "OMNIROUTE_UPSTREAM_CONNECT_TIMEOUT", 10.0),
            upstream_read_timeout=_float(env, "OMNIROUTE_UPSTREAM_READ_TIMEOUT", 600.0),
            upstream_max_connections=int(_float(env, "OMNIROUTE_UPSTREAM_MAX_CONNECTIONS", 200)),
            kms_key_id=env.get("OMNIROUTE_KMS_KEY_ID") or None,
            config_ttl=_float(env, "OMNIROUTE_CONFIG_TTL", 30.0) if cloud else None,
            config_max_stale=_float(env, "OMNIROUTE_CONFIG_MAX_STALE", 3600.0),
            allow_private_upstreams=_flag(env, "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS", not cloud),
            local_usage_store="dynamodb" if env.get("OMNIROUTE_USAGE_STORE") == "dynamodb" else "sqlite",
        )
