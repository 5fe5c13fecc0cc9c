"""The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) and Retry-After.

``RateLimit-Policy: "m12";q=60;w=60`` announces each applied meter's quota and window (seconds);
``RateLimit: "m12";r=17;t=23`` its remaining quota and the seconds until capacity comes back: the
end of the calendar period, or for a sliding window the moment its oldest counted use leaves it.
Both are structured-field lists of integers, so fractional quotas and remainders are rounded down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from metering.limiter import MeterReading


def ratelimit_headers(readings: Iterable[MeterReading]) -> dict[str, str]:
    """The two RateLimit fields for ``readings``; empty when there is none."""
    readings = list(readings)
    if not readings:
        return {}
    policy = ", ".join(
        f'"{r.meter.name}";q={math.floor(r.meter.limit)};w={r.window_seconds}' for r in readings
    )
    state = ", ".join(
        f'"{r.meter.name}";r={math.floor(r.remaining)};t={seconds(r.reset_ms)}' for r in readings
    )
    return {"ratelimit-policy": policy, "ratelimit": state}


def seconds(milliseconds: int) -> int:
    """Whole seconds, rounded up, so a client that waits that long is never early."""
    return max(0, math.ceil(milliseconds / 1000))
