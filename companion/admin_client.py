"""What every command that talks to a running gateway's admin API shares: the options that say where it is
and which admin token to present, the token lookup `omniroute serve` agrees with, and one request helper
that turns every way a call can fail into a one-line message and an exit code.

    client = AdminClient.resolve(url, token, data_dir)      # may raise AdminFailure
    payload = client.get("/api/health")                     # a JSON object, or AdminFailure

Without an explicit `--url` (or OMNIROUTE_URL) the call goes to the saved target (`omniroute target`): a local
gateway with its admin token, or a deployed stack's admin API, where every request is signed with AWS SigV4
from the owner's AWS credentials (no admin secret exists in the cloud).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from botocore.credentials import Credentials

DEFAULT_URL = "http://127.0.0.1:20128"
# The file `omniroute serve` keeps the admin token in (companion.local.ADMIN_TOKEN_FILE; not imported
# from there because that module loads the whole embedded store).
ADMIN_TOKEN_FILE = "admin-token"
TIMEOUT_SECONDS = 10.0
SIGV4_SERVICE = "execute-api"  # an HTTP API's IAM authorization checks signatures for this service


def _saved_target_url(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    """--url left out (no flag, no OMNIROUTE_URL): the saved target's admin URL instead of the built-in default."""
    source = ctx.get_parameter_source(param.name) if param.name else None
    if source is None or source.name not in ("DEFAULT", "DEFAULT_MAP"):
        return value
    from companion.target import current_target  # `omniroute target` itself imports this module

    try:
        return current_target().admin_url
    except AdminFailure as failure:
        raise typer.BadParameter(failure.message) from failure


UrlOption = Annotated[
    str,
    typer.Option(
        help="The gateway's base URL (left out: the saved target's, see `omniroute target show`).",
        envvar="OMNIROUTE_URL",
        callback=_saved_target_url,
    ),
]
# The same option for commands whose default is the saved target itself (nothing shown as a default).
TargetUrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The gateway's base URL (default: the saved target, see `omniroute target show`).",
        envvar="OMNIROUTE_URL",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        help="Admin token (default: the admin-token file in the data dir).",
        envvar="OMNIROUTE_ADMIN_TOKEN",
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Where `omniroute serve` keeps its admin token (default: ~/.omniroute).", envvar="OMNIROUTE_DATA_DIR"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the JSON the admin API answered.")]


class AdminFailure(Exception):
    """Why a command cannot show anything: a one-line message and the exit code to leave with.

    2: the command cannot reach or authenticate to a gateway (nothing was asked of it);
    1: the gateway was asked and answered with an error (`status` and `code` say which).
    """

    def __init__(self, message: str, exit_code: int = 2, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.code = code


def exit_with(failure: AdminFailure) -> typer.Exit:
    """Print the failure on standard error and give back the Exit to raise (`raise exit_with(f) from f`)."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(failure.message)}", soft_wrap=True, highlight=False)
    return typer.Exit(failure.exit_code)


T = TypeVar("T")


def admin_call(url: str | None, token: str | None, data_dir: Path | None, call: Callable[[AdminClient], T]) -> T:
    """Resolve the client and make the call; any AdminFailure leaves the command with its message and code."""
    try:
        return call(AdminClient.resolve(url, token, data_dir))
    except AdminFailure as failure:
        raise exit_with(failure) from failure


@dataclass(frozen=True, slots=True)
class SigV4Signer:
    """Signs admin requests for an IAM-authorised HTTP API with the owner's AWS credentials."""

    region: str
    credentials: Credentials = field(repr=False)
    described: str  # where the credentials came from, for messages (never the credentials)

    @classmethod
    def load(cls, region: str, profile: str | None) -> SigV4Signer:
        """The credentials the AWS SDKs would use (environment, profile, SSO, instance role...), or AdminFailure."""
        import botocore.session
        from botocore.exceptions import BotoCoreError

        named = f"AWS profile {profile!r}" if profile else "the default AWS credential chain"
        try:
            credentials = botocore.session.Session(profile=profile).get_credentials()
        except BotoCoreError as exc:  # e.g. the profile does not exist, or its SSO session expired
            raise AdminFailure(f"cannot load AWS credentials from {named}: {exc}") from exc
        if credentials is None:
            raise AdminFailure(
                f"no AWS credentials found in {named}: the cloud admin API takes SigV4-signed requests only. "
                "Sign in (`aws sso login`, or set AWS_PROFILE / AWS_ACCESS_KEY_ID), or choose a profile with "
                "`omniroute target cloud --profile NAME`"
            )
        return cls(region, credentials, f"AWS credentials ({profile or credentials.method})")

    def sign(self, request: httpx.Request) -> None:
        """Add SigV4 headers computed over exactly what will be sent: method, URL, host, content type and the
        hash of the body bytes."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        signed = {"host": request.headers["host"]}
        if "content-type" in request.headers:
            signed["content-type"] = request.headers["content-type"]
        aws = AWSRequest(method=request.method, url=str(request.url), data=request.content, headers=signed)
        try:
            SigV4Auth(self.credentials.get_frozen_credentials(), SIGV4_SERVICE, self.region).add_auth(aws)
        except BotoCoreError as exc:  # refreshable credentials that can no longer be refreshed
            raise AdminFailure(f"cannot sign the request with {self.described}: {exc}") from exc
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = aws.headers.get(name)
            if value is not None:
                request.headers[name] = value


def refuse_plain_http(url: str) -> None:
    """Admin calls carry the admin token, and some carry credentials (a linked account's tokens, provider
    keys with `sync --secrets`): over plain http they may only go to this machine."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host == "localhost" or host.endswith(".localhost"):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise AdminFailure(
        f"{url} is plain http to another machine: the admin token and any credentials would travel "
        "unencrypted. Use https (a TLS proxy in front of `omniroute serve`, or the cloud target)."
    )


