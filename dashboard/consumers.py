"""The live feed's WebSocket: ``/dashboard/<tenant id>/feed``, for a logged-in user who may see that
tenant (the dashboard's own rule, ``access_for(user).sees``), from a page of this site.

The handshake is refused (HTTP 403) without a session user who may see the tenant, for a tenant that
does not exist, or when the ``Origin`` is neither this host nor one of ``CSRF_TRUSTED_ORIGINS`` (a
page of another site cannot open the feed with the admin's cookie). Once open, the socket subscribes
to its one tenant's feed only (Redis channel or in-process hub, as the publisher sends:
dashboard/feed.py), says ``{"type": "subscribed"}`` once it is, and re-checks the session and the role
every :data:`RECHECK_SECONDS`, closing (code 4403) when the user logged out, was deactivated or lost
the tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from dashboard.feed import channel_for, feed_hub
from gateway.conf import gateway_settings
from gateway.models import Tenant
from gateway.roles import access_for

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 30.0
FORBIDDEN = 4403
#: Sent once the socket is subscribed: calls from then on reach it.
HELLO = '{"type": "subscribed"}'


def same_origin(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the handshake's ``Origin`` is this host (as the client addressed it) or a trusted origin."""
    values = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}
    origin, host = values.get("origin", ""), values.get("host", "")
    if not origin or not host:
        return False
    if origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


def may_watch(user: Any, tenant_id: int) -> bool:
    """Whether ``user`` may watch the feed of ``tenant_id`` (sync: reads the membership)."""
    return access_for(user).sees(tenant_id) and Tenant.objects.filter(pk=tenant_id).exists()


def still_may_watch(user_id: int, session_key: str | None, tenant_id: int) -> bool:
    """The same check on fresh rows: the session still valid, the user still active and a member."""
    if (
        not session_key
        or not Session.objects.filter(session_key=session_key, expire_date__gt=timezone.now()).exists()
    ):
        return False
    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and may_watch(user, tenant_id)


class LiveFeedConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Relays one tenant's feed messages (JSON text frames) to one dashboard; ignores what it sends."""

    tenant_id: int
    _relay: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.tenant_id = int(self.scope["url_route"]["kwargs"]["tenant_id"])
        user = self.scope.get("user")
        if not same_origin(self.scope.get("headers", [])) or user is None:
            await self.close(code=FORBIDDEN)
            return
        if not await database_sync_to_async(may_watch)(user, self.tenant_id):
            await self.close(code=FORBIDDEN)
            return
        self.user_id = user.pk
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        await self.accept()
        self._relay = asyncio.create_task(self._run(), name="live-feed-socket")

    async def disconnect(self, code: int) -> None:
        if self._relay is not None:
            self._relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay
            self._relay = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return None  # the feed is one-way

    async def _run(self) -> None:
        relay = self._from_redis() if gateway_settings().redis_url else self._from_hub()
        task = asyncio.create_task(relay)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=RECHECK_SECONDS)
                if task.done():
                    break
                allowed = await database_sync_to_async(still_may_watch)(
                    self.user_id, self.session_key, self.tenant_id
                )
                if not allowed:
                    await self.close(code=FORBIDDEN)
                    break
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _from_hub(self) -> None:
        queue = feed_hub.subscribe(self.tenant_id)
        try:
            await self.send(text_data=HELLO)
            while True:
                message = await queue.get()
                await self.send(text_data=message.decode())
        finally:
            feed_hub.unsubscribe(self.tenant_id, queue)

    async def _from_redis(self) -> None:
        from gateway.redis_client import async_redis

        client = async_redis(blocking_reads=True)
        if client is None:
            return
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel_for(self.tenant_id))
            await self.send(text_data=HELLO)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    await self.send(text_data=bytes(message["data"]).decode())
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await client.aclose()
