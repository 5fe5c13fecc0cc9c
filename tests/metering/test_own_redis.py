"""Against a redis-server of the test's own: what a metered call costs it, and what an outage does.

Redis stops mid-test: open meters let calls through (audited), closed ones give 503, and the
gateway says so once in its log and keeps count in ``/readyz``; Redis back, enforcement resumes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from audit.models import AuditEvent
from gateway.proxy.runtime import runtime_for_loop
from metering.health import MeterStoreHealth
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
        meters = runtime_for_loop(gateway.server.loop).meters
        meters.health = MeterStoreHealth("Redis")
        meters.limiter = RedisLimiter(async_meter_client(url), timeout=0.25, health=meters.health)

    gateway.server.call(swap())


def close_meters(gateway) -> None:
    async def close() -> None:
        await runtime_for_loop(gateway.server.loop).meters.limiter.aclose()

    gateway.server.call(close())


def meter_details(gateway) -> dict:
    """What ``/readyz`` says about the gateway's meters."""
    return httpx2.get(f"{gateway.url}/readyz", timeout=10).json()["details"]["meters"]


def test_redis_outage_open_meters_pass_closed_meters_503_and_enforcement_resumes(
    gateway, tenant, target, redis_server, caplog
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

        caplog.set_level(logging.WARNING, logger="metering.health")
        redis_server.stop()
        started = time.monotonic()
        unenforced = post_call(url, lenient.token, request_id=41)
        refused = post_call(url, strict.token, request_id=42)
        elapsed = time.monotonic() - started
        more = [post_call(url, lenient.token).status_code for _ in range(3)]  # past the limit: not enforced
        during = meter_details(gateway)

        redis_server.start()  # a new, empty Redis on the same port: nothing to restart in the gateway
        after = [post_call(url, token).status_code for token in (lenient.token,) * 3 + (strict.token,) * 3]
        later = meter_details(gateway)
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

    # Said once each way: in the log, and in /readyz while it lasts and after.
    warnings = [r.getMessage() for r in caplog.records if r.name == "metering.health"]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("meters not enforced: Redis unavailable (ConnectionError)")
    assert warnings[1].startswith("meters enforced again: Redis answers after")
    assert "4 calls passed unenforced (fail-open) and 1 were refused (fail-closed)" in warnings[1]
    assert during["enforced"] is False and during["last_error"] == "Redis unavailable (ConnectionError)"
    assert (during["calls_passed_unenforced"], during["calls_refused_unenforced"]) == (4, 1)
    assert later["enforced"] is True and later["outages"] == 1
    assert (later["calls_passed_unenforced"], later["calls_refused_unenforced"]) == (4, 1)

    gateway.flush_audit()
    passed = AuditEvent.objects.get(jsonrpc_id="41")
    assert (passed.decision, passed.status_code) == ("allowed", 200)
    assert passed.meter_notes == [f"meter m{opened.pk} not enforced: Redis unavailable (ConnectionError)"]
    failed = AuditEvent.objects.get(jsonrpc_id="42")
    assert (failed.decision, failed.status_code) == ("error", 503)
    assert failed.meter_notes == [f"meter m{closed.pk} not enforced: Redis unavailable (ConnectionError)"]


class Monitor:
    """``redis-cli monitor``: every command Redis receives, those run inside scripts marked ``lua``."""

    def __init__(self, server: RedisServer) -> None:
        import redis

        self.log = tempfile.NamedTemporaryFile(suffix=".log")
        cli = shutil.which("redis-cli") or "redis-cli"
        self.popen = subprocess.Popen([cli, "-p", str(server.port), "monitor"], stdout=self.log)
        self.client = redis.Redis(port=server.port)
        deadline = time.monotonic() + 5
        while b"ready" not in Path(self.log.name).read_bytes():
            self.client.echo("ready")
            assert time.monotonic() < deadline, "redis-cli monitor did not attach"
            time.sleep(0.05)

    def mark(self, name: str) -> None:
        self.client.echo(f"phase {name}")

    def round_trips(self) -> dict[str, int]:
        """Commands sent by clients (not from inside a script), per phase."""
        self.mark("end")
        time.sleep(0.2)
        self.popen.terminate()
        self.popen.wait(5)
        self.client.close()
        counts: dict[str, int] = {}
        phase = ""
        for line in Path(self.log.name).read_text().splitlines():
            line = line.lower()
            if '"echo" "phase ' in line:
                phase = line.rsplit('"phase ', 1)[1].rstrip('"')
                counts.setdefault(phase, 0)
            elif phase and "lua]" not in line and '"echo"' not in line:
                counts[phase] += 1
        counts.pop("end", None)
        return counts


def test_a_metered_call_costs_one_redis_round_trip_and_values_one_more(gateway, tenant, target, redis_server):
    plain = issue_credential(tenant, target, "POST /tools/search", name="plain")
    counted = issue_credential(tenant, target, "POST /tools/search", name="counted")
    valued = issue_credential(tenant, target, "POST /tools/search", name="valued")
    for issued in (counted, valued):  # two request_count meters each
        for window in ("minute", "hour"):
            meter_create(
                tenant=tenant, credential=issued.credential, kind="request_count", window=window, limit=100
            )
    meter_create(
        tenant=tenant,
        credential=valued.credential,
        kind="response_value",
        window="day",
        limit=10**6,
        value_paths=["$.result.structuredContent.usage.total_tokens"],
    )
    meters_on(gateway, redis_server.url)
    url = gateway.proxy_url("docs")
    try:
        for issued in (plain, counted, valued):  # warm the caches and load the script
            assert post_call(url, issued.token).status_code == 200
        monitor = Monitor(redis_server)
        for name, issued in (("plain", plain), ("counted", counted), ("valued", valued)):
            monitor.mark(name)
            for _ in range(10):
                assert post_call(url, issued.token).status_code == 200
        trips = monitor.round_trips()
    finally:
        close_meters(gateway)
    # Ten calls each: none without meters, one script call with two count meters, one more after
    # the response when a response_value meter applies.
    assert trips == {"plain": 0, "counted": 10, "valued": 20}
