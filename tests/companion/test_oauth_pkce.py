"""PKCE verifiers and challenges (RFC 7636) and login state values."""

from __future__ import annotations

import base64
import hashlib

import pytest

from companion.oauth.pkce import VERIFIER_RE, challenge_for, new_pkce, new_state


def test_the_rfc_7636_example_verifier_gives_its_published_challenge() -> None:
    # RFC 7636 Appendix B
    assert challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize("random_bytes", [32, 64, 96])
def test_verifiers_are_43_to_128_unreserved_characters_with_their_s256_challenge(random_bytes: int) -> None:
    pkce = new_pkce(random_bytes)
    assert 43 <= len(pkce.verifier) <= 128 and VERIFIER_RE.match(pkce.verifier)
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pkce.method == "S256" and "=" not in pkce.challenge


def test_every_login_gets_a_fresh_verifier_and_state() -> None:
    assert len({new_pkce().verifier for _ in range(50)}) == 50
    states = {new_state() for _ in range(50)}
    assert len(states) == 50 and all(len(s) >= 22 for s in states)


@pytest.mark.parametrize("bad", ["short", "x" * 129, "has space" + "a" * 40, "plus+" + "a" * 40])
def test_a_verifier_outside_the_rfc_alphabet_or_length_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="43 to 128"):
        challenge_for(bad)


@pytest.mark.parametrize("random_bytes", [31, 97])
def test_too_little_or_too_much_randomness_is_refused(random_bytes: int) -> None:
    with pytest.raises(ValueError, match="32 to 96 random bytes"):
        new_pkce(random_bytes)


def test_the_verifier_never_shows_in_a_repr() -> None:
    pkce = new_pkce()
    assert pkce.verifier not in repr(pkce) and pkce.challenge in repr(pkce)
