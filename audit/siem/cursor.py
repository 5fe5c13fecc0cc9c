"""Which events a sink still has to receive: an id cursor, and the gaps below it to keep watching.

Event ids are given when a writer inserts, not when it commits (audit/services.py says why), so an
event whose transaction commits late can appear *below* ids already delivered. A cursor alone would
skip it. So each delivery notes the **holes** it passed: ranges of ids between two consecutive
visible events (any tenant's) that were missing when it read. Later deliveries look in the holes
again and send what has appeared; a hole is forgotten after :data:`HOLE_WINDOW` (beyond that,
``verify_audit`` would report such an event as inserted after the fact) and at most
:data:`MAX_HOLES` ranges are kept (the oldest go first). Most holes stay empty: ids a rolled-back
or duplicate insert consumed.

Holes are stored as JSON lists ``[low, high, seen_at]`` (ids inclusive, seen_at in epoch seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HOLE_WINDOW_SECONDS = 300.0  # verification.LATE_COMMIT_GRACE
MAX_HOLES = 1000


@dataclass(frozen=True, slots=True)
class Hole:
    low: int
    high: int
    seen_at: float

    def as_json(self) -> list[float | int]:
        return [self.low, self.high, self.seen_at]


def holes_from_json(raw: object) -> list[Hole]:
    """The stored holes; anything malformed is dropped (it only costs a re-check)."""
    holes = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list) and len(item) == 3 and all(isinstance(v, int | float) for v in item):
            low, high, seen_at = item
            if int(low) <= int(high):
                holes.append(Hole(int(low), int(high), float(seen_at)))
    return holes


def holes_passed(cursor: int, visible_ids: Iterable[int], seen_at: float) -> list[Hole]:
    """The gaps between ``cursor`` and each next visible id (ascending), seen at ``seen_at``."""
    holes = []
    previous = cursor
    for event_id in visible_ids:
        if event_id > previous + 1:
            holes.append(Hole(previous + 1, event_id - 1, seen_at))
        previous = max(previous, event_id)
    return holes


def holes_filled(holes: list[Hole], found_ids: Iterable[int]) -> list[Hole]:
    """``holes`` without the ids found in them (a hole is split around each)."""
    remaining = holes
    for event_id in sorted(set(found_ids)):
        split: list[Hole] = []
        for hole in remaining:
            if not hole.low <= event_id <= hole.high:
                split.append(hole)
                continue
            if hole.low < event_id:
                split.append(Hole(hole.low, event_id - 1, hole.seen_at))
            if event_id < hole.high:
                split.append(Hole(event_id + 1, hole.high, hole.seen_at))
        remaining = split
    return remaining


def holes_kept(holes: list[Hole], now: float) -> list[Hole]:
    """The holes still worth watching: seen within the window, at most MAX_HOLES, newest kept."""
    recent = [hole for hole in holes if now - hole.seen_at <= HOLE_WINDOW_SECONDS]
    recent.sort(key=lambda hole: (hole.seen_at, hole.low))
    return recent[-MAX_HOLES:]
