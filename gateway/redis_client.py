"""Redis connections, when ``REDIS_URL`` is set, and a deadline on Redis's own time.

The synchronous client and the probe/pub-sub clients keep short socket timeouts. Calls that must
not mistake a busy event loop for a dead Redis (the meters) use a client without a socket timeout
and bound each call with :class:`RedisTimeBudget` instead.
"""

from __future__ import annotations

import asyncio
from functools import cache
from types import TracebackType

import redis
import redis.asyncio as aioredis

from gateway.conf import gateway_settings

TICK_SECONDS = 0.05


@cache
def sync_redis() -> redis.Redis | None:
    """A process-wide synchronous client, or None in the embedded default."""
    conf = gateway_settings()
    if not conf.redis_url:
        return None
    return redis.Redis.from_url(
        conf.redis_url,
        socket_timeout=conf.redis_timeout_seconds,
        socket_connect_timeout=conf.redis_timeout_seconds,
    )


def async_redis(*, blocking_reads: bool = False) -> aioredis.Redis | None:
    """A new asyncio client bound to the running loop, or None in the embedded default.

    ``blocking_reads`` lifts the read timeout, for a pub/sub listener that waits on purpose.
    """
    conf = gateway_settings()
    if not conf.redis_url:
        return None
    return aioredis.Redis.from_url(
        conf.redis_url,
        socket_timeout=None if blocking_reads else conf.redis_timeout_seconds,
        socket_connect_timeout=conf.redis_timeout_seconds,
    )


class RedisTimeBudget:
    """``async with RedisTimeBudget(1.0):`` raises TimeoutError once Redis has had 1 s to answer.

    ``asyncio.timeout`` counts wall time. On a starved event loop its timer fires late, often in
    the very loop iteration that read the reply, and cancels a call Redis had already answered.
    This budget ticks every ``tick`` seconds and charges each tick at most its own length, so time
    the loop spends on other work is not charged to Redis; once the budget is spent the call still
    gets one more loop iteration to take a reply that is already in the socket.
    """

    __slots__ = ("_cancelling", "_expired", "_handle", "_last", "_seconds", "_spent", "_task", "_tick")

    def __init__(self, seconds: float, *, tick: float = TICK_SECONDS) -> None:
        self._seconds = seconds
        self._tick = tick
        self._spent = 0.0
        self._last = 0.0
        self._handle: asyncio.Handle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False

    @property
    def spent(self) -> float:
        """Seconds charged to Redis so far (wall time minus the loop's lateness)."""
        return self._spent

    async def __aenter__(self) -> RedisTimeBudget:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("RedisTimeBudget must be used inside a task")
        loop = asyncio.get_running_loop()
        self._task, self._cancelling = task, task.cancelling()
        self._last = loop.time()
        self._handle = loop.call_at(self._last + min(self._tick, self._seconds), self._on_tick)
        return self

    def _on_tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._spent += min(now - self._last, self._tick)
        self._last = now
        left = self._seconds - self._spent
        if left > 1e-9:
            self._handle = loop.call_at(now + min(self._tick, left), self._on_tick)
        else:  # after this iteration's callbacks, a reply already read has woken its reader
            self._handle = loop.call_soon(self._expire)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and exc_type is asyncio.CancelledError and self._task is not None:
            if self._task.uncancel() <= self._cancelling:
                raise TimeoutError(f"no answer in {self._seconds:g} s of Redis time") from exc
