"""Key policy: when keys are required, where they are read from, and the browser-origin guard."""

import pytest

from shared.errors import PermissionDenied
from shared.services.auth import guard_browser_origin, presented_key, require_api_key


@pytest.mark.parametrize(
    ("setting", "env_default", "cloud", "expected"),
    [
        (None, False, False, False),
        (True, False, False, True),
        (False, False, False, False),
        (False, True, False, True),  # the environment is a floor the stored setting cannot lower
        (None, True, False, True),
        (False, False, True, True),  # always in the cloud
    ],
)
def test_require_api_key(setting: bool | None, env_default: bool, cloud: bool, expected: bool) -> None:
    assert require_api_key(setting, default=env_default, cloud=cloud) is expected


def test_presented_key_sources() -> None:
    assert presented_key({"authorization": "Bearer  abc "}) == "abc"
    assert presented_key({"authorization": "Basic abc", "x-api-key": "k2"}) == "k2"
    assert presented_key({"x-goog-api-key": "g"}) == "g"
    assert presented_key({}, "q") == "q"
    assert presented_key({"authorization": "Bearer "}) is None


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1", "http://[::1]:8080"])
def test_local_origins_pass(origin: str) -> None:
    guard_browser_origin(origin, required=False)


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost.evil.example", "garbage"])
def test_foreign_origins_need_a_key(origin: str) -> None:
    with pytest.raises(PermissionDenied):
        guard_browser_origin(origin, required=False)
    guard_browser_origin(origin, required=True)  # with keys required, the key check decides
