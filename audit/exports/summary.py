"""The figures of an export's PDF summary, each computed by the database (``GROUP BY``), never by
loading the period's events: only the grouped rows, and the (few, bounded) change-log entries, come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from audit.exports.events import period_events
from audit.exports.manifest import ExportScope
from audit.models import AuditEvent

TABLE_ROWS = 50  # rows of the per-agent, per-tool and per-reason tables (the rest summed as "others")
CHANGE_ROWS = 300  # change-log entries listed (credential lifecycle and policy changes each)
_CALL = Q(kind=AuditEvent.Kind.CALL)
_DENIED = Q(decision=AuditEvent.Decision.DENIED)
_ERROR = Q(decision=AuditEvent.Decision.ERROR)
_RATE_LIMITED = Q(status_code=429)


@dataclass
class ExportSummary:
    """Everything the PDF shows (see :func:`export_summary`)."""

    scope: ExportScope
    totals: dict[str, int]
    per_agent: list[dict[str, Any]]
    per_tool: list[dict[str, Any]]
    denials_by_reason: list[tuple[str, int]]
    rate_limited_by_agent: list[tuple[str, int]]
    redactions_by_kind: list[tuple[str, int]]
    filtered_items: int
    calls_per_day: list[tuple[date, int, int]]
    credential_lifecycle: list[dict[str, Any]] = field(default_factory=list)
    policy_changes: list[dict[str, Any]] = field(default_factory=list)
    more_changes: int = 0


def export_summary(scope: ExportScope) -> ExportSummary:
    """The summary of the scope's events."""
    events = period_events(tenant_id=scope.tenant_id, since=scope.since, until=scope.until)
    calls = events.filter(_CALL)
    summary = ExportSummary(
        scope=scope,
        totals=_totals(events),
        per_agent=_per_agent(calls),
        per_tool=_per_tool(calls),
        denials_by_reason=_top(calls.filter(_DENIED), "reason"),
        rate_limited_by_agent=_top(calls.filter(_RATE_LIMITED), "credential_name"),
        redactions_by_kind=_redactions_by_kind(scope),
        filtered_items=_filtered_items(scope),
        calls_per_day=_calls_per_day(calls),
    )
    _changes(events, summary)
    return summary


def _totals(events: QuerySet[AuditEvent]) -> dict[str, int]:
    return events.order_by().aggregate(
        events=Count("id"),
        calls=Count("id", filter=_CALL),
        allowed=Count("id", filter=_CALL & Q(decision=AuditEvent.Decision.ALLOWED)),
        denied=Count("id", filter=_CALL & _DENIED),
        errors=Count("id", filter=_CALL & _ERROR),
        rate_limited=Count("id", filter=_CALL & _RATE_LIMITED),
        changes=Count("id", filter=Q(kind=AuditEvent.Kind.CHANGE)),
        tool_events=Count("id", filter=Q(kind__startswith="tool_")),
        agents=Count("credential_id", distinct=True, filter=_CALL),
    )


def _per_agent(calls: QuerySet[AuditEvent]) -> list[dict[str, Any]]:
    rows = (
        calls.order_by()
        .values("credential_id", "credential_name", "credential_prefix")
        .annotate(
            calls=Count("id"),
            denied=Count("id", filter=_DENIED),
            errors=Count("id", filter=_ERROR),
            rate_limited=Count("id", filter=_RATE_LIMITED),
            tools=Count("tool", distinct=True),
        )
        .order_by("-calls", "credential_name")
    )
    return [dict(row) for row in rows[:TABLE_ROWS]]


def _per_tool(calls: QuerySet[AuditEvent]) -> list[dict[str, Any]]:
    rows = (
        calls.order_by()
        .values("target_slug", "tool")
        .annotate(
            calls=Count("id"),
            denied=Count("id", filter=_DENIED),
            errors=Count("id", filter=_ERROR),
            agents=Count("credential_id", distinct=True),
        )
        .order_by("-calls", "target_slug", "tool")
    )
    return [dict(row) for row in rows[:TABLE_ROWS]]


def _top(events: QuerySet[AuditEvent], column: str) -> list[tuple[str, int]]:
    rows = events.order_by().values(column).annotate(count=Count("id")).order_by("-count", column)
    return [(row[column] or "-", row["count"]) for row in rows[:TABLE_ROWS]]


def _calls_per_day(calls: QuerySet[AuditEvent]) -> list[tuple[date, int, int]]:
    rows = (
        calls.order_by()
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(calls=Count("id"), denied=Count("id", filter=_DENIED))
        .order_by("day")
    )
    return [(row["day"], row["calls"], row["denied"]) for row in rows]


