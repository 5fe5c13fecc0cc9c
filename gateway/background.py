"""Database work done off the request path (audit writes, version polls, last-used flushes).

Such work runs in a worker thread, marked by :data:`in_background` so tests that count the
queries of a proxied call can tell it apart from the call's own.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

T = TypeVar("T")

in_background: ContextVar[bool] = ContextVar("in_background", default=False)


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    in_background.set(True)
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_in_background_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn`` in a worker thread without holding the event loop or the request thread."""
    return await sync_to_async(_call, thread_sensitive=False)(fn, args, kwargs)
