import stat
from pathlib import Path

import pytest

from shared.adapters.crypto import AesGcmCipher, CipherError, KeyFileError
from shared.ports import DecryptionFailed


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


@pytest.mark.parametrize("content", [b"", b"not base64 !!", b"AAAA", b"QUFBQUFBQUFBQUFBQUFBQQ=="])
def test_a_key_file_that_is_not_a_key_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match=str(path)):
        AesGcmCipher.from_key_file(path)


@pytest.mark.parametrize("ciphertext", ["enc:v1:abc", "enc:v1:", "enc:v1:!!!!", "plain-text"])
def test_malformed_ciphertext_is_a_decryption_failure(tmp_path: Path, ciphertext: str) -> None:
    with pytest.raises(DecryptionFailed):
        AesGcmCipher.from_key_file(tmp_path / "k").decrypt(ciphertext, {})
