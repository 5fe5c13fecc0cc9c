"""The distributed limiter: every meter of a call checked and counted in one Lua script call.

Every gateway process sharing the Redis enforces the same counters, atomically: the script reads
all of a call's meters, refuses at the first without room or counts them all, in one round trip.
Each call is bounded by ``REDIS_TIMEOUT_SECONDS`` and is not retried, so an unreachable Redis costs
one short timeout, after which the meter's fail mode decides; the next call simply tries again,
so enforcement resumes by itself when Redis is back (a restarted Redis gets the script again).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from metering.compiler import CompiledMeter
from metering.limiter import Charge, CheckResult, MeterReading, MeterStoreUnavailable
from metering.windows import WindowSpan, window_span

SCRIPT = Path(__file__).with_name("meters.lua").read_text()

ScriptCall = tuple[list[str], list[Any], list[WindowSpan]]


def script_call(charges: tuple[Charge, ...], now: float, mode: str) -> ScriptCall:
    """The keys and arguments of one script call, and each meter's window span."""
    now_ms = int(now * 1000)
    keys: list[str] = []
    args: list[Any] = [now_ms, mode]
    spans: list[WindowSpan] = []
    for charge in charges:
        span = window_span(charge.meter.window, now_ms)
        keys.append(f"{charge.meter.key}:{span.suffix}")
        args += ["1" if charge.needs_room else "0", repr(charge.meter.limit), repr(float(charge.amount))]
        args += [span.bucket_ms, span.end_ms]
        spans.append(span)
    return keys, args, spans


def parse_reply(charges: tuple[Charge, ...], spans: list[WindowSpan], reply: list[Any]) -> CheckResult:
    """Turn the script's flat reply into readings, and the refusal if there was one."""
    refused_index, retry_ms = int(reply[0]), int(float(reply[1]))
    readings = tuple(
        MeterReading(
            meter=charge.meter,
            used=float(reply[2 + 2 * i]),
            reset_ms=int(float(reply[3 + 2 * i])),
            window_seconds=span.seconds,
        )
        for i, (charge, span) in enumerate(zip(charges, spans, strict=True))
    )
    refused = readings[refused_index - 1] if refused_index else None
    return CheckResult(readings, refused, retry_ms)


def _peek_charges(meters: tuple[CompiledMeter, ...]) -> tuple[Charge, ...]:
    return tuple(Charge(meter=meter, amount=0.0, needs_room=False) for meter in meters)


class RedisLimiter:
    """The proxy's limiter on one event loop's Redis client."""

    def __init__(self, client: aioredis.Redis, *, timeout: float) -> None:
        self._client = client
        self._script = client.register_script(SCRIPT)
        self._timeout = timeout

    async def check(self, charges: tuple[Charge, ...], now: float) -> CheckResult:
        return await self._run(charges, now, "check")

    async def add(self, charges: tuple[Charge, ...], now: float) -> tuple[MeterReading, ...]:
        return (await self._run(charges, now, "add")).readings

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _run(self, charges: tuple[Charge, ...], now: float, mode: str) -> CheckResult:
        keys, args, spans = script_call(charges, now, mode)
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise MeterStoreUnavailable(f"Redis unavailable ({type(exc).__name__})") from None
        return parse_reply(charges, spans, reply)


class SyncRedisLimiter:
    """Reads and resets counters for the admin and the commands."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(SCRIPT)

    def peek(self, meters: tuple[CompiledMeter, ...], now: float) -> tuple[MeterReading, ...]:
        charges = _peek_charges(meters)
        keys, args, spans = script_call(charges, now, "peek")
        try:
            reply = self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise MeterStoreUnavailable(f"Redis unavailable ({type(exc).__name__})") from None
        return parse_reply(charges, spans, reply).readings

    def reset(self, meter: CompiledMeter, now: float) -> None:
        """Forget the meter's counts in its current window (sliding, or this calendar period)."""
        keys, _, _ = script_call(_peek_charges((meter,)), now, "peek")
        try:
            self._client.delete(*keys)
        except (RedisError, OSError) as exc:
            raise MeterStoreUnavailable(f"Redis unavailable ({type(exc).__name__})") from None


def async_meter_client(url: str, timeout: float) -> aioredis.Redis:
    """A client for the meters: short timeouts and no retry, so a dead Redis costs one timeout."""
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
