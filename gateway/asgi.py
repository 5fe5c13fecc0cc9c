"""The ASGI application: Django, wrapped to run the proxy runtime's start-up and shutdown.

Lifespan shutdown flushes the audit queue and the last-used times. Servers without lifespan
support still work: the runtime then starts on the first proxied request.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "lifespan":
        await django_application(scope, receive, send)
        return
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
