"""Which upstream addresses the cloud gateway may connect to (DESIGN §6): public ones only.

A user-supplied base URL must never let the gateway reach its own network: loopback, private ranges,
link-local (the instance metadata service lives at 169.254.169.254 and fd00:ec2::254), carrier-grade NAT,
multicast or reserved space. "Public" is Python's `is_global`, after unwrapping IPv4 carried in IPv6
(mapped `::ffff:a.b.c.d`, 6to4, NAT64 well-known prefix), so no encoding sneaks a private address through.
Pure functions: the adapters resolve names and call these on every address they would connect to.
"""

from __future__ import annotations

import ipaddress
import re
import socket

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, never global
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible form (::a.b.c.d)
_LEGACY_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.I)
_RESERVED_NAMES = ("localhost", "localhost.localdomain", "metadata.google.internal", "instance-data")
_RESERVED_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _unwrap(ip: IpAddress) -> IpAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for anything else, including garbage."""
    try:
        ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip in _LOCAL_NAT64:
        return False
    return ip.is_global and not ip.is_multicast


def legacy_ipv4(host: str) -> str | None:
    """The dotted-quad form of an IPv4 address written the old ways resolvers still accept (`127.1`,
    `0x7f.0.0.1`, `2130706433`), or None for anything else."""
    if not _LEGACY_V4.match(host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def refused_host(host: str) -> str | None:
    """Why a URL's host is refused before any lookup (an address literal or a name that is never public),
    or None when only resolving it can tell."""
    name = host.strip().strip("[]").rstrip(".").lower()
    name = legacy_ipv4(name) or name
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        if name in _RESERVED_NAMES or name.endswith(_RESERVED_SUFFIXES) or "." not in name:
            return f"{host} is a local or internal name"
        return None
    if not is_public_address(name):
        return f"{host} is not a public address"
    return None
