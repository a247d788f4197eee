"""What every command that talks to a running gateway's admin API shares: the options that say where it is
and which admin token to present, the token lookup `omniroute serve` agrees with, and one request helper
that turns every way a call can fail into a one-line message and an exit code.

    client = AdminClient.resolve(url, token, data_dir)      # may raise AdminFailure
    payload = client.get("/api/health")                     # a JSON object, or AdminFailure
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

DEFAULT_URL = "http://127.0.0.1:20128"
# The file `omniroute serve` keeps the admin token in (companion.local.ADMIN_TOKEN_FILE; not imported
# from there because that module loads the whole embedded store).
ADMIN_TOKEN_FILE = "admin-token"
TIMEOUT_SECONDS = 10.0

UrlOption = Annotated[str, typer.Option(help="The gateway's base URL.", envvar="OMNIROUTE_URL")]
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


class AdminFailure(Exception):
    """Why a command cannot show anything: a one-line message and the exit code to leave with.

    2: the command cannot reach or authenticate to a gateway (nothing was asked of it);
    1: the gateway was asked and answered with an error.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def exit_with(failure: AdminFailure) -> typer.Exit:
    """Print the failure on standard error and give back the Exit to raise (`raise exit_with(f) from f`)."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(failure.message)}", soft_wrap=True, highlight=False)
    return typer.Exit(failure.exit_code)


@dataclass(frozen=True, slots=True)
class AdminClient:
    """A gateway's admin API at `url`, called with `token` (which came from `source`, named in messages)."""

    url: str
    token: str = field(repr=False)
    source: str

    @classmethod
    def resolve(cls, url: str, token: str | None, data_dir: Path | None) -> AdminClient:
        key, source = admin_token(token, data_dir)
        return cls(url, key, source)

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: object) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: object = None
    ) -> dict[str, Any]:
        """The JSON object the gateway answered, or AdminFailure saying why there is none."""
        url, target = self.url, self.url.rstrip("/") + path
        try:
            # trust_env=False: the admin token goes straight to the gateway, never through a proxy set for
            # other traffic.
            with httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False) as client:
                response = client.request(
                    method, target, params=params, json=body, headers={"authorization": f"Bearer {self.token}"}
                )
        except httpx.InvalidURL as exc:
            raise AdminFailure(f"--url {url!r} is not a URL ({exc})") from exc
        except httpx.ConnectError as exc:
            raise AdminFailure(f"no gateway answers at {url}; start one with `omniroute serve`") from exc
        except httpx.TransportError as exc:
            raise AdminFailure(
                f"the gateway at {url} did not answer ({type(exc).__name__}); is `omniroute serve` running there?"
            ) from exc
        if response.status_code == 401:
            raise AdminFailure(f"the gateway at {url} refused the admin token (from {self.source}): it is wrong")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_error:
            raise AdminFailure(f"{method} {target} answered HTTP {response.status_code}: {error_message(payload)}", 1)
        if not isinstance(payload, dict):
            raise AdminFailure(f"{method} {target} did not answer with a JSON object", 1)
        return payload


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


def error_message(payload: object) -> str:
    """The message of the admin API's `{"error": {"message": ...}}` shape."""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else "(no error message)"
