"""Audit events as the proxy writes them, for the dashboard's tests and benchmark."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from audit.models import AuditEvent
from gateway.models import Target


def call_event(target: Target, *, ago: timedelta = timedelta(minutes=5), **fields: Any) -> AuditEvent:
    """One proxied ``tools/call`` of ``search`` on ``target`` by agent ``ci-agent``, allowed (200)."""
    return AuditEvent(**call_values(target, at=timezone.now() - ago, **fields))


def call_values(target: Target, *, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "created_at": at,
        "request_id": "req",
        "tenant_id": target.tenant_id,
        "target_id": target.pk,
        "target_slug": target.slug,
        "credential_name": "ci-agent",
        "http_method": "POST",
        "path": f"/mcp/{target.slug}/",
        "route": "POST /tools/search",
        "jsonrpc_method": "tools/call",
        "tool": "search",
        "decision": "allowed",
        "status_code": 200,
        "upstream_status": 200,
        "latency_ms": 12.0,
        **fields,
    }


def store(*events: AuditEvent) -> None:
    AuditEvent.objects.bulk_create(events)
