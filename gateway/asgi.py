"""The ASGI application.

Two Django handlers share one URL configuration:

- ``/mcp/...`` (the data plane) goes to a handler whose middleware stack holds only the proxy's own
  async middleware. Django's ``MiddlewareMixin`` classes (sessions, CSRF, auth, messages) run their
  hooks through ``sync_to_async`` on one shared thread: on the hot path that would cost two thread
  hops each per call and serialise every request on that thread.
- Everything else (admin, health, API) goes to the ordinary handler with ``settings.MIDDLEWARE``.

The wrapper also runs the proxy runtime's start-up and shutdown on ASGI lifespan; shutdown flushes
the audit queue and the last-used times. Servers without lifespan support still work: the runtime
then starts on the first proxied request.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

PROXY_PREFIX = "/mcp/"
PROXY_MIDDLEWARE = ["gateway.middleware.RequestIdMiddleware"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ProxyASGIHandler(ASGIHandler):
    """Django's ASGI handler with the proxy's lean middleware stack."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Built once at start-up, before any request: swap the list in just for this build.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = PROXY_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full


django_application = ASGIHandler()
proxy_application = ProxyASGIHandler()


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"].startswith(PROXY_PREFIX):
        await proxy_application(scope, receive, send)
    elif scope["type"] != "lifespan":
        await django_application(scope, receive, send)
    else:
        await _lifespan(receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    from gateway.proxy.runtime import close_runtime, get_runtime

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            get_runtime()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_runtime()
            await send({"type": "lifespan.shutdown.complete"})
            return
