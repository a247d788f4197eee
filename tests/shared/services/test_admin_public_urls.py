"""Upstream base URLs in the cloud: validate_base_url(public_only=True) and a ConfigService that applies it."""

from pathlib import Path

import pytest

from shared.adapters.crypto import AesGcmCipher
from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
from shared.errors import InvalidRequest
from shared.services.admin import ConfigService, validate_base_url

PRIVATE_URLS = [
    "http://169.254.169.254/latest",
    "http://10.0.0.5:8080/v1",
    "http://192.168.1.20/v1",
    "http://localhost:11434/v1",
    "http://[::1]:8080",
    "http://[::ffff:127.0.0.1]:8080",
    "http://metadata.google.internal",
    "http://ollama.local:11434/v1",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_public_only_refuses_private_addresses_and_internal_names(url: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_base_url(url, public_only=True)
    assert exc.value.code == "invalid_url"
    assert exc.value.param == "baseUrl"
    assert "public" in exc.value.message
    assert "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS" in exc.value.message


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_urls_are_accepted_when_not_public_only(url: str) -> None:
    assert validate_base_url(url, public_only=False) == url


@pytest.mark.parametrize(
    ("url", "cleaned"),
    [
        ("https://api.deepseek.com/v1", "https://api.deepseek.com/v1"),
        (" https://api.deepseek.com/v1/ ", "https://api.deepseek.com/v1"),
        ("https://[2606:4700:4700::1111]/v1", "https://[2606:4700:4700::1111]/v1"),
        ("https://8.8.8.8:8443", "https://8.8.8.8:8443"),
    ],
)
def test_public_urls_pass_public_only(url: str, cleaned: str) -> None:
    assert validate_base_url(url, public_only=True) == cleaned


def test_the_default_is_not_public_only() -> None:
    assert validate_base_url("http://127.0.0.1:1234/v1") == "http://127.0.0.1:1234/v1"


@pytest.fixture
def cloud_admin(table_names: dict[str, str], dynamo_endpoint: str | None, tmp_path: Path):
    store = DynamoConfigStore(bind_config_model(table_names["ConfigTable"], "us-east-1", dynamo_endpoint))
    changes: list[int] = []
    svc = ConfigService(
        store, AesGcmCipher.from_key_file(tmp_path / "k"), on_change=lambda: changes.append(1), public_urls_only=True
    )
    return svc, store, changes


def test_a_public_only_service_stores_nothing_for_a_private_node_url(cloud_admin) -> None:
    svc, store, changes = cloud_admin
    with pytest.raises(InvalidRequest, match="public") as exc:
        svc.create_node({"prefix": "mine", "baseUrl": "http://10.0.0.5:8080/v1"})
    assert exc.value.code == "invalid_url"
    assert store.list_all() == []  # no node and no claimed prefix
    assert changes == []


def test_a_public_only_service_checks_every_base_url_it_writes(cloud_admin) -> None:
    svc, _, changes = cloud_admin
    node = svc.create_node({"prefix": "mine", "baseUrl": "https://llm.example.com/v1"})
    with pytest.raises(InvalidRequest, match="public"):
        svc.update_node(node["id"], {"baseUrl": "http://169.254.169.254/latest"})
    assert svc.list_nodes()[0]["baseUrl"] == "https://llm.example.com/v1"
    with pytest.raises(InvalidRequest, match="public"):
        svc.create_connection({"provider": "groq", "apiKey": "gsk-123456789", "baseUrl": "http://localhost:8080/v1"})
    conn = svc.create_connection({"provider": "groq", "apiKey": "gsk-123456789"})
    with pytest.raises(InvalidRequest, match="public"):
        svc.update_connection(conn["id"], {"baseUrl": "http://[::1]:8080/v1"})
    assert changes == [1, 1]  # the node and the connection that were created, nothing else
