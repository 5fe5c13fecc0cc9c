"""What the meter steps know about one proxied call (``ProxyContext.metering``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.proxy.jsonrpc import Route
from metering.compiler import CompiledMeter
from metering.limiter import Charge, MeterReading


@dataclass(frozen=True, slots=True)
class MeterUse:
    """One meter that applies to the call, and the routes of the call it counts."""

    meter: CompiledMeter
    routes: tuple[Route, ...]

    def pre_charge(self) -> Charge:
        """What the call asks before forwarding: one per route counted, or room left for a value."""
        if self.meter.counts_values:
            return Charge(meter=self.meter, amount=0.0, needs_room=False)
        return Charge(meter=self.meter, amount=float(len(self.routes)), needs_room=True)


@dataclass(slots=True)
class MeteredCall:
    """Set by ``check_meters``; ``count_response_values`` adds the values it read and its notes."""

    uses: tuple[MeterUse, ...]
    readings: dict[int, MeterReading] = field(default_factory=dict)  # by meter id
    notes: list[str] = field(default_factory=list)  # for the audit event
    values: dict[str, float] = field(default_factory=dict)  # summed response values, by JSON path

    @property
    def value_uses(self) -> tuple[MeterUse, ...]:
        return tuple(use for use in self.uses if use.meter.counts_values)

    def record(self, readings: tuple[MeterReading, ...]) -> None:
        for reading in readings:
            self.readings[reading.meter.id] = reading


def plan_call(meters: tuple[CompiledMeter, ...], routes: list[Route]) -> tuple[MeterUse, ...]:
    """The meters that count at least one of ``routes``, each with the routes it counts."""
    uses = []
    for meter in meters:
        counted = tuple(route for route in routes if meter.counts(route))
        if counted:
            uses.append(MeterUse(meter=meter, routes=counted))
    return tuple(uses)
