"""Golden cases: one folder per scenario with the canonical JSON and each wire format's JSON.

A file `<kind>.<format>.json` (kind: request or response) holds both directions exactly:
`parse(file) == canonical` and `render(canonical) == file`. A scenario leaves out the formats that cannot
express it; the fields a format has no place for (listed in LOSSY) are not expected back from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.formats.canonical import request_from_json, response_from_json, to_json
from shared.formats.registry import FORMATS

GOLDEN = Path(__file__).parent / "golden"
LOSSY: dict[tuple[str, str], set[str]] = {
    ("anthropic", "response"): {"created"},  # a Messages response has no timestamp
    ("openai", "response"): {"stop_sequence"},  # finish_reason "stop" does not say which sequence
    ("gemini", "response"): {"created"},  # a generateContent answer has no timestamp
}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases() -> list[Any]:
    cases = []
    for scenario in sorted(p for p in GOLDEN.iterdir() if p.is_dir()):
        for kind in ("request", "response"):
            if not (scenario / f"{kind}.canonical.json").exists():
                continue
            for fmt in sorted(FORMATS):
                if (scenario / f"{kind}.{fmt}.json").exists():
                    cases.append(pytest.param(scenario, kind, fmt, id=f"{scenario.name}-{kind}-{fmt}"))
    return cases


CASES = _cases()


def _canonical(scenario: Path, kind: str) -> Any:
    raw = _load(scenario / f"{kind}.canonical.json")
    return request_from_json(raw) if kind == "request" else response_from_json(raw)


@pytest.mark.parametrize(("scenario", "kind", "fmt"), CASES)
def test_parse_gives_the_canonical_form(scenario: Path, kind: str, fmt: str) -> None:
    canonical = _canonical(scenario, kind)
    wire = _load(scenario / f"{kind}.{fmt}.json")
    parse = FORMATS[fmt].parse_request if kind == "request" else FORMATS[fmt].parse_response
    expected = {k: v for k, v in to_json(canonical).items() if k not in LOSSY.get((fmt, kind), set())}
    # Gemini carries the model in the URL path, which the gateway hands to the parser
    model = canonical.model if fmt == "gemini" and kind == "request" else None
    assert to_json(parse(wire, model=model)) == expected


@pytest.mark.parametrize(("scenario", "kind", "fmt"), CASES)
def test_render_gives_the_wire_form(scenario: Path, kind: str, fmt: str) -> None:
    canonical = _canonical(scenario, kind)
    render = FORMATS[fmt].render_request if kind == "request" else FORMATS[fmt].render_response
    assert render(canonical) == _load(scenario / f"{kind}.{fmt}.json")


def test_every_scenario_is_checked_in_two_formats_or_says_why() -> None:
    """A scenario only one format can express is named after that format."""
    for scenario in (p for p in GOLDEN.iterdir() if p.is_dir()):
        formats = {p.name.split(".")[1] for p in scenario.glob("*.json")} - {"canonical"}
        assert len(formats) >= 2 or scenario.name.startswith(tuple(formats)), scenario.name


def test_canonical_json_round_trips() -> None:
    for path in GOLDEN.glob("*/*.canonical.json"):
        raw = _load(path)
        value = request_from_json(raw) if path.name.startswith("request") else response_from_json(raw)
        assert to_json(value) == {k: v for k, v in raw.items() if v is not None}, path
