"""The live call feed: the proxy hands each audited call over without waiting; a background task
sends a summary of them to the dashboards, four times a second, per tenant.

:meth:`FeedPublisher.offer` is the proxy's one call (from the audit step): a length check and a list
append, never an await, a lock or I/O. Past :attr:`FeedPublisher.capacity` waiting calls it drops the
call and counts it. Every :attr:`~FeedPublisher.interval` seconds the publisher takes what waits,
groups it by tenant and publishes one message per tenant: at most ``per_batch`` calls (denials and
errors first, then a sample of the rest spread over the batch) and how many more there were.

Messages go to Redis pub/sub (channel ``gateway:feed:<tenant id>``) when ``REDIS_URL`` is set, so a
dashboard served by any worker sees every worker's calls; otherwise to the in-process
:data:`feed_hub`. A summary holds the time, target, credential name, tool or route, JSON-RPC method,
decision, status, latency and reason, and whether the call was protocol plumbing (the page hides
those unless asked): never a token, a header or a body.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from gateway.proxy.jsonrpc import PLUMBING_METHODS

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "gateway:feed:"
INTERVAL_SECONDS = 0.25
CAPACITY = 20_000  # calls waiting for the next batch (about 5 s at 4,000 calls/s)
PER_BATCH = 50  # calls per tenant and batch sent in full; the rest are counted as "more"
SUBSCRIBER_QUEUE = 64  # messages an in-process subscriber may fall behind before it misses some
_SUMMARY_TEXT = 200


def channel_for(tenant_id: int) -> str:
    return f"{CHANNEL_PREFIX}{tenant_id}"


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """What the feed shows of one audit record (see the module docstring: no secret, no body)."""
    created = record.get("created_at")
    method = str(record.get("jsonrpc_method") or "")
    return {
        "time": created.isoformat() if isinstance(created, datetime) else str(created or ""),
        "target": str(record.get("target_slug") or "")[:_SUMMARY_TEXT],
        "credential": str(record.get("credential_name") or "")[:_SUMMARY_TEXT],
        "tool": str(record.get("tool") or "")[:_SUMMARY_TEXT],
        "route": str(record.get("route") or "")[:_SUMMARY_TEXT],
        "method": method[:_SUMMARY_TEXT],
        "decision": str(record.get("decision") or ""),
        "status": int(record.get("status_code") or 0),
        "latency_ms": float(record.get("latency_ms") or 0.0),
        "reason": str(record.get("reason") or "")[:_SUMMARY_TEXT],
        "plumbing": record.get("decision") == "allowed" and not record.get("tool") and is_plumbing(method),
    }


def is_plumbing(method: str) -> bool:
    """A session's own traffic (initialize, listings, notifications, ping, the GET stream and DELETE of a
    session: no JSON-RPC method), which the feed hides unless asked to show it."""
    return not method or method.startswith("notifications/") or method in PLUMBING_METHODS


def sample(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` of ``records`` in their order: every denial and error first (up to the
    limit), the rest filled with allowed calls spread evenly over the batch."""
    if len(records) <= limit:
        return records
    notable = [i for i, r in enumerate(records) if r.get("decision") != "allowed"][:limit]
    rest = [i for i, r in enumerate(records) if r.get("decision") == "allowed"]
    room = limit - len(notable)
    if room > 0 and rest:
        step = len(rest) / room
        notable += [rest[int(k * step)] for k in range(min(room, len(rest)))]
    return [records[i] for i in sorted(notable)]


class FeedHub:
    """The in-process feed (no Redis): each subscriber gets a bounded queue of messages."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes]]]] = {}
        self.missed = 0

    def subscribe(self, tenant_id: int) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.setdefault(tenant_id, set()).add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, tenant_id: int, queue: asyncio.Queue[bytes]) -> None:
        members = self._subscribers.get(tenant_id, set())
        for member in [m for m in members if m[1] is queue]:
            members.discard(member)
        if not members:
            self._subscribers.pop(tenant_id, None)

    def publish(self, tenant_id: int, message: bytes) -> int:
        """Hand ``message`` to the tenant's subscribers (on their own loops); never waits."""
        subscribers = list(self._subscribers.get(tenant_id, ()))
        for loop, queue in subscribers:
            if loop is asyncio.get_running_loop():
                self._put(queue, message)
            else:
                loop.call_soon_threadsafe(self._put, queue, message)
        return len(subscribers)

    def _put(self, queue: asyncio.Queue[bytes], message: bytes) -> None:
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            self.missed += 1


feed_hub = FeedHub()


@dataclass
class FeedCounters:
    """What the publisher did since its start (``offered``: calls queued for the feed)."""

    offered: int = 0
    dropped: int = 0
    batches: int = 0
    messages: int = 0
    sampled_out: int = 0
    publish_failures: int = 0


class FeedPublisher:
    """The proxy's side of the live feed (one per proxy runtime); see the module docstring."""

    def __init__(
        self,
        *,
        redis_url: str = "",
        redis_timeout: float = 1.0,
        interval: float = INTERVAL_SECONDS,
        capacity: int = CAPACITY,
        per_batch: int = PER_BATCH,
        hub: FeedHub | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.redis_timeout = redis_timeout
        self.interval = interval
        self.capacity = capacity
        self.per_batch = per_batch
        self.hub = hub or feed_hub
        self.counters = FeedCounters()
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._redis: aioredis.Redis | None = None

    # -- the hot path -----------------------------------------------------------------------------

    def offer(self, record: dict[str, Any]) -> None:
        """Queue one audited call for the feed, or count it dropped when the queue is full."""
        if record.get("tenant_id") is None:
            return
        if len(self._pending) >= self.capacity:
            self.counters.dropped += 1
            return
        self.counters.offered += 1
        self._pending.append(record)

    # -- the background task ----------------------------------------------------------------------

    def start(self) -> None:
        if self.redis_url:
            self._redis = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=self.redis_timeout, socket_connect_timeout=self.redis_timeout
            )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-feed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def status(self) -> dict[str, int]:
        """For ``/readyz`` details: calls handed over, dropped (queue full), sampled out, and so on."""
        return {**asdict(self.counters), "waiting": len(self._pending)}

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.publish_waiting()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("live feed: a batch could not be published")

    async def publish_waiting(self) -> None:
        """Publish what waits now: one message per tenant (see the module docstring)."""
        waiting, self._pending = self._pending, []
        if not waiting:
            return
        self.counters.batches += 1
        by_tenant: dict[int, list[dict[str, Any]]] = {}
        for record in waiting:
            by_tenant.setdefault(record["tenant_id"], []).append(record)
        messages = {tenant: self._message(records) for tenant, records in by_tenant.items()}
        await self._send(messages)

    def _message(self, records: list[dict[str, Any]]) -> bytes:
        shown = sample(records, self.per_batch)
        more = len(records) - len(shown)
        self.counters.sampled_out += more
        return orjson.dumps({"type": "calls", "calls": [summarise(r) for r in shown], "more": more})

    async def _send(self, messages: dict[int, bytes]) -> None:
        if self._redis is None:
            for tenant_id, message in messages.items():
                self.hub.publish(tenant_id, message)
            self.counters.messages += len(messages)
            return
        try:
            async with asyncio.timeout(self.redis_timeout * 2):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for tenant_id, message in messages.items():
                        pipe.publish(channel_for(tenant_id), message)
                    await pipe.execute()
        except (OSError, TimeoutError, aioredis.RedisError) as exc:
            self.counters.publish_failures += 1
            logger.warning("live feed: Redis publish failed (%s); batch dropped", type(exc).__name__)
            return
        self.counters.messages += len(messages)