# What redaction found, by kind, and what response filters removed, summed over the JSON of each
# event's ``protections`` by the database itself (the JSON functions differ between the two backends).
_REDACTIONS_SQL = {
    "postgresql": (
        "SELECT kind.key, SUM(kind.value::numeric) FROM audit_auditevent event"
        " CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(event.protections->'redactions')"
        " WHEN 'array' THEN event.protections->'redactions' ELSE '[]'::jsonb END) AS redaction"
        " CROSS JOIN LATERAL jsonb_each(CASE jsonb_typeof(redaction->'kinds') WHEN 'object'"
        " THEN redaction->'kinds' ELSE '{}'::jsonb END) AS kind"
        " WHERE event.tenant_id = %s AND event.created_at >= %s AND event.created_at < %s"
        " AND jsonb_typeof(kind.value) = 'number' GROUP BY kind.key ORDER BY 2 DESC, 1"
    ),
    "sqlite": (
        "SELECT kind.key, SUM(kind.value) FROM audit_auditevent event,"
        " json_each(event.protections, '$.redactions') AS redaction,"
        " json_each(redaction.value, '$.kinds') AS kind"
        " WHERE event.tenant_id = %s AND event.created_at >= %s AND event.created_at < %s"
        " AND kind.type IN ('integer', 'real') GROUP BY kind.key ORDER BY 2 DESC, 1"
    ),
}
_FILTERED_SQL = {
    "postgresql": (
        "SELECT COALESCE(SUM((item->>'removed')::numeric), 0) FROM audit_auditevent event"
        " CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(event.protections->'filters')"
        " WHEN 'array' THEN event.protections->'filters' ELSE '[]'::jsonb END) AS item"
        " WHERE event.tenant_id = %s AND event.created_at >= %s AND event.created_at < %s"
        " AND jsonb_typeof(item->'removed') = 'number'"
    ),
    "sqlite": (
        "SELECT COALESCE(SUM(json_extract(item.value, '$.removed')), 0) FROM audit_auditevent event,"
        " json_each(event.protections, '$.filters') AS item"
        " WHERE event.tenant_id = %s AND event.created_at >= %s AND event.created_at < %s"
        " AND json_type(item.value, '$.removed') IN ('integer', 'real')"
    ),
}


def _period_parameters(scope: ExportScope) -> list[Any]:
    adapt = connection.ops.adapt_datetimefield_value  # SQLite stores UTC text, PostgreSQL timestamptz
    return [scope.tenant_id, adapt(scope.since), adapt(scope.until)]


def _redactions_by_kind(scope: ExportScope) -> list[tuple[str, int]]:
    sql = _REDACTIONS_SQL.get(connection.vendor)
    if sql is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, _period_parameters(scope))
        return [(str(kind), int(total)) for kind, total in cursor.fetchall()[:TABLE_ROWS]]


def _filtered_items(scope: ExportScope) -> int:
    sql = _FILTERED_SQL.get(connection.vendor)
    if sql is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(sql, _period_parameters(scope))
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _changes(events: QuerySet[AuditEvent], summary: ExportSummary) -> None:
    """Credential lifecycle and every other configuration change, from the change log."""
    changes = events.filter(kind=AuditEvent.Kind.CHANGE).order_by("created_at", "id")
    credentials = changes.filter(details__object_type="credential")
    others = changes.exclude(details__object_type="credential")
    summary.credential_lifecycle = [
        _lifecycle_entry(row) for row in credentials.values("created_at", "details")[:CHANGE_ROWS]
    ]
    summary.policy_changes = [
        _change_entry(row) for row in others.values("created_at", "details")[:CHANGE_ROWS]
    ]
    summary.more_changes = max(0, credentials.count() - CHANGE_ROWS) + max(0, others.count() - CHANGE_ROWS)


def _change_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    details = row["details"] if isinstance(row["details"], dict) else {}
    changes = details.get("changes")
    return {
        "at": row["created_at"],
        "actor": str(details.get("actor", "")),
        "source": str(details.get("source", "")),
        "action": str(details.get("action", "")),
        "object_type": str(details.get("object_type", "")),
        "object": str(details.get("object", "")),
        "fields": sorted(changes) if isinstance(changes, dict) else [],
    }


def _lifecycle_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """A credential's change as the lifecycle step it is: issued, rotated, revoked, deactivated ..."""
    entry = _change_entry(row)
    changes = row["details"].get("changes", {}) if isinstance(row["details"], dict) else {}
    entry["step"] = lifecycle_step(entry["action"], changes if isinstance(changes, dict) else {})
    return entry


def lifecycle_step(action: str, changes: dict[str, Any]) -> str:
    if action == "create":
        return "issued"
    if action == "delete":
        return "deleted"
    steps = []
    if "secret_hash" in changes or "jwt_hs256_secret_encrypted" in changes:
        steps.append("rotated")
    if _set_now(changes.get("deactivated_at")):
        steps.append("deactivated")
    elif _set_now(changes.get("revoked_at")):
        steps.append("revoked")
    return ", ".join(steps) or "changed"


def _set_now(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("after") not in (None, "") and not entry.get("before")


def day_label(day: date | datetime) -> str:
    return day.strftime("%m-%d")
