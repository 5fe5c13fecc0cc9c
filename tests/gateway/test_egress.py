"""The upstream address policy (SSRF): what a target may point at, judged when saved and on connect."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from audit.models import AuditEvent
from gateway.conf import gateway_settings
from gateway.egress import EgressPolicy, EgressRefused, PolicyResolver, egress_policy, parse_allow
from gateway.models import Target
from gateway.services import target_create
from tests.conftest import Gateway, issue_credential
from tests.servers import ServerThread
from tests.upstream import answer_lifespan, read_request_body, send_reply

STRICT = EgressPolicy()  # a production deployment with nothing allowed beyond public addresses


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # cloud metadata
        "fd00:ec2::254",  # cloud metadata (IPv6)
        "100.100.100.200",  # cloud metadata (another provider)
        "169.254.10.1",
        "fe80::1",
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "0.0.0.0",
        "::",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "fc00::1",
        "224.0.0.1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::",  # 6to4 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused_by_default(address):
    assert STRICT.refusal("upstream.example", ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert STRICT.refusal("upstream.example", ipaddress.ip_address(address)) is None


def test_allowed_networks_and_host_globs_open_private_addresses_never_metadata():
    networks, globs = parse_allow("10.0.0.0/8, 169.254.0.0/16, *.svc.cluster.local")
    policy = EgressPolicy(networks, globs)
    assert policy.refusal("a.example", ipaddress.ip_address("10.1.2.3")) is None
    assert policy.refusal("mcp.tools.svc.cluster.local", ipaddress.ip_address("192.168.7.7")) is None
    assert policy.refusal("mcp.example.com", ipaddress.ip_address("192.168.7.7")) is not None
    assert "metadata" in (policy.refusal("a.example", ipaddress.ip_address("169.254.169.254")) or "")
    assert policy.refusal("a.example", ipaddress.ip_address("127.0.0.1")) is not None  # loopback: not allowed


def test_debug_allows_loopback_only():
    debug = EgressPolicy(allow_loopback=True)
    assert debug.refusal("localhost", ipaddress.ip_address("127.0.0.1")) is None
    assert debug.refusal("x", ipaddress.ip_address("10.0.0.1")) is not None


def test_a_malformed_allow_list_fails_at_start_up_naming_the_entry(settings):
    settings.GATEWAY = {**settings.GATEWAY, "UPSTREAM_ALLOW": "10.0.0.0/8, http://x/y"}
    gateway_settings.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="GATEWAY_UPSTREAM_ALLOW: 'http://x/y'"):
            gateway_settings()
    finally:
        gateway_settings.cache_clear()


@pytest.fixture
def strict_deployment(settings) -> Iterator[None]:
    """The gateway configured as in production: DEBUG off and nothing in GATEWAY_UPSTREAM_ALLOW."""
    from policies.cache import policy_cache

    settings.GATEWAY = {key: value for key, value in settings.GATEWAY.items() if key != "UPSTREAM_ALLOW"}
    gateway_settings.cache_clear(), egress_policy.cache_clear(), policy_cache.invalidate()
    yield
    gateway_settings.cache_clear(), egress_policy.cache_clear(), policy_cache.invalidate()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://localhost:9/mcp", "loopback"),
        ("http://[::ffff:10.0.0.1]:8080/mcp", "private"),
    ],
)
def test_a_target_pointing_inside_is_refused_when_saved(tenant, strict_deployment, url, reason):
    with pytest.raises(ValidationError) as caught:
        target_create(tenant=tenant, slug="inside", upstream_url=url)
    assert reason in str(caught.value.message_dict["upstream_url"])


class CountingUpstream:
    """An upstream that answers every POST and counts what reached it."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answer_lifespan(scope, receive, send):
            return
        self.requests += 1
        request = orjson.loads(await read_request_body(receive))
        await send_reply(send, orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {}}))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_an_upstream_that_now_resolves_inside_is_not_reached(tenant, strict_deployment, host):
    # given: a target saved while its name pointed elsewhere (DNS rebinding), now pointing at loopback
    upstream = CountingUpstream()
    server = ServerThread(upstream).start()
    gateway = Gateway()
    try:
        target = target_create(tenant=tenant, slug="rebound", upstream_url="http://rebound.invalid/mcp")
        Target.objects.filter(pk=target.pk).update(upstream_url=f"http://{host}:{server.port}/mcp")
        issued = issue_credential(tenant, target, "POST /tools/search")
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search"}})
        headers = {
            "Authorization": f"Bearer {issued.token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }

        response = httpx2.post(gateway.proxy_url("rebound"), content=body, headers=headers, timeout=10)

        gateway.flush_audit()
    finally:
        gateway.server.stop()
        server.stop()
    assert response.status_code == 502
    assert "loopback" in response.json()["error"]["message"]
    assert upstream.requests == 0
    event = AuditEvent.objects.get(target_slug="rebound")
    assert event.decision == "error" and "loopback" in event.reason


class SwitchingResolver:
    """A test DNS: the answer a name gets is whatever the test says it is now."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[dict[str, Any]]:
        address = self.answers[host]
        return [{"hostname": host, "host": address, "port": port, "family": 2, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("inside", ["169.254.169.254", "10.1.2.3", "192.168.0.10"])
def test_a_name_accepted_when_saved_is_refused_once_it_resolves_inside(monkeypatch, inside):
    # given: at save time the name resolves to a public address, so the target is accepted
    monkeypatch.setattr(
        "gateway.egress.socket.getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.215.14", 443))]
    )
    STRICT.check_url("https://mcp.rebind.example/mcp")
    # when: DNS now answers with an inside address (DNS rebinding)
    dns = SwitchingResolver({"mcp.rebind.example": inside})
    resolver = PolicyResolver(STRICT, inner=dns)  # type: ignore[arg-type]
    # then: the connection is refused, naming why
    with pytest.raises(EgressRefused, match=inside):
        asyncio.run(resolver.resolve("mcp.rebind.example", 443))
    dns.answers["mcp.rebind.example"] = "93.184.215.14"
    assert asyncio.run(resolver.resolve("mcp.rebind.example", 443))[0]["host"] == "93.184.215.14"


def test_a_jwks_url_pointing_at_cloud_metadata_is_refused():
    from gateway.jwt_keys import jwks_url_problem

    assert "metadata" in (jwks_url_problem("https://169.254.169.254/keys") or "")
    assert jwks_url_problem("https://93.184.215.14/.well-known/jwks.json") is None


def test_a_pinned_request_connects_to_the_address_that_was_judged(monkeypatch):
    # given: the name resolves to a public address now, and would resolve inside a moment later
    answers = iter(["93.184.215.14"])
    monkeypatch.setattr(
        "gateway.egress.socket.getaddrinfo",
        lambda *a, **k: [(2, 1, 6, "", (next(answers, "169.254.169.254"), 443))],
    )
    # when
    pinned = STRICT.pinned("https://keys.rebind.example/jwks.json?v=1")
    # then: the request goes to the judged address, the name kept for Host, SNI and the certificate
    assert pinned.url == "https://93.184.215.14:443/jwks.json?v=1"
    assert pinned.host_header == "keys.rebind.example"
    assert pinned.extensions == {"sni_hostname": "keys.rebind.example"}
    # and a name that resolves inside is refused before any connection
    with pytest.raises(EgressRefused, match=r"169\.254\.169\.254"):
        STRICT.pinned("https://keys.rebind.example/jwks.json")
