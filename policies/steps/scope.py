"""Scope steps: deny-by-default allow-rules on requests, listings trimmed to what may be called."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import FORBIDDEN, ScopeDenied, batch_refusal_body
from gateway.proxy.jsonrpc import LISTINGS, Route
from gateway.proxy.sse import event_data, replace_event_data, transform_events
from policies.compiler import CompiledCredential


def _denial_data(credential: CompiledCredential, route: Route) -> dict[str, Any]:
    return {"route": str(route), "credential_id": credential.id, "rules": credential.rules_metadata()}


async def check_scope(ctx: ProxyContext) -> None:
    """Reads ``credential`` and ``routes``; writes ``listings`` (and ``inspect_response`` when there
    are listings to trim); raises ScopeDenied.

    Deny by default: every non-plumbing route needs a matching allow-rule. A batch is checked item
    by item and refused whole if any item is denied (no partial execution); each denied item gets
    its own error naming its route, the others an error saying they were not run.
    """
    credential = ctx.require_credential()
    denied = [r for r in ctx.routes if not r.plumbing and not credential.allows(r.method, r.path)]
    if denied:
        _raise_denied(ctx, credential, denied)
    ctx.listings = {r.id: r.jsonrpc_method for r in ctx.routes if r.has_id and r.jsonrpc_method in LISTINGS}
    ctx.inspect_response = ctx.inspect_response or bool(ctx.listings)


def _raise_denied(ctx: ProxyContext, credential: CompiledCredential, denied: list[Route]) -> None:
    first = denied[0]
    message = f"Denied by policy: no rule allows {first} for credential {credential.id}"
    status = 400 if ctx.require_target().is_mcp else 403
    batch_body = None
    if ctx.is_batch:
        refusals = {
            index: (f"Denied by policy: no rule allows {route}", _denial_data(credential, route))
            for index, route in enumerate(ctx.routes)
            if route in denied
        }
        batch_body = batch_refusal_body(
            [route.id for route in ctx.routes],
            refusals,
            code=FORBIDDEN,
            not_run="Not run: the batch holds a call denied by policy",
        )
    raise ScopeDenied(message, status=status, data=_denial_data(credential, first), batch_body=batch_body)


async def filter_listings(ctx: ProxyContext) -> None:
    """Reads ``listings`` and the response; rewrites the body so listings show only callable items.

    ``tools/list``, ``resources/list`` and ``prompts/list`` results, in a JSON body or in an event
    stream (event by event), keep only the items the credential's rules allow. On an MCP session's
    GET stream, where no listing is asked for, a result is trimmed by the shape it shows (a ``tools``,
    ``resources`` or ``prompts`` list): an upstream cannot slip a listing past the rules that way. (A
    JSON body there is trimmed when forward read it whole, i.e. a small one of declared length; that
    stream may stay open for hours, so it is never held back to be read whole.)
    """
    # None: look at every result by its shape.
    listings: dict[Any, str] | None = None if ctx.is_session_stream else ctx.listings
    if listings == {} or ctx.status >= 400:
        return
    credential = ctx.require_credential()
    if ctx.response_body is not None:
        ctx.response_body = _filter_json_body(ctx.response_body, listings, credential)
    elif ctx.response_stream is not None and ctx.response_headers.get("content-type", "").startswith(
        "text/event-stream"
    ):

        def transform(event: bytes) -> bytes:
            data = event_data(event)
            if data is None:
                return event
            filtered = _filter_json_body(data, listings, credential)
            return event if filtered is data else replace_event_data(event, filtered)

        ctx.response_stream = transform_events(
            ctx.response_stream, transform, ctx.runtime.conf.max_event_bytes
        )


def listing_shape(result: Any) -> str | None:
    """The listing method whose result ``result`` looks like (a ``tools`` list: ``tools/list``), or None."""
    if isinstance(result, dict):
        for method, (key, _, _) in LISTINGS.items():
            if isinstance(result.get(key), list):
                return method
    return None


def _filter_json_body(body: bytes, listings: dict[Any, str] | None, credential: CompiledCredential) -> bytes:
    """The body with listing results trimmed (``listings`` None: each result by its shape); the very
    same object when nothing changed."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    messages = payload if isinstance(payload, list) else [payload]
    changed = False
    for message in messages:
        if not isinstance(message, dict) or "result" not in message:
            continue
        if listings is None:
            method = listing_shape(message["result"])
        else:
            method = _listing_method(listings, message.get("id"))
        if method is not None:
            changed |= _trim_listing(message["result"], method, credential)
    return orjson.dumps(payload) if changed else body


def _listing_method(listings: dict[Any, str], msg_id: Any) -> str | None:
    """The listing asked for by the request whose id is ``msg_id`` (``null`` is an id too), or None.

    A request id is a string, a number or null; anything else in a response (an object, a list)
    matches no request.
    """
    if msg_id is not None and not isinstance(msg_id, (str, int, float)):
        return None
    return listings.get(msg_id)


def _trim_listing(result: Any, method: str, credential: CompiledCredential) -> bool:
    key, field, prefix = LISTINGS[method]
    items = result.get(key) if isinstance(result, dict) else None
    if not isinstance(items, list):
        return False
    kept = [
        i for i in items if isinstance(i, dict) and credential.allows("POST", prefix + str(i.get(field, "")))
    ]
    result[key] = kept
    return len(kept) != len(items)
