"""The public-only upstream rule: which addresses and host names the cloud gateway may connect to."""

import pytest

from shared.domain.netguard import is_public_address, refused_host

PUBLIC = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]

NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "127.1.2.3",
    "::1",
    "10.0.0.5",  # private
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # link-local: the EC2 instance metadata service
    "fd00:ec2::254",  # the metadata service over IPv6 (unique local)
    "fe80::1",
    "fe80::1%eth0",  # link-local with a zone id
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "::",
    "224.0.0.1",  # multicast
    "ff02::1",
    "255.255.255.255",
    "::ffff:127.0.0.1",  # IPv4-mapped IPv6
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix wrapping 169.254.169.254
    "64:ff9b::7f00:1",
    "::7f00:1",  # deprecated IPv4-compatible form of 127.0.0.1
    "::a9fe:a9fe",
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215)
]

GARBAGE = ["", "localhost", "not an address", "256.1.1.1", "1.2.3", "::g", "8.8.8.8 ", "[::1]", "%eth0"]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address) is True


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_internal_and_wrapped_internal_addresses_are_refused(address: str) -> None:
    assert is_public_address(address) is False


@pytest.mark.parametrize("address", GARBAGE)
def test_anything_that_is_not_an_address_is_refused(address: str) -> None:
    assert is_public_address(address) is False


@pytest.mark.parametrize(
    "host",
    ["api.openai.com", "generativelanguage.googleapis.com", "8.8.8.8", "[2606:4700:4700::1111]", "API.OpenAI.com."],
)
def test_public_literals_and_ordinary_names_are_left_to_resolution(host: str) -> None:
    assert refused_host(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "foo.localhost",
        "metadata.google.internal",
        "instance-data",
        "x.internal",
        "printer.local",
        "nas.lan",
        "router",  # a single label only means something on a local network
    ],
)
def test_local_and_internal_names_are_refused(host: str) -> None:
    reason = refused_host(host)
    assert reason is not None
    assert host in reason and "local or internal name" in reason


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "::1",
        "10.0.0.5",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "[fe80::1%eth0]",
        "127.1",  # the short and numeric IPv4 forms resolvers still accept
        "0x7f.0.0.1",
        "2130706433",
        "0251.0376.0251.0376",  # octal 169.254.169.254
    ],
)
def test_internal_address_literals_are_refused(host: str) -> None:
    reason = refused_host(host)
    assert reason is not None
    assert host in reason and "not a public address" in reason
