"""The metering part of a proxy runtime (one per event loop), and the counters the admin reads.

With ``REDIS_URL`` the meters live in Redis, reached through this loop's own client; without it
(the embedded default) they live in this process (:data:`metering.memory.process_limiter`) and,
as there is no Celery broker either, the runtime also keeps the usage rollups current itself.
The clock is an attribute so tests can move time on instead of sleeping through a window.
``health`` says whether the meters are enforced right now and counts the calls that were not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from gateway.background import run_every
from gateway.conf import GatewaySettings, gateway_settings
from metering.health import MeterStoreHealth
from metering.limiter import Limiter, LimiterAdmin
from metering.memory import process_limiter
from metering.redis_limiter import RedisLimiter, SyncRedisLimiter, async_meter_client

ROLLUP_INTERVAL_SECONDS = 60.0


def rollups_in_process() -> bool:
    """True in the embedded default: no Celery broker, so no worker and no beat run the rollups."""
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


class MeterRuntime:
    """The limiter the meter steps use on this event loop, and the clock they read."""

    def __init__(self, conf: GatewaySettings) -> None:
        self.clock: Callable[[], float] = time.time
        self._redis: RedisLimiter | None = None
        self.health = MeterStoreHealth("Redis" if conf.redis_url else "process memory")
        if conf.redis_url:
            client = async_meter_client(conf.redis_url)
            self._redis = RedisLimiter(client, timeout=conf.redis_timeout_seconds, health=self.health)
        self.limiter: Limiter = self._redis or process_limiter
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if rollups_in_process():
            loop = asyncio.get_running_loop()
            self._tasks.append(
                loop.create_task(keep_rollups_current(ROLLUP_INTERVAL_SECONDS), name="rollups")
            )

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` details: are the meters enforced, and how many calls were not."""
        return self.health.status()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()


async def keep_rollups_current(interval: float) -> None:
    """Run the usage rollup every ``interval`` seconds, off the event loop.

    Cancelling it waits for a run already in flight to finish, then stops.
    """
    from metering.services import usage_rollup_run

    # A failed run (database briefly away) is retried by the next, which recomputes the same periods.
    await run_every(interval, usage_rollup_run, "usage rollup")


def admin_limiter(*, in_gateway_process: bool) -> LimiterAdmin | None:
    """The counters the admin and the commands read and reset.

    Redis when configured. Otherwise the counters exist only inside the gateway process: the admin
    (served by that process) reads them; a management command, a process of its own, cannot.
    """
    from gateway.redis_client import sync_redis

    client = sync_redis() if gateway_settings().redis_url else None
    if client is not None:
        return SyncRedisLimiter(client)
    return process_limiter if in_gateway_process else None
