"""`omniroute quota`, driven with Typer's CliRunner against a canned admin API on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import Result

from companion.quota import compact, countdown, usage_bar, usd
from tests.companion.cli_runner import run_command
from tests.fakes.server import ServerThread, free_port

TOKEN = "omni-admin-test-token-never-printed"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def blocked_until_for(now: datetime) -> datetime:
    # Thirty seconds past the hour, so that the countdown reads "1 h 0 min" however long the command takes.
    return now + timedelta(hours=1, seconds=30)


def quota_answer(now: datetime) -> dict[str, Any]:
    """GET /api/usage/quota as the gateway answers at `now` (each test builds its own, from its own clock:
    the command counts down against the clock when it runs, not when the module was imported)."""
    blocked_until = blocked_until_for(now)
    return {
        "accounts": [
            {
                "connectionId": "c1",
                "provider": "claude",
                "name": "work max",
                "blocked": True,
                "blockedUntil": iso(blocked_until),
                "updatedAt": iso(now - timedelta(minutes=10)),
                "windows": [
                    {
                        "name": "5h",
                        "source": "headers",
                        "usedPercent": 100.0,
                        "used": None,
                        "limit": None,
                        "remaining": None,
                        "unit": None,
                        "resetsAt": iso(blocked_until),
                        "resetsInSeconds": 3630.0,
                        "limited": True,
                    },
                    {
                        "name": "daily",
                        "source": "counter",
                        "usedPercent": 42.0,
                        "used": 420000,
                        "limit": 1000000,
                        "remaining": 580000,
                        "unit": "tokens",
                        "resetsAt": iso(now + timedelta(hours=2, minutes=13)),
                        "resetsInSeconds": 7980.0,
                        "limited": False,
                        "label": "daily at 10:00 Europe/Copenhagen",
                    },
                ],
            },
            {
                "connectionId": "c2",
                "provider": "codex",
                "name": "personal",
                "blocked": False,
                "blockedUntil": None,
                "updatedAt": iso(now),
                "windows": [
                    {
                        "name": "7d",
                        "source": "poll",
                        "usedPercent": 75.0,
                        "used": None,
                        "limit": None,
                        "remaining": None,
                        "unit": None,
                        "resetsAt": iso(now - timedelta(minutes=1)),
                        "resetsInSeconds": -60.0,
                        "limited": False,
                    },
                    {
                        "name": "monthly",
                        "source": "counter",
                        "usedPercent": None,
                        "used": 150,
                        "limit": 200,
                        "remaining": 50,
                        "unit": "requests",
                        "resetsAt": iso(now + timedelta(days=3, hours=4, minutes=5)),
                        "limited": False,
                    },
                ],
            },
        ]
    }


def period(now: datetime, name: str, limit: float, spent: float, status: str, resets_in: float) -> dict[str, Any]:
    return {
        "period": name,
        "limitUsd": limit,
        "spentUsd": spent,
        "remainingUsd": max(limit - spent, 0.0),
        "status": status,
        "periodStart": iso(now - timedelta(hours=20)),
        "resetsAt": iso(now + timedelta(seconds=resets_in)),
        "resetsInSeconds": resets_in,
    }


def budgets_answer(now: datetime) -> dict[str, Any]:
    """GET /api/budgets as the gateway answers at `now`."""
    return {
        "budgets": [
            {
                "keyId": "key_1",
                "keyName": "laptop",
                "warningThreshold": 0.8,
                "timezone": "UTC",
                "resetTime": "00:00",
                "periods": [
                    period(now, "daily", 5.0, 4.2, "warning", 3 * 3600 + 30),
                    period(now, "monthly", 100.0, 12.5, "ok", 9 * 86400 + 3600),
                ],
            },
            {
                "keyId": "key_2",
                "keyName": "ci",
                "warningThreshold": 0.8,
                "timezone": "UTC",
                "resetTime": "00:00",
                "periods": [period(now, "weekly", 1.0, 1.25, "exceeded", 45.0)],
            },
        ]
    }


@dataclass
class AdminState:
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    quota: dict[str, Any] = field(default_factory=dict)
    budgets: dict[str, Any] = field(default_factory=dict)
    budgets_status: int = 200
    paths: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """The answers as of this test's own `now` (set just before it runs the command)."""
        self.quota = self.quota or quota_answer(self.now)
        self.budgets = self.budgets or budgets_answer(self.now)


