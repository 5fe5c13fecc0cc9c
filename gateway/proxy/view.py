"""The proxy view: an ASGI endpoint for ``/mcp/<slug>/...`` that builds the context, runs the
pipeline and responds. Nothing else happens here.

It sits ahead of Django's request handling on purpose: Django's ASGI handler spends two thread
hops and a new thread per request (``request_started`` receivers, ``response.close()`` through
``sync_to_async``), several times the whole cost of a proxied call. The admin, API and probes keep
the full Django stack; see ``gateway/asgi.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from django.utils import timezone

from gateway.middleware import request_id_from
from gateway.proxy.context import ProxyContext, Receive
from gateway.proxy.errors import CorsPreflight, GatewayError
from gateway.proxy.pipeline import FINAL_STEP, run_pipeline
from gateway.proxy.runtime import get_runtime

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
# CORS for the target's allowed browser origins: what an MCP client in a page must send and read.
_CORS_HEADERS = [
    (b"vary", b"Origin"),
    (
        b"access-control-expose-headers",
        b"Mcp-Session-Id, MCP-Protocol-Version, RateLimit, RateLimit-Policy, Retry-After, X-Request-ID",
    ),
]
_CORS_PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST, DELETE"),
    (
        b"access-control-allow-headers",
        b"Authorization, X-API-Key, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, "
        b"Last-Event-ID, Mcp-Method, Mcp-Name, X-Request-ID",
    ),
    (b"access-control-max-age", b"600"),
]


class InternalGatewayError(GatewayError):
    status, decision = 500, "error"


async def proxy_view(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Serve one HTTP request under ``/mcp/``: every method, JSON-RPC and plain HTTP alike."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    # The raw path, still percent-encoded: normalize_path decodes it once (``path`` is decoded
    # already, and would hide an encoded slash). raw_path is optional in ASGI: re-encode if absent.
    raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    ctx = ProxyContext(
        runtime=get_runtime(),
        receive=receive,
        method=scope["method"],
        path=raw_path.decode("latin-1"),
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        request_id=request_id_from(headers.get("x-request-id", "")),
        started_at=timezone.now(),
        client_ip=scope["client"][0] if scope.get("client") else None,
        scheme=scope.get("scheme", "http"),
    )
    try:
        await run_pipeline(ctx)
    except GatewayError as error:
        await _send_local_reply(ctx, send, error)
        return
    except Exception:
        logger.exception("proxy failure", extra={"request_id": ctx.request_id, "target": ctx.target_slug})
        await _send_local_reply(ctx, send, InternalGatewayError("Internal gateway error"))
        return
    if ctx.response_stream is None:
        await _send_whole(ctx, send, ctx.response_body or b"")
    else:
        await _send_stream(ctx, send, ctx.response_stream)


def _start(ctx: ProxyContext, headers: dict[str, str], extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [(b"x-request-id", ctx.request_id.encode()), *_SECURITY_HEADERS, *extra]
    if ctx.cors_origin:
        raw += [(b"access-control-allow-origin", ctx.cors_origin.encode("latin-1")), *_CORS_HEADERS]
        if ctx.status == CorsPreflight.status:
            raw += _CORS_PREFLIGHT_HEADERS
    return {"type": "http.response.start", "status": ctx.status, "headers": raw}


async def _send_local_reply(ctx: ProxyContext, send: Send, error: GatewayError) -> None:
    body = error.body(ctx.single_id)
    ctx.status = error.status
    ctx.stopped_by(error)
    ctx.response_headers = (
        {"content-type": "application/json", **error.headers} if body else dict(error.headers)
    )
    await _send_whole(ctx, send, body)


class _AuditOnce:
    """Runs the final (audit) step exactly once: before the last body message, or at the end."""

    __slots__ = ("ctx", "done")

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx, self.done = ctx, False

    async def record(self) -> None:
        if not self.done:
            self.done = True
            await FINAL_STEP(self.ctx)


async def _send_whole(ctx: ProxyContext, send: Send, body: bytes) -> None:
    """Send the reply; its audit event is written ahead before the body completes the response."""
    ctx.response_bytes = len(body)
    audit = _AuditOnce(ctx)
    try:
        await send(_start(ctx, ctx.response_headers, [(b"content-length", str(len(body)).encode())]))
        await audit.record()
        await send({"type": "http.response.body", "body": body})
    finally:
        await audit.record()


async def _send_stream(ctx: ProxyContext, send: Send, stream: AsyncIterator[bytes]) -> None:
    """Relay the stream chunk by chunk until it ends or the agent disconnects."""
    audit = _AuditOnce(ctx)
    relay = asyncio.ensure_future(_relay(ctx, send, stream, audit))
    disconnect = asyncio.ensure_future(_wait_for_disconnect(ctx.receive))
    try:
        await asyncio.wait({relay, disconnect}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relay, disconnect):
            task.cancel()
        await asyncio.gather(relay, disconnect, return_exceptions=True)
        await audit.record()  # a stream that failed or was cut off is audited here
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def _relay(ctx: ProxyContext, send: Send, stream: AsyncIterator[bytes], audit: _AuditOnce) -> None:
    await send(_start(ctx, ctx.response_headers, []))
    async for chunk in stream:
        ctx.response_bytes += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await audit.record()  # written ahead before the final message completes the response
    await send({"type": "http.response.body", "body": b""})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
