"""The in-process limiter of the embedded default (no ``REDIS_URL``).

It keeps every meter's counters in this process's memory, shared by all its event loops and the
admin, under one lock, with the same windows and the same check-then-count rule as the Redis
script. Limits hold within one process only, which is why ``manage.py serve`` refuses several
workers without Redis.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from metering.compiler import CompiledMeter
from metering.limiter import Charge, CheckResult, MeterReading
from metering.windows import (
    FitTest,
    WindowSpan,
    sliding_free_ms,
    sliding_prune,
    sliding_reset_ms,
    sliding_used,
    window_span,
)


@dataclass(slots=True)
class _Counter:
    period: str = ""  # the calendar period counted in ``total``
    total: float = 0.0
    buckets: dict[int, float] = field(default_factory=dict)  # sliding windows: bucket -> amount


class MemoryLimiter:
    """Counters in a dictionary; every operation on them holds the lock, so a check and its count
    are one atomic step even with several event loops in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, _Counter] = {}

    async def check(self, charges: tuple[Charge, ...], now: float) -> CheckResult:
        return self.check_now(charges, now)

    async def add(self, charges: tuple[Charge, ...], now: float) -> tuple[MeterReading, ...]:
        now_ms = int(now * 1000)
        spans = [window_span(charge.meter.window, now_ms) for charge in charges]
        with self._lock:
            for charge, span in zip(charges, spans, strict=True):
                self._add(charge, span, now_ms)
            return tuple(self._read(c.meter, span, now_ms) for c, span in zip(charges, spans, strict=True))

    def check_now(self, charges: tuple[Charge, ...], now: float) -> CheckResult:
        """Refuse at the first charge that does not fit, else count all of them."""
        now_ms = int(now * 1000)
        spans = [window_span(charge.meter.window, now_ms) for charge in charges]
        with self._lock:
            before = [self._read(c.meter, span, now_ms) for c, span in zip(charges, spans, strict=True)]
            for charge, span, reading in zip(charges, spans, before, strict=True):
                fits = FitTest(limit=charge.meter.limit, amount=charge.amount, needs_room=charge.needs_room)
                if not fits(reading.used):
                    return CheckResult(
                        tuple(before), reading, self._free_ms(charge.meter, span, now_ms, fits, reading)
                    )
            for charge, span in zip(charges, spans, strict=True):
                self._add(charge, span, now_ms)
            return CheckResult(
                tuple(self._read(c.meter, span, now_ms) for c, span in zip(charges, spans, strict=True))
            )

    def peek(self, meters: tuple[CompiledMeter, ...], now: float) -> tuple[MeterReading, ...]:
        now_ms = int(now * 1000)
        with self._lock:
            return tuple(self._read(meter, window_span(meter.window, now_ms), now_ms) for meter in meters)

    def reset(self, meter: CompiledMeter, now: float) -> None:
        with self._lock:
            self._counters.pop(f"{meter.key}:{meter.window}", None)

    def _counter(self, meter: CompiledMeter, span: WindowSpan) -> _Counter:
        counter = self._counters.setdefault(f"{meter.key}:{meter.window}", _Counter())
        if not span.sliding and counter.period != span.suffix:
            counter.period, counter.total = span.suffix, 0.0  # a new calendar period starts at zero
        return counter

    def _read(self, meter: CompiledMeter, span: WindowSpan, now_ms: int) -> MeterReading:
        counter = self._counter(meter, span)
        if span.sliding:
            sliding_prune(counter.buckets, span, now_ms)
            used = sliding_used(counter.buckets, span, now_ms)
            reset_ms = sliding_reset_ms(counter.buckets, span, now_ms)
        else:
            used, reset_ms = counter.total, span.end_ms - now_ms
        return MeterReading(meter=meter, used=used, reset_ms=reset_ms, window_seconds=span.seconds)

    def _add(self, charge: Charge, span: WindowSpan, now_ms: int) -> None:
        if charge.amount == 0:
            return
        counter = self._counter(charge.meter, span)
        if span.sliding:
            index = now_ms // span.bucket_ms
            counter.buckets[index] = counter.buckets.get(index, 0.0) + charge.amount
        else:
            counter.total += charge.amount

    def _free_ms(
        self, meter: CompiledMeter, span: WindowSpan, now_ms: int, fits: FitTest, reading: MeterReading
    ) -> int:
        if not span.sliding:
            return span.end_ms - now_ms
        buckets = self._counters[f"{meter.key}:{meter.window}"].buckets
        return sliding_free_ms(buckets, span, now_ms, fits=fits, used=reading.used)


process_limiter = MemoryLimiter()