def _refused(request: Request) -> JSONResponse | None:
    """The admin API's bearer check and error shape (None: the token is right)."""
    state: AdminState = request.app.state.admin
    presented = request.headers.get("authorization", "").removeprefix("Bearer ")
    state.tokens.append(presented)
    state.paths.append(request.url.path)
    if presented == TOKEN:
        return None
    error = {"message": "Admin token missing or wrong.", "type": "authentication_error", "code": "invalid_admin_token"}
    return JSONResponse({"error": error}, status_code=401)


async def _quota(request: Request) -> JSONResponse:
    state: AdminState = request.app.state.admin
    return _refused(request) or JSONResponse(state.quota)


async def _budgets(request: Request) -> JSONResponse:
    state: AdminState = request.app.state.admin
    if (denied := _refused(request)) is not None:
        return denied
    if state.budgets_status != 200:
        error = {"message": "Budgets are not enabled.", "type": "invalid_request_error", "code": "not_found"}
        return JSONResponse({"error": error}, status_code=state.budgets_status)
    return JSONResponse(state.budgets)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Starlette]]:
    routes = [Route("/api/usage/quota", _quota), Route("/api/budgets", _budgets)]
    with ServerThread(Starlette(routes=routes)) as running:
        yield running


@pytest.fixture
def admin(server: ServerThread[Starlette]) -> AdminState:
    state = AdminState()
    server.app.state.admin = state
    return state


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run `omniroute quota`, isolated from the caller's OMNIROUTE_* settings, on a wide non-terminal."""
    return run_command("quota", args, TOKEN, env)


