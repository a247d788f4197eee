"""`omniroute target`: where admin calls go, saved in the companion's config file.

- `local` (the default): a gateway run by `omniroute serve`, called with its admin token.
- `cloud`: a deployed stack. Coding tools use its gateway (the Function URL); the companion calls its admin
  API (the IAM-authorised HTTP API) with requests signed by AWS SigV4 from the owner's AWS credentials, found
  the way the AWS CLI finds them (environment, `--profile`, SSO, instance role). Nothing secret is saved.

    target = current_target()        # the saved target, or the local default
    target.gateway_url               # what `omniroute configure` points coding tools at
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from companion.admin_client import DEFAULT_URL, AdminFailure, JsonOption, exit_with
from companion.tool_files import atomic_write

CONFIG_DIR_ENV = "OMNIROUTE_CONFIG_DIR"
CONFIG_FILE = "companion.json"
# The stack outputs template.yaml declares for the two front doors.
GATEWAY_OUTPUT = "GatewayUrl"
ADMIN_OUTPUT = "AdminApiUrl"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")

Kind = Literal["local", "cloud"]

app = typer.Typer(
    help="Where admin calls go: a local `omniroute serve`, or a deployed stack (SigV4-signed).",
    no_args_is_help=True,
)


@dataclass(frozen=True, slots=True)
class Target:
    """Where coding tools send requests (`gateway_url`) and where the companion sends admin calls."""

    kind: Kind
    gateway_url: str
    admin_url: str
    region: str | None = None  # cloud: the region the admin API's signatures are scoped to
    profile: str | None = None  # cloud: the AWS profile to sign with (None: the default credential chain)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "gatewayUrl": self.gateway_url, "adminUrl": self.admin_url}
        if self.kind == "cloud":
            data |= {"region": self.region, "profile": self.profile}
        return data

    def signing_region(self) -> str:
        region = self.region or region_of(self.admin_url)
        if not region:
            raise AdminFailure(
                f"the cloud target has no AWS region; set it again with `omniroute target cloud ... --region R` "
                f"({config_path()})"
            )
        return region


LOCAL_DEFAULT = Target("local", DEFAULT_URL, DEFAULT_URL)


# --------------------------------------------------------------------------------------------
# The config file
# --------------------------------------------------------------------------------------------


def config_dir() -> Path:
    configured = os.environ.get(CONFIG_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".omniroute"


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def load_config() -> dict[str, Any]:
    """The whole companion config (other commands keep their own keys in it); {} when there is none yet."""
    path = config_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AdminFailure(f"cannot read {path}: {exc.strerror}") from exc
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise AdminFailure(f"{path} is not valid JSON ({exc}); fix it or delete it to start over") from exc
    if not isinstance(config, dict):
        raise AdminFailure(f"{path} does not hold a JSON object; fix it or delete it to start over")
    return config


def save_config(config: dict[str, Any]) -> Path:
    """Replace the config file whole (written beside it, then renamed), readable by the owner only."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(config, indent=2) + "\n").encode(), 0o600)
    return path


def current_target() -> Target:
    """The saved target, or a local gateway on the default port when none was saved."""
    saved = load_config().get("target")
    if saved is None:
        return LOCAL_DEFAULT
    kind = saved.get("kind") if isinstance(saved, dict) else None
    gateway = saved.get("gatewayUrl") if isinstance(saved, dict) else None
    admin = saved.get("adminUrl") if isinstance(saved, dict) else None
    if (
        not isinstance(saved, dict)
        or kind not in ("local", "cloud")
        or not isinstance(gateway, str)
        or not isinstance(admin, str)
    ):
        raise AdminFailure(
            f"the saved target in {config_path()} is incomplete; set it again with `omniroute target local` "
            "or `omniroute target cloud`"
        )
    region, profile = saved.get("region"), saved.get("profile")
    return Target(
        "cloud" if kind == "cloud" else "local",
        gateway,
        admin,
        region if isinstance(region, str) and region else None,
        profile if isinstance(profile, str) and profile else None,
    )


def save_target(target: Target) -> Path:
    return save_config({**load_config(), "target": target.to_json()})


# --------------------------------------------------------------------------------------------
# URLs and stack outputs
# --------------------------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, option: str, *, https: bool) -> str:
    """A base URL without its trailing slash. `https`: plain http only to loopback (`sam local start-api`,
    tests), since the traffic carries credentials."""
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
    except ValueError as exc:
        raise typer.BadParameter(f"not a URL ({exc})", param_hint=option) from exc
    if parts.scheme not in ("http", "https") or not host:
        raise typer.BadParameter("must be an http(s) URL", param_hint=option)
    if https and parts.scheme != "https" and not _loopback(host):
        raise typer.BadParameter("must be an https URL (plain http only to loopback)", param_hint=option)
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise typer.BadParameter("must be a plain base URL (no credentials, query or fragment)", param_hint=option)
    return value.strip().rstrip("/")


