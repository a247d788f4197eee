"""`omniroute usage`, driven with Typer's CliRunner against a canned admin API on loopback."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import Result

from companion.charts import PALETTE
from companion.local import ADMIN_TOKEN_FILE
from companion.usage import GroupBy, UsageReport
from tests.companion.cli_runner import run_command
from tests.companion.test_charts import decode_png, rgb
from tests.fakes.server import ServerThread, free_port

TOKEN = "omni-admin-test-token-never-printed"
ZERO = {
    "requests": 0,
    "errors": 0,
    "inputTokens": 0,
    "outputTokens": 0,
    "cachedTokens": 0,
    "cacheCreationTokens": 0,
    "reasoningTokens": 0,
    "costUsd": 0.0,
    "estimatedRequests": 0,
    "latencyMsAvg": None,
    "ttftMsAvg": None,
}


def counters(**values: Any) -> dict[str, Any]:
    return ZERO | values


ANALYTICS: dict[str, Any] = {
    "from": "2026-11-16",
    "to": "2026-11-22",
    "timezone": "UTC",
    "groupBy": ["provider", "day"],
    "totals": counters(
        requests=120,
        errors=3,
        inputTokens=50000,
        outputTokens=9000,
        cachedTokens=20000,
        reasoningTokens=1200,
        costUsd=0.8123,
        estimatedRequests=2,
        latencyMsAvg=850.5,
        ttftMsAvg=310.2,
    ),
    "groups": [
        {"provider": "openai", "day": "2026-11-21"}
        | counters(
            requests=40,
            errors=1,
            inputTokens=20000,
            outputTokens=4000,
            cachedTokens=8000,
            reasoningTokens=1200,
            costUsd=0.31,
            latencyMsAvg=800.0,
        ),
        {"provider": "openai", "day": "2026-11-22"}
        | counters(
            requests=30, inputTokens=10000, outputTokens=2000, cachedTokens=6000, costUsd=0.2023, estimatedRequests=2
        ),
        {"provider": "anthropic", "day": "2026-11-21"}
        | counters(requests=50, errors=2, inputTokens=20000, outputTokens=3000, cachedTokens=6000, costUsd=0.30),
    ],
}
HISTORY = [
    {
        "requestId": f"req_{n}",
        "at": f"2026-11-22T10:0{n}:00Z",
        "provider": "openai",
        "model": "openai/gpt-4o-mini",  # the public id, as the gateway records it
        "requested": "fast",
        "connectionId": "conn_1",
        "keyId": "key_1",
        "combo": "fast",
        "client": "claude-code",
        "stream": True,
        "status": 200 if n != 3 else 429,
        "inputTokens": 1000 * n,
        "outputTokens": 10 * n,
        "cachedTokens": 0,
        "cacheCreationTokens": 0,
        "reasoningTokens": 0,
        "estimated": n == 2,
        "costUsd": 0.0011 * n,
        "latencyMs": 400 + n,
        "ttftMs": 120,
        "attempts": 1,
        "error": "rate limited upstream" if n == 3 else None,
    }
    for n in (5, 4, 3, 2, 1)  # newest first
]


@dataclass
class AdminState:
    """What the canned admin API answers, and what it was asked."""

    analytics: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(ANALYTICS))
    analytics_status: int = 200
    history: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(HISTORY))
    history_page: int = 2
    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


def _refused(request: Request) -> JSONResponse | None:
    """The admin API's bearer check and error shape (None: the token is right)."""
    state: AdminState = request.app.state.admin
    presented = request.headers.get("authorization", "").removeprefix("Bearer ")
    state.tokens.append(presented)
    state.queries.append((request.url.path, dict(request.query_params)))
    if presented == TOKEN:
        return None
    error = {"message": "Admin token missing or wrong.", "type": "authentication_error", "code": "invalid_admin_token"}
    return JSONResponse({"error": error}, status_code=401)


async def _analytics(request: Request) -> JSONResponse:
    state: AdminState = request.app.state.admin
    if (denied := _refused(request)) is not None:
        return denied
    if state.analytics_status != 200:
        error = {"message": "The usage table did not answer.", "type": "server_error", "code": "store_unavailable"}
        return JSONResponse({"error": error}, status_code=state.analytics_status)
    return JSONResponse(state.analytics)


async def _history(request: Request) -> JSONResponse:
    """Pages of at most `history_page` items (fewer than asked for), the cursor being the next offset."""
    state: AdminState = request.app.state.admin
    if (denied := _refused(request)) is not None:
        return denied
    start = int(request.query_params.get("cursor", "0"))
    end = start + min(int(request.query_params["limit"]), state.history_page)
    more = end < len(state.history)
    return JSONResponse({"items": state.history[start:end], "nextCursor": str(end) if more else None})


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread[Starlette]]:
    routes = [Route("/api/usage/analytics", _analytics), Route("/api/usage/history", _history)]
    with ServerThread(Starlette(routes=routes)) as running:
        yield running


