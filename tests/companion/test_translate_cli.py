"""`omniroute translate`, run as the installed command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "shared" / "formats" / "golden"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "companion", "translate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_translates_a_golden_request_exactly_as_the_golden_target() -> None:
    scenario = GOLDEN / "tools-round-trip"
    done = run(str(scenario / "request.openai.json"), "--to", "anthropic")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads((scenario / "request.anthropic.json").read_text())
    assert "openai request → anthropic" in done.stderr


def test_reads_standard_input_and_shows_the_canonical_form() -> None:
    body = (GOLDEN / "text-with-system" / "response.anthropic.json").read_text()
    done = run("-", "--to", "openai", "--canonical", stdin=body)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["choices"][0]["message"]["content"] == "Bye!"
    assert '"finish_reason": "stop"' in done.stderr


def test_bad_input_is_a_clear_error() -> None:
    done = run("-", "--to", "anthropic", stdin='{"hello": 1}')
    assert done.returncode == 2 and "Cannot tell the format" in done.stderr
    done = run("-", "--to", "klingon", stdin='{"model": "m", "messages": []}')
    assert done.returncode == 2 and "`to` must be one of" in done.stderr
