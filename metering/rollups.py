"""Aggregating audit events into usage rollups: which periods to recompute, and the arithmetic.

A period (an hour, or a UTC day) is always recomputed whole from its audit events, never updated
incrementally, which is what makes a rollup run idempotent. The writes are in
:func:`metering.services.usage_rollup_run`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

GroupKey = tuple[int, int | None, int | None, str]  # tenant, target, credential, tool


@dataclass(slots=True)
class Tally:
    """The running totals of one rollup row."""

    calls: int = 0
    denials: int = 0
    rate_limited: int = 0
    errors: int = 0
    response_values: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def add(self, *, decision: str, status_code: int, latency_ms: float, values: dict[str, Any]) -> None:
        self.calls += 1
        self.denials += decision == "denied"
        self.rate_limited += status_code == 429
        self.errors += decision == "error"
        self.latencies.append(latency_ms)
        for path, value in (values or {}).items():
            if isinstance(value, (int, float)):
                self.response_values[path] = self.response_values.get(path, 0.0) + value

    def fields(self) -> dict[str, Any]:
        self.latencies.sort()
        return {
            "calls": self.calls,
            "denials": self.denials,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "response_values": {
                path: round(total, 6) for path, total in sorted(self.response_values.items())
            },
            "latency_p50_ms": percentile(self.latencies, 50),
            "latency_p95_ms": percentile(self.latencies, 95),
        }


def percentile(ordered: list[float], rank: int) -> float:
    """The nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]


EventRow = tuple[int, int | None, int | None, str, str, int, float, dict[str, Any]]


def tally(events: Iterable[EventRow]) -> dict[GroupKey, Tally]:
    """Group ``(tenant, target, credential, tool, decision, status, latency, values)`` rows."""
    groups: dict[GroupKey, Tally] = {}
    for tenant_id, target_id, credential_id, tool, decision, status, latency, values in events:
        key = (tenant_id, target_id, credential_id, tool)
        groups.setdefault(key, Tally()).add(
            decision=decision, status_code=status, latency_ms=latency, values=values
        )
    return groups


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
