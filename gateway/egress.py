"""Which network addresses the gateway may connect to for a target's upstream: the SSRF policy.

An upstream URL is configured by an admin, but it (or the DNS behind it) can point the gateway at what
it must never reach for an agent: cloud metadata, link-local services, its own loopback, private
networks. Every address is judged by :meth:`EgressPolicy.refusal`:

- never: unspecified (``0.0.0.0``, ``::``), link-local (``169.254.0.0/16``, which holds the cloud
  metadata address ``169.254.169.254``, and ``fe80::/10``), multicast, and the metadata addresses
  outside it (``fd00:ec2::254``, ``100.100.100.200``), whatever the configuration says;
- loopback (``127.0.0.0/8``, ``::1``): only with DEBUG on, or inside ``GATEWAY_UPSTREAM_ALLOW``;
- private and other special-purpose ranges (RFC 1918, ``100.64.0.0/10``, ``fc00::/7``, reserved):
  only inside a network of ``GATEWAY_UPSTREAM_ALLOW``, or for a host matching one of its host globs;
- any other (public) address: allowed.

An IPv4 address written inside IPv6 (``::ffff:10.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4) is judged as
that IPv4 address. URLs are checked when a target is saved (the host resolved then) and again on every
new connection against the addresses DNS gives at that moment (:class:`PolicyResolver`), so a name
that later resolves elsewhere (DNS rebinding) is refused too.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import SplitResult, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(OSError):
    """An upstream address the policy refuses; the message names the address and why."""


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """Where to send a request so that it reaches the address that was judged (EgressPolicy.pinned)."""

    url: str
    host_header: str
    extensions: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The networks and host globs an admin allowed beyond the public internet, and DEBUG's loopback."""

    networks: tuple[IPNetwork, ...] = ()
    host_globs: tuple[str, ...] = ()
    allow_loopback: bool = False

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``address`` (which ``host`` resolved to) may not be reached, or None."""
        address = _embedded_ipv4(address)
        if address in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if address.is_unspecified or address.is_link_local or address.is_multicast:
            return f"{address} is unspecified, link-local or multicast"
        if any(address in network for network in self.networks):
            return None
        if address.is_loopback:
            return (
                None if self.allow_loopback else f"{address} is loopback (allow it in GATEWAY_UPSTREAM_ALLOW)"
            )
        if address.is_global:
            return None
        if self._host_allowed(host):
            return None
        return f"{address} is a private or reserved address (allow it in GATEWAY_UPSTREAM_ALLOW)"

    def _host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, glob) for glob in self.host_globs)

    def check_url(self, url: str) -> None:
        """Raise EgressRefused unless every address ``url``'s host resolves to now is allowed (blocking).

        A host that does not resolve yet is accepted: it is judged when the gateway connects.
        """
        self._judged_addresses(url, noun="upstream host")

    def _judged_addresses(self, url: str, *, noun: str) -> tuple[SplitResult, str, int, list[IPAddress]]:
        """``url``'s parts, host name and port, and the addresses its host resolves to now, each of them
        allowed (blocking); EgressRefused for a URL that is not http(s) or the first address refused."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise EgressRefused(f"{url!r} is not an http(s) URL with a host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = _resolve(host, port)
        for address in addresses:
            reason = self.refusal(host, address)
            if reason is not None:
                raise EgressRefused(f"{noun} {host!r} refused: {reason}")
        return parts, host, port, addresses

    def pinned(self, url: str) -> PinnedRequest:
        """``url`` resolved once, every address judged, and rewritten to connect to the first one: the
        host name stays in the Host header and, for https, in SNI and the certificate check, so DNS
        cannot send the connection elsewhere after the check (blocking; EgressRefused when the host
        does not resolve or any address is refused). For httpx2 requests of our own (JWKS, webhooks,
        client metadata documents); the proxy's aiohttp client judges at connect with PolicyResolver.
        """
        parts, host, port, addresses = self._judged_addresses(url, noun="host")
        if not addresses:
            raise EgressRefused(f"host {host!r} does not resolve")
        shown = f"[{addresses[0]}]" if addresses[0].version == 6 else str(addresses[0])
        netloc = f"{shown}:{port}"
        pinned_url = parts._replace(netloc=netloc, fragment="").geturl()
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return PinnedRequest(
            url=pinned_url, host_header=parts.netloc.rpartition("@")[2], extensions=extensions
        )

    def literal_refusal(self, url: str) -> str | None:
        """Why the IP address ``url`` writes out may not be reached; None when allowed or a host name."""
        host = urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        return self.refusal(host, address)


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def parse_allow(value: str) -> tuple[tuple[IPNetwork, ...], tuple[str, ...]]:
    """``GATEWAY_UPSTREAM_ALLOW``: comma-separated CIDRs (``10.0.0.0/8``) and host globs
    (``*.svc.cluster.local``); raise ValueError naming an entry that is neither."""
    networks: list[IPNetwork] = []
    globs: list[str] = []
    for entry in (item.strip() for item in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if "/" in entry or ":" in entry or " " in entry:
            raise ValueError(f"{entry!r} is neither a network (CIDR) nor a host glob")
        globs.append(entry.lower().rstrip("."))
    return tuple(networks), tuple(globs)


@cache
def egress_policy() -> EgressPolicy:
    """The process's policy, from ``GATEWAY_UPSTREAM_ALLOW`` and DEBUG, built once."""
    from gateway.conf import gateway_settings

    networks, globs = parse_allow(gateway_settings().upstream_allow)
    return EgressPolicy(networks, globs, allow_loopback=bool(settings.DEBUG))


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the policy allows; none left: EgressRefused."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed, reasons = _judged(self.policy, host, results)
        if not allowed:
            raise EgressRefused(f"upstream host {host!r} refused: {'; '.join(reasons)}")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def _judged(policy: EgressPolicy, host: str, results: Iterable[ResolveResult]) -> tuple[list[Any], list[str]]:
    allowed: list[Any] = []
    reasons: list[str] = []
    for result in results:
        reason = policy.refusal(host, ipaddress.ip_address(str(result["host"]).split("%", 1)[0]))
        if reason is None:
            allowed.append(result)
        else:
            reasons.append(reason)
    return allowed, reasons
