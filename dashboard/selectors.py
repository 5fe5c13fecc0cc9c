"""What the dashboard shows, read with SQL aggregation over the audit trail of one tenant and period.

Every read is bounded by tenant and time (the ``(tenant, created_at)`` index of AuditEvent) and
aggregated in the database: counts per time bucket, per tool and per agent in one scan
(``GROUPING SETS`` on PostgreSQL, one ``GROUP BY`` each elsewhere), latency percentiles with
``percentile_cont`` on PostgreSQL (other backends: nearest rank over the latencies, read in order).
No query returns a row per event, so a page costs the same few queries at 100 calls or at 100,000;
reading the period's rows is the cost, hence as few scans as possible (``bench/dashboard_bench.py``).
A period starts at its first bucket (up to one bucket more than its nominal span), for every panel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, QuerySet
from django.db.models.functions import Trunc
from django.urls import reverse

from audit.models import AuditEvent
from metering.models import Meter
from metering.rollups import percentile
from metering.runtime import admin_limiter
from metering.selectors import compile_meter_row, meter_usage_list

TOP_ITEMS = 8
RECENT_DENIALS = 15


@dataclass(frozen=True, slots=True)
class Period:
    """A time span the dashboard covers, cut into ``bucket``-long steps (read per ``trunc`` unit)."""

    key: str
    label: str
    span: timedelta
    bucket: timedelta
    trunc: str
    time_format: str

    def buckets(self, now: datetime) -> list[datetime]:
        """The start of every bucket from ``now - span`` up to ``now``, oldest first."""
        size = self.bucket.total_seconds()
        last = datetime.fromtimestamp(now.timestamp() // size * size, tz=UTC)
        count = int(self.span / self.bucket)
        return [last - self.bucket * (count - 1 - index) for index in range(count)]


PERIODS: dict[str, Period] = {
    "1h": Period("1h", "Last hour", timedelta(hours=1), timedelta(minutes=1), "minute", "%H:%M"),
    "24h": Period("24h", "Last 24 hours", timedelta(hours=24), timedelta(minutes=15), "minute", "%H:%M"),
    "7d": Period("7d", "Last 7 days", timedelta(days=7), timedelta(hours=3), "hour", "%a %H:%M"),
}
DEFAULT_PERIOD = "24h"


@dataclass(frozen=True, slots=True)
class Activity:
    """Counts per bucket (one list entry per bucket) and over the whole period."""

    buckets: list[datetime]
    calls: list[int]
    denials: list[int]
    rate_limited: list[int]
    redactions: list[int]

    def total(self, name: str) -> int:
        values: list[int] = getattr(self, name)
        return sum(values)


SERIES = ("calls", "denials", "rate_limited", "redactions")


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


def calls_in_period(*, tenant_id: int, since: datetime) -> QuerySet[AuditEvent]:
    """The proxied calls of one tenant from ``since`` on."""
    return AuditEvent.objects.filter(tenant_id=tenant_id, created_at__gte=since, kind=AuditEvent.Kind.CALL)


@dataclass(frozen=True, slots=True)
class CallSummary:
    """The period's activity over time, and its most frequent tools and agents (with denials)."""

    activity: Activity
    tools: list[dict[str, Any]]
    agents: list[dict[str, Any]]


#: One row of the grouped counts: which grouping ("unit", "tool" or "agent"), its key, and the counts
#: of calls, denials, rate-limit refusals and calls with redactions.
Group = tuple[str, Any, int, int, int, int]


def call_summary(*, tenant_id: int, period: Period, now: datetime) -> CallSummary:
    """Counts per bucket, per tool and per agent over the period that starts at its first bucket.

    PostgreSQL reads the period's calls once (``GROUPING SETS``: one scan, a hash table per
    grouping); other backends run one ``GROUP BY`` per grouping. Both give the same groups.
    """
    buckets = period.buckets(now)
    reader = grouped_in_one_scan if connection.vendor == "postgresql" else grouped_one_by_one
    return fold_groups(reader(tenant_id=tenant_id, period=period, since=buckets[0]), buckets, period)


def grouped_one_by_one(*, tenant_id: int, period: Period, since: datetime) -> list[Group]:
    """The groups with one ORM query per grouping (any backend)."""
    calls = calls_in_period(tenant_id=tenant_id, since=since)
    counts = {
        "calls": Count("id"),
        "denials": Count("id", filter=Q(decision=AuditEvent.Decision.DENIED)),
        "rate_limited": Count("id", filter=Q(status_code=429)),
        "redactions": Count("id", filter=Q(protections__redactions__0__isnull=False)),
    }
    groups: list[Group] = []
    by_unit = calls.annotate(unit=Trunc("created_at", period.trunc)).values("unit")
    for name, query, key in (
        ("unit", by_unit, "unit"),
        ("tool", calls.values("tool"), "tool"),
        ("agent", calls.values("credential_name"), "credential_name"),
    ):
        for value, *figures in query.annotate(**counts).order_by().values_list(key, *counts):
            groups.append((name, value, *figures))
    return groups


_GROUPED_SQL = """
SELECT GROUPING(unit), GROUPING(tool), unit, tool, credential_name, COUNT(*),
       COUNT(*) FILTER (WHERE decision = 'denied'), COUNT(*) FILTER (WHERE status_code = 429),
       COUNT(*) FILTER (WHERE redacted)
FROM (
    SELECT date_trunc(%s, created_at AT TIME ZONE 'UTC') AS unit, tool, credential_name, decision,
           status_code, (protections -> 'redactions' -> 0) IS NOT NULL AS redacted
    FROM {table} WHERE tenant_id = %s AND created_at >= %s AND kind = 'call'
) AS calls
GROUP BY GROUPING SETS ((unit), (tool), (credential_name))
"""