def rows(output: str) -> list[list[str]]:
    """The cells of every table body row Rich drew."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if line[:1] == "│"]


def line_with(output: str, text: str) -> str:
    """The first line that shows `text` once colours are left out (the line is returned with them)."""
    return next(line for line in output.splitlines() if text in re.sub(r"\x1b\[[0-9;]*m", "", line))


def row_of(output: str, first: str) -> list[str]:
    return next(row for row in rows(output) if row[0] == first)


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------


def test_a_blocked_account_says_until_when(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    local = blocked_until_for(admin.now).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    assert f"claude · work max (c1)  BLOCKED until {local} (in 1 h 0 min)" in result.stdout
    assert "codex · personal (c2)" in result.stdout
    assert "BLOCKED" not in next(line for line in result.stdout.splitlines() if "codex" in line)
    assert admin.paths == ["/api/usage/quota", "/api/budgets"]
    assert admin.tokens == [TOKEN, TOKEN]


def test_each_window_shows_use_counts_and_countdown(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert row_of(out, "5h") == ["5h", "headers", "██████████ 100%", "—", "—", "in 1 h 0 min"]
    assert row_of(out, "daily at 10:00 Europe/Copenhagen") == [  # the label, where the window has one
        "daily at 10:00 Europe/Copenhagen",
        "counter",
        "████░░░░░░  42%",
        "420k / 1M tokens",
        "580k tokens",
        "in 2 h 13 min",
    ]
    assert row_of(out, "7d") == ["7d", "poll", "████████░░  75%", "—", "—", "reset"]
    # No usedPercent: worked out from used and limit; no resetsInSeconds: counted down from resetsAt.
    monthly = row_of(out, "monthly")
    assert monthly[2:5] == ["████████░░  75%", "150 / 200 requests", "50 requests"]
    assert monthly[5] in ("in 3 d 4 h", "in 3 d 3 h")
    assert "read 10 min ago" in out


def test_bars_are_coloured_by_how_full(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = {name: line_with(result.stdout, f"│ {name} ") for name in ("5h", "7d", "daily at")}
    assert "\x1b[31m████" in lines["5h"]  # limited: red (its row too)
    assert "\x1b[33m████" in lines["7d"]  # 75%: yellow
    assert "\x1b[32m████" in lines["daily at"]  # 42%: green


@pytest.mark.parametrize(
    ("percent", "limited", "style"),
    [(42, False, "green"), (70, False, "yellow"), (90, False, "red"), (15, True, "red")],
)
def test_bar_colour_thresholds(percent: float, limited: bool, style: str) -> None:
    bar = usage_bar(percent, limited=limited)
    assert bar.spans[0].style == style
    assert bar.plain.endswith(f"{percent:3.0f}%")


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (None, "—"),
        (-5, "reset"),
        (0, "reset"),
        (45, "in 45 s"),
        (13 * 60 + 59, "in 13 min"),
        (3600, "in 1 h 0 min"),
        (2 * 3600 + 13 * 60 + 30, "in 2 h 13 min"),
        (3 * 86400 + 4 * 3600 + 59 * 60, "in 3 d 4 h"),
    ],
)
def test_countdowns(seconds: float | None, said: str) -> None:
    assert countdown(seconds) == said


def test_an_account_without_windows_says_so(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.quota["accounts"][1]["windows"] = []
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert "codex · personal (c2)\n  no quota windows reported" in result.stdout


def test_no_accounts_and_no_budgets_say_so(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.quota, admin.budgets = {"accounts": []}, {"budgets": []}
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Quota: no account has reported a quota window yet.", "Budgets: none set."]


# --------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------


def test_budgets_show_spent_status_and_reset(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    budget_rows = [row for row in rows(result.stdout) if len(row) == 7]
    assert budget_rows == [
        ["laptop", "daily", "$4.20 / $5.00", "████████░░  84%", "$0.80", "warning", "in 3 h 0 min"],
        ["", "monthly", "$12.50 / $100.00", "█░░░░░░░░░  12%", "$87.50", "ok", "in 9 d 1 h"],
        ["ci", "weekly", "$1.25 / $1.00", "██████████ 125%", "$0.00", "exceeded", "in 45 s"],
    ]


def test_budget_statuses_are_coloured(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0, result.output
    for status, code in (("warning", "\x1b[33m"), ("ok", "\x1b[32m"), ("exceeded", "\x1b[1;31m")):
        assert f"{code}{status}" in line_with(result.stdout, f" {status} ")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (150, "150"),
        (9999, "9,999"),
        (12345, "12.3k"),
        (420000, "420k"),
        (999999, "1M"),
        (1.5e6, "1.5M"),
        (2.1e9, "2.1B"),
    ],
)
def test_large_counts_are_compact(value: float, shown: str) -> None:
    assert compact(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"), [(0, "$0.00"), (0.0031, "$0.0031"), (0.8, "$0.80"), (4.2, "$4.20"), (1234.5, "$1,234.50")]
)
def test_dollars_keep_small_amounts_visible(value: float, shown: str) -> None:
    assert usd(value) == shown


# --------------------------------------------------------------------------------------------
# --json, tokens and failures
# --------------------------------------------------------------------------------------------


def test_json_prints_both_answers_as_received(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"quota": quota_answer(admin.now), "budgets": budgets_answer(admin.now)}


def test_wrong_token_exits_2_saying_so(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, env={"OMNIROUTE_ADMIN_TOKEN": "omni-admin-stale"})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "refused the admin token" in result.stderr and "it is wrong" in result.stderr
    assert "omni-admin-stale" not in result.output
    assert admin.paths == ["/api/usage/quota"]  # stopped at the first refusal


def test_unreachable_gateway_exits_2_saying_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("--url", url, "--token", TOKEN)
    assert result.exit_code == 2
    assert f"no gateway answers at {url}" in result.stderr and "omniroute serve" in result.stderr


def test_a_failing_budgets_call_exits_1_with_the_gateways_message(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    admin.budgets_status = 404
    result = invoke("--url", server.base_url, "--token", TOKEN)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "/api/budgets answered HTTP 404: Budgets are not enabled." in result.stderr.replace("\n", "")


def test_help_never_shows_the_token_from_the_environment() -> None:
    result = invoke("--help", env={"OMNIROUTE_ADMIN_TOKEN": TOKEN})
    assert result.exit_code == 0
    for option in ("--url", "--token", "--data-dir", "--json"):
        assert option in result.stdout
