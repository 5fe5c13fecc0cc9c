"""Background tasks that keep a process's compiled policies fresh."""

from __future__ import annotations

import asyncio
import logging

from gateway.background import run_in_background_thread
from gateway.redis_client import async_redis
from policies.cache import PolicyCache
from policies.invalidation import channel
from policies.selectors import policy_version_get

logger = logging.getLogger(__name__)


async def poll_policy_version(cache: PolicyCache, interval: float) -> None:
    """Check the configuration version every ``interval`` seconds; a change empties the cache."""
    while True:
        try:
            cache.observe_version(await run_in_background_thread(policy_version_get))
        except Exception as exc:  # database briefly away: keep serving the compiled policy
            logger.warning("policy version check failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


async def listen_for_invalidations(cache: PolicyCache, retry_seconds: float = 1.0) -> None:
    """Empty the cache whenever another process publishes a change on Redis."""
    while True:
        client = async_redis(blocking_reads=True)
        if client is None:
            return
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel())
                cache.invalidate()  # changes may have been missed while unsubscribed
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None:
                        cache.invalidate()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("policy invalidation listener lost Redis (%s); retrying", type(exc).__name__)
        finally:
            await client.aclose()
        await asyncio.sleep(retry_seconds)
