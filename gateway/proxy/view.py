"""The proxy view: build the context, run the pipeline, respond. Nothing else happens here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import GatewayError
from gateway.proxy.pipeline import FINAL_STEP, run_pipeline
from gateway.proxy.runtime import get_runtime

logger = logging.getLogger(__name__)


class InternalGatewayError(GatewayError):
    status, decision = 500, "error"


@csrf_exempt
async def proxy(request: HttpRequest, slug: str, subpath: str = "") -> HttpResponse | StreamingHttpResponse:
    """Serve ``/mcp/<slug>/<subpath>``: every method, JSON-RPC and plain HTTP alike."""
    ctx = ProxyContext(
        request=request,
        runtime=get_runtime(),
        request_id=getattr(request, "request_id", ""),
        target_slug=slug,
        subpath=subpath,
        started_at=timezone.now(),
        client_ip=request.META.get("REMOTE_ADDR") or None,
        headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]},  # type: ignore[attr-defined]
    )
    try:
        await run_pipeline(ctx)
    except GatewayError as error:
        return await _local_reply(ctx, error)
    except Exception:
        logger.exception("proxy failure", extra={"request_id": ctx.request_id, "target": slug})
        return await _local_reply(ctx, InternalGatewayError("Internal gateway error"))
    if ctx.response_stream is None:
        body = ctx.response_body or b""
        ctx.response_bytes = len(body)
        await FINAL_STEP(ctx)
        return HttpResponse(body, status=ctx.status, headers=ctx.response_headers)
    return StreamingHttpResponse(
        _stream_then_audit(ctx, ctx.response_stream), status=ctx.status, headers=ctx.response_headers
    )


async def _local_reply(ctx: ProxyContext, error: GatewayError) -> HttpResponse:
    body = error.body(ctx.single_id)
    ctx.status, ctx.decision, ctx.reason = error.status, error.decision, error.message
    ctx.response_bytes = len(body)
    await FINAL_STEP(ctx)
    return HttpResponse(body, status=error.status, content_type="application/json", headers=error.headers)


async def _stream_then_audit(ctx: ProxyContext, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            ctx.response_bytes += len(chunk)
            yield chunk
    finally:
        await FINAL_STEP(ctx)
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
