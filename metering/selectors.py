"""Reads of meters and of their counters (sync; the proxy's cache runs the first in a thread)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from gateway.models import Credential, Target, Tenant
from gateway.proxy.jsonrpc import PLUMBING_METHODS, Route
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


def compiled_meters_for_call(
    *, tenant_id: int, target_id: int, credential_id: int
) -> tuple[CompiledMeter, ...]:
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

    def as_line(self) -> str:
        meter = self.meter
        counted = (
            "calls" if not meter.counts_values else "of " + " + ".join(p.text for p in meter.value_paths)
        )
        where = f" matching {meter.route}" if meter.route else ""
        scope = f"{meter.scope} {meter.scope_id}"
        head = f"meter {meter.name} ({scope}, {counted}{where}, fails {meter.fail_mode}): "
        if self.used is None:
            return f"{head}limit {whole(meter.limit)} per {meter.window}; current use unknown: {self.note}"
        resets = f", room back at {self.resets_at:%Y-%m-%d %H:%M:%S} UTC" if self.resets_at else ""
        return f"{head}{whole(round(self.used, 6))} of {whole(meter.limit)} per {meter.window} used{resets}"


def meter_usage_for_credential(
    *, credential: Credential, routes: list[tuple[str, str]], limiter: LimiterAdmin | None
) -> list[MeterUsage]:
    """The meters that would count a call of ``credential`` to any of ``routes``, with their use.

    Target meters of every target the credential is bound to are included (each applies only to
    calls on its own target).
    """
    target_ids = list(credential.targets.values_list("id", flat=True))
    query = Meter.objects.filter(tenant_id=credential.tenant_id).filter(
        Q(credential_id=credential.pk)
        | Q(credential_id__isnull=True, target_id__in=target_ids)
        | Q(credential_id__isnull=True, target_id__isnull=True)
    )
    candidates = [Route(method, path, plumbing=_is_plumbing(path)) for method, path in routes]
    meters = tuple(
        meter
        for meter in (compile_meter_row(row) for row in query.order_by("id"))
        if any(meter.counts(route) for route in candidates)
    )
    return meter_usage_list(meters, limiter=limiter)


def _is_plumbing(path: str) -> bool:
    method = path.lstrip("/")
    return method in PLUMBING_METHODS or method.startswith("notifications/")


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


def meter_list(
    *, tenant: Tenant | None = None, target: Target | None = None, credential: Credential | None = None
) -> QuerySet[Meter]:
    """Meters in id order, narrowed to a tenant, or to those scoped to a target or a credential."""
    meters = Meter.objects.select_related("tenant", "target").order_by("id")
    if tenant is not None:
        meters = meters.filter(tenant=tenant)
    if target is not None:
        meters = meters.filter(target=target)
    if credential is not None:
        meters = meters.filter(credential=credential)
    return meters
