"""The cloud composition root: refuses an incomplete environment, and wires the public-only guard."""

import pytest

from shared.cloud import CloudConfigError, build_cloud_services, cloud_settings
from shared.errors import InvalidRequest, UpstreamFailed
from tests.fakes.server import free_port

KEY = "0e6b4b4e-1111-2222-3333-444455556666"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OMNIROUTE_KMS_KEY_ID": KEY},  # a key, but not in Lambda
        {"OMNIROUTE_CLOUD": "false", "OMNIROUTE_KMS_KEY_ID": KEY},
    ],
)
def test_outside_lambda_there_are_no_cloud_settings(env: dict[str, str]) -> None:
    with pytest.raises(CloudConfigError, match="AWS_LAMBDA_FUNCTION_NAME"):
        cloud_settings(env)


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_LAMBDA_FUNCTION_NAME": "gw"},
        {"AWS_LAMBDA_FUNCTION_NAME": "gw", "OMNIROUTE_KMS_KEY_ID": ""},
        {"OMNIROUTE_CLOUD": "true"},
    ],
)
def test_the_cloud_needs_a_kms_key(env: dict[str, str]) -> None:
    with pytest.raises(CloudConfigError, match="OMNIROUTE_KMS_KEY_ID"):
        cloud_settings(env)


@pytest.mark.parametrize("env", [{"AWS_LAMBDA_FUNCTION_NAME": "gw"}, {"OMNIROUTE_CLOUD": "1"}])
def test_a_complete_cloud_environment(env: dict[str, str]) -> None:
    settings = cloud_settings({**env, "OMNIROUTE_KMS_KEY_ID": KEY})
    assert settings.cloud and settings.kms_key_id == KEY and not settings.allow_private_upstreams


@pytest.mark.anyio
async def test_cloud_services_refuse_private_upstreams_in_admin_and_gateway() -> None:
    services = build_cloud_services(cloud_settings({"AWS_LAMBDA_FUNCTION_NAME": "gw", "OMNIROUTE_KMS_KEY_ID": KEY}))
    try:
        with pytest.raises(InvalidRequest, match="public"):  # refused before the store is touched
            services.admin.create_node({"prefix": "mine", "baseUrl": "http://10.0.0.5:8080/v1"})
        with pytest.raises(UpstreamFailed) as exc:
            await services.upstream.send("GET", f"http://127.0.0.1:{free_port()}/v1/models", {}, b"", stream=False)
        assert exc.value.code == "upstream_address_refused"
    finally:
        await services.aclose()
