"""The local credential key is never silently replaced while anything stored was sealed with it."""

from pathlib import Path

import pytest

from companion.local import StartupError, open_cipher
from shared.domain.config import Kind, Record


def record(kind: str, data: dict) -> Record:
    return Record(kind=kind, id="conn_1", data=data, version=1, updated_at="2026-11-22T00:00:00+00:00")


@pytest.mark.parametrize(
    "stored",
    [
        record(Kind.PROVIDER, {"provider": "groq", "apiKey": "sealed"}),
        record(Kind.OAUTH, {"provider": "claude", "secret": "sealed"}),
    ],
)
def test_a_missing_key_file_stops_the_start_when_secrets_were_sealed_with_it(tmp_path: Path, stored: Record) -> None:
    with pytest.raises(StartupError, match=r"--relink"):
        open_cipher(tmp_path, [stored], new_key=False)
    assert not (tmp_path / "secret.key").exists()
    open_cipher(tmp_path, [stored], new_key=True)  # the owner's explicit choice
    assert (tmp_path / "secret.key").exists()


def test_nothing_sealed_means_a_new_key_is_made(tmp_path: Path) -> None:
    open_cipher(tmp_path, [record(Kind.PROVIDER, {"provider": "ollama"})], new_key=False)
    assert (tmp_path / "secret.key").exists()
