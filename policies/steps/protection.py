"""Protection steps: which filters and redactors apply to a call, and applying them to its reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import ResponseUnprotectable
from gateway.proxy.sse import event_data, replace_event_data, transform_events
from policies.content import UnfilterableContent
from policies.protect import (
    CallProtections,
    ProtectionTally,
    RequestProtections,
    protect_body,
    select_for_call,
    select_for_target,
    union,
)
from policies.redaction import RedactionDepthError


async def select_protections(ctx: ProxyContext) -> None:
    """Reads ``credential``, ``target``, the method and ``routes``; writes ``protections`` and, only
    when some filter or redactor applies, ``inspect_response`` (so a call nothing applies to is not
    parsed).

    For each routed call (protocol plumbing and notifications excluded) it picks the credential's
    stacked filters and redactors of this target whose route glob matches. The session's GET stream
    of an MCP target answers no call of its own (server-initiated messages, replies replayed on
    resumption): it gets every filter and redactor of the credential for this target, whatever
    their route. Raises nothing.
    """
    credential = ctx.require_credential()
    if not credential.filters and not credential.redactors:
        return
    target = ctx.require_target()
    if ctx.is_session_stream:
        stream = select_for_target(credential, target.id)
        if stream is not None:
            ctx.protections = RequestProtections({}, stream)
            ctx.inspect_response = True
        return
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

    Filters, then redaction, on each result of a JSON body, or event by event on an event stream;
    redaction alone on each error's message and data and on each server-initiated message's params.
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
            ctx.stopped_by(error)
            return replace_event_data(event, error.body(ctx.single_id))
        return event if protected is data else replace_event_data(event, protected)

    return transform
