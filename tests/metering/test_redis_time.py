"""The meters' Redis deadline counts Redis's time, not the time the event loop spent elsewhere.

A starved loop (a saturated CPU, or a long callback) reads an answer late; ``asyncio.timeout``
would cancel the call in that same loop iteration and the meters would fail open. A Redis that
really is gone (refused, or silent) still fails within the budget.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from gateway.redis_client import RedisTimeBudget
from metering.health import MeterStoreHealth
from metering.limiter import Charge, MeterStoreUnavailable
from metering.redis_limiter import RedisLimiter, async_meter_client
from tests.metering.conftest import make_meter
from tests.servers import free_port

pytestmark = pytest.mark.asyncio


def busy_loop_for(seconds: float) -> None:
    """Hold the event loop, as a starved process does: nothing else runs meanwhile."""
    time.sleep(seconds)


# Redis itself works for ARGV[1] microseconds, then answers 1.
SLOW_SCRIPT = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1])
return 1
"""


async def test_an_answer_read_after_the_loop_was_busy_is_taken_not_timed_out(redis_url):
    client = async_meter_client(redis_url)
    try:
        await client.ping()  # connected, so the next call only sends and waits
        # Redis answers after 50 ms of work, while the loop is held for 500 ms: the loop then
        # finds the answer and an expired wall-clock timer in the same iteration.
        asyncio.get_running_loop().call_soon(busy_loop_for, 0.5)
        async with RedisTimeBudget(0.2) as budget:
            assert await client.eval(SLOW_SCRIPT, 0, 50_000) == 1
        assert budget.spent <= 0.2
    finally:
        await client.aclose()


async def test_a_redis_that_never_answers_times_out_after_its_budget():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never replies
    port = silent.getsockname()[1]
    limiter = RedisLimiter(async_meter_client(f"redis://127.0.0.1:{port}/0"), timeout=0.3)
    charge = (Charge(meter=make_meter(limit=5), amount=1.0, needs_room=True),)
    try:
        started = time.monotonic()
        with pytest.raises(MeterStoreUnavailable, match=r"no answer in 0\.3 s"):
            await limiter.check(charge, time.time())
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        await limiter.aclose()
        silent.close()


async def test_a_refused_connection_fails_at_once_and_is_reported():
    health = MeterStoreHealth("Redis")
    limiter = RedisLimiter(async_meter_client(f"redis://127.0.0.1:{free_port()}/0"), timeout=5, health=health)
    charge = (Charge(meter=make_meter(limit=5), amount=1.0, needs_room=True),)
    try:
        started = time.monotonic()
        with pytest.raises(MeterStoreUnavailable, match=r"ConnectionError"):
            await limiter.check(charge, time.time())
        assert time.monotonic() - started < 2, "a refused connection must not wait for the budget"
    finally:
        await limiter.aclose()
    assert health.enforced is False and health.last_error == "Redis unavailable (ConnectionError)"
