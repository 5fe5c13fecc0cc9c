"""Policy steps of the proxy pipeline: scope checks and protection choice on requests; trimmed listings,
filters and redaction on responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import FORBIDDEN, ResponseUnprotectable, ScopeDenied
from gateway.proxy.jsonrpc import LISTINGS, Route
from gateway.proxy.sse import event_data, replace_event_data, transform_events
from policies.compiler import CompiledCredential
from policies.content import UnfilterableContent
from policies.protect import (
    CallProtections,
    ProtectionTally,
    RequestProtections,
    protect_body,
    select_for_call,
    union,
)
from policies.redaction import RedactionDepthError


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
        batch_body = orjson.dumps(
            [_batch_item_error(credential, route, route in denied) for route in ctx.routes]
        )
    raise ScopeDenied(message, status=status, data=_denial_data(credential, first), batch_body=batch_body)


def _batch_item_error(credential: CompiledCredential, route: Route, denied: bool) -> dict[str, Any]:
    if denied:
        error = {
            "code": FORBIDDEN,
            "message": f"Denied by policy: no rule allows {route}",
            "data": _denial_data(credential, route),
        }
    else:
        error = {"code": FORBIDDEN, "message": "Not run: the batch holds a call denied by policy"}
    return {"jsonrpc": "2.0", "id": route.id, "error": error}


async def filter_listings(ctx: ProxyContext) -> None:
    """Reads ``listings`` and the response; rewrites the body so listings show only callable items.

    ``tools/list``, ``resources/list`` and ``prompts/list`` results, in a JSON body or in an event
    stream (event by event), keep only the items the credential's rules allow.
    """
    if not ctx.listings or ctx.status >= 400:
        return
    credential = ctx.require_credential()
    if ctx.response_body is not None:
        ctx.response_body = _filter_json_body(ctx.response_body, ctx.listings, credential)
    elif ctx.response_stream is not None and ctx.response_headers.get("content-type", "").startswith(
        "text/event-stream"
    ):
        listings = ctx.listings

        def transform(event: bytes) -> bytes:
            data = event_data(event)
            if data is None:
                return event
            filtered = _filter_json_body(data, listings, credential)
            return event if filtered is data else replace_event_data(event, filtered)

        ctx.response_stream = transform_events(
            ctx.response_stream, transform, ctx.runtime.conf.max_event_bytes
        )


def _filter_json_body(body: bytes, listings: dict[Any, str], credential: CompiledCredential) -> bytes:
    """The body with listing results trimmed; the very same object when nothing changed."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    messages = payload if isinstance(payload, list) else [payload]
    changed = False
    for message in messages:
        if not isinstance(message, dict) or "result" not in message:
            continue
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


async def select_protections(ctx: ProxyContext) -> None:
    """Reads ``credential``, ``target`` and ``routes``; writes ``protections`` and, only when some
    filter or redactor applies, ``inspect_response`` (so a call nothing applies to is not parsed).

    For each routed call (protocol plumbing and notifications excluded) it picks the credential's
    stacked filters and redactors of this target whose route glob matches. Raises nothing.
    """
    credential = ctx.require_credential()
    if not credential.filters and not credential.redactors:
        return
    target = ctx.require_target()
    by_id: dict[Any, CallProtections] = {}
    calls: list[CallProtections] = []
    for route in ctx.routes:
        if route.plumbing or (target.is_mcp and not route.has_id):
            continue
        call = select_for_call(credential, target.id, route.method, route.path, route.jsonrpc_method)
        # A call nothing applies to is known too: its result is left alone, not given the fallback.
        by_id[route.id] = call or CallProtections(route.jsonrpc_method, (), ())
        if call is not None:
            calls.append(call)
    if calls:
        ctx.protections = RequestProtections(by_id, union(calls), whole_document=not target.is_mcp)
        ctx.inspect_response = True


async def protect_response(ctx: ProxyContext) -> None:
    """Reads ``protections`` and the response; writes the body (or wraps the stream) and
    ``protection_tally``; raises ResponseUnprotectable (502) for a reply it cannot protect.

    Filters, then redaction, on each result of a JSON body, or event by event on an event stream.
    Monitor mode changes nothing but counts. A reply that cannot be protected (not JSON, nested too
    deeply, a streamed body of another type) is never passed through: a JSON body becomes the error
    reply; an event of a stream becomes a JSON-RPC error event, and the audit event records it.
    """
    protections = ctx.protections
    if protections is None or ctx.status >= 400:
        return
    tally = ctx.protection_tally = ProtectionTally()
    if ctx.response_body is not None:
        if ctx.response_body.strip():
            ctx.response_body = _protected_or_raise(ctx.response_body, protections, tally)
        return
    if ctx.response_stream is None:
        return
    content_type = ctx.response_headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        kind = content_type or "untyped"
        raise ResponseUnprotectable(f"Response withheld: a {kind} body cannot be filtered or redacted")
    ctx.response_stream = transform_events(
        ctx.response_stream, _event_protector(ctx, protections, tally), ctx.runtime.conf.max_event_bytes
    )


def _protected_or_raise(body: bytes, protections: RequestProtections, tally: ProtectionTally) -> bytes:
    try:
        return protect_body(body, protections, tally)
    except (UnfilterableContent, RedactionDepthError) as exc:
        raise ResponseUnprotectable(f"Response withheld: {exc}") from None


def _event_protector(
    ctx: ProxyContext, protections: RequestProtections, tally: ProtectionTally
) -> Callable[[bytes], bytes]:
    def transform(event: bytes) -> bytes:
        data = event_data(event)
        if data is None or not data.strip():
            return event
        try:
            protected = _protected_or_raise(data, protections, tally)
        except ResponseUnprotectable as error:
            ctx.decision, ctx.reason = error.decision, error.audit_reason
            return replace_event_data(event, error.body(ctx.single_id))
        return event if protected is data else replace_event_data(event, protected)

    return transform
