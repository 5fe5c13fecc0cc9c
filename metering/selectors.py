"""Reads of meters and of their counters (sync; the proxy's cache runs the first in a thread)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from metering.compiler import CompiledMeter, compile_meter, whole
from metering.limiter import LimiterAdmin, MeterReading, MeterStoreUnavailable
from metering.models import Meter


def meters_for_call_query(*, tenant_id: int, target_id: int, credential_id: int) -> QuerySet[Meter]:
    """The meters a call of ``credential_id`` on ``target_id`` meets: its own, its target's, its tenant's."""
    return Meter.objects.filter(tenant_id=tenant_id).filter(
        Q(credential_id=credential_id, target_id__isnull=True)
        | Q(credential_id=credential_id, target_id=target_id)
        | Q(credential_id__isnull=True, target_id=target_id)
        | Q(credential_id__isnull=True, target_id__isnull=True)
    )


def compiled_meters_for_call(*, tenant_id: int, target_id: int, credential_id: int) -> tuple[CompiledMeter, ...]:
    """The compiled meters of one (credential, target) pair, in id order (one query)."""
    query = meters_for_call_query(tenant_id=tenant_id, target_id=target_id, credential_id=credential_id)
    return tuple(compile_meter_row(meter) for meter in query.order_by("id"))


def compile_meter_row(meter: Meter) -> CompiledMeter:
    return compile_meter(
        meter_id=meter.pk,
        tenant_id=meter.tenant_id,
        target_id=meter.target_id,
        credential_id=meter.credential_id,
        kind=meter.kind,
        window=meter.window,
        limit=meter.limit,
        fail_mode=meter.fail_mode,
        route=meter.route,
        value_paths=list(meter.value_paths),
        created_at=meter.created_at,
    )


@dataclass(frozen=True)
class MeterUsage:
    """A meter's current use, as the admin and ``check_access`` show it."""

    meter: CompiledMeter
    used: float | None  # None when the counters cannot be read
    resets_at: datetime | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.meter.describe(),
            "used": None if self.used is None else whole(round(self.used, 6)),
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "note": self.note,
        }


def meter_usage_list(
    meters: tuple[CompiledMeter, ...], *, limiter: LimiterAdmin | None, now: float | None = None
) -> list[MeterUsage]:
    """The current use of each meter; without readable counters, the reason instead."""
    if not meters:
        return []
    if limiter is None:
        note = "current use is kept inside the gateway process (embedded default, no REDIS_URL)"
        return [MeterUsage(meter, None, None, note) for meter in meters]
    now = time.time() if now is None else now
    try:
        readings = limiter.peek(meters, now)
    except MeterStoreUnavailable as exc:
        return [MeterUsage(meter, None, None, str(exc)) for meter in meters]
    return [_usage(reading, now) for reading in readings]


def _usage(reading: MeterReading, now: float) -> MeterUsage:
    resets_at = datetime.fromtimestamp(now, UTC) + timedelta(milliseconds=reading.reset_ms)
    return MeterUsage(reading.meter, reading.used, resets_at if reading.reset_ms > 0 else None)