@pytest.fixture
def admin(server: ServerThread[Starlette]) -> AdminState:
    state = AdminState()
    server.app.state.admin = state
    return state


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run `omniroute usage`, isolated from the caller's OMNIROUTE_* settings, on a wide non-terminal."""
    return run_command("usage", args, TOKEN, env)


def week(server: ServerThread[Starlette], *args: str, env: dict[str, str | None] | None = None) -> Result:
    """`usage` over the canned week, with the right token."""
    return invoke(
        "--url", server.base_url, "--token", TOKEN, "--from", "2026-11-16", "--to", "2026-11-22", *args, env=env
    )


def rows(output: str) -> list[list[str]]:
    """The cells of every table body row Rich drew."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if line[:1] == "│"]


def chart_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d │", line)]


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def test_table_sums_each_group_over_its_days_most_costly_first(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    result = week(server)
    assert result.exit_code == 0, result.output
    assert "Usage by provider, 2026-11-16 to 2026-11-22 (UTC)" in result.stdout
    assert rows(result.stdout) == [
        ["openai", "70", "1", "30,000", "6,000", "14,000", "1,200", "$0.5123", "~2"],
        ["anthropic", "50", "2", "20,000", "3,000", "6,000", "0", "$0.3000", ""],
        ["Total", "120", "3", "50,000", "9,000", "20,000", "1,200", "$0.8123", "~2"],
    ]
    assert "Est.: requests whose tokens and cost are estimated" in result.stdout
    assert "average latency 850 ms, time to first token 310 ms" in result.stdout


def test_asks_for_the_range_grouped_by_the_choice_and_day(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = week(server, "--by", "model", "--tz", "Europe/Copenhagen")
    assert result.exit_code == 0, result.output
    assert admin.queries == [
        (
            "/api/usage/analytics",
            {"from": "2026-11-16", "to": "2026-11-22", "groupBy": "model,day", "tz": "Europe/Copenhagen"},
        )
    ]
    assert admin.tokens == [TOKEN]


def test_days_count_back_from_to(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, "--days", "3", "--to", "2026-11-22")
    assert result.exit_code == 0, result.output
    assert admin.queries[0][1] == {"from": "2026-11-20", "to": "2026-11-22", "groupBy": "provider,day"}


def test_the_default_range_is_the_last_seven_days_up_to_today(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    before = datetime.now(UTC).date()
    result = invoke("--url", server.base_url, "--token", TOKEN)
    after = datetime.now(UTC).date()
    assert result.exit_code == 0, result.output
    asked = admin.queries[0][1]
    assert asked["to"] in (before.isoformat(), after.isoformat())
    assert date.fromisoformat(asked["to"]) - date.fromisoformat(asked["from"]) == timedelta(days=6)


def test_key_groups_are_named_and_names_two_keys_share_get_their_id(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    admin.analytics["groupBy"] = ["key", "day"]
    admin.analytics["groups"] = [
        {"keyId": "key_a", "keyName": "laptop", "day": "2026-11-21"} | counters(requests=3, costUsd=0.3),
        {"keyId": "key_b", "keyName": "laptop", "day": "2026-11-21"} | counters(requests=2, costUsd=0.2),
        {"keyId": "key_c", "keyName": "ci", "day": "2026-11-22"} | counters(requests=1, costUsd=0.1),
    ]
    result = week(server, "--by", "key")
    assert result.exit_code == 0, result.output
    assert [row[0] for row in rows(result.stdout)] == ["laptop (key_a)", "laptop (key_b)", "ci", "Total"]
    assert "█ laptop (key_a)" in result.stdout  # the legend


def test_values_from_the_gateway_are_shown_literally(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.analytics["groups"][2]["provider"] = "[bold]anthropic[/bold]"
    result = week(server)
    assert result.exit_code == 0, result.output
    assert [row[0] for row in rows(result.stdout)] == ["openai", "[bold]anthropic[/bold]", "Total"]


# --------------------------------------------------------------------------------------------
# The chart
# --------------------------------------------------------------------------------------------


def test_chart_has_a_row_per_day_with_groups_stacked_in_proportion(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    result = week(server)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Daily cost (USD) by provider, 2026-11-16 to 2026-11-22 (UTC)" in out
    lines = chart_lines(out)
    assert [line[:14] for line in lines] == [
        "Mon 2026-11-16",
        "Tue 2026-11-17",
        "Wed 2026-11-18",
        "Thu 2026-11-19",
        "Fri 2026-11-20",
        "Sat 2026-11-21",
        "Sun 2026-11-22",
    ]
    assert all(line.endswith("│ $0.0000") for line in lines[:5])
    saturday, sunday = lines[5], lines[6]
    # Piped output has no colour, so openai fills with █ and anthropic with ░ (the legend says which).
    assert "█ openai  ░ anthropic" in out
    assert len(saturday) == 120 and saturday.endswith(" $0.6100")  # the longest bar fills the width
    cells = 120 - len("Sat 2026-11-21 │") - len(" $0.6100")
    assert abs(saturday.count("█") - cells * 0.31 / 0.61) <= 1
    assert saturday.count("█") + saturday.count("░") == cells
    assert abs(sunday.count("█") - cells * 0.2023 / 0.61) <= 1 and "░" not in sunday
    assert sunday.endswith(" $0.2023")


def test_chart_counts_requests_when_nothing_cost_anything(server: ServerThread[Starlette], admin: AdminState) -> None:
    for group in admin.analytics["groups"]:
        group["costUsd"] = 0.0
    admin.analytics["totals"]["costUsd"] = 0.0
    result = week(server)
    assert result.exit_code == 0, result.output
    assert "Daily requests by provider, 2026-11-16 to 2026-11-22 (UTC): every cost is $0" in result.stdout
    saturday, sunday = chart_lines(result.stdout)[5:]
    assert saturday.endswith(" 90") and sunday.endswith(" 30")
    assert abs(sunday.count("█") * 3 - saturday.count("█") * 3 * 30 / 40) <= 3  # openai: 40 then 30 requests


def test_chart_colours_each_group(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = week(server, env={"FORCE_COLOR": "1", "COLORTERM": "truecolor"})
    assert result.exit_code == 0, result.output
    saturday = next(line for line in result.stdout.splitlines() if "Sat 2026-11-21" in line)
    for colour in PALETTE[:2]:
        assert "38;2;{};{};{}m█".format(*rgb(colour)) in saturday


def test_no_color_terminals_tell_groups_apart_by_fill(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = week(server, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "░ anthropic" in re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)


def test_more_groups_than_colours_share_an_other_bar() -> None:
    payload = {
        "groups": [
            {"model": f"m{n}", "day": "2026-11-21"} | counters(requests=1, costUsd=float(n)) for n in range(1, 13)
        ]
    }
    report = UsageReport.from_analytics(payload, GroupBy.model, date(2026, 11, 21), date(2026, 11, 21))
    chart = report.chart(max_series=4)
    assert chart.series == ("m12", "m11", "m10", "other")
    assert chart.values == ((12.0, 11.0, 10.0, float(sum(range(1, 10)))),)


# --------------------------------------------------------------------------------------------
# Nothing recorded, --json, --history
# --------------------------------------------------------------------------------------------


def test_an_empty_range_says_so(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.analytics["groups"] = []
    admin.analytics["totals"] = counters()
    result = week(server)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No usage recorded between 2026-11-16 and 2026-11-22 (UTC)."


def test_json_prints_the_analytics_as_received(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = week(server, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ANALYTICS


def test_history_lists_the_newest_requests_over_as_many_pages_as_it_takes(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    result = week(server, "--history", "3", env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert [query for path, query in admin.queries if path == "/api/usage/history"] == [
        {"limit": "3"},
        {"limit": "1", "cursor": "2"},
    ]
    assert "Last 3 requests" in result.stdout
    assert rows(result.stdout)[-3:] == [
        ["2026-11-22 10:05:00", "openai/gpt-4o-mini", "claude-code", "200", "5,000", "50", "$0.0055", "405 ms", ""],
        ["2026-11-22 10:04:00", "openai/gpt-4o-mini", "claude-code", "200", "4,000", "40", "$0.0044", "404 ms", ""],
        [
            "2026-11-22 10:03:00",
            "openai/gpt-4o-mini",
            "claude-code",
            "429",
            "3,000",
            "30",
            "$0.0033",
            "403 ms",
            "rate limited upstream",
        ],
    ]


def test_history_times_are_in_the_chosen_zone_and_estimates_marked(
    server: ServerThread[Starlette], admin: AdminState
) -> None:
    result = week(server, "--history", "10", "--tz", "Europe/Copenhagen", env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    history = rows(result.stdout)[-5:]
    assert [row[0] for row in history] == [f"2026-11-22 11:0{n}:00" for n in (5, 4, 3, 2, 1)]  # CET is UTC+1
    assert history[3][4:6] == ["~2,000", "~20"]
    assert "Time (Europe/Copenhagen)" in result.stdout


def test_json_with_history_prints_both(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = week(server, "--json", "--history", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"analytics": ANALYTICS, "history": HISTORY[:2]}


# --------------------------------------------------------------------------------------------
# --png
# --------------------------------------------------------------------------------------------


def test_png_writes_the_chart_and_says_where(
    server: ServerThread[Starlette], admin: AdminState, tmp_path: Path
) -> None:
    target = tmp_path / "usage.png"
    result = week(server, "--png", str(target))
    assert result.exit_code == 0, result.output
    assert f"Wrote the chart to {target}." in result.stdout.replace("\n", "")
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    image = decode_png(data)
    assert (image.width, image.height) == (int.from_bytes(data[16:20]), int.from_bytes(data[20:24]))
    assert image.width >= 960
    openai, anthropic = rgb(PALETTE[0]), rgb(PALETTE[1])
    saturday = max(range(image.height), key=lambda y: image.row(y).count(anthropic))  # only Saturday has anthropic
    row = image.row(saturday)
    assert abs(row.count(openai) / row.count(anthropic) - 0.31 / 0.30) < 0.03
    assert row.index(anthropic) == row.index(openai) + row.count(openai)  # stacked: anthropic right after openai


def test_png_with_json_says_where_on_standard_error(
    server: ServerThread[Starlette], admin: AdminState, tmp_path: Path
) -> None:
    target = tmp_path / "usage.png"
    result = week(server, "--json", "--png", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ANALYTICS
    assert "Wrote the chart to" in result.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_is_not_written_without_usage(server: ServerThread[Starlette], admin: AdminState, tmp_path: Path) -> None:
    admin.analytics["groups"] = []
    target = tmp_path / "usage.png"
    result = week(server, "--png", str(target))
    assert result.exit_code == 0, result.output
    assert "Nothing to chart" in result.stdout and not target.exists()


def test_an_unwritable_png_exits_1_saying_why(
    server: ServerThread[Starlette], admin: AdminState, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "usage.png"
    result = week(server, "--png", str(target))
    assert result.exit_code == 1
    assert f"cannot write the chart to {target}" in result.stderr.replace("\n", "")
    assert result.stdout == ""


# --------------------------------------------------------------------------------------------
# Bad options, tokens and gateways
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--from", "2026-13-01", "--to", "2026-11-22"], "'2026-13-01' is not a date; use YYYY-MM-DD"),
        (["--from", "yesterday"], "'yesterday' is not a date; use YYYY-MM-DD"),
        (["--to", "20261122"], "'20261122' is not a date; use YYYY-MM-DD"),
        (["--from", "2026-11-23", "--to", "2026-11-22"], "2026-11-23 is after --to 2026-11-22"),
        (["--from", "2026-11-01", "--days", "3"], "give either --from or --days, not both"),
        (["--days", "0"], "Invalid value for '--days'"),
        (["--tz", "Mars/Olympus_Mons"], "'Mars/Olympus_Mons' is not an IANA time zone"),
        (["--by", "colour"], "'colour' is not one of"),
    ],
)
def test_bad_options_exit_2_before_asking_the_gateway(
    server: ServerThread[Starlette], admin: AdminState, args: list[str], said: str
) -> None:
    result = invoke("--url", server.base_url, "--token", TOKEN, *args)
    assert result.exit_code == 2
    assert said in " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert admin.queries == []


def test_token_is_read_from_the_data_dir(server: ServerThread[Starlette], admin: AdminState, tmp_path: Path) -> None:
    (tmp_path / ADMIN_TOKEN_FILE).write_text(TOKEN + "\n", encoding="utf-8")
    result = invoke("--url", server.base_url, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert admin.tokens == [TOKEN]


def test_wrong_token_exits_2_saying_so(server: ServerThread[Starlette], admin: AdminState) -> None:
    result = invoke("--url", server.base_url, "--token", "omni-admin-stale")
    assert result.exit_code == 2
    assert result.stdout == ""
    message = result.stderr.replace("\n", "")
    assert "refused the admin token (from --token / OMNIROUTE_ADMIN_TOKEN): it is wrong" in message
    assert "omni-admin-stale" not in result.output


def test_unreachable_gateway_exits_2_saying_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = invoke("--url", url, "--token", TOKEN)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"no gateway answers at {url}" in result.stderr and "omniroute serve" in result.stderr


def test_a_failing_gateway_exits_1_with_its_message(server: ServerThread[Starlette], admin: AdminState) -> None:
    admin.analytics_status = 503
    result = week(server)
    assert result.exit_code == 1
    assert "HTTP 503: The usage table did not answer." in result.stderr.replace("\n", "")


def test_help_lists_every_option() -> None:
    result = invoke("--help", env={"OMNIROUTE_ADMIN_TOKEN": TOKEN})
    assert result.exit_code == 0
    for option in ("--url", "--token", "--data-dir", "--days", "--by", "--from", "--to", "--tz", "--history"):
        assert option in result.stdout
    assert "--json" in result.stdout and "--png" in result.stdout
