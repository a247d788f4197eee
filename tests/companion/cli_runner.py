"""Running an `omniroute` command the way the companion tests do: isolated from the caller's OMNIROUTE_*
settings, on a wide non-terminal, and never printing the admin token whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from companion.cli import app

ISOLATED: dict[str, str | None] = {
    "OMNIROUTE_URL": None,
    "OMNIROUTE_ADMIN_TOKEN": None,
    "OMNIROUTE_DATA_DIR": None,
    "OMNIROUTE_CONFIG_DIR": None,
    "COLUMNS": "120",
    "FORCE_COLOR": None,
    "NO_COLOR": None,
}


def run_command(command: str, args: tuple[str, ...], token: str, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner().invoke(app, [command, *args], env=ISOLATED | (env or {}))
    assert token not in result.output  # whatever happens, the token is never printed
    return result


# --------------------------------------------------------------------------------------------
# A real local target in-process: the embedded store and admin API `omniroute serve` runs, on loopback
# --------------------------------------------------------------------------------------------


@dataclass
class LocalTarget:
    """A local gateway whose data dir is `home/.omniroute`, saved as the companion's target there."""

    home: Path
    url: str
    token: str = field(repr=False)

    @property
    def env(self) -> dict[str, str | None]:
        """What a command needs to find this target the way an owner's would: through HOME only."""
        return {"HOME": str(self.home), "OMNIROUTE_CONFIG_DIR": None}

    def run(self, command: str, *args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(app, [command, *args], env=ISOLATED | self.env, input=input)
        assert self.token not in result.output
        return result

    def call(self, method: str, path: str, body: object = None, status: int = 200) -> Any:
        """An admin call made directly (to set up or inspect state), expected to answer `status`."""
        response = httpx.request(
            method, self.url + path, json=body, headers={"authorization": f"Bearer {self.token}"}, trust_env=False
        )
        assert response.status_code == status, response.text
        return response.json() if response.content else None


@contextmanager
def local_target(home: Path) -> Iterator[LocalTarget]:
    """`omniroute serve` in-process (build_local + create_local_app on a ServerThread), with its admin token in
    `home/.omniroute/admin-token` and `omniroute target local --url <it>` saved in `home/.omniroute`."""
    from companion.local import build_local, create_local_app
    from shared.settings import Settings
    from tests.fakes.server import ServerThread

    runtime = build_local(Settings.from_env({"OMNIROUTE_DATA_DIR": str(home / ".omniroute")}))
    try:
        with ServerThread(create_local_app(runtime.services)) as server:
            target = LocalTarget(home, server.base_url, runtime.services.admin_token or "")
            saved = target.run("target", "local", "--url", server.base_url)
            assert saved.exit_code == 0, saved.output
            yield target
    finally:
        runtime.stop()
