"""What the meter commands share: finding a meter by id (``12`` or its name ``m12``) and showing it,
with its current use when the counters can be read."""

from __future__ import annotations

from typing import Any

from gateway.management.commands._cli import row_by_id
from gateway.management.commands.create_meter import as_json
from metering.models import Meter
from metering.runtime import admin_limiter
from metering.selectors import MeterUsage, compile_meter_row, meter_usage_list


def meter_by_id(value: str) -> Meter:
    return row_by_id(Meter.objects.select_related("tenant", "target"), value, "meter", prefix="m")


def meter_as_json(meter: Meter) -> dict[str, Any]:
    return {**as_json(meter), "description": meter.description, "created_at": meter.created_at}


def meter_line(meter: Meter) -> str:
    scope = meter.credential_id or (meter.target.slug if meter.target else meter.tenant.name)
    counted = "calls" if meter.kind == Meter.Kind.REQUEST_COUNT else "of " + " + ".join(meter.value_paths)
    where = f" matching {meter.route}" if meter.route else ""
    return f"{meter.name} ({meter.scope} {scope}): {meter.limit:g} {counted} per {meter.window}{where}"


def meters_in_use(meters: list[Meter]) -> list[MeterUsage]:
    """Each meter's current use, read from Redis (the embedded default keeps it inside the gateway
    process, where a command cannot read it: then each says so)."""
    limiter = admin_limiter(in_gateway_process=False)
    return meter_usage_list(tuple(compile_meter_row(meter) for meter in meters), limiter=limiter)


def usage_json(meter: Meter, usage: MeterUsage) -> dict[str, Any]:
    shown = usage.as_dict()
    return {
        **meter_as_json(meter),
        "used": shown["used"],
        "resets_at": shown["resets_at"],
        "note": usage.note,
    }
