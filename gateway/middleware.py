"""Small middleware of the gateway's own."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def request_id_from(presented: str) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    return presented if _VALID_REQUEST_ID.fullmatch(presented) else uuid.uuid4().hex


def request_id_for(request: HttpRequest) -> str:
    return request_id_from(request.headers.get("X-Request-ID", ""))


class RequestIdMiddleware:
    """Give every request an id (``request.request_id``) and echo it as ``X-Request-ID``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self.is_async:
            return self._acall(request)
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined, index]
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response
