"""The distributed limiter: every meter of a call checked and counted in one Lua script call.

Every gateway process sharing the Redis enforces the same counters, atomically: the script reads
all of a call's meters, refuses at the first without room or counts them all, in one round trip.

Redis counts as unavailable only when it really is: the connection is refused or reset (at once),
or it has not answered within ``REDIS_TIMEOUT_SECONDS`` of its own time. That deadline is a
:class:`~gateway.redis_client.RedisTimeBudget`, which does not charge the event loop's lag to Redis,
and the client has no socket timeout of its own, so a gateway whose CPU is saturated still waits
for answers Redis gave instead of letting calls through unmetered. A failed call is not retried:
the meter's fail mode decides, and the next call simply tries again, so enforcement resumes by
itself when Redis is back (a restarted Redis gets the script again). Each outcome is reported to
the loop's :class:`~metering.health.MeterStoreHealth`, which logs the changes of state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.redis_client import RedisTimeBudget
from metering.compiler import CompiledMeter
from metering.health import MeterStoreHealth
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

    def __init__(
        self, client: aioredis.Redis, *, timeout: float, health: MeterStoreHealth | None = None
    ) -> None:
        self._client = client
        self._script = client.register_script(SCRIPT)
        self._timeout = timeout
        self.health = health or MeterStoreHealth("Redis")

    async def check(self, charges: tuple[Charge, ...], now: float) -> CheckResult:
        return await self._run(charges, now, "check")

    async def add(self, charges: tuple[Charge, ...], now: float) -> tuple[MeterReading, ...]:
        return (await self._run(charges, now, "add")).readings

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _run(self, charges: tuple[Charge, ...], now: float, mode: str) -> CheckResult:
        keys, args, spans = script_call(charges, now, mode)
        try:
            async with RedisTimeBudget(self._timeout):
                reply = await self._script(keys=keys, args=args)
        except TimeoutError:
            self._failed(f"Redis unavailable (no answer in {self._timeout:g} s)")
        except (RedisError, OSError) as exc:
            self._failed(f"Redis unavailable ({type(exc).__name__})")
        self.health.store_answered()
        return parse_reply(charges, spans, reply)

    def _failed(self, reason: str) -> NoReturn:
        self.health.store_failed(reason)
        raise MeterStoreUnavailable(reason) from None


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


def async_meter_client(url: str) -> aioredis.Redis:
    """A client for the meters: no retry, and no socket timeout that a busy event loop would trip.

    Every call is bounded by the limiter's own :class:`RedisTimeBudget` instead.
    """
    return aioredis.Redis.from_url(
        url, socket_timeout=None, socket_connect_timeout=None, retry=Retry(NoBackoff(), 0)
    )
