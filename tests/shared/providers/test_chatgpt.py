"""Reading a ChatGPT token's account: one reader for the quota poll, the Codex executor, linking and refresh."""

import base64

import orjson

from shared.providers.chatgpt import AUTH_CLAIM, PROFILE_CLAIM, account_id, identity, jwt_claims


def jwt(claims: object) -> str:
    body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2ln"


def test_identity_names_account_plan_and_email_from_either_place() -> None:
    auth = {AUTH_CLAIM: {"chatgpt_account_id": "acct-1", "chatgpt_plan_type": "pro"}}
    assert identity({**auth, "email": "a@example.com"}) == {
        "accountId": "acct-1",
        "plan": "pro",
        "email": "a@example.com",
    }
    assert identity({**auth, PROFILE_CLAIM: {"email": "b@example.com"}})["email"] == "b@example.com"
    assert identity({AUTH_CLAIM: {"chatgpt_account_id": 42}}) == {}
    assert account_id(jwt(auth)) == "acct-1"


def test_anything_but_a_jwt_with_an_object_payload_names_no_account() -> None:
    for token in (None, "", "opaque-token", "a.b", "a.!!!.c", jwt([1, 2]), jwt("text")):
        assert jwt_claims(token) is None and account_id(token) is None
