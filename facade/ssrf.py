"""Where callbacks may go: an allowlist checked before any connection or name lookup.

A callback URL is user input that makes the facade send a request, the classic server-side
request forgery. The rules, in order: http or https only, no credentials in the URL; link-local
addresses and cloud metadata endpoints are refused always; the host must be on the allowlist
(hostnames exactly, IP addresses exactly or by CIDR entry) — a host that is not is refused
without a DNS lookup; private and loopback IP literals pass only when the allowlist names them;
an allowlisted hostname is resolved (no connection) and refused if it points at link-local or
metadata addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from btcforecast.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
Resolver = Callable[[str], list[str]]


class UnsafeCallbackURL(InputError):
    """A callback URL the facade will not call; the message says which rule refused it (403)."""


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _forbidden_address(ip: IPAddress) -> str | None:
    """Why an address is never acceptable, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _forbidden_address(ip.ipv4_mapped)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not a unicast address"
    return None


class Allowlist:
    """Hostnames and IPs/CIDRs callbacks may go to."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().strip("[]").rstrip(".")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry)

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.networks)

    def allows_host(self, host: str) -> bool:
        return host in self.hosts


def _system_resolver(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def check_callback_url(url: str, allowlist: Allowlist, resolver: Resolver | None = None) -> str:
    """Return ``url`` if callbacks may go there; raise UnsafeCallbackURL naming the rule otherwise.

    ``resolver`` (name -> addresses) is called only for allowlisted hostnames; it looks names up
    without connecting.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeCallbackURL(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise UnsafeCallbackURL(f"callback_url is not a valid URL: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise UnsafeCallbackURL(f"callback_url scheme {parts.scheme or '(none)'!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeCallbackURL("callback_url must not carry credentials")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UnsafeCallbackURL("callback_url has no host")
    if port == 0:
        raise UnsafeCallbackURL("callback_url port 0 is not a port")
    ip = _ip(host)
    if ip is not None:
        reason = _forbidden_address(ip)
        if reason:
            raise UnsafeCallbackURL(f"callback host {host} is {reason}")
        if not (allowlist.allows_ip(ip) or allowlist.allows_host(str(ip))):
            kind = "a private address" if ip.is_private or ip.is_loopback else "an address"
            raise UnsafeCallbackURL(f"callback host {host} is {kind} not on the callback allowlist")
        return url
    if host in METADATA_HOSTS or host.endswith(".internal"):
        raise UnsafeCallbackURL(f"callback host {host} is a cloud metadata name")
    if not allowlist.allows_host(host):
        raise UnsafeCallbackURL(f"callback host {host!r} is not on the callback allowlist")
    try:
        addresses = (resolver or _system_resolver)(host)
    except OSError as e:
        raise UnsafeCallbackURL(f"callback host {host!r} does not resolve: {e}") from e
    for address in addresses:
        resolved = _ip(address.split("%")[0])
        if resolved is not None and (reason := _forbidden_address(resolved)):
            raise UnsafeCallbackURL(f"callback host {host!r} resolves to {address}, {reason}")
    return url
