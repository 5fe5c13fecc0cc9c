"""Gauges set from a process's own state: the audit lag and the policy cache.

Each process samples itself once a second (``sample_forever``, a task of the proxy runtime): in
multiprocess mode the scraping process cannot see the others' memory, only the values they wrote.
The scraping process samples itself again just before it answers, so a single-process scrape is
exact and a multi-process one at most :data:`SAMPLE_SECONDS` behind.

The policy cache has no public statistics yet (``policies/`` belongs to its own work): its age is
observed from outside, as the time its generation counter was first seen to change (so it is at most
one sample late), and its size from its tables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from gateway.metrics.recording import (
    AUDIT_LAG_EVENTS,
    AUDIT_LAG_SECONDS,
    POLICY_CACHE_AGE,
    POLICY_CACHE_ENTRIES,
)

if TYPE_CHECKING:
    from gateway.proxy.runtime import ProxyRuntime
    from policies.cache import PolicyCache

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 1.0


class PolicyCacheWatch:
    """When a policy cache was last emptied, as seen by successive samples of its generation."""

    __slots__ = ("cache", "emptied_at", "generation")

    def __init__(self, cache: PolicyCache) -> None:
        self.cache = cache
        self.generation = self._generation()
        self.emptied_at = time.monotonic()

    def _generation(self) -> int:
        return int(getattr(self.cache, "_generation", 0))

    def sample(self) -> tuple[float, int]:
        """The cache's age in seconds and how many compiled entries it holds."""
        generation = self._generation()
        now = time.monotonic()
        if generation != self.generation:
            self.generation, self.emptied_at = generation, now
        tables = getattr(self.cache, "_tables", {})
        return now - self.emptied_at, sum(len(table) for table in tables.values())


def sample(runtime: ProxyRuntime) -> None:
    """Set this process's gauges from ``runtime``'s audit sink and policy cache."""
    waiting, oldest = runtime.audit.lag()
    AUDIT_LAG_EVENTS.set(waiting)
    AUDIT_LAG_SECONDS.set(round(oldest, 3))
    age, entries = runtime.policy_watch.sample()
    POLICY_CACHE_AGE.set(round(age, 3))
    POLICY_CACHE_ENTRIES.set(entries)


async def sample_forever(runtime: ProxyRuntime, every: float = SAMPLE_SECONDS) -> None:
    """Sample every ``every`` seconds until cancelled; a failed sample is logged, never fatal."""
    while True:
        try:
            sample(runtime)
        except Exception:
            logger.exception("metrics sample failed")
        await asyncio.sleep(every)
