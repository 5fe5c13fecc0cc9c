"""The audit step: run by the view once per request, just before the response completes.

The view calls it before the final body message goes out (so an answered call is on disk before
the agent has its answer), or in ``finally`` for a call that failed or was cut off; either way
exactly once per request.
"""

from __future__ import annotations

import time
from typing import Any

from audit.records import AuditRecord
from gateway.metrics.recording import record_call
from gateway.proxy.context import ProxyContext

# Bounds the write-ahead line; the writer sanitises every value again against its column.
_MAX_FIELD = {
    "path": 2000,
    "route": 2000,
    "tool": 500,
    "jsonrpc_method": 200,
    "jsonrpc_id": 200,
    "reason": 500,
}


def build_audit_record(ctx: ProxyContext) -> AuditRecord:
    """The AuditEvent field values for one request. Holds no secret: no token, no header.

    ``request_bytes`` counts the body bytes the gateway actually read, never a declared
    ``Content-Length`` that was not honoured.
    """
    named = [r for r in ctx.routes if r.jsonrpc_method]
    credential = ctx.credential
    record: AuditRecord = {
        "created_at": ctx.started_at,
        "request_id": ctx.request_id[:100],
        "tenant_id": ctx.target.tenant_id if ctx.target else None,
        "target_id": ctx.target.id if ctx.target else None,
        "credential_id": credential.id if credential else None,
        "credential_name": credential.name if credential else "",
        "credential_prefix": credential.prefix if credential else "",
        "target_slug": ctx.target_slug[:100],
        "http_method": ctx.method[:10],
        "path": ctx.path,
        "route": ", ".join(str(r) for r in ctx.routes),
        "jsonrpc_method": ", ".join(dict.fromkeys(r.jsonrpc_method for r in named)),
        "tool": ", ".join(dict.fromkeys(r.name for r in named if r.jsonrpc_method == "tools/call")),
        "jsonrpc_id": ", ".join(str(r.id) for r in ctx.routes if r.has_id),
        "session_id": ctx.agent_session_id[:300],
        "decision": ctx.decision,
        "reason": ctx.reason,
        "status_code": ctx.status,
        "upstream_status": ctx.upstream_status,
        "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 3),
        "request_bytes": len(ctx.body),
        "response_bytes": ctx.response_bytes,
        "client_ip": ctx.client_ip,
        "meter_notes": list(ctx.metering.notes) if ctx.metering else [],
        "response_values": dict(ctx.metering.values) if ctx.metering else {},
        "protections": _protections(ctx),
    }
    for field, limit in _MAX_FIELD.items():
        record[field] = record[field][:limit]
    return record


async def record_audit(ctx: ProxyContext) -> None:
    """Reads the whole context; appends its audit record to the write-ahead file (never waits on the DB),
    hands it to the dashboard's live feed (a list append: ``dashboard.feed.FeedPublisher.offer``) and
    counts the request in the metrics (``gateway.metrics.recording.record_call``)."""
    record = build_audit_record(ctx)
    ctx.runtime.audit.submit(record)
    ctx.runtime.feed.offer(record)
    record_call(ctx)


def _protections(ctx: ProxyContext) -> dict[str, Any]:
    """What filters and redaction did, and which tools a listing hid (names and why)."""
    protections = ctx.protection_tally.as_audit() if ctx.protection_tally else {}
    if ctx.hidden_tools:
        protections["hidden_tools"] = dict(ctx.hidden_tools)
    return protections
