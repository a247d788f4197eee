"""`omniroute serve` refuses to start on what it cannot use, with a one-line reason and exit 2 (the running
server itself is exercised by every e2e test, which starts the installed command)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from companion.cli import app
from companion.local import build_local
from shared.settings import Settings
from tests.companion.cli_runner import ISOLATED


def test_an_unknown_store_backend_is_refused() -> None:
    result = CliRunner().invoke(app, ["serve", "--store", "sqlite"], env=ISOLATED)
    assert result.exit_code == 2 and "inprocess or server" in result.output


def test_a_lost_key_file_stops_serve_while_linked_accounts_need_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runtime = build_local(Settings.from_env({"OMNIROUTE_DATA_DIR": str(data)}))
    try:
        runtime.services.oauth.link(
            {"provider": "claude", "tokens": {"accessToken": "at-0123456789", "refreshToken": "rt-0123456789"}}
        )
    finally:
        runtime.stop()
    (data / "secret.key").unlink()
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(data), "--port", "1"], env=ISOLATED)
    assert result.exit_code == 2
    assert "1 linked account(s)" in result.output and "--relink" in result.output
    assert not (data / "secret.key").exists()  # nothing was replaced
