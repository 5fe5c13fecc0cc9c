"""Redis connections, when ``REDIS_URL`` is set; every call has a short timeout."""

from __future__ import annotations

from functools import cache

import redis
import redis.asyncio as aioredis

from gateway.conf import gateway_settings


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