def region_of(admin_url: str) -> str | None:
    """The region an API Gateway URL names (`https://<id>.execute-api.<region>.amazonaws.com/`)."""
    match = _EXECUTE_API_HOST.match(urlsplit(admin_url).hostname or "")
    return match.group(1) if match else None


def stack_urls(stack: str, region: str | None, profile: str | None) -> tuple[str, str, str]:
    """(gateway URL, admin URL, region) from a deployed stack's outputs (CloudFormation DescribeStacks)."""
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = botocore.session.Session(profile=profile)
        region = region or session.get_config_variable("region")
        if not region:
            raise AdminFailure("no AWS region: pass --region (or configure one for the profile)")
        if session.get_credentials() is None:
            named = f"AWS profile {profile!r}" if profile else "the default AWS credential chain"
            raise AdminFailure(f"no AWS credentials found in {named} to read the stack's outputs")
        client: Any = session.create_client("cloudformation", region_name=region)
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise AdminFailure(f"cannot read stack {stack!r} in {region}: {exc.response['Error']['Message']}", 1) from exc
    except BotoCoreError as exc:
        raise AdminFailure(f"cannot read stack {stack!r}: {exc}") from exc
    outputs = {o.get("OutputKey"): o.get("OutputValue") for o in stacks[0].get("Outputs") or []} if stacks else {}
    gateway, admin = outputs.get(GATEWAY_OUTPUT), outputs.get(ADMIN_OUTPUT)
    if not gateway or not admin:
        raise AdminFailure(
            f"stack {stack!r} has no {GATEWAY_OUTPUT} and {ADMIN_OUTPUT} outputs; is it an OmniRoute Edge stack "
            "that finished deploying?",
            1,
        )
    return gateway, admin, region


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


@app.command()
def show(as_json: JsonOption = False) -> None:
    """Show the saved target: gateway URL, admin URL and how admin calls authenticate."""
    try:
        target = current_target()
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    path = config_path()
    if as_json:
        typer.echo(json.dumps({**target.to_json(), "configFile": str(path)}, indent=2))
        return
    print_target(Console(), target, path)


@app.command()
def local(
    url: Annotated[str, typer.Option(help="The local gateway's base URL.")] = DEFAULT_URL,
) -> None:
    """Send admin calls to a gateway run by `omniroute serve` (authenticated with its admin token)."""
    base = check_url(url, "--url", https=False)
    _save(Target("local", base, base))


@app.command()
def cloud(
    gateway_url: Annotated[
        str | None, typer.Option(help="The stack's GatewayUrl output (its Function URL).", show_default=False)
    ] = None,
    admin_url: Annotated[
        str | None, typer.Option(help="The stack's AdminApiUrl output (its HTTP API).", show_default=False)
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(help="Read both URLs from this CloudFormation stack's outputs instead.", show_default=False),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="The stack's AWS region (default: read from the admin URL).", show_default=False),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="The AWS profile to sign with (default: the AWS credential chain).", show_default=False),
    ] = None,
) -> None:
    """Send admin calls to a deployed stack, signed with SigV4 from your AWS credentials."""
    if stack and (gateway_url or admin_url):
        raise typer.BadParameter("give --stack, or --gateway-url and --admin-url, not both", param_hint="--stack")
    if stack:
        try:
            gateway_url, admin_url, region = stack_urls(stack, region, profile)
        except AdminFailure as failure:
            raise exit_with(failure) from failure
    if not gateway_url or not admin_url:
        raise typer.BadParameter("give --gateway-url and --admin-url (or --stack NAME)", param_hint="--admin-url")
    gateway = check_url(gateway_url, "--gateway-url", https=True)
    admin = check_url(admin_url, "--admin-url", https=True)
    region = region or region_of(admin)
    if not region:
        raise typer.BadParameter("the admin URL does not name its region: pass --region", param_hint="--region")
    _save(Target("cloud", gateway, admin, region, profile))


def _save(target: Target) -> None:
    try:
        path = save_target(target)
    except AdminFailure as failure:  # an unreadable config file is not overwritten
        raise exit_with(failure) from failure
    except OSError as exc:
        raise exit_with(AdminFailure(f"cannot write {config_path()}: {exc.strerror}")) from exc
    out = Console()
    out.print("Target saved.")
    print_target(out, target, path)


def print_target(console: Console, target: Target, path: Path) -> None:
    rows = [("Target", target.kind), ("Gateway URL", target.gateway_url)]
    if target.kind == "cloud":
        rows += [
            ("Admin URL", f"{target.admin_url} (SigV4-signed, service execute-api)"),
            ("AWS region", target.region or "?"),
            ("AWS profile", target.profile or "the default credential chain"),
        ]
    else:
        rows.append(("Admin API", f"{target.admin_url}/api (admin token from the data dir)"))
    rows.append(("Config file", str(path)))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"{label + ':':<{width + 1}} {escape(value)}", soft_wrap=True, highlight=False)
