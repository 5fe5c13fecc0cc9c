"""Writes of the metering app: meters, counter resets (audited) and the usage rollups."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Max, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from audit.models import AuditEvent
from audit.records import event_record
from audit.writer import write_records
from gateway.models import Credential, Target, Tenant
from gateway.updates import model_update
from metering.limiter import LimiterAdmin
from metering.models import Meter, RollupCursor, UsageRollup
from metering.rollups import DAY, HOUR, GroupKey, Tally, day_start, hour_start, tally
from metering.selectors import compile_meter_row, meter_usage_list


def meter_create(
    *,
    tenant: Tenant,
    target: Target | None = None,
    credential: Credential | None = None,
    kind: str,
    window: str,
    limit: float,
    route: str = "",
    value_paths: Iterable[str] = (),
    fail_mode: str = Meter.FailMode.OPEN,
    description: str = "",
) -> Meter:
    """Create a meter. Its scope is the credential if given, else the target if given, else the tenant.

    Raises ValidationError for a target or credential of another tenant, a fractional request
    count, an invalid route or JSON path (with the parser's message).
    """
    meter = Meter(
        tenant=tenant,
        target=target,
        credential=credential,
        kind=kind,
        window=window,
        limit=limit,
        route=route.strip(),
        value_paths=[path.strip() for path in value_paths],
        fail_mode=fail_mode,
        description=description,
    )
    meter.full_clean()
    meter.save()
    return meter


@transaction.atomic
def meter_delete(*, meter: Meter) -> None:
    """Remove a meter: calls are no longer counted or refused by it (its audit events stay)."""
    meter.delete()


def meter_reset(*, meter: Meter, actor: str, limiter: LimiterAdmin) -> float | None:
    """Forget a meter's counts in its current window and record who did it in the audit trail.

    Returns the use it had (None when it could not be read). Raises MeterStoreUnavailable when the
    counters cannot be reached: then nothing is reset and nothing is audited.
    """
    compiled = compile_meter_row(meter)
    now = time.time()
    [before] = meter_usage_list((compiled,), limiter=limiter, now=now)
    limiter.reset(compiled, now)
    used = "unknown" if before.used is None else f"{before.used:g}"
    write_records([_reset_audit_record(meter, actor, used)])
    return before.used


def _reset_audit_record(meter: Meter, actor: str, used: str) -> dict[str, object]:
    reason = f"meter {meter.name} counter reset by {actor} (was {used} of {meter.limit:g} per {meter.window})"
    return event_record(
        kind=AuditEvent.Kind.ADMIN,
        reason=reason[:500],
        tenant_id=meter.tenant_id,
        target_id=meter.target_id,
        credential_id=meter.credential_id,
        http_method="POST",
        path="admin: reset meter counter",
        route=f"meter {meter.name}",
        status_code=200,
        meter_notes=[reason],
    )


@dataclass(frozen=True)
class RollupReport:
    """What one rollup run recomputed."""

    hours: int
    days: int
    rows: int
    last_event_id: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@transaction.atomic
def usage_rollup_run(*, now: datetime | None = None, since: datetime | None = None) -> RollupReport:
    """Recompute the hourly and daily rollups that new audit events touched, and the current ones.

    Hours touched by audit events added since the last run (late ones included), the current and
    previous hour, every hour from ``since`` when given, and the days holding them are recomputed
    whole, in one transaction that also moves the cursor: a second run, or a run after a crash
    halfway, gives the same rows. Concurrent runs queue on the cursor row.
    """
    now = now or timezone.now()
    cursor = _locked_cursor()
    newest = AuditEvent.objects.aggregate(newest=Max("id"))["newest"] or 0
    hours = set(_event_hours(AuditEvent.objects.filter(id__gt=cursor.last_event_id, id__lte=newest)))
    hours |= {hour_start(now) - HOUR, hour_start(now)}
    if since is not None:
        hours |= _hours_to_redo(since, now)
    days = {day_start(hour) for hour in hours}
    rows = sum(_recompute(UsageRollup.Period.HOUR, hour, hour + HOUR) for hour in sorted(hours))
    rows += sum(_recompute(UsageRollup.Period.DAY, day, day + DAY) for day in sorted(days))
    cursor.last_event_id = max(cursor.last_event_id, newest)
    cursor.save(update_fields=["last_event_id", "updated_at"])
    return RollupReport(hours=len(hours), days=len(days), rows=rows, last_event_id=cursor.last_event_id)


def _locked_cursor() -> RollupCursor:
    RollupCursor.objects.get_or_create(pk=1)
    return RollupCursor.objects.select_for_update().get(pk=1)


def _event_hours(events: QuerySet[AuditEvent]) -> list[datetime]:
    """The distinct hours the given audit events fall in."""
    return list(
        events.annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .order_by()
        .values_list("hour", flat=True)
        .distinct()
    )


def _hours_to_redo(since: datetime, now: datetime) -> set[datetime]:
    """Every hour since ``since`` that has audit events or rollup rows (stale rows are removed)."""
    events = AuditEvent.objects.filter(created_at__gte=hour_start(since), created_at__lte=now)
    rows = UsageRollup.objects.filter(period=UsageRollup.Period.HOUR, period_start__gte=hour_start(since))
    return set(_event_hours(events)) | set(rows.values_list("period_start", flat=True))


def _recompute(period: str, start: datetime, end: datetime) -> int:
    events = (
        AuditEvent.objects.filter(
            created_at__gte=start, created_at__lt=end, tenant_id__isnull=False, kind=AuditEvent.Kind.CALL
        )
        .order_by()
        .values_list(
            "tenant_id",
            "target_id",
            "credential_id",
            "tool",
            "decision",
            "status_code",
            "latency_ms",
            "response_values",
        )
    )
    groups = tally(events.iterator(chunk_size=2000))
    UsageRollup.objects.filter(period=period, period_start=start).delete()
    UsageRollup.objects.bulk_create(
        [_rollup(period, start, key, groups[key]) for key in sorted(groups, key=_sortable)]
    )
    return len(groups)


def _rollup(period: str, start: datetime, key: GroupKey, totals: Tally) -> UsageRollup:
    tenant_id, target_id, credential_id, tool = key
    return UsageRollup(
        period=period,
        period_start=start,
        tenant_id=tenant_id,
        target_id=target_id,
        credential_id=credential_id,
        tool=tool,
        **totals.fields(),
    )


def _sortable(key: GroupKey) -> tuple[int, int, int, str]:
    tenant_id, target_id, credential_id, tool = key
    return tenant_id, target_id or 0, credential_id or 0, tool


#: The meter fields an update may change (its tenant stays).
METER_UPDATE_FIELDS = (
    "target", "credential", "kind", "window", "limit", "route", "value_paths", "fail_mode", "description",
)  # fmt: skip


def meter_update(*, meter: Meter, data: dict[str, object]) -> Meter:
    """Change a meter; validated as meter_create validates (scope in the tenant, route, JSON paths).
    Every gateway process reloads it; its counts in the current window are kept."""
    values = dict(data)
    if "route" in values:
        values["route"] = str(values["route"]).strip()
    if "value_paths" in values and isinstance(values["value_paths"], list):
        values["value_paths"] = [str(path).strip() for path in values["value_paths"]]
    model_update(instance=meter, fields=METER_UPDATE_FIELDS, data=values)
    return meter