@dataclass(frozen=True, slots=True)
class AdminClient:
    """A gateway's admin API at `url`, called with `token` (which came from `source`, named in messages), or,
    for a cloud target, with every request signed by `signer`."""

    url: str
    token: str = field(repr=False)
    source: str
    signer: SigV4Signer | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, url: str | None, token: str | None, data_dir: Path | None) -> AdminClient:
        """The client for `url` with the admin token; without a URL, the saved target's. A cloud target's admin
        API (named or left out) is called with SigV4-signed requests instead: it has no admin token."""
        from companion.target import Target, current_target  # `omniroute target` itself imports this module

        target: Target | None
        if url is None:
            target = current_target()
            url = target.admin_url
        else:
            try:
                target = current_target()
            except AdminFailure:  # an explicit URL does not need the saved target
                target = None
        if target is not None and target.kind == "cloud" and url.rstrip("/") == target.admin_url.rstrip("/"):
            signer = SigV4Signer.load(target.signing_region(), target.profile)
            return cls(target.admin_url, "", signer.described, signer)
        key, source = admin_token(token, data_dir)
        return cls(url, key, source)

    @property
    def cloud(self) -> bool:
        return self.signer is not None

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: object) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: object) -> dict[str, Any]:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> dict[str, Any]:
        return self.request("DELETE", path)

    def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: object = None
    ) -> dict[str, Any]:
        """The JSON object the gateway answered ({} for 204 No Content), or AdminFailure saying why there is none."""
        url, target = self.url, self.url.rstrip("/") + path + query_string(params)
        refuse_plain_http(url)
        try:
            # trust_env=False: the admin token goes straight to the gateway, never through a proxy set for
            # other traffic.
            with httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False) as client:
                headers = {} if self.signer else {"authorization": f"Bearer {self.token}"}
                request = client.build_request(method, target, json=body, headers=headers)
                if self.signer is not None:
                    self.signer.sign(request)
                response = client.send(request)
        except httpx.InvalidURL as exc:
            raise AdminFailure(f"--url {url!r} is not a URL ({exc})") from exc
        except httpx.ConnectError as exc:
            if self.cloud:
                raise AdminFailure(
                    f"the admin API at {url} does not answer; check the target (`omniroute target show`)"
                ) from exc
            raise AdminFailure(f"no gateway answers at {url}; start one with `omniroute serve`") from exc
        except httpx.TransportError as exc:
            hint = "check the target (`omniroute target show`)" if self.cloud else "is `omniroute serve` running there?"
            raise AdminFailure(f"the gateway at {url} did not answer ({type(exc).__name__}); {hint}") from exc
        if response.status_code == 401 and not self.cloud:
            raise AdminFailure(f"the gateway at {url} refused the admin token (from {self.source}): it is wrong")
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if response.status_code == 403 and self.cloud:
            raise AdminFailure(
                f"the admin API at {url} refused the signed request ({error_message(payload)}); the IAM identity "
                f"of {self.source} needs execute-api:Invoke on it, in the stack's AWS account",
                status=403,
            )
        if response.is_error:
            error = payload.get("error") if isinstance(payload, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise AdminFailure(
                f"{method} {target} answered HTTP {response.status_code}: {error_message(payload)}",
                1,
                status=response.status_code,
                code=code if isinstance(code, str) else None,
            )
        if response.status_code == 204:
            return {}
        if not isinstance(payload, dict):
            raise AdminFailure(f"{method} {target} did not answer with a JSON object", 1)
        return payload


def query_string(params: Mapping[str, str] | None) -> str:
    """`?a=1&b=2`, sorted and percent-encoded as SigV4 canonicalises it (space as %20, never +), so the query
    that is signed is the query that is sent."""
    if not params:
        return ""
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params.items())
    return "?" + "&".join(f"{k}={v}" for k, v in pairs)


def path_segment(value: str, *, keep_slashes: bool = False) -> str:
    """An id or name placed in a URL path, percent-encoded (combo names may keep their `/`)."""
    return quote(value, safe="/" if keep_slashes else "")


def admin_token(token: str | None, data_dir: Path | None) -> tuple[str, str]:
    """(token, where it came from, for messages). The token itself is never printed."""
    if token:
        return token, "--token / OMNIROUTE_ADMIN_TOKEN"
    from shared.settings import Settings

    # Resolved as `omniroute serve` resolves it, so both agree on where the token lives.
    directory = Settings.from_env({"OMNIROUTE_DATA_DIR": str(data_dir)} if data_dir else {}).data_dir
    path = directory / ADMIN_TOKEN_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    except OSError as exc:
        raise AdminFailure(f"cannot read the admin token from {path}: {exc.strerror}") from exc
    if not stored:
        raise AdminFailure(
            f"no admin token: pass --token, set OMNIROUTE_ADMIN_TOKEN, or point --data-dir at the directory "
            f"where `omniroute serve` wrote it (looked in {path})"
        )
    return stored, str(path)


def obj(value: object) -> dict[str, Any]:
    """A JSON object from the admin API's answer, or {} when it is anything else."""
    return value if isinstance(value, dict) else {}


def error_message(payload: object) -> str:
    """The message of the admin API's `{"error": {"message": ...}}` shape (or API Gateway's `{"message": ...}`)."""
    if not isinstance(payload, dict):
        return "(no error message)"
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else payload.get("message")
    return message if isinstance(message, str) else "(no error message)"
