"""Acceptance: Redis stops mid-test; open meters let calls through (audited), closed ones give 503."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from audit.models import AuditEvent
from gateway.proxy.runtime import runtime_for_loop
from metering.redis_limiter import RedisLimiter, async_meter_client
from metering.services import meter_create
from tests.conftest import issue_credential, require_service
from tests.metering.conftest import post_call
from tests.metering.processes import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        require_service("Redis", "redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.stop()


def meters_on(gateway, url: str) -> None:
    """Point the running gateway's meters at the Redis at ``url``."""

    async def swap() -> None:
        runtime = runtime_for_loop(gateway.server.loop)
        runtime.meters.limiter = RedisLimiter(async_meter_client(url, 0.25), timeout=0.25)

    gateway.server.call(swap())


def close_meters(gateway) -> None:
    async def close() -> None:
        await runtime_for_loop(gateway.server.loop).meters.limiter.aclose()

    gateway.server.call(close())


def test_redis_outage_open_meters_pass_closed_meters_503_and_enforcement_resumes(
    gateway, tenant, target, redis_server
):
    lenient = issue_credential(tenant, target, "POST /tools/search", name="lenient")
    strict = issue_credential(tenant, target, "POST /tools/search", name="strict")
    opened = meter_create(
        tenant=tenant, credential=lenient.credential, kind="request_count", window="minute", limit=2
    )
    closed = meter_create(
        tenant=tenant,
        credential=strict.credential,
        kind="request_count",
        window="minute",
        limit=2,
        fail_mode="closed",
    )
    meters_on(gateway, redis_server.url)
    url = gateway.proxy_url("docs")
    try:
        assert [post_call(url, lenient.token).status_code, post_call(url, strict.token).status_code] == [
            200,
            200,
        ]

        redis_server.stop()
        started = time.monotonic()
        unenforced = post_call(url, lenient.token, request_id=41)
        refused = post_call(url, strict.token, request_id=42)
        elapsed = time.monotonic() - started
        more = [post_call(url, lenient.token).status_code for _ in range(3)]  # past the limit: not enforced

        redis_server.start()  # a new, empty Redis on the same port: nothing to restart in the gateway
        after = [post_call(url, token).status_code for token in (lenient.token,) * 3 + (strict.token,) * 3]
    finally:
        close_meters(gateway)

    assert unenforced.status_code == 200 and "RateLimit" not in unenforced.headers
    assert more == [200, 200, 200]
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    error = refused.json()
    assert error["id"] == 42 and error["error"]["data"]["meter"]["id"] == closed.pk
    assert f"Meter m{closed.pk} cannot be checked" in error["error"]["message"]
    assert elapsed < 1.0, "an unreachable Redis must cost milliseconds"
    assert after == [200, 200, 429, 200, 200, 429]

    gateway.flush_audit()
    passed = AuditEvent.objects.get(jsonrpc_id="41")
    assert (passed.decision, passed.status_code) == ("allowed", 200)
    assert passed.meter_notes == [f"meter m{opened.pk} not enforced: Redis unavailable (ConnectionError)"]
    failed = AuditEvent.objects.get(jsonrpc_id="42")
    assert (failed.decision, failed.status_code) == ("error", 503)
    assert failed.meter_notes == [f"meter m{closed.pk} not enforced: Redis unavailable (ConnectionError)"]
