"""Many audit events at once, written by the database itself (PostgreSQL) or in large batches (SQLite):
for the export tests and the benchmark, which need 100,000 rows in seconds, not through the proxy."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import connection

from audit.models import AuditEvent

_POSTGRES_INSERT = """
INSERT INTO audit_auditevent (
    event_id, created_at, request_id, tenant_id, credential_name, credential_prefix, target_slug,
    http_method, path, route, jsonrpc_method, tool, jsonrpc_id, session_id, kind, decision, reason,
    status_code, latency_ms, request_bytes, response_bytes, client_ip, meter_notes, response_values,
    protections, details
)
SELECT gen_random_uuid(), %s + n * interval '1 millisecond', 'bulk-' || n, %s, 'agent-' || (n %% 7),
    'pfx' || (n %% 7), 'docs', 'POST', '/mcp/docs/', 'tools/call search', 'tools/call', 'search-' || (n %% 13),
    n::text, 'session-' || (n %% 100), 'call', CASE WHEN n %% 10 = 0 THEN 'denied' ELSE 'allowed' END,
    CASE WHEN n %% 10 = 0 THEN 'no rule allows' ELSE '' END, 200, 12.5, 300, 2000, '127.0.0.1',
    '[]'::jsonb, '{}'::jsonb, '{}'::jsonb, '{}'::jsonb
FROM generate_series(1, %s) AS n
"""


def bulk_events(*, tenant_id: int, count: int, start: datetime) -> None:
    """``count`` call events of the tenant, one millisecond apart from ``start``."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_POSTGRES_INSERT, [start, tenant_id, count])
        return
    batch: list[AuditEvent] = []
    for n in range(1, count + 1):
        batch.append(
            AuditEvent(
                event_id=uuid.uuid4(),
                created_at=start + timedelta(milliseconds=n),
                request_id=f"bulk-{n}",
                tenant_id=tenant_id,
                credential_name=f"agent-{n % 7}",
                target_slug="docs",
                http_method="POST",
                path="/mcp/docs/",
                tool=f"search-{n % 13}",
                decision="denied" if n % 10 == 0 else "allowed",
                status_code=200,
                latency_ms=12.5,
            )
        )
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
