"""The windows meters count over: sliding minute and hour, calendar day and month in UTC.

A sliding window of length W is kept as 60 buckets of W/60 (1 s for a minute, 1 min for an hour)
and counts the current bucket plus the 60 before it. Every use inside the last W is therefore
counted: a meter never lets more than its limit through in any W-long interval (no double burst
at a boundary). The price is the other way round: a use stops counting between W and W + W/60
after it happened, so capacity comes back at most one bucket (1 s / 1 min) late.

Day and month are calendar windows in UTC: a counter per day (``d20260131``) or month
(``m202601``) that starts again from zero at 00:00 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

SLIDING_BUCKETS = 60
_SLIDING_BUCKET_MS = {"minute": 1_000, "hour": 60_000}


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """Where ``now`` falls in a meter's window, in milliseconds since the epoch."""

    suffix: str  # key suffix: "sm" / "sh" for a sliding minute / hour, else the calendar period
    bucket_ms: int  # 0 for a calendar window
    end_ms: int  # end of the calendar period; 0 for a sliding window
    seconds: int  # the window's length, as announced in RateLimit-Policy

    @property
    def sliding(self) -> bool:
        return self.bucket_ms > 0


# The suffix names the window: a meter moved from minute to hour must not read second buckets as minutes.
_SLIDING = {
    name: WindowSpan(f"s{name[0]}", ms, 0, ms * SLIDING_BUCKETS // 1000)
    for name, ms in _SLIDING_BUCKET_MS.items()
}
_DAY_MS = 86_400_000


def window_span(window: str, now_ms: int) -> WindowSpan:
    """The span of ``window`` ("minute", "hour", "day" or "month") at ``now_ms``."""
    sliding = _SLIDING.get(window)
    if sliding is not None:
        return sliding
    return _calendar_span(window, now_ms // _DAY_MS)


@lru_cache(maxsize=64)
def _calendar_span(window: str, day_index: int) -> WindowSpan:
    """Calendar spans change once a day at most: computed once per UTC day (strftime is slow)."""
    start = datetime.fromtimestamp(day_index * 86_400, UTC)
    if window == "day":
        return WindowSpan(f"d{start:%Y%m%d}", 0, _ms(start + timedelta(days=1)), 86_400)
    if window == "month":
        start = start.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return WindowSpan(f"m{start:%Y%m}", 0, _ms(end), int((end - start).total_seconds()))
    raise ValueError(f"unknown meter window {window!r}")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def sliding_used(buckets: Mapping[int, float], span: WindowSpan, now_ms: int) -> float:
    """The sum of the buckets still inside the window at ``now_ms``."""
    oldest = now_ms // span.bucket_ms - SLIDING_BUCKETS
    return sum(amount for index, amount in buckets.items() if index >= oldest)


def sliding_prune(buckets: dict[int, float], span: WindowSpan, now_ms: int) -> None:
    """Drop the buckets that have left the window."""
    oldest = now_ms // span.bucket_ms - SLIDING_BUCKETS
    for index in [index for index in buckets if index < oldest]:
        del buckets[index]


def sliding_free_ms(
    buckets: Mapping[int, float], span: WindowSpan, now_ms: int, *, fits: FitTest, used: float
) -> int:
    """Milliseconds until enough old buckets have left the window for ``fits(used_then)`` to hold."""
    freed = 0.0
    for index in sorted(buckets):
        freed += buckets[index]
        if fits(used - freed):
            return bucket_leaves_ms(index, span) - now_ms
    return span.seconds * 1000 + span.bucket_ms  # never, within one window: a call larger than the limit


def sliding_reset_ms(buckets: Mapping[int, float], span: WindowSpan, now_ms: int) -> int:
    """Milliseconds until the oldest counted use leaves the window (0 when nothing is counted)."""
    counted = [index for index, amount in buckets.items() if amount > 0]
    return bucket_leaves_ms(min(counted), span) - now_ms if counted else 0


def bucket_leaves_ms(index: int, span: WindowSpan) -> int:
    """When the bucket ``index`` stops counting: 61 buckets after it began."""
    return (index + SLIDING_BUCKETS + 1) * span.bucket_ms


class FitTest:
    """Whether a call fits a meter that has ``used`` of ``limit``.

    A request count needs room for its own ``amount`` (used + amount <= limit); a response value
    is checked before the value is known, so it only needs the sum not to have reached the limit.
    """

    __slots__ = ("amount", "limit", "needs_room")

    def __init__(self, *, limit: float, amount: float, needs_room: bool) -> None:
        self.limit, self.amount, self.needs_room = limit, amount, needs_room

    def __call__(self, used: float) -> bool:
        if self.needs_room:
            return used + self.amount <= self.limit
        return used < self.limit
