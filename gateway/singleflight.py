"""Single-flight loading: concurrent misses of one key wait for one load instead of each running it.

Used by the per-process caches of the hot path, so a cold start under load costs one database
load per key, not one per concurrent call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

MISSING = object()


class SingleFlight:
    """At most one load per key and event loop at a time; the others wait and read the cache."""

    def __init__(self) -> None:
        self._loading: dict[tuple[int, Hashable], asyncio.Event] = {}

    async def get(self, key: Hashable, cached: Callable[[], object], load: Callable[[], Awaitable[T]]) -> T:
        """``cached()`` returns the cached value or :data:`MISSING`; ``load()`` fills the cache."""
        # Events belong to one event loop, and tests run several gateways in one process.
        flight = (id(asyncio.get_running_loop()), key)
        while True:
            value = cached()
            if value is not MISSING:
                return value  # type: ignore[return-value]
            loading = self._loading.get(flight)
            if loading is None:
                break
            await loading.wait()  # then read the cache again (or load, if that load failed)
        done = self._loading[flight] = asyncio.Event()
        try:
            return await load()
        finally:
            del self._loading[flight]
            done.set()
