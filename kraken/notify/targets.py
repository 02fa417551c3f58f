"""Where notifications may go: users write the URLs (stage code), so the server must not become
their probe of its own neighbourhood (blind SSRF). An address in ``KRAKEN_NOTIFY_DENY_NETWORKS``
(loopback, link-local with the cloud metadata service, "this network" by default) is refused
unless it is also in ``KRAKEN_NOTIFY_ALLOW_NETWORKS``. A name is resolved once, every address
it gives is checked, and the connection goes to the checked address (no DNS rebinding between
the check and the request)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_DENY = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128"]


class TargetRefused(Exception):
    pass


def networks(values: Sequence[str]) -> list[IPNetwork]:
    """Parsed networks; ValueError naming the first bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network: {value!r} ({exc})") from None
    return out


def allowed(address: IPAddress, deny: Sequence[str], allow: Sequence[str]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)  # ::ffff:127.0.0.1 is 127.0.0.1
    for ip in candidates:
        if any(ip in net for net in networks(deny)) and not any(ip in net for net in networks(allow)):
            return False
    return True


async def resolve_checked(host: str, port: int, deny: Sequence[str], allow: Sequence[str]) -> IPAddress:
    """The address to connect to for ``host``; TargetRefused when any of its addresses is denied."""
    try:
        found = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TargetRefused(f"cannot resolve {host!r}: {exc}") from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise TargetRefused(f"{host!r} has no address")
    for address in found:
        if not allowed(address, deny, allow):
            raise TargetRefused(
                f"{host} ({address}) is in a network notifications may not reach "
                "(KRAKEN_NOTIFY_DENY_NETWORKS; allow it with KRAKEN_NOTIFY_ALLOW_NETWORKS)"
            )
    return found[0]
