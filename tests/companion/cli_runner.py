"""Running an `omniroute` command the way the companion tests do: isolated from the caller's OMNIROUTE_*
settings, on a wide non-terminal, and never printing the admin token whatever happens."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from companion.cli import app

ISOLATED: dict[str, str | None] = {
    "OMNIROUTE_URL": None,
    "OMNIROUTE_ADMIN_TOKEN": None,
    "OMNIROUTE_DATA_DIR": None,
    "COLUMNS": "120",
    "FORCE_COLOR": None,
    "NO_COLOR": None,
}


def run_command(command: str, args: tuple[str, ...], token: str, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner().invoke(app, [command, *args], env=ISOLATED | (env or {}))
    assert token not in result.output  # whatever happens, the token is never printed
    return result
