"""KmsCipher against moto's KMS: format, encryption context binding, error classification and the decrypt cache;
and build_snapshot telling a credential that no longer opens from a KMS that cannot be reached."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session
import pytest
from moto import mock_aws

from shared.adapters.kms import KmsCipher
from shared.domain.config import Kind, Record
from shared.errors import InvalidRequest
from shared.ports import DecryptionFailed
from shared.services.snapshot import build_snapshot, secret_context
from tests.fakes.server import free_port

REGION = "us-east-1"
ALIAS = "alias/omniroute-test"
CTX_A = secret_context(Kind.PROVIDER, "conn_a")
CTX_B = secret_context(Kind.PROVIDER, "conn_b")


@dataclass
class Kms:
    client: Any
    key_id: str
    decrypt_calls: list[dict[str, Any]]

    def cipher(self, key_id: str | None = None, **kwargs: Any) -> KmsCipher:
        return KmsCipher(key_id or self.key_id, REGION, client=self.client, **kwargs)


@pytest.fixture
def kms() -> Iterator[Kms]:
    with mock_aws():
        client = botocore.session.get_session().create_client("kms", region_name=REGION)
        key_id = client.create_key(Description="omniroute test")["KeyMetadata"]["KeyId"]
        client.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
        calls: list[dict[str, Any]] = []
        # Observes (does not replace) every Decrypt request the real client sends to moto.
        client.meta.events.register("provide-client-params.kms.Decrypt", lambda params, **_: calls.append(params))
        yield Kms(client, key_id, calls)


def test_round_trip_with_the_versioned_prefix(kms: Kms) -> None:
    ct = kms.cipher().encrypt("sk-secret-0123456789", CTX_A)
    assert ct.startswith("kms:v1:")
    assert "sk-secret" not in ct
    assert kms.cipher().decrypt(ct, dict(reversed(CTX_A.items()))) == "sk-secret-0123456789"  # order is irrelevant


def test_the_ciphertext_is_a_kms_blob_bound_to_the_app_and_the_record(kms: Kms) -> None:
    ct = kms.cipher().encrypt("sk-secret", CTX_A)
    blob = base64.urlsafe_b64decode(ct.removeprefix("kms:v1:"))
    full_context = {"app": "omniroute-edge", **CTX_A}
    assert kms.client.decrypt(CiphertextBlob=blob, EncryptionContext=full_context)["Plaintext"] == b"sk-secret"
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidCiphertextException"):
        kms.client.decrypt(CiphertextBlob=blob, EncryptionContext=CTX_A)  # without the app entry


def test_a_ciphertext_moved_to_another_record_does_not_decrypt(kms: Kms) -> None:
    cipher = kms.cipher()
    ct = cipher.encrypt("sk-secret", CTX_A)  # also cached for CTX_A: the cache must not answer for CTX_B
    with pytest.raises(DecryptionFailed, match="InvalidCiphertextException"):
        cipher.decrypt(ct, CTX_B)
    with pytest.raises(DecryptionFailed):
        kms.cipher().decrypt(ct, secret_context(Kind.NODE, "conn_a"))  # same id, another kind


@pytest.mark.parametrize(
    "ciphertext",
    [
        "kms:v1:",
        "kms:v1:AAAA",  # decodes, but is no KMS blob
        "kms:v1:abc",  # not base64 (bad padding)
        "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAA",  # the local key-file format
        "sk-plaintext-left-in-the-store",
        "",
    ],
)
def test_garbage_and_foreign_formats_fail_as_decryption_failures(kms: Kms, ciphertext: str) -> None:
    with pytest.raises(DecryptionFailed):
        kms.cipher().decrypt(ciphertext, CTX_A)


@pytest.mark.parametrize(
    "ciphertext",
    [
        "kms:v1:",
        "kms:v1:!!!!",  # the lenient base64 decoder drops every character: an empty blob
        "kms:v1:" + base64.urlsafe_b64encode(b"\x00" * 6145).decode(),
    ],
)
def test_a_blob_kms_would_reject_as_invalid_input_fails_without_asking_kms(kms: Kms, ciphertext: str) -> None:
    # Real KMS answers ValidationException for an empty or over-6144-byte CiphertextBlob; re-raised, that
    # would make one corrupt record fail every configuration reload instead of marking its connection.
    with pytest.raises(DecryptionFailed, match="malformed"):
        kms.cipher().decrypt(ciphertext, CTX_A)
    assert kms.decrypt_calls == []


def test_plaintext_over_4096_bytes_is_refused_before_kms(kms: Kms) -> None:
    cipher = kms.cipher()
    assert cipher.decrypt(cipher.encrypt("x" * 4096, CTX_A), CTX_A) == "x" * 4096
    for too_big in ("x" * 4097, "é" * 2049):  # the limit is in UTF-8 bytes, not characters
        with pytest.raises(InvalidRequest) as exc:
            cipher.encrypt(too_big, CTX_A)
        assert exc.value.code == "secret_too_large"


def test_decrypts_are_cached_per_ciphertext_and_context(kms: Kms) -> None:
    ct = kms.cipher().encrypt("sk-secret", CTX_A)
    cipher = kms.cipher()
    assert [cipher.decrypt(ct, CTX_A) for _ in range(3)] == ["sk-secret"] * 3
    assert len(kms.decrypt_calls) == 1


def test_the_cache_forgets_the_least_recently_used_entry(kms: Kms) -> None:
    writer = kms.cipher()
    ct_a, ct_b = writer.encrypt("a", CTX_A), writer.encrypt("b", CTX_B)
    cipher = kms.cipher(cache_size=1)
    cipher.decrypt(ct_a, CTX_A)
    cipher.decrypt(ct_b, CTX_B)  # evicts ct_a
    cipher.decrypt(ct_b, CTX_B)
    assert len(kms.decrypt_calls) == 2
    assert cipher.decrypt(ct_a, CTX_A) == "a"
    assert len(kms.decrypt_calls) == 3


def test_a_kms_failure_is_not_blamed_on_the_credential_and_cached_values_survive_it(kms: Kms) -> None:
    # The cloud cipher is addressed by alias; once the alias is gone KMS answers NotFoundException, a
    # failure of the key's set-up (like a disabled key), not of the stored ciphertext.
    # (moto ignores `disable_key` on Decrypt, so the alias is how this test makes KMS refuse.)
    writer = kms.cipher(ALIAS)
    known, unseen = writer.encrypt("known", CTX_A), writer.encrypt("unseen", CTX_B)
    cipher = kms.cipher(ALIAS)
    assert cipher.decrypt(known, CTX_A) == "known"
    kms.client.delete_alias(AliasName=ALIAS)

    assert cipher.decrypt(known, CTX_A) == "known"  # from the cache, no KMS call
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        cipher.decrypt(unseen, CTX_B)
    assert not isinstance(exc.value, DecryptionFailed)
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    assert len(kms.decrypt_calls) == 2


def test_an_unreachable_kms_is_not_a_decryption_failure() -> None:
    config = botocore.config.Config(connect_timeout=2, retries={"total_max_attempts": 1})
    client = botocore.session.get_session().create_client(
        "kms", region_name=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", config=config
    )
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        KmsCipher("any-key", REGION, client=client).decrypt("kms:v1:AAAA", CTX_A)


# ----- build_snapshot with KMS ----------------------------------------------------------------------------


def provider_record(id: str, api_key: str) -> Record:
    return Record(Kind.PROVIDER, id, {"provider": "groq", "apiKey": api_key, "name": id}, 1, "t")


def test_snapshot_marks_a_ciphertext_moved_to_another_record_as_a_credential_error(
    kms: Kms, caplog: pytest.LogCaptureFixture
) -> None:
    ct_a = kms.cipher().encrypt("gsk-key-of-a", CTX_A)
    records = [provider_record("conn_a", ct_a), provider_record("conn_b", ct_a)]  # b got a copy of a's secret
    with caplog.at_level(logging.ERROR, logger="shared.services.snapshot"):
        snap = build_snapshot(records, kms.cipher())
    by_id = {c.id: c for c in snap.connections}
    assert by_id["conn_a"].api_key == "gsk-key-of-a" and not by_id["conn_a"].credential_error
    assert by_id["conn_b"].api_key is None and by_id["conn_b"].credential_error
    assert "conn_b" in caplog.text and "gsk-key-of-a" not in caplog.text


def test_snapshot_build_fails_rather_than_mark_credentials_when_kms_is_down(kms: Kms) -> None:
    records = [provider_record("conn_a", kms.cipher(ALIAS).encrypt("gsk-key-of-a", CTX_A))]
    kms.client.delete_alias(AliasName=ALIAS)
    with pytest.raises(botocore.exceptions.ClientError):  # ConfigCache then keeps its previous snapshot
        build_snapshot(records, kms.cipher(ALIAS))
