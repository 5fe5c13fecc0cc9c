"""A bound on request bodies for everything but the proxy (admin, API, OAuth endpoints).

Django's ASGI handler reads a whole request body before any view runs (into memory, then a temporary
file), whatever its size; ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is only checked later, when the view reads
the body. So an unauthenticated client could make the gateway store gigabytes, to memory or disk, by
posting to the login page or the OAuth registration endpoint. ``BodyLimit`` refuses such a request
with 413 as soon as its declared length, or the bytes actually received, pass the limit. The proxy
(``/mcp/``) never comes here: it bounds its bodies itself (``GATEWAY_MAX_REQUEST_BODY_BYTES``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_TOO_LARGE = b"Request body too large.\n"


class BodyLimit:
    """ASGI middleware: HTTP requests whose body passes ``max_bytes`` get 413 (see the module doc)."""

    def __init__(self, app: App, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await _refuse(send)
            return
        received = 0
        refused = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await _refuse(send)
                    # Django's handler stops reading and sends nothing on a disconnect.
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, bounded_receive, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _refuse(send: Send) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(_TOO_LARGE))]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": _TOO_LARGE})
