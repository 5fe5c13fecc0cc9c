"""``GET /metrics``: the Prometheus text format, for a scraper holding the token or on an allowed network.

Never public by default: with neither ``GATEWAY_METRICS_TOKEN`` nor ``GATEWAY_METRICS_ALLOW`` set the
endpoint answers 404, as if it did not exist. Otherwise a request passes with the token
(``Authorization: Bearer <token>``, compared in constant time) or from an address inside one of the
allowed networks (the TCP peer's address: no forwarded header is trusted). A wrong or missing token
gets 401 when a token is configured, else 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from functools import cache

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest

from gateway.conf import gateway_settings
from gateway.metrics.multiprocess import forget_dead_processes, multiprocess_directory
from gateway.metrics.sampling import sample
from gateway.proxy.runtime import runtime_for_loop

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def allowed_networks(value: str) -> tuple[Network, ...]:
    """``GATEWAY_METRICS_ALLOW`` parsed (once per value; conf.py has already validated it)."""
    parts = (part.strip() for part in value.split(","))
    return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)


@cache
def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_matches(presented: str, token: str) -> bool:
    """Constant time in the presented value: both sides are hashed to equal lengths first."""
    return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), _token_digest(token))


def _presented_token(request: HttpRequest) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _in_networks(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def refusal(request: HttpRequest) -> HttpResponse | None:
    """The reply refusing this scrape, or None when it may read the metrics."""
    conf = gateway_settings()
    token, networks = conf.metrics_token, allowed_networks(conf.metrics_allow)
    if not token and not networks:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    presented = _presented_token(request)
    if token and presented is not None and token_matches(presented, token):
        return None
    if _in_networks(request.META.get("REMOTE_ADDR"), networks):
        return None
    if token:
        response = HttpResponse("Metrics token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="gateway-metrics"'
        return response
    return HttpResponse("Forbidden\n", status=403, content_type="text/plain")


def _render(directory: str) -> bytes:
    if not directory:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    forget_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def metrics(request: HttpRequest) -> HttpResponse:
    """Every gateway metric, this process's gauges sampled now."""
    refused = refusal(request)
    if refused is not None:
        return refused
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    runtime = runtime_for_loop(asyncio.get_running_loop())
    if runtime is not None:
        sample(runtime)
    directory = multiprocess_directory()
    # The multiprocess collector reads one file per process: off the event loop.
    body = await asyncio.to_thread(_render, directory) if directory else _render(directory)
    # The classic text format (0.0.4), which every Prometheus version and scraper reads; our names and
    # labels need none of the newer format's escaping.
    response = HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
