"""`omniroute status`, driven with Typer's CliRunner against a canned admin API on loopback."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import Result

from companion.local import ADMIN_TOKEN_FILE
from tests.companion.cli_runner import run_command
from tests.fakes.server import ServerThread, free_port

TOKEN = "omni-admin-test-token-never-printed"
HEALTH: dict[str, Any] = {
    "status": "ok",
    "cloud": False,
    "connections": 3,
    "activeProviders": ["openai"],
    "nodes": 1,
    "apiKeys": 1,
    "models": 12,
    "breakers": [
        {"provider": "openai", "state": "open", "failures": 0, "threshold": 5, "retryInSeconds": 12.5, "version": 3}
    ],
    "cooldowns": [
        {
            "connectionId": "conn_ab12",
            "provider": "openai",
            "model": None,
            "reason": "rate_limited",
            "level": 2,
            "remainingSeconds": 4.2,
        }
    ],
    "cache": {"hits": 10, "misses": 30, "hitRate": 0.25, "entries": 12},
    "latency": {"openai": {"count": 120, "p50Ms": 210.0, "p95Ms": 480.0, "p99Ms": 900.0}},
    "idempotency": {"replayed": 2},
    "relinkNeeded": [],
}
RELINK: list[dict[str, Any]] = [
    {
        "id": "conn_cx1",
        "provider": "codex",
        "name": "me@example.com",
        "reason": "refresh_token_reused: This refresh token has already been used. (HTTP 400)",
        "expiresAt": 1795000000.0,
    },
    {"id": "conn_cl2", "provider": "claude", "name": None, "reason": None, "expiresAt": None},
]
RESET = {"breakers": 1, "cooldowns": 2}


@dataclass
class AdminState:
    """What the canned admin API answers, and what it was sent."""

    health: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(HEALTH))
    health_status: int = 200
    reset_bodies: list[Any] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


def _refused(request: Request) -> JSONResponse | None:
    """The admin API's bearer check and error shape (None: the token is right)."""
    state: AdminState = request.app.state.admin
    presented = request.headers.get("authorization", "").removeprefix("Bearer ")
    state.tokens.append(presented)
    if presented == TOKEN:
        return None
    error = {"message": "Admin token missing or wrong.", "type": "authentication_error", "code": "invalid_admin_token"}
    return JSONResponse({"error": error}, status_code=401)


async def _health(request: Request) -> JSONResponse:
    state: AdminState = request.app.state.admin
    if (denied := _refused(request)) is not None:
        return denied
    if state.health_status != 200:
        error = {"message": "The store did not answer.", "type": "server_error"}
        return JSONResponse({"error": error}, status_code=state.health_status)
    return JSONResponse(state.health)


async def _reset(request: Request) -> JSONResponse:
    state: AdminState = request.app.state.admin
    if (denied := _refused(request)) is not None:
        return denied
    state.reset_bodies.append(await request.json())
    return JSONResponse(RESET)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Starlette]]:
    """The two admin routes `status` calls, answering from `app.state.admin`."""
    routes = [Route("/api/health", _health, methods=["GET"]), Route("/api/health/reset", _reset, methods=["POST"])]
    with ServerThread(Starlette(routes=routes)) as running:
        yield running


@pytest.fixture
def admin(server: ServerThread[Starlette]) -> AdminState:
    state = AdminState()
    server.app.state.admin = state
    return state


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run `omniroute status`, isolated from the caller's OMNIROUTE_* settings, on a wide non-terminal."""
    return run_command("status", args, TOKEN, env)


def lines_with(output: str, *words: str) -> list[str]:
    return [line for line in output.splitlines() if all(w in line for w in words)]


