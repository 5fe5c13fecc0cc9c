"""Gauges set from a process's own state: the audit lag and the policy cache.

Each process samples itself once a second (``sample_forever``, a task of the proxy runtime): in
multiprocess mode the scraping process cannot see the others' memory, only the values they wrote.
The scraping process samples itself again just before it answers, so a single-process scrape is
exact and a multi-process one at most :data:`SAMPLE_SECONDS` behind.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.metrics.recording import (
    AUDIT_LAG_EVENTS,
    AUDIT_LAG_SECONDS,
    POLICY_CACHE_AGE,
    POLICY_CACHE_ENTRIES,
)

if TYPE_CHECKING:
    from gateway.proxy.runtime import ProxyRuntime

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 1.0


def sample(runtime: ProxyRuntime) -> None:
    """Set this process's gauges from ``runtime``'s audit sink and policy cache."""
    waiting, oldest = runtime.audit.lag()
    AUDIT_LAG_EVENTS.set(waiting)
    AUDIT_LAG_SECONDS.set(round(oldest, 3))
    age, entries = runtime.cache.stats()
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
