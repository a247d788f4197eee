"""Format detection for the translator playground, on every golden wire file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.errors import InvalidRequest
from shared.formats.detect import detect

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(p for p in GOLDEN.glob("*/*.json") if ".canonical." not in p.name)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_golden_wire_file_is_recognised(path: Path) -> None:
    kind, fmt = path.name.split(".")[:2]
    assert detect(orjson.loads(path.read_bytes())) == (fmt, kind)


def test_ambiguous_minimal_messages_body_is_read_as_openai() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    assert detect(body) == ("openai", "request")
    assert detect({**body, "system": "x"}) == ("anthropic", "request")


def test_unrecognisable_body_is_a_clear_400() -> None:
    with pytest.raises(InvalidRequest, match="Cannot tell the format"):
        detect({"hello": "world"})
