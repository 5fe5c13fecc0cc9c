"""Brute-force protection as an agent sees it: an address that keeps failing to authenticate gets 429.

Each test calls from its own loopback address (127.x.y.z), so its failures are its own, in Redis as
in process memory, and the guard's threshold is small (GATEWAY_AUTH_FAILURES_PER_MINUTE=5).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest

from audit.models import AuditEvent
from gateway.proxy.auth_failures import AuthFailureGuard, address_key
from gateway.tokens import generate_token
from metering.limiter import Charge, CheckResult, MeterReading
from metering.memory import MemoryLimiter
from tests.conftest import Gateway, gateway_configured, issue_credential, run
from tests.gateway.proxy.test_authentication import BODY, HEADERS
from tests.metering.conftest import Clock, use_clock

LIMIT = 5


@pytest.fixture
def guarded_gateway(transactional_db, settings) -> Iterator[Gateway]:
    """A gateway (uvicorn, in a thread) that allows 5 failed authentications per address and minute."""
    with gateway_configured(settings, AUTH_FAILURES_PER_MINUTE=str(LIMIT)) as server:
        yield server


def new_address() -> str:
    """A loopback address of this test's own (never 127.0.0.1, which every other test uses)."""
    return f"127.{secrets.randbelow(250) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def agent(address: str) -> httpx2.Client:
    """An HTTP client whose calls come from ``address``."""
    return httpx2.Client(timeout=10, transport=httpx2.HTTPTransport(local_address=address))


def post(client: httpx2.Client, url: str, token: str | None) -> httpx2.Response:
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(url, content=BODY, headers=headers)


def fail(client: httpx2.Client, url: str, times: int) -> None:
    for _ in range(times):
        assert post(client, url, generate_token().token).status_code == 401


def runtime_of(gateway: Gateway) -> Any:
    from gateway.proxy.runtime import runtime_for_loop

    runtime = runtime_for_loop(gateway.server.loop)
    assert runtime is not None
    return runtime


def test_an_address_that_keeps_failing_is_refused_with_429_and_retry_after(guarded_gateway, tenant, target):
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        fail(client, url, LIMIT)
        response = post(client, url, generate_token().token)

    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    error = response.json()["error"]
    assert error["code"] == -32029
    assert error["message"].startswith("Too many failed authentications from this address")
    assert error["data"] == {"retry_after": int(response.headers["Retry-After"])}


