"""The ASGI application.

- ``/mcp/...`` (the data plane) goes straight to the proxy view, ``gateway/proxy/view.py``: Django's
  ASGI handler and its ``MiddlewareMixin`` classes run hooks through ``sync_to_async`` (thread hops,
  a new thread per request), which would cost more than the whole proxied call.
- WebSocket connections go to the Channels application of the dashboard's live feed
  (``dashboard/routing.py``); uvicorn, granian and daphne all serve them (see ``manage.py serve``).
- Everything else (admin, health, API, dashboard) goes to Django's ordinary ASGI handler.

The wrapper also runs the proxy runtime's start-up and shutdown on ASGI lifespan; shutdown drains
the audit write-ahead file (for at most 5 s) and flushes the last-used times. Servers without
lifespan support still work: the runtime then starts on the first proxied request.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

import django

django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from dashboard.routing import websocket_application  # noqa: E402
from gateway.body_limit import BodyLimit  # noqa: E402
from gateway.proxy.view import proxy_view  # noqa: E402

PROXY_PREFIX = "/mcp/"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


django_application = BodyLimit(ASGIHandler(), max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"].startswith(PROXY_PREFIX):
        await proxy_view(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket_application(scope, receive, send)
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
