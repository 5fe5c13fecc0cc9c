"""What the dashboard shows, read with SQL aggregation over the audit trail of one tenant and period.

Every read is bounded by tenant and time (the ``(tenant, created_at)`` index of AuditEvent) and
aggregated in the database: per-bucket counts with conditional ``COUNT``s, top tools and agents with
``GROUP BY ... LIMIT``, latency percentiles with ``percentile_cont`` on PostgreSQL (other backends:
nearest rank over the latencies, read in order). No query returns a row per event, so a page costs
the same few queries at 100 calls or at 100,000 (``bench/dashboard_bench.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
        last = datetime.fromtimestamp(now.timestamp() // size * size, tz=now.tzinfo)
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


def activity_over_time(*, tenant_id: int, period: Period, now: datetime) -> Activity:
    """Calls, denials, rate-limit refusals (429) and calls with redactions, per bucket (one query)."""
    buckets = period.buckets(now)
    index = {bucket: position for position, bucket in enumerate(buckets)}
    size = period.bucket.total_seconds()
    rows = (
        calls_in_period(tenant_id=tenant_id, since=buckets[0])
        .annotate(unit=Trunc("created_at", period.trunc))
        .values("unit")
        .annotate(
            calls=Count("id"),
            denials=Count("id", filter=Q(decision=AuditEvent.Decision.DENIED)),
            rate_limited=Count("id", filter=Q(status_code=429)),
            redactions=Count("id", filter=Q(protections__redactions__0__isnull=False)),
        )
        .order_by()
    )
    series: dict[str, list[int]] = {name: [0] * len(buckets) for name in SERIES}
    for row in _dicts(rows):
        start = datetime.fromtimestamp(row["unit"].timestamp() // size * size, tz=now.tzinfo)
        position = index.get(start)
        if position is None:
            continue
        for name, values in series.items():
            values[position] += row[name]
    return Activity(buckets=buckets, **series)


def top_tools(*, tenant_id: int, since: datetime) -> list[dict[str, Any]]:
    """The tools called most, with their call and denial counts."""
    return _dicts(
        calls_in_period(tenant_id=tenant_id, since=since)
        .exclude(tool="")
        .values("tool")
        .annotate(calls=Count("id"), denials=Count("id", filter=Q(decision=AuditEvent.Decision.DENIED)))
        .order_by("-calls", "tool")[:TOP_ITEMS]
    )


def top_agents(*, tenant_id: int, since: datetime) -> list[dict[str, Any]]:
    """The credentials (by their name at call time) that called most, with their denial counts."""
    return _dicts(
        calls_in_period(tenant_id=tenant_id, since=since)
        .exclude(credential_name="")
        .values("credential_name")
        .annotate(calls=Count("id"), denials=Count("id", filter=Q(decision=AuditEvent.Decision.DENIED)))
        .order_by("-calls", "credential_name")[:TOP_ITEMS]
    )


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