def test_a_valid_credential_from_a_blocked_address_is_refused_too(guarded_gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        assert post(client, url, issued.token).status_code == 200
        fail(client, url, LIMIT)
        response = post(client, url, issued.token)
    assert response.status_code == 429


def test_the_audit_event_of_a_refused_call_names_the_reason_and_never_the_token(
    guarded_gateway, tenant, target
):
    url = guarded_gateway.proxy_url("docs")
    address = new_address()
    guess = generate_token().token
    with agent(address) as client:
        fail(client, url, LIMIT)
        assert post(client, url, guess).status_code == 429

    guarded_gateway.flush_audit()
    event = AuditEvent.objects.filter(status_code=429).get()
    assert (event.decision, event.reason) == ("denied", "too many failed authentications from this address")
    assert event.client_ip == address and event.credential_id is None
    row = orjson.dumps(AuditEvent.objects.filter(pk=event.pk).values().get(), default=str).decode()
    assert guess not in row and guess.split("_")[2] not in row


def test_another_address_is_not_affected(guarded_gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as attacker:
        fail(attacker, url, LIMIT)
        assert post(attacker, url, generate_token().token).status_code == 429
    with agent(new_address()) as neighbour:
        assert post(neighbour, url, issued.token).status_code == 200
        assert post(neighbour, url, generate_token().token).status_code == 401


def test_the_address_may_try_again_once_retry_after_has_passed(guarded_gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    clock = Clock()
    use_clock(guarded_gateway, clock)
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        fail(client, url, LIMIT)
        refused = post(client, url, issued.token)
        assert refused.status_code == 429
        clock.advance(int(refused.headers["Retry-After"]) - 1.5)
        assert post(client, url, issued.token).status_code == 429
        clock.advance(1.5)
        assert post(client, url, issued.token).status_code == 200


def test_a_success_does_not_wipe_out_the_failures_before_it(guarded_gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        fail(client, url, LIMIT - 1)
        assert post(client, url, issued.token).status_code == 200
        fail(client, url, 1)
        assert post(client, url, issued.token).status_code == 429


def test_calls_without_any_credential_are_not_counted_as_failures(guarded_gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        for _ in range(2 * LIMIT):
            assert post(client, url, None).status_code == 401
        assert post(client, url, issued.token).status_code == 200


class CountingLimiter:
    """The gateway's own limiter, counting the calls made to it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    async def check(self, charges: tuple[Charge, ...], now: float) -> CheckResult:
        self.calls += 1
        return await self.inner.check(charges, now)

    async def add(self, charges: tuple[Charge, ...], now: float) -> tuple[MeterReading, ...]:
        self.calls += 1
        return await self.inner.add(charges, now)


def test_valid_calls_from_an_address_that_never_failed_do_not_read_the_counts(
    guarded_gateway, tenant, target
):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meters = runtime_of(guarded_gateway).meters
    meters.limiter = counting = CountingLimiter(meters.limiter)
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        for _ in range(20):
            assert post(client, url, issued.token).status_code == 200
        assert counting.calls == 0
        fail(client, url, 1)
        assert counting.calls == 1  # the failure counted
        assert post(client, url, issued.token).status_code == 200
        assert counting.calls == 2  # from now on this address is looked up before its credential


class UnreachableLimiter:
    async def check(self, charges: tuple[Charge, ...], now: float) -> CheckResult:
        from metering.limiter import MeterStoreUnavailable

        raise MeterStoreUnavailable("Redis unavailable (ConnectionError)")

    add = check  # type: ignore[assignment]


def test_with_the_counts_unreachable_valid_agents_still_get_through_and_readyz_says_so(
    guarded_gateway, tenant, target
):
    issued = issue_credential(tenant, target, "POST /tools/search")
    runtime_of(guarded_gateway).meters.limiter = UnreachableLimiter()
    url = guarded_gateway.proxy_url("docs")
    with agent(new_address()) as client:
        fail(client, url, 2 * LIMIT)
        assert post(client, url, issued.token).status_code == 200

    details = httpx2.get(f"{guarded_gateway.url}/readyz", timeout=10).json()["details"]["auth_failures"]
    assert details["limit_per_minute"] == LIMIT
    assert details["failures_not_counted"] == 2 * LIMIT
    assert details["checks_unenforced"] == 2 * LIMIT  # every call after the first failure


def test_without_redis_the_failures_are_counted_in_process_memory():
    from gateway.conf import gateway_settings
    from metering.runtime import MeterRuntime

    meters = MeterRuntime(gateway_settings())
    meters.limiter = MemoryLimiter()
    guard = AuthFailureGuard(3, meters)

    async def scenario() -> list[int]:
        waits = []
        for _ in range(4):
            waits.append(await guard.retry_after("10.0.0.7"))
            await guard.record_failure("10.0.0.7")
        return [*waits, await guard.retry_after("10.0.0.8")]

    waits = run(scenario())
    run(meters.aclose())
    assert waits[:3] == [0, 0, 0] and 1 <= waits[3] <= 61
    assert waits[4] == 0  # another address


def test_an_ipv6_client_counts_as_its_64_and_an_ipv4_mapped_one_as_its_ipv4():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"


def test_two_gateway_processes_on_one_redis_share_the_count(tenant, target, redis_url):
    from tests.metering.processes import GatewayProcess

    issued = issue_credential(tenant, target, "POST /tools/search")
    gateways = [
        GatewayProcess(redis_url=redis_url, GATEWAY_AUTH_FAILURES_PER_MINUTE=str(LIMIT)) for _ in range(2)
    ]
    try:
        for gateway in gateways:
            gateway.wait_ready()
        urls = [gateway.proxy_url("docs") for gateway in gateways]
        with agent(new_address()) as client:
            failures = [post(client, urls[n % 2], generate_token().token).status_code for n in range(LIMIT)]
            after = [post(client, url, issued.token).status_code for url in urls]
    finally:
        for gateway in gateways:
            gateway.stop()
    assert failures == [401] * LIMIT  # 3 counted by one process, 2 by the other
    assert after == [429, 429]


def test_an_address_refused_for_failed_authentications_is_counted_apart_from_meter_refusals(
    guarded_gateway, tenant, target, settings
):
    from gateway.conf import gateway_settings
    from tests.gateway.test_metrics import METRICS_TOKEN, get_metrics, moved

    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": METRICS_TOKEN}
    gateway_settings.cache_clear()

    def scrape() -> str:
        return get_metrics(guarded_gateway, Authorization=f"Bearer {METRICS_TOKEN}").text

    url = guarded_gateway.proxy_url("docs")
    before = scrape()
    with agent(new_address()) as client:
        fail(client, url, LIMIT)
        assert post(client, url, generate_token().token).status_code == 429
    after = scrape()
    # the refusal is a denial of its own kind; no meter refused anything
    assert moved(before, after, "gateway_denials_total", target="docs", reason="auth_throttled") == 1
    assert moved(before, after, "gateway_denials_total", target="docs", reason="rate_limited") == 0
    assert moved(before, after, "gateway_meter_refusals_total", reason="limit_reached") == 0
