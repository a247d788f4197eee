"""Settings.from_env: what running in Lambda changes, and what stays a local default."""

from pathlib import Path

import pytest

from shared.settings import Settings

LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "omniroute-gateway", "AWS_REGION": "eu-west-1"}
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0e6b4b4e-1111-2222-3333-444455556666"


def test_inside_lambda_the_cloud_defaults_apply() -> None:
    s = Settings.from_env({**LAMBDA, "OMNIROUTE_KMS_KEY_ID": KEY_ARN})
    assert s.cloud is True
    assert s.require_api_key is True
    assert s.config_ttl == 30.0
    assert s.config_max_stale == 3600.0
    assert s.allow_private_upstreams is False
    assert s.kms_key_id == KEY_ARN
    assert s.region == "eu-west-1"


def test_in_the_cloud_api_keys_cannot_be_switched_off() -> None:
    assert Settings.from_env({**LAMBDA, "OMNIROUTE_REQUIRE_API_KEY": "false"}).require_api_key is True


@pytest.mark.parametrize(
    ("raw", "allowed"), [("true", True), ("1", True), ("yes", True), ("false", False), ("", False)]
)
def test_private_upstreams_in_the_cloud_only_when_asked_for(raw: str, allowed: bool) -> None:
    assert Settings.from_env({**LAMBDA, "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS": raw}).allow_private_upstreams is allowed


def test_omniroute_cloud_flag_also_means_cloud() -> None:
    s = Settings.from_env({"OMNIROUTE_CLOUD": "true"})
    assert s.cloud is True and s.require_api_key is True and s.config_ttl == 30.0
    assert Settings.from_env({"OMNIROUTE_CLOUD": "false"}).cloud is False


def test_the_cloud_ttl_and_staleness_are_tunable() -> None:
    s = Settings.from_env({**LAMBDA, "OMNIROUTE_CONFIG_TTL": "5", "OMNIROUTE_CONFIG_MAX_STALE": "60"})
    assert s.config_ttl == 5.0 and s.config_max_stale == 60.0


def test_locally_the_copy_never_expires_and_private_upstreams_are_fine(tmp_path: Path) -> None:
    s = Settings.from_env({"OMNIROUTE_CONFIG_TTL": "5", "OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert s.cloud is False
    assert s.config_ttl is None  # the admin API shares the process and invalidates the copy itself
    assert s.allow_private_upstreams is True
    assert s.require_api_key is False
    assert s.kms_key_id is None
    assert s.data_dir == tmp_path


def test_locally_the_flags_still_apply() -> None:
    s = Settings.from_env({"OMNIROUTE_REQUIRE_API_KEY": "true", "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS": "false"})
    assert s.require_api_key is True
    assert s.allow_private_upstreams is False


def test_a_malformed_number_names_its_variable() -> None:
    with pytest.raises(ValueError, match="OMNIROUTE_CONFIG_TTL must be a number, got 'soon'"):
        Settings.from_env({**LAMBDA, "OMNIROUTE_CONFIG_TTL": "soon"})
