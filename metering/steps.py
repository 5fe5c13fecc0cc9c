"""Meter steps of the proxy pipeline: check and count before forwarding, count values after.

``check_meters`` runs after ``check_scope``: only calls the policy allows are metered. It checks
every meter that applies to the call (the credential's, the target's and the tenant's) and counts
the call against all of them in one limiter call (one Redis round trip). ``count_response_values``
reads the values ``response_value`` meters sum from the response, JSON body or event stream, adds
them, and puts the RateLimit fields on the response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import MeterUnavailable, RateLimited
from gateway.proxy.sse import event_data, transform_events
from metering.cache import meter_cache
from metering.call import MeteredCall, plan_call
from metering.compiler import whole
from metering.headers import ratelimit_headers, seconds
from metering.health import MeterStoreHealth
from metering.limiter import Charge, CheckResult, MeterReading, MeterStoreUnavailable
from metering.values import ValueCounter


async def check_meters(ctx: ProxyContext) -> None:
    """Reads ``credential``, ``target`` and ``routes``; writes ``metering`` (and ``inspect_response``
    when a meter sums values read from the response).

    Raises RateLimited (429, with Retry-After and the RateLimit fields) naming the first meter
    without room; nothing is counted then. When the counters cannot be reached, raises
    MeterUnavailable (503) if a meter fails closed; open meters let the call through, noted.
    """
    meters = await meter_cache.meters(ctx.require_credential(), ctx.require_target())
    uses = plan_call(meters, ctx.routes) if meters else ()
    if not uses:
        return
    call = ctx.metering = MeteredCall(uses=uses)
    ctx.inspect_response = ctx.inspect_response or bool(call.value_uses)
    runtime = ctx.runtime.meters
    now = runtime.clock()
    try:
        result = await runtime.limiter.check(tuple(use.pre_charge() for use in uses), now)
    except MeterStoreUnavailable as exc:
        _store_unavailable(call, exc, runtime.health)
        return
    call.record(result.readings)
    if result.refused is not None:
        raise _rate_limited(result, result.refused, now)


def _store_unavailable(call: MeteredCall, exc: MeterStoreUnavailable, health: MeterStoreHealth) -> None:
    closed = [use.meter for use in call.uses if use.meter.fails_closed]
    for use in call.uses:
        call.notes.append(f"meter {use.meter.name} not enforced: {exc}")
    health.call_unenforced(refused=bool(closed))
    if closed:
        meter = closed[0]
        raise MeterUnavailable(
            f"Meter {meter.name} cannot be checked ({exc}) and fails closed: try again shortly",
            data={"meter": meter.describe()},
            headers={"retry-after": "1"},
        )


def _rate_limited(result: CheckResult, refused: MeterReading, now: float) -> RateLimited:
    meter = refused.meter
    retry_after = max(1, seconds(result.retry_ms))
    reset_at = datetime.fromtimestamp(now, UTC) + timedelta(milliseconds=result.retry_ms)
    what = "calls" if not meter.counts_values else "of " + " + ".join(p.text for p in meter.value_paths)
    message = (
        f"Rate limit exceeded: meter {meter.name} allows {whole(meter.limit)} {what} per {meter.window} "
        f"for {meter.scope} {meter.scope_id}; retry in {retry_after} s"
    )
    readings = [replace(r, reset_ms=result.retry_ms) if r is refused else r for r in result.readings]
    data = {
        "meter": {
            **meter.describe(),
            "used": whole(round(refused.used, 6)),
            "reset_at": reset_at.isoformat(timespec="seconds"),
            "retry_after": retry_after,
        }
    }
    headers = {"retry-after": str(retry_after), **ratelimit_headers(readings)}
    return RateLimited(message, data=data, headers=headers)


async def count_response_values(ctx: ProxyContext) -> None:
    """Reads ``metering`` and the response; writes the RateLimit response fields and, into
    ``metering``, the values read and any notes.

    Values are added once the upstream has answered, so the call that crosses a limit completes
    and the next one is refused. An event stream is read event by event as it passes, each value
    counted before the event carrying it goes out. Raises nothing: what cannot be counted is noted.
    """
    call = ctx.metering
    if call is None:
        return
    if call.value_uses:
        await _count_values(ctx, call)
    ctx.response_headers.update(ratelimit_headers(call.readings.values()))


async def _count_values(ctx: ProxyContext, call: MeteredCall) -> None:
    counter = ValueCounter(call, whole_body=not ctx.require_target().is_mcp)
    if ctx.response_body is not None:
        counter.observe(ctx.response_body)
        counter.finish()
        await _add(ctx, call, counter.take_charges())
    elif ctx.response_stream is not None and _is_event_stream(ctx):
        ctx.response_stream = _counting(ctx, call, counter, ctx.response_stream)
    else:
        for use in call.value_uses:
            call.notes.append(f"meter {use.meter.name}: the response is not JSON: counted 0")


def _is_event_stream(ctx: ProxyContext) -> bool:
    return ctx.response_headers.get("content-type", "").startswith("text/event-stream")


async def _counting(
    ctx: ProxyContext, call: MeteredCall, counter: ValueCounter, stream: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    def observe(event: bytes) -> bytes:
        data = event_data(event)
        if data is not None:
            counter.observe(data)
        return event

    events = transform_events(stream, observe, ctx.runtime.conf.max_event_bytes)
    try:
        async for chunk in events:
            await _add(ctx, call, counter.take_charges())
            yield chunk
    finally:
        counter.finish()
        for iterator in (events, stream):
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


async def _add(ctx: ProxyContext, call: MeteredCall, charges: tuple[Charge, ...]) -> None:
    if not charges:
        return
    runtime = ctx.runtime.meters
    try:
        call.record(await runtime.limiter.add(charges, runtime.clock()))
    except MeterStoreUnavailable as exc:
        runtime.health.values_lost()
        for charge in charges:
            call.notes.append(f"meter {charge.meter.name}: {whole(charge.amount)} not counted: {exc}")
