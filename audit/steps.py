"""The audit step: always run last, in ``finally``, once the response has gone out."""

from __future__ import annotations

import time

from audit.sink import AuditRecord
from gateway.proxy.context import ProxyContext

_MAX_FIELD = {
    "path": 2000,
    "route": 2000,
    "tool": 500,
    "jsonrpc_method": 200,
    "jsonrpc_id": 200,
    "reason": 500,
}


def build_audit_record(ctx: ProxyContext) -> AuditRecord:
    """The AuditEvent field values for one finished request. Holds no secret: no token, no header."""
    named = [r for r in ctx.routes if r.jsonrpc_method]
    record: AuditRecord = {
        "created_at": ctx.started_at,
        "request_id": ctx.request_id,
        "tenant_id": ctx.target.tenant_id if ctx.target else None,
        "target_id": ctx.target.id if ctx.target else None,
        "credential_id": ctx.credential.id if ctx.credential else None,
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
        "request_bytes": len(ctx.body) if ctx.body else int(ctx.headers.get("content-length", "0") or 0),
        "response_bytes": ctx.response_bytes,
        "client_ip": ctx.client_ip,
        "meter_notes": list(ctx.metering.notes) if ctx.metering else [],
        "response_values": dict(ctx.metering.values) if ctx.metering else {},
    }
    for field, limit in _MAX_FIELD.items():
        record[field] = record[field][:limit]
    return record


async def record_audit(ctx: ProxyContext) -> None:
    """Reads the whole context; hands its audit record to the background writer (never blocks)."""
    ctx.runtime.audit.submit(build_audit_record(ctx))
