"""What a limiter does, whichever store keeps the counters (Redis, or this process's memory).

A call's meters are checked and counted together: :meth:`Limiter.check` either refuses the call
(naming the first meter that has no room, counting nothing) or counts it against every meter at
once. :meth:`Limiter.add` adds the values read from a response after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from metering.compiler import CompiledMeter


class MeterStoreUnavailable(Exception):
    """The counters could not be reached (Redis down, slow or refusing); the message says how."""


@dataclass(frozen=True, slots=True)
class Charge:
    """What one call asks of one meter.

    ``amount`` is added when the call passes. ``needs_room`` is true for request counts (the call
    needs ``amount`` of room) and false for the response-value pre-check (the sum must not have
    reached the limit; the value itself is added later).
    """

    meter: CompiledMeter
    amount: float
    needs_room: bool


@dataclass(frozen=True, slots=True)
class MeterReading:
    """A meter's state after a check or an add."""

    meter: CompiledMeter
    used: float
    reset_ms: int  # until capacity comes back: the calendar period's end, or the oldest use leaving
    window_seconds: int

    @property
    def remaining(self) -> float:
        return max(0.0, self.meter.limit - self.used)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The readings of every meter checked; ``refused`` is the first one without room, if any."""

    readings: tuple[MeterReading, ...]
    refused: MeterReading | None = None
    retry_ms: int = 0


class Limiter(Protocol):
    """The asynchronous interface the proxy's meter steps use."""

    async def check(self, charges: tuple[Charge, ...], now: float) -> CheckResult: ...

    async def add(self, charges: tuple[Charge, ...], now: float) -> tuple[MeterReading, ...]: ...


class LimiterAdmin(Protocol):
    """The synchronous interface of the admin and the commands: read and reset counters."""

    def peek(self, meters: tuple[CompiledMeter, ...], now: float) -> tuple[MeterReading, ...]: ...

    def reset(self, meter: CompiledMeter, now: float) -> None: ...
