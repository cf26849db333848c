"""Where a webhook endpoint may point: http(s) only, and in production never at this
machine or a private network (the app must not be made to probe its own neighbours).
WEBHOOKS_ALLOW_PRIVATE_URLS turns the address check off (development, tests)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL = 2000


class BadURL(ValueError):
    pass


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadURL(f"The host {host!r} cannot be found ({exc}).") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried in IPv6 (mapped, 6to4, NAT64) is judged as that IPv4 address.
        if address.ipv4_mapped:
            address = address.ipv4_mapped
        elif address.sixtofour:
            address = address.sixtofour
        elif address in NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.is_global and not address.is_multicast


def check(url: str, allow_private: bool, resolve: bool = True) -> str:
    """The URL, trimmed, or BadURL saying why it cannot be an endpoint."""
    url = (url or "").strip()
    if not url:
        raise BadURL("Give the endpoint's URL.")
    if len(url) > MAX_URL or "\x00" in url or any(c.isspace() for c in url):
        raise BadURL("That URL is too long or holds spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadURL("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise BadURL("The URL names no host.")
    if parts.username or parts.password:
        raise BadURL("Put no user name or password in the URL; deliveries are signed instead.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadURL("The URL's port is not a number from 1 to 65535.") from None
    if allow_private or not resolve:
        return url
    for address in _addresses(parts.hostname, port):
        if not public_address(address):
            raise BadURL(
                f"The URL points at {address}, a loopback, private or reserved address: "
                "endpoints must be reachable on the public internet."
            )
    return url
