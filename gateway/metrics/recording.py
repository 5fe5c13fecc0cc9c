"""The metric objects and what the hot path records into them.

``record_call`` runs once per proxied request (from ``audit.steps.record_audit``, the one place every
request ends). It keeps its own dictionary of labelled children, so a call costs a dictionary lookup
and an increment per metric, not prometheus-client's ``labels()`` (a lock and a key check) each time.
No I/O: in multiprocess mode an increment is a write into a memory-mapped file, made by the client
library under a per-process lock that only this process's event loop takes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from gateway.proxy.context import ProxyContext

logger = logging.getLogger(__name__)

# The target label of a request whose slug names no configured target: an agent can invent slugs,
# so they never become label values. ``(none)`` cannot be a slug (slugs are letters, digits, - and _).
NO_TARGET = "(none)"

# Which errors' ``kind`` a meter refusal has, and its reason class there.
_METER_REFUSALS = {"rate_limited": "limit_reached", "meter_unavailable": "store_unavailable"}

UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CALLS = Counter(
    "gateway_calls",
    "Proxied requests, by configured target, decision (allowed, denied, error) and status class.",
    ["target", "decision", "status_class"],
)
DENIALS = Counter(
    "gateway_denials",
    "Requests the gateway refused (decision denied), by configured target and reason class.",
    ["target", "reason"],
)
METER_REFUSALS = Counter(
    "gateway_meter_refusals",
    "Calls meters refused: limit_reached (429) or store_unavailable (a fail-closed meter, 503).",
    ["reason"],
)
METER_FAIL_OPENS = Counter(
    "gateway_meter_fail_opens",
    "Calls let through unmetered because the meters' counters were unreachable (fail-open meters).",
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_latency_seconds",
    "Seconds from sending a request upstream to the upstream's response headers, by target.",
    ["target"],
    buckets=UPSTREAM_BUCKETS,
)
AUDIT_LAG_EVENTS = Gauge(
    "gateway_audit_lag_events",
    "Audit events written ahead to disk and not yet in the database (summed over live processes).",
    multiprocess_mode="livesum",
)
AUDIT_LAG_SECONDS = Gauge(
    "gateway_audit_lag_seconds",
    "Age of the oldest audit event not yet in the database, 0 when none waits (max over processes).",
    multiprocess_mode="livemax",
)
POLICY_CACHE_AGE = Gauge(
    "gateway_policy_cache_age_seconds",
    "Seconds since the compiled-policy cache was last emptied by a configuration change or start "
    "(max over live processes).",
    multiprocess_mode="livemax",
)
POLICY_CACHE_ENTRIES = Gauge(
    "gateway_policy_cache_entries",
    "Compiled targets and credentials held in the policy cache (max over live processes).",
    multiprocess_mode="livemax",
)

_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_calls: dict[tuple[str, str, int], Any] = {}
_denials: dict[tuple[str, str], Any] = {}
_latency: dict[str, Any] = {}


_failed = False


def record_call(ctx: ProxyContext) -> None:
    """Count one finished request; observe its upstream latency when it reached the upstream.

    Never raises: a metrics failure (the multiprocess files' disk full ...) must not fail the call;
    it is logged once per process.
    """
    global _failed
    try:
        _record_call(ctx)
    except Exception:
        if not _failed:
            _failed = True
            logger.exception("metrics not recorded (logged once per process)")


def _record_call(ctx: ProxyContext) -> None:
    target = ctx.target
    slug = target.slug if target is not None else NO_TARGET
    status_class = ctx.status // 100 if 0 <= ctx.status < 600 else 0
    key = (slug, ctx.decision, status_class)
    calls = _calls.get(key)
    if calls is None:
        calls = _calls[key] = CALLS.labels(slug, ctx.decision, _STATUS_CLASSES[status_class])
    calls.inc()
    if ctx.upstream_seconds is not None:
        latency = _latency.get(slug)
        if latency is None:
            latency = _latency[slug] = UPSTREAM_LATENCY.labels(slug)
        latency.observe(ctx.upstream_seconds)
    if ctx.decision == "denied" or ctx.error_kind in _METER_REFUSALS:
        _record_refusal(slug, ctx.decision, ctx.error_kind or "unknown")


def _record_refusal(slug: str, decision: str, kind: str) -> None:
    if decision == "denied":
        denials = _denials.get((slug, kind))
        if denials is None:
            denials = _denials[(slug, kind)] = DENIALS.labels(slug, kind)
        denials.inc()
    meter_reason = _METER_REFUSALS.get(kind)
    if meter_reason is not None:
        METER_REFUSALS.labels(meter_reason).inc()


def record_meter_fail_open() -> None:
    """Count one call a fail-open meter let through while its counters were unreachable."""
    METER_FAIL_OPENS.inc()
