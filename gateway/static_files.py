"""Static files (the admin's CSS and JS) served by the gateway itself, with WhiteNoise.

WhiteNoise's Django middleware is sync-only: in the ASGI stack it would make Django run the whole
middleware chain of every admin, API and probe request through a thread. This subclass is
async-capable: a request for anything else goes on without a hop, and only a static file is opened
in a thread. Which files, their hashed names and caching come from WhiteNoise and ``collectstatic``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]
    """WhiteNoise's middleware, async under ASGI and sync under WSGI (the test client)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any], **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:  # DEBUG: looks on disk, so not on the event loop
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            response: Awaitable[HttpResponseBase] = self.get_response(request)
            return await response
        served: HttpResponseBase = await sync_to_async(self.serve, thread_sensitive=False)(
            static_file, request
        )
        return served
