"""Both limiters (Redis Lua script and in-process) keep the same windows and the same rules."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from metering.call import MeterUse
from metering.limiter import Charge
from metering.memory import MemoryLimiter
from metering.redis_limiter import RedisLimiter, async_meter_client
from tests.metering.conftest import Clock, make_meter

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["memory", "redis"])
def new_limiter(request):
    """A factory, called inside the test's event loop (a Redis client belongs to one loop)."""
    if request.param == "memory":
        return MemoryLimiter
    url = request.getfixturevalue("redis_url")
    return lambda: RedisLimiter(async_meter_client(url), timeout=1.0)


async def closing(limiter) -> None:
    if hasattr(limiter, "aclose"):
        await limiter.aclose()


def calls(meter, n: int = 1) -> tuple[Charge, ...]:
    return (Charge(meter=meter, amount=float(n), needs_room=True),)


def minute_start(clock: Clock) -> float:
    return (int(clock.now) // 60 + 1) * 60.0


async def test_request_count_passes_up_to_the_limit_and_a_refusal_counts_nothing(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=3)
    used = [(await limiter.check(calls(meter), clock())).readings[0].used for _ in range(3)]
    refused = await limiter.check(calls(meter), clock())
    again = await limiter.check(calls(meter), clock())
    await closing(limiter)
    assert used == [1, 2, 3]
    assert refused.refused is not None and refused.refused.used == 3
    assert again.refused is not None and again.refused.used == 3
    assert 60_000 <= refused.retry_ms <= 61_000


async def test_the_first_exhausted_meter_refuses_and_then_no_meter_counts(new_limiter, clock):
    limiter, wide, narrow = new_limiter(), make_meter(limit=10), make_meter(limit=1)
    both = (*calls(wide), *calls(narrow))
    first = await limiter.check(both, clock())
    second = await limiter.check(both, clock())
    await closing(limiter)
    assert first.refused is None and [r.used for r in first.readings] == [1, 1]
    assert second.refused is not None and second.refused.meter == narrow
    assert [r.used for r in second.readings] == [1, 1]  # the wide meter did not count the refused call


async def test_sliding_minute_frees_capacity_as_time_moves_on(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=2, window="minute")
    outcomes = []
    for advance in (0, 30, 1, 30, 0, 29, 2):  # t = 0, 30, 31, 61, 61, 90, 92
        clock.advance(advance)
        outcomes.append((await limiter.check(calls(meter), clock())).refused is None)
    await closing(limiter)
    # t=0 and t=30 pass; t=31 refused; by t=61 the t=0 call has left the window (at most 1 s late);
    # t=61 again refused (the t=30 and t=61 calls are in it) until the t=30 call leaves at ~t=91.
    assert outcomes == [True, True, False, True, False, False, True]


async def test_no_double_burst_at_a_window_boundary(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=5, window="minute")
    clock.now = minute_start(clock) - 0.1  # just before a minute boundary
    before = [(await limiter.check(calls(meter), clock())).refused is None for _ in range(5)]
    clock.advance(0.2)  # across the boundary: a fixed window would start again from zero here
    across = (await limiter.check(calls(meter), clock())).refused
    clock.advance(59.6)  # 59.8 s after the burst: still inside its minute
    almost = (await limiter.check(calls(meter), clock())).refused
    clock.advance(1.2)  # 61 s after: gone (a use leaves between 60 and 61 s after it happened)
    later = (await limiter.check(calls(meter), clock())).refused
    await closing(limiter)
    assert before == [True] * 5
    assert across is not None and almost is not None
    assert later is None


async def test_refusal_says_how_long_until_the_call_fits(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=2, window="minute")
    clock.now = minute_start(clock) + 0.5
    await limiter.check(calls(meter), clock())
    clock.advance(20)
    await limiter.check(calls(meter), clock())
    clock.advance(5)
    refused = await limiter.check(calls(meter), clock())
    await closing(limiter)
    # The first call (in bucket 0) stops counting when bucket 61 starts: 61 s after the bucket began.
    assert refused.retry_ms == 61_000 - 25_500
    assert refused.readings[0].reset_ms == refused.retry_ms


async def test_hour_window_is_sliding_in_one_minute_buckets(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=1, window="hour")
    clock.now = minute_start(clock)
    assert (await limiter.check(calls(meter), clock())).refused is None
    clock.advance(3600)
    assert (await limiter.check(calls(meter), clock())).refused is not None
    clock.advance(60)
    assert (await limiter.check(calls(meter), clock())).refused is None
    await closing(limiter)


async def test_calendar_day_starts_again_at_midnight_utc(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=2, window="day")
    midnight = datetime.fromtimestamp(clock.now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock.now = midnight.timestamp() + 86_400 - 0.5  # 23:59:59.5 UTC
    passed = [(await limiter.check(calls(meter), clock())).refused is None for _ in range(3)]
    refused = await limiter.check(calls(meter), clock())
    clock.advance(1)  # 00:00:00.5 UTC the next day
    next_day = await limiter.check(calls(meter), clock())
    await closing(limiter)
    assert passed == [True, True, False]
    assert refused.retry_ms == 500
    assert next_day.refused is None and next_day.readings[0].used == 1
    assert next_day.readings[0].reset_ms == 86_400_000 - 500


async def test_calendar_month_starts_again_on_the_first_utc(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=1, window="month")
    clock.now = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC).timestamp()
    first = await limiter.check(calls(meter), clock())
    refused = await limiter.check(calls(meter), clock())
    clock.advance(2)
    march = await limiter.check(calls(meter), clock())
    await closing(limiter)
    assert first.readings[0].window_seconds == 28 * 86_400
    assert refused.refused is not None and refused.retry_ms == 1000
    assert march.refused is None and march.readings[0].window_seconds == 31 * 86_400


async def test_response_value_is_refused_only_once_the_sum_has_reached_the_limit(new_limiter, clock):
    limiter = new_limiter()
    meter = make_meter(kind="response_value", window="day", limit=1000, value_paths=["$.result.tokens"])
    precheck = MeterUse(meter=meter, routes=()).pre_charge()
    value = (Charge(meter=meter, amount=400, needs_room=False),)
    outcomes = []
    for _ in range(4):
        outcome = await limiter.check((precheck,), clock())
        outcomes.append(outcome.refused is None)
        if outcome.refused is None:
            await limiter.add(value, clock())
    readings = await limiter.add((Charge(meter=meter, amount=0.25, needs_room=False),), clock())
    await closing(limiter)
    assert outcomes == [True, True, True, False]  # the 3rd call crosses 1000 and completes
    assert readings[0].used == 1200.25


async def test_concurrent_checks_pass_exactly_the_limit(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=30)
    results = await asyncio.gather(*(limiter.check(calls(meter), clock()) for _ in range(100)))
    await closing(limiter)
    assert sum(result.refused is None for result in results) == 30


async def test_a_batch_needs_room_for_each_of_its_calls(new_limiter, clock):
    limiter, meter = new_limiter(), make_meter(limit=5)
    first = await limiter.check(calls(meter, 4), clock())
    second = await limiter.check(calls(meter, 2), clock())
    third = await limiter.check(calls(meter, 1), clock())
    await closing(limiter)
    assert first.refused is None and second.refused is not None and third.refused is None
    assert third.readings[0].used == 5


async def test_a_meter_moved_to_another_window_starts_that_window_afresh(new_limiter, clock):
    limiter, minute = new_limiter(), make_meter(limit=3, window="minute")
    hour = replace(minute, window="hour")  # the same meter (same counters' key), edited
    for _ in range(3):
        await limiter.check(calls(minute), clock())
    clock.advance(5)
    moved = await limiter.check(calls(hour), clock())
    clock.advance(3700)  # past the hour: second-sized buckets must not linger as if they were minutes
    later = [(await limiter.check(calls(hour), clock())).refused is None for _ in range(3)]
    await closing(limiter)
    assert moved.refused is None and moved.readings[0].used == 1
    assert later == [True, True, True]
