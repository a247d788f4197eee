import stat
from pathlib import Path

import pytest

from shared.adapters.crypto import AesGcmCipher, CipherError


def test_round_trip_and_fresh_nonce(tmp_path: Path) -> None:
    c = AesGcmCipher.from_key_file(tmp_path / "k")
    a = c.encrypt("sk-secret", {"kind": "provider", "id": "1"})
    b = c.encrypt("sk-secret", {"kind": "provider", "id": "1"})
    assert a != b and "sk-secret" not in a
    assert c.decrypt(a, {"id": "1", "kind": "provider"}) == "sk-secret"


def test_ciphertext_moved_to_another_record_does_not_decrypt(tmp_path: Path) -> None:
    c = AesGcmCipher.from_key_file(tmp_path / "k")
    ct = c.encrypt("sk-secret", {"kind": "provider", "id": "1"})
    with pytest.raises(CipherError):
        c.decrypt(ct, {"kind": "provider", "id": "2"})


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "k"
    ct = AesGcmCipher.from_key_file(path).encrypt("x", {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert AesGcmCipher.from_key_file(path).decrypt(ct, {}) == "x"
    with pytest.raises(CipherError):
        AesGcmCipher.from_key_file(tmp_path / "other").decrypt(ct, {})