def grouped_in_one_scan(*, tenant_id: int, period: Period, since: datetime) -> list[Group]:
    """The groups with one PostgreSQL query (``GROUPING SETS``)."""
    sql = _GROUPED_SQL.format(table=connection.ops.quote_name(AuditEvent._meta.db_table))
    groups: list[Group] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, [period.trunc, tenant_id, since])
        for not_unit, not_tool, unit, tool, agent, *figures in cursor.fetchall():
            if not not_unit:
                groups.append(("unit", unit.replace(tzinfo=UTC), *figures))
            elif not not_tool:
                groups.append(("tool", tool, *figures))
            else:
                groups.append(("agent", agent, *figures))
    return groups


def fold_groups(groups: list[Group], buckets: list[datetime], period: Period) -> CallSummary:
    """The groups as series per bucket (each ``trunc`` unit added to the bucket it falls in) and the
    top tools and agents (a blank name, e.g. a call that was not a tool call, left out)."""
    index = {bucket: position for position, bucket in enumerate(buckets)}
    size = period.bucket.total_seconds()
    series: dict[str, list[int]] = {name: [0] * len(buckets) for name in SERIES}
    ranked: dict[str, list[dict[str, Any]]] = {"tool": [], "agent": []}
    for name, key, *figures in groups:
        if name == "unit":
            start = datetime.fromtimestamp(key.timestamp() // size * size, tz=UTC)
            position = index.get(start)
            for values, figure in zip(series.values(), figures, strict=True):
                if position is not None:
                    values[position] += figure
        elif key:
            ranked[name].append({"name": key, "calls": figures[0], "denials": figures[1]})
    for rows in ranked.values():
        rows.sort(key=lambda row: (-row["calls"], row["name"]))
    activity = Activity(buckets=buckets, **series)
    return CallSummary(activity, ranked["tool"][:TOP_ITEMS], ranked["agent"][:TOP_ITEMS])


def latency_by_target(*, tenant_id: int, since: datetime) -> list[dict[str, Any]]:
    """Median and 95th percentile latency (ms) of the forwarded (allowed) calls per target."""
    allowed = (
        calls_in_period(tenant_id=tenant_id, since=since)
        .filter(decision=AuditEvent.Decision.ALLOWED)
        .exclude(target_slug="")
    )
    if connection.vendor == "postgresql":
        return _dicts(
            allowed.values("target_slug")
            .annotate(
                calls=Count("id"),
                p50=PercentileCont("latency_ms", 0.5),
                p95=PercentileCont("latency_ms", 0.95),
            )
            .order_by("-calls", "target_slug")[:TOP_ITEMS]
        )
    return _latency_in_python(allowed)


def _latency_in_python(allowed: QuerySet[AuditEvent]) -> list[dict[str, Any]]:
    latencies: dict[str, list[float]] = {}
    for slug, latency in (
        allowed.order_by("target_slug", "latency_ms")
        .values_list("target_slug", "latency_ms")
        .iterator(chunk_size=5000)
    ):
        latencies.setdefault(slug, []).append(latency)
    rows: list[dict[str, Any]] = [
        {
            "target_slug": slug,
            "calls": len(values),
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
        }
        for slug, values in latencies.items()
    ]
    return sorted(rows, key=lambda row: (-row["calls"], row["target_slug"]))[:TOP_ITEMS]


def recent_denials(*, tenant_id: int, since: datetime) -> list[dict[str, Any]]:
    """The newest denials with their reasons, each with the address of its page in the admin."""
    rows = _dicts(
        calls_in_period(tenant_id=tenant_id, since=since)
        .filter(decision=AuditEvent.Decision.DENIED)
        .values(
            "id", "created_at", "credential_name", "target_slug", "tool", "route", "status_code", "reason"
        )[:RECENT_DENIALS]
    )
    for row in rows:
        row["admin_url"] = reverse("admin:audit_auditevent_change", args=[row["id"]])
    return rows


def _dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """``values()`` rows as plain dicts (the template and the charts add keys of their own)."""
    return [dict(row) for row in rows]


@dataclass(frozen=True, slots=True)
class MeterShare:
    """One meter with its current use; ``share`` None when the counters cannot be read."""

    label: str
    used: float | None
    limit: float
    share: float | None
    note: str


def meters_near_limits(*, tenant_id: int) -> list[MeterShare]:
    """The tenant's meters, fullest first (those whose use is unknown last)."""
    rows = list(
        Meter.objects.filter(tenant_id=tenant_id).select_related("target", "credential").order_by("id")
    )
    usages = meter_usage_list(
        tuple(compile_meter_row(row) for row in rows), limiter=admin_limiter(in_gateway_process=True)
    )
    shares = []
    by_id = {row.pk: row for row in rows}
    for usage in usages:
        meter, row = usage.meter, by_id[usage.meter.id]
        share = None if usage.used is None else usage.used / meter.limit if meter.limit else 1.0
        owner = row.credential.name if row.credential else row.target.slug if row.target else "whole tenant"
        counted = "values" if meter.counts_values else "calls"
        label = f"{meter.name} · {owner} · {counted} per {meter.window}"
        shares.append(MeterShare(label, usage.used, meter.limit, share, usage.note))
    shares.sort(key=lambda item: (item.share is None, -(item.share or 0.0)))
    return shares[:TOP_ITEMS]