def rows(output: str) -> list[list[str]]:
    """The cells of every table body row Rich drew."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if line[:1] == "│"]


# --------------------------------------------------------------------------------------------
# The health view
# --------------------------------------------------------------------------------------------


def test_prints_the_summary_and_every_section(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == (
        f"ok local gateway at {server.base_url} · 3 connections (openai) · 1 node · 1 API key · 12 models"
        " · 2 idempotent replays"
    )
    assert [line.strip() for line in out.splitlines() if line.strip() in ("Breakers", "Cooldowns", "Latency")] == [
        "Breakers",
        "Cooldowns",
        "Latency",
    ]
    assert rows(out) == [
        ["openai", "open", "0/5", "12.5 s"],
        ["conn_ab12", "openai", "all models", "rate_limited", "2", "4.2 s"],
        ["openai", "120", "210 ms", "480 ms", "900 ms"],
    ]
    assert "Cache: 10 hits, 30 misses (25% hit rate), 12 entries" in out
    assert "relink" not in out.lower()  # no account needs it: not a word about it
    assert admin.tokens == [TOKEN]


def test_lists_accounts_to_relink_first_with_the_command_that_fixes_each(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    admin.health["relinkNeeded"] = copy.deepcopy(RELINK)
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    out = result.stdout
    titles = [line.strip() for line in out.splitlines() if line.strip() in ("Accounts to relink", "Breakers")]
    assert titles == ["Accounts to relink", "Breakers"]  # the one thing the owner must act on comes first
    assert rows(out)[:2] == [
        ["conn_cx1", "codex", "me@example.com", str(RELINK[0]["reason"])],
        ["conn_cl2", "claude", "—", "the provider refused the refresh token"],  # no reason stored: a plain one
    ]
    commands = [line.strip() for line in out.splitlines() if line.strip().startswith("omniroute login")]
    assert commands == ["omniroute login codex --relink conn_cx1", "omniroute login claude --relink conn_cl2"]


def test_says_all_closed_and_none_when_nothing_is_tripped(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.health["breakers"] = [{"provider": "openai", "state": "closed", "failures": 1, "threshold": 5}]
    admin.health["cooldowns"] = []
    admin.health["latency"] = {}
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert "Breakers: all closed (1 provider)" in result.stdout
    assert "Cooldowns: none" in result.stdout
    assert "Latency: no requests measured yet" in result.stdout
    assert "┃" not in result.stdout  # no table at all


def test_only_breakers_that_are_not_closed_are_highlighted(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.health["breakers"] = [
        {"provider": "anthropic", "state": "closed", "failures": 2, "threshold": 5, "retryInSeconds": None},
        {"provider": "openai", "state": "open", "failures": 0, "threshold": 5, "retryInSeconds": 12.5},
        {"provider": "gemini", "state": "half_open", "failures": 0, "threshold": 5, "retryInSeconds": 0},
    ]
    result = invoke("--url", server.base_url, "--token", TOKEN, env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0, result.output
    styled = {name: lines_with(result.stdout, name, "/5")[0] for name in ("anthropic", "openai", "gemini")}
    assert "\x1b[1;31m" in styled["openai"]  # bold red
    assert "\x1b[33m" in styled["gemini"]  # yellow
    assert "\x1b[" not in re.sub(r"\x1b\[0m", "", styled["anthropic"].replace("│", "").strip())


def test_values_from_the_gateway_are_shown_literally(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.health["cooldowns"][0]["reason"] = "[bold]quota[/bold]"
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert ["conn_ab12", "openai", "all models", "[bold]quota[/bold]", "2", "4.2 s"] in rows(result.stdout)


def test_json_prints_the_payload_as_received(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == HEALTH


def test_url_comes_from_the_environment(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke(env={"OMNIROUTE_URL": server.base_url + "/", "OMNIROUTE_ADMIN_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert admin.tokens == [TOKEN]


# --------------------------------------------------------------------------------------------
# --reset
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "posted", "said"),
    [
        ([], {}, "Reset 1 breaker and 2 cooldowns."),
        (["--provider", "openai"], {"provider": "openai"}, "Reset 1 breaker and 2 cooldowns (provider openai)."),
        (
            ["--provider", "openai", "--connection", "conn_ab12"],
            {"provider": "openai", "connectionId": "conn_ab12"},
            "Reset 1 breaker and 2 cooldowns (provider openai, connection conn_ab12).",
        ),
    ],
)
def test_reset_posts_the_filters_and_says_what_was_reset(
    server: ServerThread[Starlette], admin: AdminState, filters: list[str], posted: dict[str, str], said: str
) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, "--reset", *filters)
    assert result.exit_code == 0, result.output
    assert admin.reset_bodies == [posted]
    assert result.stdout.strip() == said


def test_reset_with_json_prints_the_counts(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, "--reset", "--connection", "conn_ab12", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == RESET
    assert admin.reset_bodies == [{"connectionId": "conn_ab12"}]


def test_filters_without_reset_are_a_usage_error(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, "--provider", "openai")
    assert result.exit_code == 2
    assert "only go with --reset" in result.output
    assert admin.tokens == []  # nothing was sent


# --------------------------------------------------------------------------------------------
# The admin token
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["option", "environment"])
def test_token_is_read_from_the_data_dir(
    server: ServerThread[Starlette], admin: AdminState, tmp_path: Path, how: str
) -> None:
    (tmp_path / ADMIN_TOKEN_FILE).write_text(TOKEN + "\n", encoding="utf-8")
    if how == "option":
        result = invoke("--url", server.base_url, "--data-dir", str(tmp_path))
    else:
        result = invoke("--url", server.base_url, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert admin.tokens == [TOKEN]


def test_token_file_defaults_to_the_home_data_dir(
    server: ServerThread[Starlette], admin: AdminState, tmp_path: Path
) -> None:
    (tmp_path / ".omniroute").mkdir()
    (tmp_path / ".omniroute" / ADMIN_TOKEN_FILE).write_text(TOKEN, encoding="utf-8")
    result = invoke("--url", server.base_url, env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert admin.tokens == [TOKEN]


def test_no_token_anywhere_says_where_it_looked(
    server: ServerThread[Starlette], admin: AdminState, tmp_path: Path
) -> None:
    result = invoke("--url", server.base_url, "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no admin token" in result.stderr
    assert str(tmp_path / ADMIN_TOKEN_FILE) in result.stderr.replace("\n", "")
    assert admin.tokens == []


def test_wrong_token_exits_2_saying_so(server: ServerThread[Starlette], admin: AdminState, tmp_path: Path) -> None:
    (tmp_path / ADMIN_TOKEN_FILE).write_text("omni-admin-stale", encoding="utf-8")
    result = invoke("--url", server.base_url, "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "refused the admin token" in result.stderr and "wrong" in result.stderr
    assert str(tmp_path / ADMIN_TOKEN_FILE) in result.stderr.replace("\n", "")  # where the bad token came from
    assert "omni-admin-stale" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_never_shows_the_token_from_the_environment() -> None:
    result = invoke("--help", env={"OMNIROUTE_ADMIN_TOKEN": TOKEN})
    assert result.exit_code == 0
    for option in ("--url", "--token", "--data-dir", "--json", "--reset", "--provider", "--connection"):
        assert option in result.stdout


# --------------------------------------------------------------------------------------------
# An unreachable or failing gateway
# --------------------------------------------------------------------------------------------


def test_unreachable_gateway_exits_2_saying_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = invoke("--url", url, "--token", TOKEN)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"no gateway answers at {url}" in result.stderr
    assert "omniroute serve" in result.stderr


def test_a_failing_health_check_exits_1_with_the_gateways_message(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    admin.health_status = 503
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 1
    assert "HTTP 503: The store did not answer." in result.stderr.replace("\n", "")
