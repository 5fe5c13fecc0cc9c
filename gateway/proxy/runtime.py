"""Per-event-loop runtime of the proxy: the pooled client and the background tasks.

Started by the ASGI lifespan (or lazily by the first request, for servers without lifespan) and
closed at shutdown (in the embedded default, without a Celery broker, it also seals the audit trail
every minute and streams it to the SIEM sinks), which drains the audit write-ahead file (for a
bounded time) and flushes the last-used times.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import aiohttp
from django.conf import settings

from audit.runtime import SEAL_INTERVAL_SECONDS, keep_audit_sealed
from audit.siem.runtime import keep_siem_delivered
from audit.sink import AuditSink
from dashboard.feed import FeedPublisher
from gateway.background import close_background_connections
from gateway.conf import gateway_settings
from gateway.last_used import LastUsedTracker
from gateway.metrics.multiprocess import forget_process, multiprocess_directory
from gateway.metrics.sampling import sample_forever
from gateway.proxy.auth_failures import AuthFailureGuard
from gateway.proxy.jwks import JwksCache
from gateway.proxy.upstream import create_upstream_client
from metering.runtime import MeterRuntime, rollups_in_process
from policies.cache import PolicyCache, policy_cache
from policies.watch import listen_for_invalidations, poll_policy_version

logger = logging.getLogger(__name__)

# With Redis pub/sub carrying changes, the database poll is only a safety net.
_POLL_SLOWDOWN_WITH_REDIS = 10


class ProxyRuntime:
    """Everything a gateway process's event loop shares between proxied requests."""

    def __init__(self, cache: PolicyCache) -> None:
        conf = gateway_settings()
        self.conf = conf
        self.cache = cache
        cache.verified_jwts.max_entries = conf.jwt_cache_max_entries
        self.jwks = JwksCache(conf)
        self.client: aiohttp.ClientSession = create_upstream_client(conf)
        self.audit = AuditSink(
            batch_size=conf.audit_batch_size,
            wal_dir=conf.audit_wal_dir,
            linger_seconds=conf.audit_flush_seconds,
            fsync_seconds=conf.audit_fsync_seconds,
            lag_warn_events=conf.audit_lag_warn_events,
        )
        self.last_used = LastUsedTracker()
        self.feed = FeedPublisher(redis_url=conf.redis_url, redis_timeout=conf.redis_timeout_seconds)
        self.meters = MeterRuntime(conf)
        self.auth_failures = AuthFailureGuard(conf.auth_failures_per_minute, self.meters)
        # Django's own rule: with DEBUG and no ALLOWED_HOSTS, local names are allowed.
        debug_hosts = [".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
        self.allowed_hosts: list[str] = list(settings.ALLOWED_HOSTS) or debug_hosts
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        conf = self.conf
        poll = conf.policy_poll_seconds * (_POLL_SLOWDOWN_WITH_REDIS if conf.redis_url else 1)
        self.audit.start()
        self.feed.start()
        self._tasks = [
            loop.create_task(poll_policy_version(self.cache, poll), name="policy-version-poll"),
            loop.create_task(self.last_used.run(conf.last_used_flush_seconds), name="last-used-flush"),
            loop.create_task(sample_forever(self), name="metrics-sample"),
        ]
        if conf.redis_url:
            self._tasks.append(loop.create_task(listen_for_invalidations(self.cache), name="policy-listen"))
        if rollups_in_process():  # no broker, so no Celery beat: this process seals the audit trail
            self._tasks.append(loop.create_task(keep_audit_sealed(SEAL_INTERVAL_SECONDS), name="audit-seal"))
            siem = keep_siem_delivered(conf.siem_poll_seconds)
            self._tasks.append(loop.create_task(siem, name="siem-delivery"))
        self.meters.start()

    def status(self) -> dict[str, Any]:
        """Details for ``/readyz``: each component's own view of its health (never a secret)."""
        details: dict[str, Any] = {}
        components = (
            ("audit", self.audit),
            ("meters", self.meters),
            ("auth_failures", self.auth_failures),
            ("live_feed", self.feed),
        )
        for name, component in components:
            component_status = getattr(component, "status", None)
            if component_status is not None:
                details[name] = component_status()
        return details

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.audit.aclose()
        await self.feed.aclose()
        await self.meters.aclose()
        try:
            await self.last_used.flush()
        except Exception as exc:
            logger.warning("last-used times not saved at shutdown: %s", type(exc).__name__)
        await self.client.close()
        await self.jwks.aclose()
        await asyncio.get_running_loop().run_in_executor(None, close_background_connections)
        directory = multiprocess_directory()
        if directory:  # this process's gauges (audit lag, cache age) describe nothing once it exits
            forget_process(os.getpid(), directory)


_runtimes: dict[asyncio.AbstractEventLoop, ProxyRuntime] = {}


def get_runtime() -> ProxyRuntime:
    """The running loop's runtime, started on first use."""
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        runtime = _runtimes[loop] = ProxyRuntime(policy_cache)
        runtime.start()
    return runtime


def runtime_for_loop(loop: asyncio.AbstractEventLoop) -> ProxyRuntime | None:
    """The runtime started on ``loop``, if any (tests use it to flush the audit trail)."""
    return _runtimes.get(loop)


async def close_runtime() -> None:
    """Close the running loop's runtime, if it was started."""
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.aclose()
